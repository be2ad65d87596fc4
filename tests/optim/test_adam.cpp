// Adam and AdamW (optim/adam.hpp) against torch.optim.Adam/AdamW's printed trajectories, their
// per-parameter state, checkpoints and refused input.
#include <doctest/doctest.h>
#include <soda/optim/adam.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "adam_references.hpp"
#include "sgd_checks.hpp"

namespace {

using adam_test::AdamReference;
using sgd_test::check_values;
using sgd_test::Quadratic;
using sgd_test::same_bits;
using soda::optim::Adam;
using soda::optim::AdamW;

template <class Options>
Options options_of(const AdamReference& r) {
  return {.lr = r.lr,
          .beta1 = r.beta1,
          .beta2 = r.beta2,
          .eps = r.eps,
          .weight_decay = r.weight_decay,
          .amsgrad = r.amsgrad,
          .maximize = r.maximize};
}

// Five steps of the reference's optimizer on the quadratic, checked after each.
template <class T, class Optimizer>
void follow(const AdamReference& r, double tolerance) {
  Quadratic<T> q;
  Optimizer opt(q.params(), options_of<typename Optimizer::Options>(r));
  for (int step = 0; step < 5; ++step) {
    opt.step(q.gradients());
    check_values(q.values(), r.expected[static_cast<std::size_t>(step)], tolerance, step + 1);
  }
}

template <class T>
void follow_any(const AdamReference& r, double tolerance) {
  INFO(r.torch_call);
  if (r.decoupled) {
    follow<T, AdamW<T>>(r, tolerance);
  } else {
    follow<T, Adam<T>>(r, tolerance);
  }
}

}  // namespace

TEST_SUITE("optim.adam") {
  TEST_CASE("Adam and AdamW follow torch.optim's trajectories for every combination of options") {
    for (const auto& r : adam_test::adam_references()) follow_any<double>(r, 1e-14);
  }

  TEST_CASE("float parameters follow the same trajectories to float precision") {
    for (const auto& r : adam_test::adam_references()) follow_any<float>(r, 2e-6);
  }

  TEST_CASE("defaults are PyTorch's: AdamW differs from Adam only in its weight decay 1e-2") {
    CHECK(soda::optim::AdamOptions{} == soda::optim::AdamOptions{.lr = 1e-3,
                                                                 .beta1 = 0.9,
                                                                 .beta2 = 0.999,
                                                                 .eps = 1e-8,
                                                                 .weight_decay = 0,
                                                                 .amsgrad = false,
                                                                 .maximize = false});
    CHECK(soda::optim::AdamWOptions{}.weight_decay == 1e-2);
    Quadratic<double> q;
    CHECK(Adam<double>(q.params()).name() == "adam");
    CHECK(AdamW<double>(q.params()).name() == "adamw");
  }

  TEST_CASE("an undefined gradient skips its parameter and its own step count, as None does") {
    Quadratic<double> q;
    Adam<double> opt(q.params(), {.lr = 0.1});
    opt.step(q.gradients());
    const auto p1_before = q.values();
    opt.step(std::vector<soda::Tensor<double>>{q.gradients()[0], soda::Tensor<double>()});
    CHECK(opt.parameter_steps(0) == 2);
    CHECK(opt.parameter_steps(1) == 1);
    CHECK(opt.step_count() == 2);
    for (std::size_t i = 6; i < 9; ++i) CHECK(q.values()[i] == p1_before[i]);
  }

  TEST_CASE("strided parameters and gradients (transposed views) follow PyTorch too") {
    const auto& r = adam_test::adam_references()[2];  // amsgrad: every buffer is indexed
    INFO(r.torch_call);
    Quadratic<double> q;
    // p0 as the transpose of a [3, 2] tensor: same values, strides {1, 2}.
    auto storage = soda::Tensor<double>::empty({3, 2});
    q.p0 = storage.view_with({2, 3}, {1, 2}, 0);
    for (std::int64_t i = 0; i < 2; ++i) {
      for (std::int64_t j = 0; j < 3; ++j) q.p0.at({i, j}) = sgd_test::initial_params[3 * i + j];
    }
    REQUIRE_FALSE(q.p0.is_contiguous());
    Adam<double> opt(q.params(), options_of<soda::optim::AdamOptions>(r));
    for (int step = 0; step < 5; ++step) {
      const auto grads = q.gradients();
      auto g0_storage = soda::Tensor<double>::empty({3, 2});
      auto g0 = g0_storage.view_with({2, 3}, {1, 2}, 0);
      for (std::int64_t i = 0; i < 2; ++i) {
        for (std::int64_t j = 0; j < 3; ++j) g0.at({i, j}) = grads[0].at({i, j});
      }
      opt.step(std::vector<soda::Tensor<double>>{g0, grads[1]});
      check_values(q.values(), r.expected[static_cast<std::size_t>(step)], 1e-14, step + 1);
    }
  }

  TEST_CASE("a run resumed from state_dict and state_metadata continues bit for bit") {
    for (const bool amsgrad : {false, true}) {
      CAPTURE(amsgrad);
      Quadratic<double> whole, resumed;
      AdamW<double> a(whole.params(), {.lr = 0.05, .weight_decay = 0.1, .amsgrad = amsgrad});
      AdamW<double> b(resumed.params(), {.lr = 0.05, .weight_decay = 0.1, .amsgrad = amsgrad});
      for (int step = 0; step < 2; ++step) {
        a.step(whole.gradients());
        b.step(resumed.gradients());
      }
      AdamW<double> reloaded(resumed.params(), {.lr = 9});
      reloaded.load_state_dict(b.state_dict(), b.state_metadata());
      CHECK(reloaded.options() == b.options());
      for (int step = 0; step < 3; ++step) {
        a.step(whole.gradients());
        reloaded.step(resumed.gradients());
      }
      CHECK(whole.values() == resumed.values());
      CHECK(same_bits(a.exp_avg_sq(1), reloaded.exp_avg_sq(1)));
      CHECK(reloaded.max_exp_avg_sq(0).defined() == amsgrad);
    }
  }

  TEST_CASE("refused: bad options, wrong gradients, state of another optimizer or shape") {
    Quadratic<double> q;
    CHECK_THROWS_WITH_AS(Adam<double>(q.params(), {.lr = -1}),
                         "Adam: invalid learning rate (must be finite and >= 0) -1",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(AdamW<double>(q.params(), {.beta1 = 1}),
                         "AdamW: invalid beta1 (must be in [0, 1)) 1", soda::ValueError);
    CHECK_THROWS_WITH_AS(Adam<double>(q.params(), {.eps = -1e-8}),
                         "Adam: invalid eps (must be finite and >= 0) -1e-08", soda::ValueError);
    CHECK_THROWS_WITH_AS(Adam<double>({}), "Adam: got an empty parameter list", soda::ValueError);

    Adam<double> opt(q.params(), {.lr = 0.1});
    CHECK_THROWS_WITH_AS(opt.step(std::vector{q.gradients()[1], q.gradients()[1]}),
                         "Adam.step: gradient 0 has shape [3] but parameter 0 has shape [2, 3]",
                         soda::ShapeError);
    CHECK(opt.step_count() == 0);

    AdamW<double> adamw(q.params());
    adamw.step(q.gradients());
    CHECK_THROWS_WITH_AS(opt.load_state_dict(adamw.state_dict(), adamw.state_metadata()),
                         "Adam.load_state_dict: metadata entry 'adam.lr' is missing",
                         soda::ValueError);
    Adam<double> source(q.params(), {.lr = 0.1});
    source.step(q.gradients());
    auto tensors = source.state_dict();
    tensors[0].second = soda::zeros<double>({6});
    CHECK_THROWS_WITH_AS(opt.load_state_dict(tensors, source.state_metadata()),
                         "Adam.load_state_dict: exp_avg.0 has shape [6] but parameter 0 has shape "
                         "[2, 3]",
                         soda::ShapeError);
    auto metadata = source.state_metadata();
    metadata["adam.parameter_steps"] = "1,x";
    CHECK_THROWS_WITH_AS(opt.load_state_dict(source.state_dict(), metadata),
                         "Adam.load_state_dict: metadata entry 'adam.parameter_steps' is '1,x', "
                         "not 2 comma-separated non-negative integers",
                         soda::ValueError);
    CHECK(opt.step_count() == 0);
    CHECK_FALSE(opt.exp_avg(0).defined());
  }
}
