// The residual addition of integer-only inference (shared/spec/quantization.md): both inputs are
// requantized to the output scale with their own dyadic factors, then added and clamped:
// out = clamp(requantize(a, f_a) + requantize(b, f_b), lo, hi).
#pragma once

#include <cstdint>
#include <limits>
#include <string>

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

}  // namespace soda::quant
