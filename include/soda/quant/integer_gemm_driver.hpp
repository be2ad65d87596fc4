// The tiled driver of the integer GEMM: 96 × 256 output tiles blocked over 512 K values, run over
// OpenMP threads with the micro-kernels of one family, each finished tile handed to a store.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "soda/quant/integer_gemm_microkernels.hpp"
#include "soda/quant/integer_gemm_pack.hpp"
#include "soda/quant/integer_matrix.hpp"

namespace soda::quant {

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
void run_packed_integer_gemm(const PackedActivations& pa, const PackedWeights& b,
                             std::span<const std::int32_t> bias, Store&& store) {
  const std::int64_t m_total = pa.rows, n_total = b.rows;
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
  const bool parallel = m_total * n_total * std::max<std::int64_t>(b.cols, 1) >= gemm_parallel_macs;
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

// The same for A[M, K] packed here (a convolution packs its windows itself, skipping im2col).
template <class Store>
void run_integer_gemm(const IntegerMatrix& a, const PackedWeights& b,
                      std::span<const std::int32_t> bias, Store&& store) {
  run_packed_integer_gemm(pack_activations(a, quad_groups(b.kernel, b.format)), b, bias,
                          std::forward<Store>(store));
}

// The store that copies each finished tile into row-major int32 C[M, n_total] at out.
inline auto int32_tile_store(std::int32_t* out, std::int64_t n_total) {
  return [out, n_total](std::int64_t m0, std::int64_t n0, std::int64_t rows, std::int64_t cols,
                        const std::int32_t* tile, std::int64_t ldc) {
    for (std::int64_t r = 0; r < rows; ++r) {
      std::copy(tile + r * ldc, tile + r * ldc + cols, out + (m0 + r) * n_total + n0);
    }
  };
}

}  // namespace detail

}  // namespace soda::quant
