// Micro-kernels of the integer GEMM: R (1…6) rows × 16 columns of int32 accumulators over the
// packed panels of integer_gemm_pack.hpp. Each is compiled for its instruction set with a target
// attribute, so the build needs no -march flag and the CPU picks one at run time.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "soda/quant/integer_gemm_pack.hpp"

namespace soda::quant::detail {

// c[r·ldc + j] (+)= Σ_g Σ_pair a·b for r < R, j < 16. Accumulation wraps modulo 2^32 (uint32),
// like the vector kernels.
template <int R, bool Int4>
void micro_kernel_portable(const std::int32_t* a, const std::uint8_t* b, std::int64_t groups,
                           std::int64_t group_bytes, std::int32_t* c, std::int64_t ldc,
                           bool accumulate) {
  std::uint32_t acc[R][gemm_nr] = {};
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::uint8_t* bg = b + g * group_bytes;
    std::int32_t weights[2][16];  // [half][element]: element 2c' + i is (column 8·half + c', k i)
    for (int e = 0; e < 16; ++e) {
      if constexpr (Int4) {
        weights[0][e] = unpack_nibble(bg[e], 0, true);
        weights[1][e] = unpack_nibble(bg[e], 1, true);
      } else {
        weights[0][e] = static_cast<std::int8_t>(bg[e]);
        weights[1][e] = static_cast<std::int8_t>(bg[16 + e]);
      }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const auto pair = static_cast<std::uint32_t>(a[g * gemm_mr + r]);
      const std::int32_t a0 = static_cast<std::int16_t>(pair & 0xFFFFu);
      const std::int32_t a1 = static_cast<std::int16_t>(pair >> 16);
      for (int j = 0; j < gemm_nr; ++j) {
        const std::int32_t* w = weights[j / 8] + 2 * (j % 8);
        acc[r][j] += static_cast<std::uint32_t>(a0 * w[0] + a1 * w[1]);
      }
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < gemm_nr; ++j) {
      std::uint32_t value = acc[r][j];
      if (accumulate) value += static_cast<std::uint32_t>(c[r * ldc + j]);
      c[r * ldc + j] = static_cast<std::int32_t>(value);
    }
  }
}

// Writes (or, with accumulate, adds into) R rows of 16 int32 results: acc0 columns 0–7, acc1 8–15.
template <int R>
__attribute__((target("avx2"), always_inline)) inline void store_accumulators_avx2(
    __m256i* acc0, __m256i* acc1, std::int32_t* c, std::int64_t ldc, bool accumulate) {
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    auto* row = reinterpret_cast<__m256i*>(c + r * ldc);
    if (accumulate) {
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_loadu_si256(row));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_loadu_si256(row + 1));
    }
    _mm256_storeu_si256(row, acc0[r]);
    _mm256_storeu_si256(row + 1, acc1[r]);
  }
}

// The row loops are unrolled (#pragma GCC unroll) so that the accumulators stay in registers.

// AVX2, int8 weights: per group, the 16 weights of 8 columns widen to int16 (vpmovsxbw) and
// vpmaddwd multiplies them by the broadcast int16 pair of each row: exact int32 pair sums (at most
// 2·255·128), added into 2R int32 accumulators (12 + 2 + 1 of 16 ymm registers).
template <int R>
__attribute__((target("avx2"))) void micro_kernel_avx2(const std::int32_t* a, const std::uint8_t* b,
                                                       std::int64_t groups,
                                                       std::int64_t group_bytes, std::int32_t* c,
                                                       std::int64_t ldc, bool accumulate) {
  __m256i acc0[R], acc1[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_si256();
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::uint8_t* bg = b + g * group_bytes;
    const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bg)));
    const __m256i w1 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bg + 16)));
    const std::int32_t* ag = a + g * gemm_mr;
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256i pair = _mm256_set1_epi32(ag[r]);
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(pair, w0));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(pair, w1));
    }
  }
  store_accumulators_avx2<R>(acc0, acc1, c, ldc, accumulate);
}

// The two halves (columns 0…7, 8…15) of an AVX2 int4 quad group as int8 quads: the 32 packed
// bytes (B + 8 per nibble), or 64 bytes widened once per strip by widen_int4_quads_avx2.
template <bool Widened>
__attribute__((target("avx2"))) inline void load_quads_avx2(const std::uint8_t* bg, __m256i& lo,
                                                            __m256i& hi) {
  if constexpr (Widened) {
    lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bg));
    hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bg + 32));
  } else {
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bg));
    lo = _mm256_sub_epi8(_mm256_and_si256(packed, low_nibbles), eight);
    hi = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles), eight);
  }
}

// R (≤ 4) rows of the AVX2 int4 kernel. vpmaddubsw multiplies a row's broadcast uint8 quad by the
// int8 weights into int16 pair sums, exact (|a0·b0 + a1·b1| ≤ 2·255·8 = 4080); two groups' sums
// are added in int16 (≤ 8160) before vpmaddwd by ones widens them into the int32 accumulators:
// 3 multiplies per 64 products, where the int16-pair kernel spends 4.
template <int R, bool Widened>
__attribute__((target("avx2"))) inline void quad_rows_avx2(
    const std::int32_t* a, const std::uint8_t* b, std::int64_t groups, std::int64_t group_bytes,
    std::int32_t* c, std::int64_t ldc, bool accumulate) {
  __m256i acc0[R], acc1[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  std::int64_t g = 0;
  for (; g + 1 < groups; g += 2) {
    __m256i lo0, hi0, lo1, hi1;
    load_quads_avx2<Widened>(b + g * group_bytes, lo0, hi0);
    load_quads_avx2<Widened>(b + (g + 1) * group_bytes, lo1, hi1);
    const std::int32_t* ag = a + g * gemm_mr;
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256i q0 = _mm256_set1_epi32(ag[r]), q1 = _mm256_set1_epi32(ag[gemm_mr + r]);
      const __m256i s0 =
          _mm256_add_epi16(_mm256_maddubs_epi16(q0, lo0), _mm256_maddubs_epi16(q1, lo1));
      const __m256i s1 =
          _mm256_add_epi16(_mm256_maddubs_epi16(q0, hi0), _mm256_maddubs_epi16(q1, hi1));
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(s0, ones));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(s1, ones));
    }
  }
  if (g < groups) {  // an odd last group
    __m256i lo0, hi0;
    load_quads_avx2<Widened>(b + g * group_bytes, lo0, hi0);
    const std::int32_t* ag = a + g * gemm_mr;
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256i q0 = _mm256_set1_epi32(ag[r]);
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(_mm256_maddubs_epi16(q0, lo0), ones));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(_mm256_maddubs_epi16(q0, hi0), ones));
    }
  }
  store_accumulators_avx2<R>(acc0, acc1, c, ldc, accumulate);
}

// AVX2, int4 weights, R (1…6) rows: up to 4 rows in one pass (8 accumulators, 4 weight registers,
// no spills), 5 and 6 rows in two.
template <int R, bool Widened>
__attribute__((target("avx2"))) void micro_kernel_avx2_int4(
    const std::int32_t* a, const std::uint8_t* b, std::int64_t groups, std::int64_t group_bytes,
    std::int32_t* c, std::int64_t ldc, bool accumulate) {
  constexpr int first = R <= 4 ? R : 3;
  quad_rows_avx2<first, Widened>(a, b, groups, group_bytes, c, ldc, accumulate);
  if constexpr (R > first) {
    quad_rows_avx2<R - first, Widened>(a + first, b, groups, group_bytes, c + first * ldc, ldc,
                                       accumulate);
  }
}

// AVX-512 VNNI: vpdpbusd adds the four uint8 × int8 products of each 32-bit lane into it; one zmm
// holds the 16 columns' quads. Signed A arrives shifted by +128; the epilogue subtracts
// 128·Σ_k B[n, k].
template <int R>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void micro_kernel_avx512_vnni(
    const std::int32_t* a, const std::uint8_t* b, std::int64_t groups, std::int64_t group_bytes,
    std::int32_t* c, std::int64_t ldc, bool accumulate) {
  __m512i acc[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_si512();
  for (std::int64_t g = 0; g < groups; ++g) {
    const __m512i w = _mm512_loadu_si512(b + g * group_bytes);
    const std::int32_t* ag = a + g * gemm_mr;
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_set1_epi32(ag[r]), w);
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    std::int32_t* row = c + r * ldc;
    if (accumulate) acc[r] = _mm512_add_epi32(acc[r], _mm512_loadu_si512(row));
    _mm512_storeu_si512(row, acc[r]);
  }
}

// Sign-extends a strip of AVX2 int4 quad groups (32 bytes each) to int8 (64 bytes each), so that
// a tile with several row panels unpacks each weight once rather than per panel.
__attribute__((target("avx2"))) inline void widen_int4_quads_avx2(const std::uint8_t* in,
                                                                  std::int64_t groups,
                                                                  std::uint8_t* out) {
  for (std::int64_t g = 0; g < groups; ++g) {
    __m256i lo, hi;
    load_quads_avx2<false>(in + g * 2 * gemm_nr, lo, hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + g * 4 * gemm_nr), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + g * 4 * gemm_nr + 32), hi);
  }
}

// Widens a strip of portable int4 groups (16 bytes each, the nibble layout) to the int8 layout
// (32 bytes each), for the same reason.
inline void widen_int4_strip(const std::uint8_t* in, std::int64_t groups, std::uint8_t* out) {
  for (std::int64_t g = 0; g < groups; ++g) {
    for (std::int64_t i = 0; i < gemm_nr; ++i) {
      const std::uint8_t byte = in[g * gemm_nr + i];
      out[g * 2 * gemm_nr + i] = static_cast<std::uint8_t>(unpack_nibble(byte, 0, true) & 0xFF);
      out[g * 2 * gemm_nr + gemm_nr + i] =
          static_cast<std::uint8_t>(unpack_nibble(byte, 1, true) & 0xFF);
    }
  }
}

using MicroKernel = void (*)(const std::int32_t*, const std::uint8_t*, std::int64_t, std::int64_t,
                             std::int32_t*, std::int64_t, bool);

// Weights as a micro-kernel reads them: packed int8, packed int4, or int4 widened once per
// strip (widen_int4_quads_avx2 or widen_int4_strip).
enum class WeightLayout { int8, int4, int4_widened };

template <int R>
MicroKernel micro_kernel_for(IntegerGemmKernel kernel, WeightLayout layout) {
  switch (kernel) {
    case IntegerGemmKernel::avx512_vnni:
      return &micro_kernel_avx512_vnni<R>;
    case IntegerGemmKernel::avx2:
      if (layout == WeightLayout::int4) return &micro_kernel_avx2_int4<R, false>;
      if (layout == WeightLayout::int4_widened) return &micro_kernel_avx2_int4<R, true>;
      return &micro_kernel_avx2<R>;
    default:
      return layout == WeightLayout::int4 ? &micro_kernel_portable<R, true>
                                          : &micro_kernel_portable<R, false>;
  }
}

// The micro-kernel of `rows` (1…6) active rows.
inline MicroKernel select_micro_kernel(IntegerGemmKernel kernel, WeightLayout layout, int rows) {
  switch (rows) {
    case 1:
      return micro_kernel_for<1>(kernel, layout);
    case 2:
      return micro_kernel_for<2>(kernel, layout);
    case 3:
      return micro_kernel_for<3>(kernel, layout);
    case 4:
      return micro_kernel_for<4>(kernel, layout);
    case 5:
      return micro_kernel_for<5>(kernel, layout);
    default:
      return micro_kernel_for<6>(kernel, layout);
  }
}

}  // namespace soda::quant::detail
