// The residual addition of integer-only inference (shared/spec/quantization.md): both inputs are
// requantized to the output scale with their own dyadic factors, then added and clamped:
// out = clamp(requantize(a, f_a) + requantize(b, f_b), lo, hi), per tensor or per output channel.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/quant/dyadic.hpp"
#include "soda/quant/integer_matrix.hpp"

namespace soda::quant {

inline std::int32_t residual_add(std::int32_t a, DyadicFactor factor_a, std::int32_t b,
                                 DyadicFactor factor_b, std::int32_t lo, std::int32_t hi) {
  constexpr std::int32_t int32_lo = std::numeric_limits<std::int32_t>::min();
  constexpr std::int32_t int32_hi = std::numeric_limits<std::int32_t>::max();
  const std::int64_t sum = std::int64_t{requantize(a, factor_a, int32_lo, int32_hi)} +
                           requantize(b, factor_b, int32_lo, int32_hi);
  return static_cast<std::int32_t>(sum < lo ? lo : (sum > hi ? hi : sum));
}

// out[i, j] = residual_add(a[i, j], f_a, b[i, j], f_b) in out's range (lo = 0 when relu), with
// per-tensor factors; a, b and out may have different formats but one shape.
inline void residual_add(const IntegerMatrix& a, DyadicFactor factor_a, const IntegerMatrix& b,
                         DyadicFactor factor_b, bool relu, IntegerMatrix& out) {
  a.check("residual_add", "a");
  b.check("residual_add", "b");
  out.check("residual_add", "output");
  if (a.rows != b.rows || a.cols != b.cols || out.rows != a.rows || out.cols != a.cols) {
    throw ShapeError("residual_add: a " + a.shape_string() + ", b " + b.shape_string() +
                     " and output " + out.shape_string() + " must have one shape");
  }
  const std::int32_t lo = relu ? 0 : format_min(out.format), hi = format_max(out.format);
  for (std::int64_t i = 0; i < a.rows; ++i) {
    for (std::int64_t j = 0; j < a.cols; ++j) {
      out.set(i, j, residual_add(a.at(i, j), factor_a, b.at(i, j), factor_b, lo, hi));
    }
  }
}

namespace detail {

inline void check_residual_factors(const char* name, std::span<const DyadicFactor> factors,
                                   std::int64_t channels) {
  if (static_cast<std::int64_t>(factors.size()) != channels) {
    throw ShapeError(std::string("residual_add: ") + std::to_string(factors.size()) + " " + name +
                     " factors for " + std::to_string(channels) + " channels");
  }
  for (const auto& f : factors) {
    if (f.multiplier < (1 << 30) || f.shift < 0 || f.shift >= 63) {
      throw ValueError(std::string("residual_add: ") + name + " factor " +
                       std::to_string(f.multiplier) + " / 2^" + std::to_string(f.shift) +
                       " is not dyadic (M0 in [2^30, 2^31), 0 <= c < 63); use dyadic_factor");
    }
  }
}

}  // namespace detail

// The addition closing a residual block: a holds conv2's int32 accumulators [M, N] row-major, at
// scale S_w[n]·S_in, so each channel n has its own factor; b (the shortcut) has one factor per
// channel too. out[m, n] = residual_add(a[m·N + n], factors_a[n], b[m, n], factors_b[n]) in out's
// range (lo = 0 when relu).
inline void residual_add(std::span<const std::int32_t> a, std::span<const DyadicFactor> factors_a,
                         const IntegerMatrix& b, std::span<const DyadicFactor> factors_b, bool relu,
                         IntegerMatrix& out) {
  b.check("residual_add", "b");
  out.check("residual_add", "output");
  if (static_cast<std::int64_t>(a.size()) != out.rows * out.cols || b.rows != out.rows ||
      b.cols != out.cols) {
    throw ShapeError("residual_add: " + std::to_string(a.size()) + " accumulators, b " +
                     b.shape_string() + " and output " + out.shape_string() +
                     " must have one shape");
  }
  detail::check_residual_factors("a", factors_a, out.cols);
  detail::check_residual_factors("b", factors_b, out.cols);
  const std::int32_t lo = relu ? 0 : format_min(out.format), hi = format_max(out.format);
  for (std::int64_t i = 0; i < out.rows; ++i) {
    const std::int32_t* row = a.data() + i * out.cols;
    for (std::int64_t j = 0; j < out.cols; ++j) {
      out.set(i, j, residual_add(row[j], factors_a[j], b.at(i, j), factors_b[j], lo, hi));
    }
  }
}

// The same with one factor for the whole shortcut (an identity or a per-tensor downsample output).
inline void residual_add(std::span<const std::int32_t> a, std::span<const DyadicFactor> factors_a,
                         const IntegerMatrix& b, DyadicFactor factor_b, bool relu,
                         IntegerMatrix& out) {
  const std::vector<DyadicFactor> factors_b(static_cast<std::size_t>(out.cols), factor_b);
  residual_add(a, factors_a, b, factors_b, relu, out);
}

}  // namespace soda::quant
