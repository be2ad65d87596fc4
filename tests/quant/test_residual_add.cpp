// soda/quant/residual_add.hpp: each input requantized with its own factor (half up), then added
// and clamped, on hand-computed cases; the per-channel form against the scalar one.
#include <doctest/doctest.h>

#include <soda/quant/residual_add.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "random_integers.hpp"

using namespace soda::quant;

TEST_CASE("residual_add rounds each input to the output scale before adding") {
  const DyadicFactor half{1 << 30, 31}, one{1 << 30, 30};
  // 3·0.5 = 1.5 -> 2, 5·0.5 = 2.5 -> 3: 5 (rounding the sum 8·0.5 = 4 would give 4).
  CHECK(residual_add(3, half, 5, half, -128, 127) == 5);
  CHECK(residual_add(-3, half, -5, half, -128, 127) == -3);  // -1 + -2
  CHECK(residual_add(100, one, 100, one, -128, 127) == 127);
  CHECK(residual_add(-100, one, 20, one, 0, 255) == 0);
  CHECK(residual_add(7, dyadic_factor(0.25), 9, dyadic_factor(0.75), -8, 7) == 7);  // 2 + 7
}

TEST_CASE("residual_add of matrices clamps to the output format and checks shapes") {
  const auto a = IntegerMatrix::from_values(std::vector<std::int32_t>{10, -20, 127}, 1, 3,
                                            IntegerFormat::int8);
  const auto b = IntegerMatrix::from_values(std::vector<std::int32_t>{200, 0, 255}, 1, 3,
                                            IntegerFormat::uint8);
  auto out = IntegerMatrix::zeros(1, 3, IntegerFormat::uint4);
  residual_add(a, dyadic_factor(0.5), b, dyadic_factor(1.0 / 32), false, out);
  // 5 + 6.25 -> 5 + 6 = 11; -10 + 0 -> 0 (uint4); 63.5 -> 64, 7.97 -> 8: 72 -> 15.
  CHECK(out.values() == std::vector<std::int32_t>{11, 0, 15});
  auto wrong = IntegerMatrix::zeros(3, 1, IntegerFormat::int8);
  CHECK_THROWS_WITH_AS(residual_add(a, dyadic_factor(0.5), b, dyadic_factor(0.5), false, wrong),
                       doctest::Contains("must have one shape"), soda::ShapeError);
}

TEST_CASE("per-channel residual_add equals the scalar residual_add element by element") {
  std::mt19937 gen(91);
  std::uniform_int_distribution<std::int32_t> accumulator(-300000, 300000);
  std::uniform_real_distribution<double> scale(1e-4, 0.5);
  const std::int64_t rows = 37, cols = 13;
  std::vector<std::int32_t> a(static_cast<std::size_t>(rows * cols));
  for (auto& v : a) v = accumulator(gen);
  a[0] = std::numeric_limits<std::int32_t>::max();
  a[1] = std::numeric_limits<std::int32_t>::min();
  std::vector<DyadicFactor> factors_a(cols), factors_b(cols);
  for (auto& f : factors_a) f = dyadic_factor(scale(gen) * 1e-2);
  for (auto& f : factors_b) f = dyadic_factor(scale(gen) * 4);
  const DyadicFactor tensor_b = dyadic_factor(0.37);
  for (auto b_format : {IntegerFormat::uint8, IntegerFormat::int8, IntegerFormat::uint4}) {
    const auto b = quant_test::random_matrix(rows, cols, b_format, gen);
    for (auto out_format : {IntegerFormat::uint8, IntegerFormat::uint4, IntegerFormat::int8}) {
      for (bool relu : {true, false}) {
        auto per_channel = IntegerMatrix::zeros(rows, cols, out_format);
        auto per_tensor = IntegerMatrix::zeros(rows, cols, out_format);
        residual_add(a, factors_a, b, factors_b, relu, per_channel);
        residual_add(a, factors_a, b, tensor_b, relu, per_tensor);
        const std::int32_t lo = relu ? 0 : format_min(out_format), hi = format_max(out_format);
        for (std::int64_t i = 0; i < rows; ++i) {
          for (std::int64_t j = 0; j < cols; ++j) {
            const std::int32_t acc = a[static_cast<std::size_t>(i * cols + j)];
            REQUIRE(per_channel.at(i, j) ==
                    residual_add(acc, factors_a[j], b.at(i, j), factors_b[j], lo, hi));
            REQUIRE(per_tensor.at(i, j) ==
                    residual_add(acc, factors_a[j], b.at(i, j), tensor_b, lo, hi));
          }
        }
      }
    }
  }
}

TEST_CASE("per-channel residual_add checks its shapes and factors") {
  const std::vector<std::int32_t> a{1, 2, 3, 4, 5, 6};
  const std::vector<DyadicFactor> two{dyadic_factor(0.5), dyadic_factor(0.25)};
  const std::vector<DyadicFactor> three{dyadic_factor(0.5), dyadic_factor(0.25),
                                        dyadic_factor(1.0)};
  const auto b = IntegerMatrix::zeros(3, 2, IntegerFormat::uint8);
  auto out = IntegerMatrix::zeros(3, 2, IntegerFormat::uint8);
  residual_add(a, two, b, dyadic_factor(1.0), true, out);
  CHECK(out.values() == std::vector<std::int32_t>{1, 1, 2, 1, 3, 2});  // halves up, quarters up
  CHECK_THROWS_WITH_AS(residual_add(a, three, b, dyadic_factor(1.0), true, out),
                       doctest::Contains("3 a factors for 2 channels"), soda::ShapeError);
  auto wrong = IntegerMatrix::zeros(2, 3, IntegerFormat::uint8);
  CHECK_THROWS_WITH_AS(residual_add(a, two, b, dyadic_factor(1.0), true, wrong),
                       doctest::Contains("must have one shape"), soda::ShapeError);
  const std::vector<DyadicFactor> bad{DyadicFactor{5, 3}, dyadic_factor(1.0)};
  CHECK_THROWS_WITH_AS(residual_add(a, two, b, bad, true, out), doctest::Contains("not dyadic"),
                       soda::ValueError);
}
