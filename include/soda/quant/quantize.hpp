// The spec's quantizers (shared/spec/quantization.md, "Quantizers"): symmetric per-output-channel
// weights S_w[n] = max|w[n,:]| / (2^(b−1) − 1) (b = 8, 4 or 2, the last the ternary grid),
// per-tensor activations (unsigned after a ReLU), int32 bias q_b = round(b / (S_w[n]·S_a)), all
// rounding half to even, float32 like PyTorch.
#pragma once

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/quant/dyadic.hpp"
#include "soda/quant/integer_matrix.hpp"
#include "soda/quant/quantized_resnet_plan.hpp"

namespace soda::quant {

namespace detail {

// Round half to even (std::nearbyint in the default rounding mode, as torch.round).
inline double round_half_even(double x) {
  return std::fegetround() == FE_TONEAREST ? std::nearbyint(x) : x - std::remainder(x, 1.0);
}

inline void check_bits(const char* op, int bits) {
  if (bits != 8 && bits != 4) {
    throw ValueError(std::string(op) + ": bits must be 8 or 4, got " + std::to_string(bits));
  }
}

inline void check_scale(const char* op, double scale) {
  if (!(scale > 0) || !std::isfinite(scale)) {
    throw ValueError(std::string(op) + ": scale must be positive and finite, got " +
                     std::to_string(scale));
  }
}

}  // namespace detail

struct QuantizedWeights {
  IntegerMatrix values;       // [N, K], int8 or int4
  std::vector<float> scales;  // S_w[n]
};

// Per-output-channel symmetric quantization of row-major w[N, K] on ±(2^(b−1) − 1), b = 8, 4 or 2:
// 8-bit weights are stored as int8, 4- and 2-bit ones as int4 (2 bits are the ternary grid
// {−1, 0, 1} at S_w = max|w|, which no kernel stores more densely). A row of zeros gets scale 1
// (any scale represents it; 1 keeps the bias scale S_w·S_a finite).
inline QuantizedWeights quantize_weights(std::span<const float> w, std::int64_t rows,
                                         std::int64_t cols, int bits) {
  check_weight_bits("quantize_weights", bits);
  if (rows < 0 || cols < 0 || static_cast<std::int64_t>(w.size()) != rows * cols) {
    throw ShapeError("quantize_weights: " + std::to_string(w.size()) + " weights do not fill [" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "]");
  }
  const std::int32_t q_max = (1 << (bits - 1)) - 1;
  QuantizedWeights out{
      IntegerMatrix::zeros(rows, cols, bits == 8 ? IntegerFormat::int8 : IntegerFormat::int4),
      std::vector<float>(static_cast<std::size_t>(rows))};
  for (std::int64_t n = 0; n < rows; ++n) {
    float max_abs = 0;
    for (std::int64_t k = 0; k < cols; ++k) max_abs = std::max(max_abs, std::abs(w[n * cols + k]));
    if (!std::isfinite(max_abs)) {
      throw ValueError("quantize_weights: row " + std::to_string(n) + " holds a non-finite weight");
    }
    const float scale = max_abs > 0 ? max_abs / static_cast<float>(q_max) : 1.0f;
    out.scales[n] = scale;
    for (std::int64_t k = 0; k < cols; ++k) {
      const double q = detail::round_half_even(w[n * cols + k] / scale);
      out.values.set(n, k, static_cast<std::int32_t>(std::clamp<double>(q, -q_max, q_max)));
    }
  }
  return out;
}

// The per-tensor scale that maps max_abs (calibrated) to the largest code.
inline float activation_scale(float max_abs, int bits, bool is_unsigned) {
  detail::check_bits("activation_scale", bits);
  detail::check_scale("activation_scale", max_abs);
  const int q_max = is_unsigned ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
  return max_abs / static_cast<float>(q_max);
}

// Per-tensor quantization of row-major x[rows, cols] at scale: unsigned ([0, 2^b − 1], zero point
// 0, for activations after a ReLU) or signed symmetric ([−(2^(b−1) − 1), 2^(b−1) − 1]).
inline IntegerMatrix quantize_activations(std::span<const float> x, std::int64_t rows,
                                          std::int64_t cols, float scale, int bits,
                                          bool is_unsigned) {
  detail::check_bits("quantize_activations", bits);
  detail::check_scale("quantize_activations", scale);
  if (rows < 0 || cols < 0 || static_cast<std::int64_t>(x.size()) != rows * cols) {
    throw ShapeError("quantize_activations: " + std::to_string(x.size()) + " values do not fill [" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "]");
  }
  const IntegerFormat format = bits == 8
                                   ? (is_unsigned ? IntegerFormat::uint8 : IntegerFormat::int8)
                                   : (is_unsigned ? IntegerFormat::uint4 : IntegerFormat::int4);
  const double hi = is_unsigned ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
  const double lo = is_unsigned ? 0 : -hi;
  IntegerMatrix out = IntegerMatrix::zeros(rows, cols, format);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      const float v = x[r * cols + c];
      if (std::isnan(v))
        throw ValueError("quantize_activations: NaN at flat index " + std::to_string(r * cols + c));
      const double q = detail::round_half_even(v / scale);
      out.set(r, c, static_cast<std::int32_t>(std::clamp(q, lo, hi)));
    }
  }
  return out;
}

// q_b[n] = round_half_even(b[n] / (S_w[n]·S_a)), which must fit int32.
inline std::vector<std::int32_t> quantize_bias(std::span<const float> bias,
                                               std::span<const float> weight_scales,
                                               float activation_scale) {
  if (bias.size() != weight_scales.size()) {
    throw ShapeError("quantize_bias: " + std::to_string(bias.size()) + " biases for " +
                     std::to_string(weight_scales.size()) + " weight scales");
  }
  detail::check_scale("quantize_bias", activation_scale);
  std::vector<std::int32_t> out(bias.size());
  for (std::size_t n = 0; n < bias.size(); ++n) {
    const float scale = weight_scales[n] * activation_scale;
    const double q = detail::round_half_even(bias[n] / scale);
    if (!(std::abs(q) <= std::numeric_limits<std::int32_t>::max())) {
      throw ValueError("quantize_bias: bias " + std::to_string(bias[n]) + " of channel " +
                       std::to_string(n) + " does not fit int32 at scale " + std::to_string(scale));
    }
    out[n] = static_cast<std::int32_t>(q);
  }
  return out;
}

// The dyadic factors of S_w[n]·S_a / S_out, one per output channel.
inline std::vector<DyadicFactor> requantization_factors(std::span<const float> weight_scales,
                                                        float activation_scale,
                                                        float output_scale) {
  detail::check_scale("requantization_factors", output_scale);
  std::vector<DyadicFactor> out(weight_scales.size());
  for (std::size_t n = 0; n < out.size(); ++n) {
    out[n] = dyadic_factor(static_cast<double>(weight_scales[n]) * activation_scale / output_scale);
  }
  return out;
}

// x = q·S (per tensor).
inline std::vector<float> dequantize(const IntegerMatrix& q, float scale) {
  std::vector<float> out(static_cast<std::size_t>(q.rows * q.cols));
  for (std::int64_t r = 0; r < q.rows; ++r) {
    for (std::int64_t c = 0; c < q.cols; ++c) out[r * q.cols + c] = q.at(r, c) * scale;
  }
  return out;
}

// w[n, k] = q[n, k]·S_w[n] (per row).
inline std::vector<float> dequantize(const IntegerMatrix& q, std::span<const float> row_scales) {
  if (static_cast<std::int64_t>(row_scales.size()) != q.rows) {
    throw ShapeError("dequantize: " + std::to_string(row_scales.size()) + " scales for " +
                     q.shape_string());
  }
  std::vector<float> out(static_cast<std::size_t>(q.rows * q.cols));
  for (std::int64_t r = 0; r < q.rows; ++r) {
    for (std::int64_t c = 0; c < q.cols; ++c) out[r * q.cols + c] = q.at(r, c) * row_scales[r];
  }
  return out;
}

}  // namespace soda::quant
