// soda/train/adaptive_batch_size.hpp: ABS's rule on scripted eigenvalue sequences: growth exactly
// when the drop threshold is met, the cap, the learning-rate factor, the duration rule and ABSA's
// adversarial share.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <optional>
#include <vector>

namespace {

using soda::train::AdaptiveBatchOptions;
using soda::train::AdaptiveBatchSchedule;

struct ScriptedEpoch {
  std::optional<double> eigenvalue;
  std::int64_t batch;
  const char* reason;
};

void replay_schedule(AdaptiveBatchSchedule& schedule, const std::vector<ScriptedEpoch>& steps) {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    CAPTURE(i);
    const auto decision = schedule.end_epoch(steps[i].eigenvalue);
    CHECK(decision.batch_size == steps[i].batch);
    CHECK(decision.reason == steps[i].reason);
    CHECK(decision.grew == (std::string(steps[i].reason) != ""));
    CHECK(schedule.batch_size() == steps[i].batch);
  }
}

}  // namespace

TEST_CASE("the batch doubles exactly when the eigenvalue halves against the last reference") {
  AdaptiveBatchSchedule schedule({.initial_batch = 128, .max_batch = 4096, .duration = 0});
  replay_schedule(schedule, {{10.0, 128, ""},           // the first estimate is the reference
                             {6.0, 128, ""},            // 6 > 10 / 2
                             {5.000001, 128, ""},       // just above the threshold
                             {5.0, 256, "eigenvalue"},  // exactly λ_ref / 2: grow, λ_ref = 5
                             {4.0, 256, ""},            // against 5 now, not against 10
                             {2.6, 256, ""},
                             {2.5, 512, "eigenvalue"},  // 5 / 2
                             {std::nullopt, 512, ""},   // no estimate this epoch
                             {0.5, 1024, "eigenvalue"}});
  CHECK(schedule.reference_eigenvalue() == doctest::Approx(0.5));
  CHECK(schedule.learning_rate_factor() == 8.0);  // linear scaling: 1024 / 128
}

TEST_CASE("the batch stops at max_batch and no estimate is wanted there") {
  AdaptiveBatchSchedule schedule({.initial_batch = 100, .max_batch = 300, .duration = 0});
  CHECK(schedule.wants_estimate(0));
  replay_schedule(schedule, {{8.0, 100, ""},
                             {4.0, 200, "eigenvalue"},
                             {2.0, 300, "eigenvalue"},  // 400 capped at 300
                             {1.0, 300, ""},            // already at the cap: nothing grows
                             {0.1, 300, ""}});
  CHECK_FALSE(schedule.wants_estimate(5));
  CHECK(schedule.learning_rate_factor() == doctest::Approx(3.0));
  // The cap refused the last two: the reference stays at the last growth's λ.
  CHECK(schedule.reference_eigenvalue() == doctest::Approx(2.0));
}

TEST_CASE("without learning-rate scaling the factor stays 1; another growth factor and drop") {
  AdaptiveBatchSchedule schedule({.initial_batch = 10,
                                  .max_batch = 1000,
                                  .eigenvalue_drop = 4,
                                  .growth = 3,
                                  .duration = 0,
                                  .scale_learning_rate = false});
  replay_schedule(schedule,
                  {{8.0, 10, ""}, {2.1, 10, ""}, {2.0, 30, "eigenvalue"}, {0.5, 90, "eigenvalue"}});
  CHECK(schedule.learning_rate_factor() == 1.0);
}

TEST_CASE("the duration rule grows after that many epochs at one size and keeps the reference") {
  AdaptiveBatchSchedule schedule({.initial_batch = 16, .max_batch = 1024, .duration = 3});
  replay_schedule(schedule,
                  {{9.0, 16, ""},
                   {8.0, 16, ""},
                   {7.0, 32, "duration"},  // third epoch at 16
                   {6.0, 32, ""},
                   {4.5, 64, "eigenvalue"},  // 9 / 2: the reference was kept through "duration"
                   {std::nullopt, 64, ""},
                   {std::nullopt, 64, ""},
                   {std::nullopt, 128, "duration"}});
  CHECK(schedule.reference_eigenvalue() == doctest::Approx(4.5));
}

TEST_CASE("estimates are wanted every interval-th epoch") {
  AdaptiveBatchSchedule schedule({.initial_batch = 16, .max_batch = 64, .interval = 3});
  std::vector<bool> wanted;
  for (std::int64_t epoch = 0; epoch < 7; ++epoch) wanted.push_back(schedule.wants_estimate(epoch));
  CHECK(wanted == std::vector<bool>{false, false, true, false, false, true, false});
}

TEST_CASE("ABSA's adversarial share is divided by the growth and ends below its floor") {
  AdaptiveBatchSchedule schedule({.initial_batch = 128,
                                  .max_batch = 1 << 20,
                                  .duration = 1,
                                  .adversarial_fraction = 0.2,
                                  .min_adversarial_fraction = 1.0 / 128});
  CHECK(schedule.adversarial_fraction() == 0.2);
  const std::vector<double> expected{0.1, 0.05, 0.025, 0.0125, 0.0, 0.0};  // 0.00625 < 1/128
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(schedule.end_epoch(std::nullopt).reason == "duration");
    CHECK(schedule.adversarial_fraction() == doctest::Approx(expected[i]));
  }
}

TEST_CASE("ABSA's adversarial share ends when the batch reaches its maximum") {
  AdaptiveBatchSchedule schedule(
      {.initial_batch = 128, .max_batch = 256, .duration = 1, .adversarial_fraction = 0.5});
  schedule.end_epoch(std::nullopt);
  CHECK(schedule.batch_size() == 256);
  CHECK(schedule.adversarial_fraction() == 0.0);
}

TEST_CASE("bad options and a non-finite eigenvalue are refused with the value named") {
  using soda::ValueError;
  CHECK_THROWS_WITH_AS(AdaptiveBatchSchedule({.initial_batch = 0}),
                       doctest::Contains("initial_batch = 0"), ValueError);
  CHECK_THROWS_WITH_AS(AdaptiveBatchSchedule({.initial_batch = 256, .max_batch = 128}),
                       doctest::Contains("below initial_batch"), ValueError);
  CHECK_THROWS_AS(AdaptiveBatchSchedule({.eigenvalue_drop = 1.0}), ValueError);
  CHECK_THROWS_AS(AdaptiveBatchSchedule({.growth = 0.5}), ValueError);
  CHECK_THROWS_AS(AdaptiveBatchSchedule({.duration = -1}), ValueError);
  CHECK_THROWS_AS(AdaptiveBatchSchedule({.interval = 0}), ValueError);
  CHECK_THROWS_AS(AdaptiveBatchSchedule({.adversarial_fraction = 1.5}), ValueError);
  AdaptiveBatchSchedule schedule({});
  CHECK_THROWS_WITH_AS(schedule.end_epoch(std::nan("")), doctest::Contains("finite"), ValueError);
}
