// Seeded random integer matrices for the quant tests, with the formats' extreme values (−128, 127,
// 255, −8, 7, 15) drawn often, so that saturation or overflow in a kernel cannot hide.
#pragma once

#include <soda/quant/integer_matrix.hpp>

#include <cstdint>
#include <random>
#include <vector>

namespace quant_test {

inline std::vector<std::int32_t> random_values(std::int64_t count, std::int32_t lo, std::int32_t hi,
                                               std::mt19937& gen) {
  std::uniform_int_distribution<std::int32_t> value(lo, hi), pick(0, 3);
  std::vector<std::int32_t> out(static_cast<std::size_t>(count));
  for (auto& v : out) {
    const int p = pick(gen);
    v = p == 0 ? lo : (p == 1 ? hi : value(gen));
  }
  return out;
}

inline soda::quant::IntegerMatrix random_matrix(std::int64_t rows, std::int64_t cols,
                                                soda::quant::IntegerFormat format,
                                                std::mt19937& gen) {
  const auto values = random_values(rows * cols, soda::quant::format_min(format),
                                    soda::quant::format_max(format), gen);
  return soda::quant::IntegerMatrix::from_values(values, rows, cols, format);
}

}  // namespace quant_test
