// soda/quant/residual_add.hpp: each input requantized with its own factor (half up), then added
// and clamped, on hand-computed cases.
#include <doctest/doctest.h>

#include <soda/quant/residual_add.hpp>

#include <cstdint>
#include <vector>

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
