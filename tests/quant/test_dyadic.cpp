// soda/quant/dyadic.hpp: dyadic factors are the closest M0 / 2^c over a sweep of scales, and
// requantize rounds half up with an int64 product, checked against exact 128-bit arithmetic.
#include <doctest/doctest.h>

#include <soda/quant/dyadic.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

using soda::quant::dyadic_factor;
using soda::quant::DyadicFactor;
using soda::quant::requantize;

namespace {

// |M0·2^-c − s| in long double (M0 has 31 bits, so M0·2^-c is exact).
long double distance(std::int64_t multiplier, int shift, double scale) {
  return std::fabs(std::ldexp(static_cast<long double>(multiplier), -shift) -
                   static_cast<long double>(scale));
}

// floor(acc·M0 / 2^c + 1/2), clamped: the definition, in exact 128-bit integers.
std::int32_t requantize_exact(std::int32_t acc, DyadicFactor f, std::int32_t lo, std::int32_t hi) {
  const __int128 product = static_cast<__int128>(acc) * f.multiplier;
  const __int128 twice =
      product * 2 + (static_cast<__int128>(1) << f.shift);  // 2·(p/2^c + 1/2)·2^c
  __int128 quotient = twice / (static_cast<__int128>(1) << (f.shift + 1));
  if (twice < 0 && quotient * (static_cast<__int128>(1) << (f.shift + 1)) != twice) --quotient;
  return static_cast<std::int32_t>(quotient < lo ? lo : (quotient > hi ? hi : quotient));
}

}  // namespace

TEST_CASE("dyadic_factor is the closest M0 / 2^c, within 2^-30 relative, over 1e-8 … 1e3") {
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  for (int i = 0; i <= 4000; ++i) {
    const double scale = std::pow(10.0, -8.0 + 11.0 * (i + jitter(gen)) / 4001.0);
    const DyadicFactor f = dyadic_factor(scale);
    REQUIRE(f.multiplier >= (1 << 30));
    REQUIRE(f.shift >= 0);
    REQUIRE(f.shift < 63);
    CHECK(distance(f.multiplier, f.shift, scale) / scale < std::ldexp(1.0L, -30));
    // Neither neighbour is closer (M0 + 1 may reach 2^31: still a fair comparison).
    CHECK(distance(f.multiplier, f.shift, scale) <=
          distance(std::int64_t{f.multiplier} + 1, f.shift, scale));
    CHECK(distance(f.multiplier, f.shift, scale) <=
          distance(std::int64_t{f.multiplier} - 1, f.shift, scale));
  }
}

TEST_CASE("dyadic_factor of powers of two and the ends of the representable range") {
  CHECK(dyadic_factor(1.0) == DyadicFactor{1 << 30, 30});
  CHECK(dyadic_factor(0.5) == DyadicFactor{1 << 30, 31});
  CHECK(dyadic_factor(0.75) == DyadicFactor{3 << 29, 31});
  CHECK(dyadic_factor(std::ldexp(1.0, -32)) == DyadicFactor{1 << 30, 62});
  CHECK(dyadic_factor(std::ldexp(1.0, 30)) == DyadicFactor{1 << 30, 0});
  CHECK(dyadic_factor(2147483647.0) == DyadicFactor{2147483647, 0});
  // Just below 1: rounds up to 2^31 / 2^31, which is written 2^30 / 2^30.
  CHECK(dyadic_factor(std::nextafter(1.0, 0.0)) == DyadicFactor{1 << 30, 30});
}

TEST_CASE("dyadic_factor refuses scales it cannot represent, naming the scale") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {0.0, -1.0, -0.0, nan, inf, 1e-11, std::ldexp(1.0, -33), 3e9, 2147483647.75}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(dyadic_factor(bad), soda::ValueError);
  }
  CHECK_THROWS_WITH(dyadic_factor(-2.0), doctest::Contains("dyadic_factor: scale -2"));
  CHECK_THROWS_WITH(dyadic_factor(1e-12), doctest::Contains("too small"));
  CHECK_THROWS_WITH(dyadic_factor(1e10), doctest::Contains("too large"));
}

TEST_CASE("requantize rounds half up (towards +inf), negative accumulators included") {
  const DyadicFactor half{1 << 30, 31};          // 0.5 exactly
  CHECK(requantize(3, half, -128, 127) == 2);    //  1.5 ->  2
  CHECK(requantize(5, half, -128, 127) == 3);    //  2.5 ->  3
  CHECK(requantize(-3, half, -128, 127) == -1);  // -1.5 -> -1
  CHECK(requantize(-5, half, -128, 127) == -2);  // -2.5 -> -2
  CHECK(requantize(-6, half, -128, 127) == -3);  // -3   -> -3
  CHECK(requantize(0, half, -128, 127) == 0);
  const DyadicFactor quarter{1 << 30, 32};          // 0.25
  CHECK(requantize(-7, quarter, -128, 127) == -2);  // -1.75 -> -2
  CHECK(requantize(-5, quarter, -128, 127) == -1);  // -1.25 -> -1
  CHECK(requantize(6, quarter, -128, 127) == 2);    //  1.5  ->  2
  // (acc·M0 + 2^(c−1)) >> c by hand: 100·0.3 = 30; 0.3 ≈ 1288490189 / 2^32.
  CHECK(dyadic_factor(0.3) == DyadicFactor{1288490189, 32});
  CHECK(requantize(100, dyadic_factor(0.3), -128, 127) == 30);
  CHECK(requantize(-100, dyadic_factor(0.3), -128, 127) == -30);
}

TEST_CASE("requantize clamps to [lo, hi]; lo = 0 is a fused ReLU") {
  const DyadicFactor one{1 << 30, 30};
  CHECK(requantize(1000, one, -128, 127) == 127);
  CHECK(requantize(-1000, one, -128, 127) == -128);
  CHECK(requantize(-3, one, 0, 255) == 0);
  CHECK(requantize(300, one, 0, 255) == 255);
  CHECK(requantize(-9, one, -8, 7) == -8);
  CHECK(requantize(16, one, 0, 15) == 15);
  // c = 0 has no rounding term: M0 is then an integer multiplier.
  CHECK(requantize(-3, DyadicFactor{1 << 30, 0}, std::numeric_limits<std::int32_t>::min(),
                   std::numeric_limits<std::int32_t>::max()) ==
        std::numeric_limits<std::int32_t>::min());
}

TEST_CASE("requantize equals floor(acc·M0 / 2^c + 1/2) in exact arithmetic, extremes included") {
  std::mt19937_64 gen(11);
  std::uniform_int_distribution<std::int32_t> acc_of(std::numeric_limits<std::int32_t>::min(),
                                                     std::numeric_limits<std::int32_t>::max());
  std::uniform_int_distribution<std::int32_t> m0_of(1 << 30,
                                                    std::numeric_limits<std::int32_t>::max());
  std::uniform_int_distribution<int> shift_of(0, 62);
  const std::int32_t lo = std::numeric_limits<std::int32_t>::min();
  const std::int32_t hi = std::numeric_limits<std::int32_t>::max();
  for (int i = 0; i < 20000; ++i) {
    const DyadicFactor f{m0_of(gen), shift_of(gen)};
    const std::int32_t acc = i % 10 == 0 ? (i % 20 == 0 ? lo : hi) : acc_of(gen);
    CAPTURE(acc);
    CAPTURE(f.multiplier);
    CAPTURE(f.shift);
    REQUIRE(requantize(acc, f, lo, hi) == requantize_exact(acc, f, lo, hi));
    REQUIRE(requantize(acc, f, -128, 127) == requantize_exact(acc, f, -128, 127));
  }
}
