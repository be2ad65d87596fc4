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

// The row loops are unrolled (#pragma GCC unroll) so that the accumulators stay in registers.

// AVX2: per group, the 16 weights of 8 columns widen to int16 (vpmovsxbw, or nibble unpacking for
// int4) and vpmaddwd multiplies them by the broadcast int16 pair of each row: exact int32 pair
// sums (at most 2·255·128), added into 2R int32 accumulators (12 + 2 + 1 of 16 ymm registers).
template <int R, bool Int4>
__attribute__((target("avx2"))) void micro_kernel_avx2(const std::int32_t* a, const std::uint8_t* b,
                                                       std::int64_t groups,
                                                       std::int64_t group_bytes, std::int32_t* c,
                                                       std::int64_t ldc, bool accumulate) {
  __m256i acc0[R], acc1[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_si256();
  const __m128i high_nibbles = _mm_set1_epi8(static_cast<char>(0xF0));
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::uint8_t* bg = b + g * group_bytes;
    __m256i w0, w1;
    if constexpr (Int4) {
      // Each nibble moved to the top of its byte is 16·value as int8; widening and shifting
      // right by 4 (arithmetic) leaves the sign-extended value.
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bg));
      const __m128i lo = _mm_and_si128(_mm_slli_epi16(packed, 4), high_nibbles);
      const __m128i hi = _mm_and_si128(packed, high_nibbles);
      w0 = _mm256_srai_epi16(_mm256_cvtepi8_epi16(lo), 4);
      w1 = _mm256_srai_epi16(_mm256_cvtepi8_epi16(hi), 4);
    } else {
      w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bg)));
      w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bg + 16)));
    }
    const std::int32_t* ag = a + g * gemm_mr;
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256i pair = _mm256_set1_epi32(ag[r]);
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(pair, w0));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(pair, w1));
    }
  }
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

// Widens a strip of int4 groups (16 bytes each, the nibble layout) to the int8 layout (32 bytes
// each), so that a tile with several row panels unpacks each weight once rather than per panel.
__attribute__((target("avx2"))) inline void widen_int4_strip_avx2(const std::uint8_t* in,
                                                                  std::int64_t groups,
                                                                  std::uint8_t* out) {
  const __m128i low_nibbles = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  for (std::int64_t g = 0; g < groups; ++g) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + g * gemm_nr));
    const __m128i lo = _mm_and_si128(packed, low_nibbles);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles);
    // (v ^ 8) − 8 sign-extends a nibble within its byte.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + g * 2 * gemm_nr),
                     _mm_sub_epi8(_mm_xor_si128(lo, eight), eight));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + g * 2 * gemm_nr + gemm_nr),
                     _mm_sub_epi8(_mm_xor_si128(hi, eight), eight));
  }
}

inline void widen_int4_strip(IntegerGemmKernel kernel, const std::uint8_t* in, std::int64_t groups,
                             std::uint8_t* out) {
  if (kernel == IntegerGemmKernel::avx2) return widen_int4_strip_avx2(in, groups, out);
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

template <int R>
MicroKernel micro_kernel_for(IntegerGemmKernel kernel, bool int4_weights) {
  switch (kernel) {
    case IntegerGemmKernel::avx512_vnni:
      return &micro_kernel_avx512_vnni<R>;
    case IntegerGemmKernel::avx2:
      return int4_weights ? &micro_kernel_avx2<R, true> : &micro_kernel_avx2<R, false>;
    default:
      return int4_weights ? &micro_kernel_portable<R, true> : &micro_kernel_portable<R, false>;
  }
}

// The micro-kernel of `rows` (1…6) active rows.
inline MicroKernel select_micro_kernel(IntegerGemmKernel kernel, bool int4_weights, int rows) {
  switch (rows) {
    case 1:
      return micro_kernel_for<1>(kernel, int4_weights);
    case 2:
      return micro_kernel_for<2>(kernel, int4_weights);
    case 3:
      return micro_kernel_for<3>(kernel, int4_weights);
    case 4:
      return micro_kernel_for<4>(kernel, int4_weights);
    case 5:
      return micro_kernel_for<5>(kernel, int4_weights);
    default:
      return micro_kernel_for<6>(kernel, int4_weights);
  }
}

}  // namespace soda::quant::detail
