// Fake quantization for quantization-aware training: Q(x) = clamp(round_half_even(x / s), lo, hi)·s
// per tensor or per output channel (axis 0), differentiated by the straight-through estimator.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "soda/autodiff/ops/unary.hpp"
#include "soda/autodiff/ops/views.hpp"
#include "soda/core/error.hpp"
#include "soda/quant/quantize.hpp"
#include "soda/quant/quantized_resnet_plan.hpp"

namespace soda::quant {

// The integer grid of a fake quantizer: lo ≤ q ≤ hi, and one scale per tensor (one value) or per
// slice along axis 0 (a weight's output channels).
template <class T>
struct FakeQuantizer {
  std::vector<T> scales;
  std::int32_t lo = -127;
  std::int32_t hi = 127;
};

namespace detail {

template <class T>
void check_fake_quantizer(const Tensor<T>& x, const FakeQuantizer<T>& quantizer) {
  const auto channels = static_cast<std::int64_t>(quantizer.scales.size());
  if (channels == 0) throw ValueError("fake_quantize: the quantizer holds no scale");
  const bool per_tensor = channels == 1;
  if (!per_tensor && (x.ndim() == 0 || x.shape()[0] != channels)) {
    throw ShapeError("fake_quantize: " + std::to_string(channels) +
                     " scales do not fit a tensor of shape " + to_string(x.shape()) +
                     " (one scale per tensor, or one per slice along axis 0)");
  }
  if (quantizer.lo > quantizer.hi) {
    throw ValueError("fake_quantize: the grid's lo " + std::to_string(quantizer.lo) +
                     " exceeds its hi " + std::to_string(quantizer.hi));
  }
  for (const T s : quantizer.scales) check_scale("fake_quantize", static_cast<double>(s));
}

// Applies step(value, scale, q) to every element, q = round_half_even(x / s) unclamped, and
// returns the results as a tensor of x's shape.
template <class T, class Step>
Tensor<T> map_quantization_grid(const Tensor<T>& x, const FakeQuantizer<T>& quantizer, Step step) {
  const Tensor<T> in = soda::contiguous(x.detach());  // primal values only
  std::vector<T> out(static_cast<std::size_t>(in.numel()));
  const std::int64_t slices = static_cast<std::int64_t>(quantizer.scales.size());
  const std::int64_t per_slice = slices == 1 ? in.numel() : in.numel() / slices;
  const T* values = in.data();
  for (std::int64_t slice = 0; slice < slices; ++slice) {
    const T s = quantizer.scales[static_cast<std::size_t>(slice)];
    for (std::int64_t i = slice * per_slice; i < (slice + 1) * per_slice; ++i) {
      const double q = round_half_even(static_cast<double>(values[i] / s));
      out[static_cast<std::size_t>(i)] = step(s, q);
    }
  }
  return Tensor<T>(in.shape(), std::move(out));
}

}  // namespace detail

// Q(x) as the integer-only network will see it: the spec's rounding (half to even of x / s, in
// T as PyTorch's fake_quantize), clamped to [lo, hi] and scaled back. Its derivative is the
// straight-through estimator with PyTorch's clipping mask: 1 where round(x / s) lies in
// [lo, hi], 0 where it was clamped; the scales are constants (computed from data, no gradient).
// Both the reverse and the forward rule use that mask, so gradients and H·v treat Q as the
// masked identity, as quantization-aware training does.
template <class T>
Tensor<T> fake_quantize(const Tensor<T>& x, const FakeQuantizer<T>& quantizer) {
  detail::check_fake_quantizer(x, quantizer);
  const double lo = quantizer.lo, hi = quantizer.hi;
  Tensor<T> y = detail::map_quantization_grid(x, quantizer, [lo, hi](T s, double q) {
    return static_cast<T>(std::min(std::max(q, lo), hi)) * s;
  });
  return soda::detail::unary_op(
      "fake_quantize", x, std::move(y), [quantizer, lo, hi](const Tensor<T>& in, const Tensor<T>&) {
        return detail::map_quantization_grid(
            in, quantizer, [lo, hi](T, double q) { return q >= lo && q <= hi ? T(1) : T(0); });
      });
}

// The spec's symmetric b-bit weight quantizer for w [O, ...]: S[o] = max|w[o]| / (2^(b−1) − 1)
// per output channel (1 for an all-zero channel), grid ±(2^(b−1) − 1); b = 2, 4 or 8 (2-bit
// weights use the ternary grid {−1, 0, 1} and are stored as int4).
template <class T>
FakeQuantizer<T> weight_fake_quantizer(const Tensor<T>& w, int bits) {
  check_weight_bits("weight_fake_quantizer", bits);
  if (w.ndim() == 0) throw ShapeError("weight_fake_quantizer: a weight needs an output axis");
  const Tensor<T> in = soda::contiguous(w.detach());
  const std::int64_t channels = in.shape()[0],
                     per_channel = in.numel() / std::max<std::int64_t>(channels, 1);
  const std::int32_t q_max = (1 << (bits - 1)) - 1;
  FakeQuantizer<T> quantizer{std::vector<T>(static_cast<std::size_t>(channels)), -q_max, q_max};
  for (std::int64_t o = 0; o < channels; ++o) {
    T largest = 0;
    for (std::int64_t k = 0; k < per_channel; ++k) {
      const T value = in.data()[o * per_channel + k];
      if (!std::isfinite(value)) {
        throw ValueError("weight_fake_quantizer: output channel " + std::to_string(o) +
                         " holds a non-finite weight");
      }
      largest = std::max(largest, std::abs(value));
    }
    quantizer.scales[static_cast<std::size_t>(o)] = largest > 0 ? largest / T(q_max) : T(1);
  }
  return quantizer;
}

}  // namespace soda::quant
