// The integer GEMM of the quantized contract (integer_gemm_reference.hpp, the oracle it equals bit
// for bit): the kernel choice (AVX-512 VNNI, AVX2 or portable, each verified once at run time),
// weight packing, and int32 or fused bias/requantization outputs over the tiled driver.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/quant/dyadic.hpp"
#include "soda/quant/integer_gemm_driver.hpp"
#include "soda/quant/integer_gemm_pack.hpp"
#include "soda/quant/integer_gemm_reference.hpp"
#include "soda/quant/integer_gemm_self_check.hpp"
#include "soda/quant/integer_matrix.hpp"

namespace soda::quant {

namespace detail {

// Whether this CPU has kernel's instructions.
inline bool cpu_has_instructions(IntegerGemmKernel kernel) {
  switch (kernel) {
    case IntegerGemmKernel::avx512_vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vnni");
    case IntegerGemmKernel::avx2:
      return __builtin_cpu_supports("avx2");
    default:
      return true;
  }
}

// Checks a SIMD kernel against the oracle once per process (about a millisecond). One that
// disagrees is never used, and says so once on stderr: a wrong sum would otherwise be silent.
inline bool kernel_verified(IntegerGemmKernel kernel) {
  auto verify = [](IntegerGemmKernel k) {
    if (!cpu_has_instructions(k)) return false;
    if (k == IntegerGemmKernel::portable || kernel_matches_oracle(k)) return true;
    std::cerr << "soda: the " << kernel_name(k)
              << " integer GEMM kernel disagrees with the reference on this CPU and is disabled; "
                 "please report it\n";
    return false;
  };
  static const bool avx2 = verify(IntegerGemmKernel::avx2);
  static const bool avx512_vnni = verify(IntegerGemmKernel::avx512_vnni);
  switch (kernel) {
    case IntegerGemmKernel::avx512_vnni:
      return avx512_vnni;
    case IntegerGemmKernel::avx2:
      return avx2;
    default:
      return true;
  }
}

}  // namespace detail

// Whether this CPU runs kernel: it has the instructions and the kernel passed its self-check
// (integer_gemm_self_check.hpp).
inline bool integer_gemm_kernel_supported(IntegerGemmKernel kernel) {
  return detail::kernel_verified(kernel);
}

// Every kernel this CPU runs, fastest last.
inline std::vector<IntegerGemmKernel> supported_integer_gemm_kernels() {
  std::vector<IntegerGemmKernel> out;
  for (auto k :
       {IntegerGemmKernel::portable, IntegerGemmKernel::avx2, IntegerGemmKernel::avx512_vnni}) {
    if (integer_gemm_kernel_supported(k)) out.push_back(k);
  }
  return out;
}

inline IntegerGemmKernel best_integer_gemm_kernel() {
  return supported_integer_gemm_kernels().back();
}

// Packs int8 or int4 weights B[N, K] once for reuse across calls (inference).
inline PackedWeights pack_weights(const IntegerMatrix& b,
                                  IntegerGemmKernel kernel = best_integer_gemm_kernel()) {
  if (!integer_gemm_kernel_supported(kernel)) {
    throw ValueError(std::string("pack_weights: this CPU does not run the ") + kernel_name(kernel) +
                     " kernel (or it failed its self-check); use best_integer_gemm_kernel()");
  }
  return pack_weights_for(b, kernel);
}

namespace detail {

inline void check_packed(const char* op, const PackedWeights& b) {
  if (!integer_gemm_kernel_supported(b.kernel)) {
    throw ValueError(std::string(op) + ": weights were packed for the " + kernel_name(b.kernel) +
                     " kernel, which this CPU does not run");
  }
  const std::int64_t expected = ceil_div(b.rows, gemm_nr) * b.groups * b.group_bytes;
  if (static_cast<std::int64_t>(b.panels.size()) != expected) {
    throw ShapeError(std::string(op) + ": packed weights " + shape_string(b.rows, b.cols) +
                     " hold " + std::to_string(b.panels.size()) + " bytes, expected " +
                     std::to_string(expected) + "; pack them with pack_weights");
  }
}

}  // namespace detail

// out[m·N + n] = Σ_k A[m, k]·B[n, k] + bias[n] as int32 (bias may be empty).
inline void integer_gemm(const IntegerMatrix& a, const PackedWeights& b,
                         std::span<const std::int32_t> bias, std::span<std::int32_t> out) {
  constexpr const char* op = "integer_gemm";
  detail::check_packed(op, b);
  detail::check_gemm_operands(op, a, b.rows, b.cols, b.format, bias);
  detail::check_int32_output(op, a.rows, b.rows, out.size());
  detail::run_integer_gemm(a, b, bias, detail::int32_tile_store(out.data(), b.rows));
}

namespace detail {

// The store that requantizes each finished tile per column into out's format (int8, uint8, int4
// or uint4; 4-bit outputs packed along n, the next layer's K). The caller checked the shapes.
inline auto requantizing_tile_store(const Requantization& requantization, IntegerMatrix& out) {
  const std::int32_t lo = output_lo(out.format, requantization.relu);
  const std::int32_t hi = format_max(out.format);
  const DyadicFactor* factors = requantization.factors.data();
  return [lo, hi, factors, &out](std::int64_t m0, std::int64_t n0, std::int64_t rows,
                                 std::int64_t cols, const std::int32_t* tile, std::int64_t ldc) {
    // requantize() with each column's terms hoisted out of the row loop.
    std::int64_t multiplier[gemm_nc], rounding[gemm_nc];
    int shift[gemm_nc];
    for (std::int64_t j = 0; j < cols; ++j) {
      const DyadicFactor f = factors[n0 + j];
      multiplier[j] = f.multiplier;
      shift[j] = f.shift;
      rounding[j] = f.shift > 0 ? std::int64_t{1} << (f.shift - 1) : 0;
    }
    std::uint8_t values[gemm_nc];
    const std::int64_t low = lo, high = hi;  // locals: no reload, a branch-free clamp
    const bool nibbles = is_4bit(out.format);
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int32_t* acc = tile + r * ldc;
      for (std::int64_t j = 0; j < cols; ++j) {
        const std::int64_t v =
            std::min(std::max((acc[j] * multiplier[j] + rounding[j]) >> shift[j], low), high);
        values[j] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) & 0xFFu);
      }
      if (nibbles) {  // n0 is even, so the tile's bytes are its own
        std::uint8_t* row = out.bytes.data() + (m0 + r) * out.row_bytes() + n0 / 2;
        for (std::int64_t j = 0; j + 1 < cols; j += 2) {
          row[j / 2] = static_cast<std::uint8_t>((values[j] & 0x0F) | (values[j + 1] << 4));
        }
        // An odd last column (odd N) leaves the padding nibble zero.
        if (cols % 2 == 1) row[cols / 2] = values[cols - 1] & 0x0F;
      } else {
        std::memcpy(out.bytes.data() + (m0 + r) * out.cols + n0, values,
                    static_cast<std::size_t>(cols));
      }
    }
  };
}

}  // namespace detail

// out[m, n] = requantize(acc[m, n], factors[n], lo, hi) in out's format (int8, uint8, int4 or
// uint4; 4-bit outputs packed along n, the next layer's K).
inline void integer_gemm(const IntegerMatrix& a, const PackedWeights& b,
                         std::span<const std::int32_t> bias, const Requantization& requantization,
                         IntegerMatrix& out) {
  constexpr const char* op = "integer_gemm";
  detail::check_packed(op, b);
  detail::check_gemm_operands(op, a, b.rows, b.cols, b.format, bias);
  detail::check_requantized_output(op, a.rows, b.rows, requantization, out);
  detail::run_integer_gemm(a, b, bias, detail::requantizing_tile_store(requantization, out));
}

// The same, packing B on the fly (pack once with pack_weights when B is reused).
inline void integer_gemm(const IntegerMatrix& a, const IntegerMatrix& b,
                         std::span<const std::int32_t> bias, std::span<std::int32_t> out) {
  b.check("integer_gemm", "B");
  detail::check_gemm_operands("integer_gemm", a, b.rows, b.cols, b.format, bias);
  integer_gemm(a, pack_weights(b), bias, out);
}

inline void integer_gemm(const IntegerMatrix& a, const IntegerMatrix& b,
                         std::span<const std::int32_t> bias, const Requantization& requantization,
                         IntegerMatrix& out) {
  b.check("integer_gemm", "B");
  detail::check_gemm_operands("integer_gemm", a, b.rows, b.cols, b.format, bias);
  integer_gemm(a, pack_weights(b), bias, requantization, out);
}

}  // namespace soda::quant
