// Packed panels of the integer GEMM (integer_gemm.hpp): weights B[N, K] packed once into panels of
// 16 columns (kept 4-bit for int4 on AVX2, so weight-bound products read half the bytes of int8)
// and activations A[M, K] into panels of 6 rows, in the order each micro-kernel reads them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/quant/integer_matrix.hpp"

namespace soda::quant {

// The micro-kernel families. portable and avx2 multiply int16 pairs exactly (vpmaddwd), never
// vpmaddubsw on int8 weights, whose uint8 × int8 pair sums saturate; avx2 takes vpmaddubsw only
// for int4 weights, where they cannot. avx512_vnni runs vpdpbusd on uint8 quads (signed A is
// shifted by +128 and the per-column term 128·Σ_k B[n, k] subtracted again).
enum class IntegerGemmKernel { portable, avx2, avx512_vnni };

constexpr const char* kernel_name(IntegerGemmKernel kernel) {
  switch (kernel) {
    case IntegerGemmKernel::portable:
      return "portable";
    case IntegerGemmKernel::avx2:
      return "avx2";
    default:
      return "avx512_vnni";
  }
}

namespace detail {

constexpr std::int64_t gemm_mr = 6;   // rows of a micro-tile
constexpr std::int64_t gemm_nr = 16;  // columns of a micro-tile

// Whether A is packed in uint8 quads (vpdpbusd, or vpmaddubsw for int4 weights on AVX2, exact
// there because |a0·b0 + a1·b1| ≤ 2·255·8 stays far from int16 saturation) rather than in int16
// pairs for vpmaddwd. Signed A is then shifted by +128 and 128·Σ_k B[n, k] subtracted again.
constexpr bool quad_groups(IntegerGemmKernel kernel, IntegerFormat weights) {
  return kernel == IntegerGemmKernel::avx512_vnni ||
         (kernel == IntegerGemmKernel::avx2 && weights == IntegerFormat::int4);
}

// K values per packed group: an int16 pair or a uint8 quad.
constexpr std::int64_t group_size(IntegerGemmKernel kernel, IntegerFormat weights) {
  return quad_groups(kernel, weights) ? 4 : 2;
}

constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

// Row m of a as int32 values into out[0, a.cols); the format switch stays out of the loop.
inline void decode_row(const IntegerMatrix& a, std::int64_t m, std::int32_t* out) {
  const std::uint8_t* row = a.bytes.data() + m * a.row_bytes();
  switch (a.format) {
    case IntegerFormat::int8:
      for (std::int64_t k = 0; k < a.cols; ++k) out[k] = static_cast<std::int8_t>(row[k]);
      break;
    case IntegerFormat::uint8:
      for (std::int64_t k = 0; k < a.cols; ++k) out[k] = row[k];
      break;
    default: {
      const bool is_signed_4bit = a.format == IntegerFormat::int4;
      for (std::int64_t k = 0; k < a.cols; ++k) {
        out[k] = unpack_nibble(row[k / 2], static_cast<int>(k % 2), is_signed_4bit);
      }
    }
  }
}

}  // namespace detail

// B[N, K] in the panels of one kernel family. panels: ceil(N / 16) panels, each holding `groups`
// groups of group_bytes; columns past N and K values past K are zero.
struct PackedWeights {
  IntegerGemmKernel kernel = IntegerGemmKernel::portable;
  std::int64_t rows = 0;  // N
  std::int64_t cols = 0;  // K
  IntegerFormat format = IntegerFormat::int8;
  std::int64_t groups = 0;       // ceil(K / group_size)
  std::int64_t group_bytes = 0;  // bytes of one group of 16 columns
  std::vector<std::uint8_t> panels;
  std::vector<std::int32_t> column_sums;  // Σ_k B[n, k] per padded column (quad groups only)

  const std::uint8_t* panel(std::int64_t j) const {
    return panels.data() + j * groups * group_bytes;
  }
};

// Packs B for kernel. Layout of one group g of panel j (columns n = 16j + c):
//  portable/avx2, int8: 32 bytes, two halves of 8 columns; half h holds (B[n, 2g], B[n, 2g+1])
//    for c = 8h … 8h+7, which vpmovsxbw widens to the int16 pairs vpmaddwd takes.
//  portable, int4: 16 bytes; byte i holds element i of the int8 layout's first half in its low
//    nibble and element i of the second half in its high nibble.
//  avx2, int4: 32 bytes; byte 4c' + i holds B[n, 4g + i] + 8 (0 … 15: one subtraction
//    sign-extends it) for column c' of the first half in its low nibble, of the second in its high.
//  avx512_vnni: 64 bytes; column c holds B[n, 4g … 4g+3] as int8 (int4 widened).
inline PackedWeights pack_weights_for(const IntegerMatrix& b, IntegerGemmKernel kernel) {
  using detail::gemm_nr;
  b.check("pack_weights", "B");
  if (b.format != IntegerFormat::int8 && b.format != IntegerFormat::int4) {
    throw ValueError(std::string("pack_weights: B ") + b.shape_string() +
                     " must hold int8 or int4 weights");
  }
  const std::int64_t g_size = detail::group_size(kernel, b.format);
  const bool quads = detail::quad_groups(kernel, b.format);
  PackedWeights p;
  p.kernel = kernel;
  p.rows = b.rows;
  p.cols = b.cols;
  p.format = b.format;
  p.groups = detail::ceil_div(b.cols, g_size);
  const bool nibbles = kernel != IntegerGemmKernel::avx512_vnni && b.format == IntegerFormat::int4;
  p.group_bytes = nibbles ? gemm_nr * g_size / 2 : gemm_nr * g_size;
  const std::int64_t panel_count = detail::ceil_div(b.rows, gemm_nr);
  p.panels.assign(static_cast<std::size_t>(panel_count * p.groups * p.group_bytes), 0);
  if (quads) p.column_sums.assign(panel_count * gemm_nr, 0);
  const std::int64_t k_padded = p.groups * g_size;
  std::vector<std::int32_t> row(static_cast<std::size_t>(k_padded), 0);
  for (std::int64_t n = 0; n < b.rows; ++n) {
    detail::decode_row(b, n, row.data());
    const std::int64_t j = n / gemm_nr, c = n % gemm_nr;
    std::uint8_t* panel = p.panels.data() + j * p.groups * p.group_bytes;
    for (std::int64_t k = 0; k < b.cols; ++k) {
      const std::int64_t g = k / g_size, within = k % g_size;
      const auto byte = static_cast<std::uint8_t>(static_cast<std::uint32_t>(row[k]) & 0xFFu);
      if (kernel == IntegerGemmKernel::avx512_vnni) {
        panel[g * p.group_bytes + c * 4 + within] = byte;
      } else if (quads) {
        const auto offset = static_cast<std::uint8_t>(row[k] + 8);
        panel[g * p.group_bytes + (c % 8) * 4 + within] |= offset << (4 * (c / 8));
      } else {
        const std::int64_t half = c / 8, element = (c % 8) * 2 + within;
        if (nibbles) {
          panel[g * p.group_bytes + element] |= to_nibble(row[k]) << (4 * half);
        } else {
          panel[g * p.group_bytes + half * 16 + element] = byte;
        }
      }
    }
    if (quads) {
      std::int32_t sum = 0;
      for (std::int64_t k = 0; k < b.cols; ++k) sum += row[k];
      p.column_sums[n] = sum;
    }
  }
  return p;
}

namespace detail {

// A[M, K] in panels of 6 rows: panel i, group g, row r at data[(i·groups + g)·6 + r], one int32
// per entry, the unit a micro-kernel broadcasts. For pairs it holds the int16 values A[m, 2g]
// (low half) and A[m, 2g+1]; for quads (quad_groups) the uint8 values A[m, 4g … 4g+3] (+128 when
// A is signed). Rows past M and K values past K are zero (unshifted
// zeros meet zero weights, so the shift's padding adds nothing).
struct PackedActivations {
  std::int64_t rows = 0;
  std::int64_t groups = 0;
  bool shifted = false;  // +128 applied (signed A in quads)
  // Not zero-filled on allocation (packing writes every entry of the rows it holds, and
  // allocate() zeroes the rows past M): a pass over megabytes saved per layer.
  std::unique_ptr<std::int32_t[]> data;

  const std::int32_t* panel(std::int64_t i) const { return data.get() + i * groups * gemm_mr; }

  // Room for `rows` rows of `groups` groups; the padding rows of the last panel are zero.
  void allocate(std::int64_t row_count, std::int64_t group_count) {
    rows = row_count;
    groups = group_count;
    const std::int64_t panels = ceil_div(rows, gemm_mr);
    data = std::make_unique_for_overwrite<std::int32_t[]>(
        static_cast<std::size_t>(std::max<std::int64_t>(panels * groups * gemm_mr, 1)));
    if (rows % gemm_mr == 0) return;
    std::int32_t* last = data.get() + (panels - 1) * groups * gemm_mr;
    for (std::int64_t g = 0; g < groups; ++g) {
      for (std::int64_t r = rows % gemm_mr; r < gemm_mr; ++r) last[g * gemm_mr + r] = 0;
    }
  }
};

// One row of 8-bit A as int16 pairs (the hot path of packing: no intermediate int32 row).
template <bool Signed>
void pack_row_pairs_8bit(const std::uint8_t* row, std::int64_t cols, std::int32_t* out) {
  auto widen = [](std::uint8_t byte) -> std::uint32_t {
    return Signed ? static_cast<std::uint16_t>(static_cast<std::int8_t>(byte)) : byte;
  };
  const std::int64_t full = cols / 2;
  for (std::int64_t g = 0; g < full; ++g) {
    out[g * gemm_mr] = static_cast<std::int32_t>(widen(row[2 * g]) | widen(row[2 * g + 1]) << 16);
  }
  if (cols % 2 == 1) out[full * gemm_mr] = static_cast<std::int32_t>(widen(row[cols - 1]));
}

inline PackedActivations pack_activations(const IntegerMatrix& a, bool quads) {
  const std::int64_t g_size = quads ? 4 : 2;
  PackedActivations p;
  p.allocate(a.rows, ceil_div(a.cols, g_size));
  p.shifted = quads && is_signed(a.format);
  const std::int64_t k_padded = p.groups * g_size;
  const std::int32_t shift = p.shifted ? 128 : 0;
#pragma omp parallel if (a.rows * a.cols >= (std::int64_t{1} << 16))
  {
    std::vector<std::int32_t> row(static_cast<std::size_t>(k_padded), 0);
#pragma omp for schedule(static)
    for (std::int64_t m = 0; m < a.rows; ++m) {
      std::int32_t* out = p.data.get() + (m / gemm_mr) * p.groups * gemm_mr + m % gemm_mr;
      if (g_size == 2 && !is_4bit(a.format)) {
        const std::uint8_t* bytes = a.bytes.data() + m * a.cols;
        if (is_signed(a.format)) {
          pack_row_pairs_8bit<true>(bytes, a.cols, out);
        } else {
          pack_row_pairs_8bit<false>(bytes, a.cols, out);
        }
        continue;
      }
      decode_row(a, m, row.data());
      if (g_size == 2) {
        for (std::int64_t g = 0; g < p.groups; ++g) {
          const auto lo = static_cast<std::uint16_t>(row[2 * g]);
          const auto hi = static_cast<std::uint16_t>(row[2 * g + 1]);
          out[g * gemm_mr] = static_cast<std::int32_t>(std::uint32_t{lo} | std::uint32_t{hi} << 16);
        }
      } else {
        for (std::int64_t g = 0; g < p.groups; ++g) {
          std::uint32_t packed = 0;
          for (int i = 0; i < 4; ++i) {
            const std::int64_t k = 4 * g + i;
            const std::uint32_t value = k < a.cols ? static_cast<std::uint32_t>(row[k] + shift) : 0;
            packed |= (value & 0xFFu) << (8 * i);
          }
          out[g * gemm_mr] = static_cast<std::int32_t>(packed);
        }
      }
    }
  }
  return p;
}

}  // namespace detail

}  // namespace soda::quant
