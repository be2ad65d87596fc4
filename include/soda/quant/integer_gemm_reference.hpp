// The quantized GEMM contract (shared/spec/quantization.md) and its scalar oracle:
// C[M,N] = A[M,K]·B[N,K]ᵀ + q_b[n], A int8/uint8/int4/uint4, B int8/int4, both K-contiguous,
// int32 accumulators, returned raw or requantized per channel n to clamp((acc·M0 + 2^(c−1)) >> c).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "soda/core/error.hpp"
#include "soda/quant/dyadic.hpp"
#include "soda/quant/integer_matrix.hpp"

namespace soda::quant {

// Per-output-channel requantization of the int32 accumulators to the output matrix's format.
// The clamp range is that format's range, with lo = 0 when relu fuses a ReLU.
struct Requantization {
  std::span<const DyadicFactor> factors;  // one per output channel n
  bool relu = false;
};

namespace detail {

inline std::string shape_string(std::int64_t rows, std::int64_t cols) {
  return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

// Checks A against weights of n rows and k columns (described as b_name), the bias and the
// output's element count; every message names op and both operands' shapes.
inline void check_gemm_operands(const char* op, const IntegerMatrix& a, std::int64_t n,
                                std::int64_t k, IntegerFormat b_format,
                                std::span<const std::int32_t> bias) {
  a.check(op, "A");
  const std::string shapes =
      "A " + a.shape_string() + " and B " + format_name(b_format) + " " + shape_string(n, k);
  if (a.cols != k) {
    throw ShapeError(std::string(op) + ": " + shapes + " do not agree in K (" +
                     std::to_string(a.cols) + " != " + std::to_string(k) + "); C = A·Bᵀ needs " +
                     "A [M, K] and B [N, K]");
  }
  if (b_format != IntegerFormat::int8 && b_format != IntegerFormat::int4) {
    throw ValueError(std::string(op) + ": " + shapes + ": weights must be int8 or int4");
  }
  if (!bias.empty() && static_cast<std::int64_t>(bias.size()) != n) {
    throw ShapeError(std::string(op) + ": " + shapes + ": bias holds " +
                     std::to_string(bias.size()) + " values, expected N = " + std::to_string(n) +
                     " (or none)");
  }
}

inline void check_int32_output(const char* op, std::int64_t m, std::int64_t n,
                               std::size_t out_size) {
  if (static_cast<std::int64_t>(out_size) != m * n) {
    throw ShapeError(std::string(op) + ": int32 output holds " + std::to_string(out_size) +
                     " values, expected M·N for C " + shape_string(m, n));
  }
}

inline void check_requantized_output(const char* op, std::int64_t m, std::int64_t n,
                                     const Requantization& requantization,
                                     const IntegerMatrix& out) {
  if (out.rows != m || out.cols != n) {
    throw ShapeError(std::string(op) + ": output " + out.shape_string() + " does not match C " +
                     shape_string(m, n));
  }
  out.check(op, "output");
  if (static_cast<std::int64_t>(requantization.factors.size()) != n) {
    throw ShapeError(std::string(op) + ": " + std::to_string(requantization.factors.size()) +
                     " requantization factors for N = " + std::to_string(n) + " channels");
  }
  for (const auto& f : requantization.factors) {
    if (f.multiplier < (1 << 30) || f.shift < 0 || f.shift >= 63) {
      throw ValueError(std::string(op) + ": dyadic factor {" + std::to_string(f.multiplier) + ", " +
                       std::to_string(f.shift) +
                       "} is outside M0 in [2^30, 2^31), 0 <= c < 63 (use dyadic_factor)");
    }
  }
}

// The clamp range [lo, hi] of an output format.
inline std::int32_t output_lo(IntegerFormat format, bool relu) {
  return relu ? 0 : format_min(format);
}

// Σ_k a·b + bias, reduced modulo 2^32 to int32 as int32 hardware accumulators do. The contract
// holds exactly in int32 whenever the sum fits (K up to 65793 for uint8 × int8).
inline std::int32_t wrap_int32(std::int64_t value) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(static_cast<std::uint64_t>(value)));
}

inline std::int32_t reference_accumulator(const IntegerMatrix& a, const IntegerMatrix& b,
                                          std::span<const std::int32_t> bias, std::int64_t m,
                                          std::int64_t n) {
  std::int64_t sum = bias.empty() ? 0 : bias[n];
  for (std::int64_t k = 0; k < a.cols; ++k) sum += std::int64_t{a.at(m, k)} * b.at(n, k);
  return wrap_int32(sum);
}

}  // namespace detail

// out[m·N + n] = the int32 accumulator (bias added; bias may be empty).
inline void integer_gemm_reference(const IntegerMatrix& a, const IntegerMatrix& b,
                                   std::span<const std::int32_t> bias,
                                   std::span<std::int32_t> out) {
  constexpr const char* op = "integer_gemm_reference";
  b.check(op, "B");
  detail::check_gemm_operands(op, a, b.rows, b.cols, b.format, bias);
  detail::check_int32_output(op, a.rows, b.rows, out.size());
  for (std::int64_t m = 0; m < a.rows; ++m) {
    for (std::int64_t n = 0; n < b.rows; ++n) {
      out[m * b.rows + n] = detail::reference_accumulator(a, b, bias, m, n);
    }
  }
}

// out[m, n] = requantize(acc[m, n], factors[n], lo, hi), stored in out's format.
inline void integer_gemm_reference(const IntegerMatrix& a, const IntegerMatrix& b,
                                   std::span<const std::int32_t> bias,
                                   const Requantization& requantization, IntegerMatrix& out) {
  constexpr const char* op = "integer_gemm_reference";
  b.check(op, "B");
  detail::check_gemm_operands(op, a, b.rows, b.cols, b.format, bias);
  detail::check_requantized_output(op, a.rows, b.rows, requantization, out);
  const std::int32_t lo = detail::output_lo(out.format, requantization.relu);
  const std::int32_t hi = format_max(out.format);
  for (std::int64_t m = 0; m < a.rows; ++m) {
    for (std::int64_t n = 0; n < b.rows; ++n) {
      const std::int32_t acc = detail::reference_accumulator(a, b, bias, m, n);
      out.set(m, n, requantize(acc, requantization.factors[n], lo, hi));
    }
  }
}

}  // namespace soda::quant
