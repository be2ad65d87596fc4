// soda/optim/lr_schedule.hpp: rates against torch.optim.lr_scheduler (MultiStepLR,
// CosineAnnealingLR, LinearLR, SequentialLR warm-ups), value semantics and every refusal.
#include <doctest/doctest.h>
#include <soda/optim/lr_schedule.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

using soda::optim::Constant;
using soda::optim::CosineAnnealingLR;
using soda::optim::LrSchedule;
using soda::optim::MultiStepLR;

namespace {

// learning_rate_at(k) for k = 0, 1, ... against rates printed by PyTorch, to a relative
// tolerance (the closed forms agree to rounding; PyTorch's recursive steps drift a little more).
void check_rates(const LrSchedule& schedule, const std::vector<double>& expected,
                 double tolerance) {
  for (std::size_t k = 0; k < expected.size(); ++k) {
    const double got = schedule.learning_rate_at(static_cast<std::int64_t>(k));
    INFO("step " << k << ": " << got << " vs PyTorch " << expected[k]);
    CHECK(std::abs(got - expected[k]) <= tolerance * std::max(std::abs(expected[k]), 1e-3));
  }
}

}  // namespace

// Every list below was printed by /usr/bin/python3 with torch 1.13: opt = torch.optim.SGD(
// [torch.zeros(1, requires_grad=True)], lr=0.1), the scheduler named, then for k = 0, 1, ...:
// record scheduler._get_closed_form_lr()[0] (or get_last_lr()[0] where noted); opt.step();
// scheduler.step().
TEST_SUITE("optim/lr_schedule") {
  TEST_CASE("MultiStepLR multiplies by gamma at each milestone, twice for a repeated one") {
    // MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.1), closed form.
    const std::vector<double> expected = {0.1,
                                          0.1,
                                          0.010000000000000002,
                                          0.010000000000000002,
                                          0.010000000000000002,
                                          0.00010000000000000003,
                                          0.00010000000000000003,
                                          0.00010000000000000003,
                                          0.00010000000000000003};
    check_rates(LrSchedule(0.1, MultiStepLR{.milestones = {2, 5, 5}, .gamma = 0.1}), expected,
                1e-15);
    // The order of the milestones does not matter (PyTorch keeps them in a Counter).
    check_rates(LrSchedule(0.1, MultiStepLR{.milestones = {5, 2, 5}, .gamma = 0.1}), expected,
                1e-15);
    CHECK(LrSchedule(0.1, MultiStepLR{.milestones = {5, 2, 5}}) ==
          LrSchedule(0.1, MultiStepLR{.milestones = {2, 5, 5}}));
  }

  TEST_CASE("CosineAnnealingLR follows the cosine down to eta_min at t_max and back up after") {
    // CosineAnnealingLR(opt, T_max=10, eta_min=0.001), closed form, k = 0..25.
    const std::vector<double> expected = {0.1,
                                          0.09757729755661011,
                                          0.0905463412215599,
                                          0.07959536998847742,
                                          0.0657963412215599,
                                          0.0505,
                                          0.03520365877844011,
                                          0.021404630011522586,
                                          0.010453658778440109,
                                          0.0034227024433899004,
                                          0.001,
                                          0.003422702443389889,
                                          0.010453658778440095,
                                          0.021404630011522575,
                                          0.035203658778440096,
                                          0.05049999999999999,
                                          0.06579634122155989,
                                          0.07959536998847741,
                                          0.0905463412215599,
                                          0.09757729755661011,
                                          0.1,
                                          0.09757729755661011,
                                          0.09054634122155994,
                                          0.07959536998847744,
                                          0.06579634122155992,
                                          0.05050000000000002};
    const LrSchedule schedule(0.1, CosineAnnealingLR{.t_max = 10, .eta_min = 0.001});
    check_rates(schedule, expected, 1e-15);
    // PyTorch's recursive scheduler.step() (get_last_lr()) drifts from the closed form by rounding
    // only: the same schedule, k = 15 and 25.
    CHECK(schedule.learning_rate_at(15) == doctest::Approx(0.05050000000000022).epsilon(1e-12));
    CHECK(schedule.learning_rate_at(25) == doctest::Approx(0.050500000000000225).epsilon(1e-12));
  }

  TEST_CASE("a linear warm-up alone is LinearLR(start_factor, total_iters) then the base rate") {
    // LinearLR(opt, start_factor=0.1, total_iters=4), closed form, k = 0..6.
    check_rates(
        LrSchedule(0.1).with_linear_warmup(0.1, 4),
        {0.010000000000000002, 0.0325, 0.05500000000000001, 0.07750000000000001, 0.1, 0.1, 0.1},
        1e-15);
  }

  TEST_CASE("warm-up then cosine is SequentialLR([LinearLR, CosineAnnealingLR], [warm-up])") {
    // SequentialLR(opt, [LinearLR(opt, start_factor=0.01, total_iters=5),
    // CosineAnnealingLR(opt, T_max=10)], milestones=[5]): get_last_lr(), k = 0..16. The cosine
    // starts from its own step 0 at the milestone.
    check_rates(LrSchedule(0.1, CosineAnnealingLR{.t_max = 10}).with_linear_warmup(0.01, 5),
                {0.001, 0.0208, 0.0406, 0.060399999999999995, 0.0802, 0.1, 0.09755282581475769,
                 0.09045084971874738, 0.07938926261462367, 0.06545084971874739, 0.05000000000000001,
                 0.03454915028125264, 0.020610737385376353, 0.009549150281252635,
                 0.002447174185242324, 0.0, 0.0024471741852423235},
                1e-12);
  }

  TEST_CASE("warm-up then multi-step: milestones count from the end of the warm-up") {
    // SequentialLR(opt, [LinearLR(opt, start_factor=0.25, total_iters=3),
    // MultiStepLR(opt, milestones=[2, 4], gamma=0.5)], milestones=[3]): get_last_lr(), k = 0..9.
    check_rates(LrSchedule(0.1, MultiStepLR{.milestones = {2, 4}, .gamma = 0.5})
                    .with_linear_warmup(0.25, 3),
                {0.025, 0.05, 0.07500000000000001, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025},
                1e-12);
  }

  TEST_CASE("a constant schedule is the base rate at every step") {
    const LrSchedule schedule(0.05);
    for (std::int64_t step : {0, 1, 17, 1'000'000'000})
      CHECK(schedule.learning_rate_at(step) == 0.05);
    CHECK(std::holds_alternative<Constant>(schedule.decay()));
    CHECK_FALSE(schedule.warmup().has_value());
    CHECK(schedule.base_lr() == 0.05);
  }

  TEST_CASE("schedules are values: with_linear_warmup returns a new one, equality compares rates") {
    const LrSchedule cosine(0.1, CosineAnnealingLR{.t_max = 90});
    const LrSchedule warmed = cosine.with_linear_warmup(0.1, 5);
    CHECK_FALSE(cosine.warmup().has_value());
    CHECK(warmed.warmup()->steps == 5);
    CHECK(warmed.warmup()->start_factor == 0.1);
    CHECK(cosine != warmed);
    CHECK(warmed == cosine.with_linear_warmup(0.1, 5));
    LrSchedule copy = warmed;
    CHECK(copy == warmed);
    // A resumed run asks for the step it stopped at; nothing else is needed.
    CHECK(copy.learning_rate_at(42) == warmed.learning_rate_at(42));
    CHECK(warmed.learning_rate_at(5) == cosine.learning_rate_at(0));
    CHECK(warmed.learning_rate_at(47) == cosine.learning_rate_at(42));
  }

  TEST_CASE("invalid schedules and steps are refused with the value at fault") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH_AS(LrSchedule(-0.1),
                         "LrSchedule: invalid base learning rate -0.1 (must be finite and >= 0)",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(LrSchedule{nan},
                         "LrSchedule: invalid base learning rate nan (must be finite and >= 0)",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(LrSchedule(0.1, MultiStepLR{.milestones = {3, -1}}),
                         "MultiStepLR: milestone -1 is negative", soda::ValueError);
    CHECK_THROWS_WITH_AS(LrSchedule(0.1, MultiStepLR{.milestones = {3}, .gamma = nan}),
                         "MultiStepLR: invalid gamma nan (must be finite and >= 0)",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(LrSchedule(0.1, CosineAnnealingLR{.t_max = 0}),
                         "CosineAnnealingLR: t_max must be >= 1, got 0", soda::ValueError);
    CHECK_THROWS_WITH_AS(
        LrSchedule(
            0.1, CosineAnnealingLR{.t_max = 5, .eta_min = std::numeric_limits<double>::infinity()}),
        "CosineAnnealingLR: eta_min must be finite", soda::ValueError);

    const LrSchedule schedule(0.1);
    CHECK_THROWS_WITH_AS(schedule.with_linear_warmup(0.0, 5),
                         "LrSchedule.with_linear_warmup: start_factor must be in (0, 1], got 0",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(schedule.with_linear_warmup(1.5, 5),
                         "LrSchedule.with_linear_warmup: start_factor must be in (0, 1], got 1.5",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(schedule.with_linear_warmup(0.1, 0),
                         "LrSchedule.with_linear_warmup: steps must be >= 1, got 0",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(schedule.with_linear_warmup(0.1, 5).with_linear_warmup(0.1, 5),
                         "LrSchedule.with_linear_warmup: the schedule already has one",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(schedule.learning_rate_at(-1),
                         "LrSchedule.learning_rate_at: step must be >= 0, got -1",
                         soda::ValueError);
    CHECK_NOTHROW(schedule.with_linear_warmup(1.0, 1));  // PyTorch's bounds are inclusive at 1
  }
}
