// soda/quant/calibration.hpp: running-max and percentile observers on hand-computed batches, the
// spec's scale formulas for signed and unsigned 4- and 8-bit activations, and their errors.
#include <doctest/doctest.h>

#include <soda/core/factories.hpp>
#include <soda/quant/calibration.hpp>

#include <cmath>
#include <limits>
#include <vector>

using soda::quant::PercentileObserver;
using soda::quant::RunningMaxObserver;

namespace {

// |x| sorted: 0.25, 0.5, 1, 2, 3, 4, 5.5; max(x, 0) sorted: 0, 0, 0, 0.25, 1, 2, 4.
const std::vector<std::vector<float>> calibration_batches{
    {1.0f, -3.0f, 2.0f}, {-0.5f, 4.0f, -5.5f}, {0.25f}};

template <class Observer>
Observer calibration_observe_all(Observer observer) {
  for (const auto& batch : calibration_batches) observer.observe(batch);
  return observer;
}

}  // namespace

TEST_CASE("RunningMaxObserver: max |x| signed, max x unsigned, over every batch") {
  const auto signed_max = calibration_observe_all(RunningMaxObserver(false));
  CHECK(signed_max.batches() == 3);
  CHECK(signed_max.range() == 5.5f);
  CHECK(signed_max.method() == "running_max");
  const auto unsigned_max = calibration_observe_all(RunningMaxObserver(true));
  CHECK(unsigned_max.range() == 4.0f);
  CHECK(unsigned_max.is_unsigned());
}

TEST_CASE("scale: range / (2^(b-1) - 1) signed, range / (2^b - 1) unsigned") {
  const auto signed_max = calibration_observe_all(RunningMaxObserver(false));
  CHECK(signed_max.scale(8) == 5.5f / 127.0f);
  CHECK(signed_max.scale(4) == 5.5f / 7.0f);
  const auto unsigned_max = calibration_observe_all(RunningMaxObserver(true));
  CHECK(unsigned_max.scale(8) == 4.0f / 255.0f);
  CHECK(unsigned_max.scale(4) == 4.0f / 15.0f);
  const auto signed_median = calibration_observe_all(PercentileObserver(50, false));
  CHECK(signed_median.scale(8) == 2.0f / 127.0f);
  CHECK(signed_median.scale(4) == 2.0f / 7.0f);
  const auto unsigned_upper = calibration_observe_all(PercentileObserver(75, true));
  CHECK(unsigned_upper.scale(8) == 2.0f / 255.0f);
  CHECK(unsigned_upper.scale(4) == 2.0f / 15.0f);
}

TEST_CASE("PercentileObserver: the nearest-rank percentile of every value seen") {
  // Signed, n = 7: rank ⌈p/100 · 7⌉ of 0.25, 0.5, 1, 2, 3, 4, 5.5.
  CHECK(calibration_observe_all(PercentileObserver(10, false)).range() == 0.25f);  // rank 1
  CHECK(calibration_observe_all(PercentileObserver(50, false)).range() == 2.0f);   // rank 4
  CHECK(calibration_observe_all(PercentileObserver(80, false)).range() == 4.0f);   // rank 6
  CHECK(calibration_observe_all(PercentileObserver(100, false)).range() == 5.5f);  // rank 7
  // Unsigned: rank ⌈p/100 · 7⌉ of 0, 0, 0, 0.25, 1, 2, 4.
  CHECK(calibration_observe_all(PercentileObserver(50, true)).range() == 0.25f);  // rank 4
  CHECK(calibration_observe_all(PercentileObserver(75, true)).range() == 2.0f);   // rank 6
  CHECK(calibration_observe_all(PercentileObserver(100, true)).range() == 4.0f);  // rank 7

  // 99.9% of 1..1000 (in four shuffled batches) is rank 999 exactly, of 1..2000 rank 1998.
  PercentileObserver thousand(99.9, false);
  for (int b = 0; b < 4; ++b) {
    std::vector<float> batch;
    for (int i = 1000 - b; i >= 1; i -= 4) batch.push_back(i % 2 == 0 ? float(i) : -float(i));
    thousand.observe(batch);
  }
  CHECK(thousand.values_kept() == 1000);
  CHECK(thousand.batches() == 4);
  CHECK(thousand.range() == 999.0f);
  CHECK(thousand.range() == 999.0f);  // asking again (after the in-place reorder) agrees
  CHECK(thousand.method() == "percentile_99.9");
  std::vector<float> more;
  for (int i = 1001; i <= 2000; ++i) more.push_back(float(i));
  thousand.observe(more);
  CHECK(thousand.range() == 1998.0f);
}

TEST_CASE("PercentileObserver at 100 equals RunningMaxObserver on random batches") {
  for (const bool is_unsigned : {false, true}) {
    CAPTURE(is_unsigned);
    soda::Generator gen(17);
    RunningMaxObserver running_max(is_unsigned);
    PercentileObserver percentile(100, is_unsigned);
    PercentileObserver high(99.9, is_unsigned);
    for (int b = 0; b < 5; ++b) {
      const auto x = soda::randn<float>({8, 3, 5, 5}, gen, 0.0f, float(b + 1));
      running_max.observe(x);
      percentile.observe(x);
      high.observe(x);
    }
    CHECK(percentile.method() == "percentile_100");
    CHECK(percentile.range() == running_max.range());
    CHECK(percentile.scale(8) == running_max.scale(8));
    CHECK(percentile.scale(4) == running_max.scale(4));
    CHECK(high.range() < running_max.range());
    CHECK(high.range() > 0.0f);
  }
}

TEST_CASE("observers: errors") {
  SUBCASE("no batches observed") {
    const RunningMaxObserver running_max(false);
    CHECK_THROWS_WITH_AS(running_max.range(), doctest::Contains("no batches observed"),
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(running_max.scale(8), doctest::Contains("no batches observed"),
                         soda::ValueError);
    const PercentileObserver percentile(99.9, true);
    CHECK_THROWS_WITH_AS(percentile.range(), doctest::Contains("no batches observed"),
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(percentile.scale(4), doctest::Contains("no batches observed"),
                         soda::ValueError);
  }
  SUBCASE("percentile outside (0, 100]") {
    for (const double p : {0.0, -1.0, 100.5, std::numeric_limits<double>::quiet_NaN()}) {
      CAPTURE(p);
      CHECK_THROWS_WITH_AS(PercentileObserver(p, false),
                           doctest::Contains("percentile must be in (0, 100]"), soda::ValueError);
    }
    CHECK_NOTHROW(PercentileObserver(100, false));
    CHECK_NOTHROW(PercentileObserver(1e-6, false));
  }
  SUBCASE("bits not 4 or 8") {
    const auto running_max = calibration_observe_all(RunningMaxObserver(false));
    const auto percentile = calibration_observe_all(PercentileObserver(50, false));
    for (const int bits : {3, 16, 0}) {
      CAPTURE(bits);
      CHECK_THROWS_WITH_AS(running_max.scale(bits),
                           doctest::Contains("RunningMaxObserver: bits must be 8 or 4"),
                           soda::ValueError);
      CHECK_THROWS_WITH_AS(percentile.scale(bits),
                           doctest::Contains("PercentileObserver: bits must be 8 or 4"),
                           soda::ValueError);
    }
  }
  SUBCASE("non-finite or empty batches are rejected whole") {
    const float infinity = std::numeric_limits<float>::infinity();
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), infinity, -infinity}) {
      CAPTURE(bad);
      auto running_max = calibration_observe_all(RunningMaxObserver(false));
      auto percentile = calibration_observe_all(PercentileObserver(100, false));
      const std::vector<float> batch{100.0f, bad};
      CHECK_THROWS_WITH_AS(running_max.observe(batch),
                           doctest::Contains("batch 3 holds a non-finite value"), soda::ValueError);
      CHECK_THROWS_WITH_AS(percentile.observe(batch), doctest::Contains("at flat index 1"),
                           soda::ValueError);
      // The 100 before the bad value was not counted.
      CHECK(running_max.range() == 5.5f);
      CHECK(running_max.batches() == 3);
      CHECK(percentile.range() == 5.5f);
      CHECK(percentile.values_kept() == 7);
    }
    RunningMaxObserver running_max(true);
    CHECK_THROWS_WITH_AS(running_max.observe(std::vector<float>{}),
                         doctest::Contains("batch 0 holds no values"), soda::ValueError);
  }
  SUBCASE("a zero range has no scale") {
    RunningMaxObserver after_relu(true);
    after_relu.observe(std::vector<float>{-1.0f, 0.0f, -2.0f});
    CHECK(after_relu.range() == 0.0f);
    CHECK_THROWS_WITH_AS(after_relu.scale(8), doctest::Contains("the observed range is 0"),
                         soda::ValueError);
  }
}
