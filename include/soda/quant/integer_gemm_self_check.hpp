// The once-per-process check that a SIMD integer GEMM kernel equals the oracle on this CPU before
// it is used: a kernel CI cannot run (AVX-512 VNNI on an AVX2 machine) still never gives a wrong
// sum.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "soda/quant/integer_gemm_driver.hpp"
#include "soda/quant/integer_gemm_pack.hpp"
#include "soda/quant/integer_gemm_reference.hpp"
#include "soda/quant/integer_matrix.hpp"

namespace soda::quant::detail {

// Row-major values of a rows × cols matrix in format's range: a fixed linear congruential
// sequence (no seed to pass, the same on every machine) with the format's two extremes forced
// into the first and last row, where the int16 saturation of a wrong pair product would show.
inline IntegerMatrix self_check_matrix(std::int64_t rows, std::int64_t cols, IntegerFormat format,
                                       std::uint32_t salt) {
  const std::int32_t lo = format_min(format), hi = format_max(format);
  std::vector<std::int32_t> values(static_cast<std::size_t>(rows * cols));
  std::uint32_t state = 2463534242u ^ salt;
  for (std::int64_t i = 0; i < rows * cols; ++i) {
    state = state * 1664525u + 1013904223u;
    const auto span = static_cast<std::uint32_t>(hi - lo + 1);
    values[static_cast<std::size_t>(i)] = lo + static_cast<std::int32_t>((state >> 8) % span);
  }
  for (std::int64_t k = 0; k < cols; ++k) {
    values[static_cast<std::size_t>(k)] = hi;
    values[static_cast<std::size_t>((rows - 1) * cols + k)] = lo;
  }
  return IntegerMatrix::from_values(values, rows, cols, format);
}

// Whether the driver with kernel's micro-kernels equals integer_gemm_reference for every
// activation format against int8 and int4 weights, on shapes with row, column and K tails and a
// K that spans several K blocks. It executes kernel's instructions: ask only where the CPU has
// them.
inline bool kernel_matches_oracle(IntegerGemmKernel kernel) {
  struct Shape {
    std::int64_t m, n, k;
  };
  const Shape shapes[] = {{13, 19, 37}, {7, 17, 1029}};
  const IntegerFormat activations[] = {IntegerFormat::uint8, IntegerFormat::int8,
                                       IntegerFormat::uint4, IntegerFormat::int4};
  std::uint32_t salt = 1;
  for (const auto weights : {IntegerFormat::int8, IntegerFormat::int4}) {
    for (const auto format : activations) {
      for (const auto& s : shapes) {
        const IntegerMatrix a = self_check_matrix(s.m, s.k, format, salt++);
        const IntegerMatrix b = self_check_matrix(s.n, s.k, weights, salt++);
        std::vector<std::int32_t> bias(static_cast<std::size_t>(s.n));
        for (std::int64_t j = 0; j < s.n; ++j) bias[j] = static_cast<std::int32_t>(j * 977 - 7000);
        std::vector<std::int32_t> expected(static_cast<std::size_t>(s.m * s.n));
        std::vector<std::int32_t> got(expected.size());
        integer_gemm_reference(a, b, bias, expected);
        run_integer_gemm(a, pack_weights_for(b, kernel), bias, int32_tile_store(got.data(), s.n));
        if (got != expected) return false;
      }
    }
  }
  return true;
}

}  // namespace soda::quant::detail
