// The Optimizer interface (optim/optimizer.hpp) over all four optimizers: step(loss) lowers a
// loss, clone() is an independent snapshot, and state moves between instances through the
// interface alone.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <memory>
#include <string>
#include <vector>

namespace {

using soda::Tensor;
using soda::optim::Optimizer;

struct Problem {
  std::vector<Tensor<double>> params{Tensor<double>({3}, {1.0, -2.0, 0.5}),
                                     Tensor<double>({2, 2}, {0.3, -0.7, 1.2, 2.0})};
  Tensor<double> loss() const {
    return soda::sum(soda::square(params[0]) * 2.0) + soda::sum(soda::square(params[1] - 1.0));
  }
};

std::unique_ptr<Optimizer<double>> make(const std::string& name,
                                        const std::vector<Tensor<double>>& params) {
  using namespace soda::optim;
  if (name == "sgd")
    return std::make_unique<SGD<double>>(params, SgdOptions{.lr = 0.1, .momentum = 0.9});
  if (name == "adam") return std::make_unique<Adam<double>>(params, AdamOptions{.lr = 0.1});
  if (name == "adamw") return std::make_unique<AdamW<double>>(params, AdamWOptions{.lr = 0.1});
  return std::make_unique<AdaHessian<double>>(params, AdaHessianOptions{.lr = 0.3, .seed = 2});
}

std::vector<double> values(const std::vector<Tensor<double>>& params) {
  std::vector<double> out;
  for (const auto& p : params) out.insert(out.end(), p.data(), p.data() + p.numel());
  return out;
}

}  // namespace

TEST_SUITE("optim.optimizer") {
  TEST_CASE("every optimizer lowers a quadratic through step(loss) and names itself") {
    for (const std::string name : {"sgd", "adam", "adamw", "adahessian"}) {
      CAPTURE(name);
      Problem problem;
      auto optimizer = make(name, problem.params);
      CHECK(optimizer->name() == name);
      const double first = optimizer->step([&] { return problem.loss(); }).item();
      for (int step = 0; step < 20; ++step) optimizer->step([&] { return problem.loss(); });
      CHECK(problem.loss().item() < 0.5 * first);
      CHECK(optimizer->step_count() == 21);
    }
  }

  TEST_CASE(
      "clone() is a snapshot: it continues as the original would from the moment of cloning") {
    for (const std::string name : {"sgd", "adam", "adamw", "adahessian"}) {
      CAPTURE(name);
      Problem problem;
      auto optimizer = make(name, problem.params);
      for (int step = 0; step < 3; ++step) optimizer->step([&] { return problem.loss(); });
      const auto saved_values = values(problem.params);
      auto snapshot = optimizer->clone();
      for (int step = 0; step < 4; ++step) optimizer->step([&] { return problem.loss(); });
      const auto expected = values(problem.params);

      // Back to the parameters at the snapshot: the clone must retrace the original's steps.
      std::size_t at = 0;
      for (auto& p : problem.params) {
        for (std::int64_t i = 0; i < p.numel(); ++i) p.data()[i] = saved_values[at++];
      }
      for (int step = 0; step < 4; ++step) snapshot->step([&] { return problem.loss(); });
      CHECK(values(problem.params) == expected);
      CHECK(snapshot->step_count() == 7);
    }
  }

  TEST_CASE("state moves through the interface: the loading optimizer continues bit for bit") {
    for (const std::string name : {"sgd", "adam", "adamw", "adahessian"}) {
      CAPTURE(name);
      Problem a, b;
      auto first = make(name, a.params);
      auto second = make(name, b.params);
      for (int step = 0; step < 3; ++step) {
        first->step([&] { return a.loss(); });
        second->step([&] { return b.loss(); });
      }
      auto loaded = make(name, b.params);
      loaded->set_learning_rate(123);  // the state's hyperparameters replace it
      loaded->load_state_dict(second->state_dict(), second->state_metadata());
      CHECK(loaded->learning_rate() == first->learning_rate());
      for (int step = 0; step < 3; ++step) {
        first->step([&] { return a.loss(); });
        loaded->step([&] { return b.loss(); });
      }
      CHECK(values(a.params) == values(b.params));
    }
  }

  TEST_CASE("step_accumulated on parts of a loss takes the step of their sum") {
    for (const std::string name : {"sgd", "adam", "adamw", "adahessian"}) {
      CAPTURE(name);
      Problem whole, split;
      auto a = make(name, whole.params);
      auto b = make(name, split.params);
      for (int step = 0; step < 3; ++step) {
        const double value = a->step([&] { return whole.loss(); }).item();
        // Shares 1/4 and 3/4 (exact in binary), as micro-batches of 1 and 3 samples would weigh.
        const double summed = b->step_accumulated({[&] { return split.loss() * 0.25; },
                                                   [&] { return split.loss() * 0.75; }})
                                  .item();
        CHECK(summed == doctest::Approx(value).epsilon(1e-14));
      }
      const auto expected = values(whole.params), got = values(split.params);
      for (std::size_t i = 0; i < expected.size(); ++i) {
        CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-13));
      }
      CHECK(b->step_count() == 3);
      CHECK_THROWS_AS(b->step_accumulated({}), soda::ValueError);
    }
  }

  TEST_CASE("set_learning_rate refuses what the options refuse") {
    for (const std::string name : {"sgd", "adam", "adamw", "adahessian"}) {
      CAPTURE(name);
      Problem problem;
      auto optimizer = make(name, problem.params);
      CHECK_THROWS_AS(optimizer->set_learning_rate(-1), soda::ValueError);
      CHECK_THROWS_AS(optimizer->set_learning_rate(std::nan("")), soda::ValueError);
      optimizer->set_learning_rate(0.25);
      CHECK(optimizer->learning_rate() == 0.25);
    }
  }
}
