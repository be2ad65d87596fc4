// The integer GEMM of the quantized contract (integer_gemm_reference.hpp, the oracle it equals bit
// for bit): packed panels, 96 × 256 output tiles blocked over 512 K values, 6 × 16 micro-kernels
// (AVX-512 VNNI, AVX2 or portable, chosen at run time) and a fused bias/requantization epilogue.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/quant/dyadic.hpp"
#include "soda/quant/integer_gemm_microkernels.hpp"
#include "soda/quant/integer_gemm_pack.hpp"
#include "soda/quant/integer_gemm_reference.hpp"
#include "soda/quant/integer_matrix.hpp"

namespace soda::quant {

// Whether this CPU runs kernel.
inline bool integer_gemm_kernel_supported(IntegerGemmKernel kernel) {
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
                     " kernel; use best_integer_gemm_kernel()");
  }
  return pack_weights_for(b, kernel);
}

namespace detail {

constexpr std::int64_t gemm_mc = 96;   // rows of an output tile (16 panels)
constexpr std::int64_t gemm_nc = 256;  // columns of an output tile (16 panels; even, so 4-bit
                                       // output bytes never straddle two threads' tiles)
constexpr std::int64_t gemm_kc = 512;  // K values per block: a 16-column int8 strip is 8 KiB (L1)
// Products below this many multiply-adds (tens of microseconds) run on one thread: waking a team
// costs more than it saves, and much more when another process holds a core.
constexpr std::int64_t gemm_parallel_macs = std::int64_t{1} << 22;

// Runs the tiles over OpenMP threads and hands each finished tile's int32 accumulators (bias
// added, the +128 shift of signed quads compensated) to store(m0, n0, rows, cols, tile, ldc).
// Integer sums are exact modulo 2^32 in any order, so the result does not depend on the thread
// count.
template <class Store>
void run_integer_gemm(const IntegerMatrix& a, const PackedWeights& b,
                      std::span<const std::int32_t> bias, Store&& store) {
  const PackedActivations pa = pack_activations(a, quad_groups(b.kernel, b.format));
  const std::int64_t m_total = a.rows, n_total = b.rows;
  const std::int64_t tiles_m = ceil_div(m_total, gemm_mc), tiles_n = ceil_div(n_total, gemm_nc);
  const std::int64_t kc = gemm_kc / group_size(b.kernel, b.format);
  // Nibble panels: AVX2 quads (widened to 4 bytes per column and group) or portable pairs (2).
  const bool int4 = b.format == IntegerFormat::int4 && b.kernel != IntegerGemmKernel::avx512_vnni;
  const std::int64_t widened_group_bytes = 2 * b.group_bytes;
  MicroKernel kernels[gemm_mr + 1], widened_kernels[gemm_mr + 1];
  for (int r = 1; r <= gemm_mr; ++r) {
    kernels[r] = select_micro_kernel(b.kernel, int4 ? WeightLayout::int4 : WeightLayout::int8, r);
    widened_kernels[r] = select_micro_kernel(b.kernel, WeightLayout::int4_widened, r);
  }
  const bool compensate = pa.shifted;
  const bool parallel = m_total * n_total * std::max<std::int64_t>(a.cols, 1) >= gemm_parallel_macs;
#pragma omp parallel if (parallel)
  {
    std::vector<std::int32_t> tile(static_cast<std::size_t>(gemm_mc * gemm_nc));
    std::vector<std::uint8_t> widened(int4 ? static_cast<std::size_t>(kc * widened_group_bytes)
                                           : 0);
    std::vector<std::uint32_t> offsets(static_cast<std::size_t>(gemm_nc));
#pragma omp for schedule(dynamic)
    for (std::int64_t t = 0; t < tiles_m * tiles_n; ++t) {
      const std::int64_t m0 = (t / tiles_n) * gemm_mc, n0 = (t % tiles_n) * gemm_nc;
      const std::int64_t rows = std::min(gemm_mc, m_total - m0);
      const std::int64_t cols = std::min(gemm_nc, n_total - n0);
      const std::int64_t panels_m = ceil_div(rows, gemm_mr), panels_n = ceil_div(cols, gemm_nr);
      if (b.groups == 0) std::fill(tile.begin(), tile.end(), 0);
      // K is blocked so that a weight strip stays in L1 for all row panels; a single row panel
      // reuses nothing, so it streams each strip whole and stores its accumulators once.
      const std::int64_t k_block = panels_m > 1 ? kc : std::max<std::int64_t>(b.groups, 1);
      for (std::int64_t g0 = 0; g0 < b.groups; g0 += k_block) {
        const std::int64_t g_count = std::min(k_block, b.groups - g0);
        for (std::int64_t jn = 0; jn < panels_n; ++jn) {
          const std::uint8_t* b_strip = b.panel(n0 / gemm_nr + jn) + g0 * b.group_bytes;
          const MicroKernel* row_kernels = kernels;
          std::int64_t group_bytes = b.group_bytes;
          if (int4 && panels_m > 1) {  // unpack once for all row panels of the tile
            if (b.kernel == IntegerGemmKernel::avx2) {
              widen_int4_quads_avx2(b_strip, g_count, widened.data());
            } else {
              widen_int4_strip(b_strip, g_count, widened.data());
            }
            b_strip = widened.data();
            row_kernels = widened_kernels;
            group_bytes = widened_group_bytes;
          }
          for (std::int64_t im = 0; im < panels_m; ++im) {
            const auto r = static_cast<int>(std::min(gemm_mr, rows - im * gemm_mr));
            row_kernels[r](pa.panel(m0 / gemm_mr + im) + g0 * gemm_mr, b_strip, g_count,
                           group_bytes, tile.data() + im * gemm_mr * gemm_nc + jn * gemm_nr,
                           gemm_nc, g0 > 0);
          }
        }
      }
      if (!bias.empty() || compensate) {
        // One offset per column, added modulo 2^32 as the accumulators are.
        for (std::int64_t j = 0; j < cols; ++j) {
          std::uint32_t value = bias.empty() ? 0u : static_cast<std::uint32_t>(bias[n0 + j]);
          if (compensate) value -= 128u * static_cast<std::uint32_t>(b.column_sums[n0 + j]);
          offsets[j] = value;
        }
        for (std::int64_t r = 0; r < rows; ++r) {
          std::int32_t* row = tile.data() + r * gemm_nc;
          for (std::int64_t j = 0; j < cols; ++j) {
            row[j] = static_cast<std::int32_t>(static_cast<std::uint32_t>(row[j]) + offsets[j]);
          }
        }
      }
      store(m0, n0, rows, cols, static_cast<const std::int32_t*>(tile.data()), gemm_nc);
    }
  }
}

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
  const std::int64_t n_total = b.rows;
  detail::run_integer_gemm(a, b, bias,
                           [&](std::int64_t m0, std::int64_t n0, std::int64_t rows,
                               std::int64_t cols, const std::int32_t* tile, std::int64_t ldc) {
                             for (std::int64_t r = 0; r < rows; ++r) {
                               std::copy(tile + r * ldc, tile + r * ldc + cols,
                                         out.data() + (m0 + r) * n_total + n0);
                             }
                           });
}

// out[m, n] = requantize(acc[m, n], factors[n], lo, hi) in out's format (int8, uint8, int4 or
// uint4; 4-bit outputs packed along n, the next layer's K).
inline void integer_gemm(const IntegerMatrix& a, const PackedWeights& b,
                         std::span<const std::int32_t> bias, const Requantization& requantization,
                         IntegerMatrix& out) {
  constexpr const char* op = "integer_gemm";
  detail::check_packed(op, b);
  detail::check_gemm_operands(op, a, b.rows, b.cols, b.format, bias);
  detail::check_requantized_output(op, a.rows, b.rows, requantization, out);
  const std::int32_t lo = detail::output_lo(out.format, requantization.relu);
  const std::int32_t hi = format_max(out.format);
  const DyadicFactor* factors = requantization.factors.data();
  const bool nibbles = is_4bit(out.format);
  detail::run_integer_gemm(
      a, b, bias,
      [&](std::int64_t m0, std::int64_t n0, std::int64_t rows, std::int64_t cols,
          const std::int32_t* tile, std::int64_t ldc) {
        // requantize() with each column's terms hoisted out of the row loop.
        std::int64_t multiplier[detail::gemm_nc], rounding[detail::gemm_nc];
        int shift[detail::gemm_nc];
        for (std::int64_t j = 0; j < cols; ++j) {
          const DyadicFactor f = factors[n0 + j];
          multiplier[j] = f.multiplier;
          shift[j] = f.shift;
          rounding[j] = f.shift > 0 ? std::int64_t{1} << (f.shift - 1) : 0;
        }
        std::uint8_t values[detail::gemm_nc];
        const std::int64_t low = lo, high = hi;  // locals: no reload, a branch-free clamp
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
      });
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
