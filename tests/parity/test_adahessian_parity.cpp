// soda's AdaHessian against a PyTorch port of the official optimizer
// (tests/parity/adahessian_parity.py, Debian's python3-torch): the same small CNN, batches and
// Rademacher probes, ten steps in float64, then the parameters, losses and optimizer state
// compared. soda draws the probes; the test draws the same ones from the optimizer's seed (and
// checks that the optimizer's generator ends where the test's does) and hands them to PyTorch.
#include <doctest/doctest.h>
#include <soda/io/state_dict.hpp>
#include <soda/soda.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "parity_support.hpp"

namespace {

namespace fs = std::filesystem;

constexpr const char* adahessian_script = "adahessian_parity.py";
constexpr int steps = 10;
// The goal; the two sides agree far closer (the messages show how close).
constexpr double parameter_tolerance = 1e-5;

struct Comparison {
  double parameters = 0, losses = 0, state = 0;  // largest relative differences
  std::string failure;
};

double relative_difference(const soda::Tensor<double>& actual,
                           const soda::Tensor<double>& reference) {
  const double scale =
      std::max(soda::max_abs_difference(reference, soda::zeros<double>({})), 1e-300);
  return soda::max_abs_difference(actual, reference) / scale;
}

std::string text(double value) {
  return soda::optim::detail::exact_text(value);
}

// Runs `options` on both sides from the same seeded start and compares the results.
Comparison compare(const soda::optim::AdaHessianOptions& options) {
  soda::Generator gen(21);
  auto model = soda::models::small_cnn<double>(2, 8, 8, 4, gen);
  auto file = soda::state_dict_file(*model, "model.");
  std::vector<soda::Tensor<double>> images;
  std::vector<soda::Tensor<std::int64_t>> labels;
  for (int s = 0; s < steps; ++s) {
    images.push_back(soda::randn<double>({6, 2, 8, 8}, gen));
    labels.push_back(soda::randint<std::int64_t>({6}, gen, 0, 4));
    file.tensors.emplace_back("images." + std::to_string(s), images.back());
    file.tensors.emplace_back("labels." + std::to_string(s), labels.back());
  }
  // The probes the optimizer will draw: `samples` parameter-shaped Rademacher vectors from its
  // generator at every curvature step.
  const auto named = model->named_parameters();
  std::vector<soda::Shape> shapes;
  for (const auto& [name, p] : named) shapes.push_back(p.shape());
  soda::Generator probes(options.seed);
  for (int s = 0; s < steps; s += static_cast<int>(options.update_each)) {
    for (std::int64_t k = 0; k < options.samples; ++k) {
      const auto z = soda::hessian::rademacher_vector<double>(shapes, probes);
      for (std::size_t i = 0; i < named.size(); ++i) {
        file.tensors.emplace_back(
            "probe." + std::to_string(s) + "." + std::to_string(k) + "." + named[i].first, z[i]);
      }
    }
  }
  file.metadata = {{"steps", std::to_string(steps)},
                   {"lr", text(options.lr)},
                   {"beta1", text(options.beta1)},
                   {"beta2", text(options.beta2)},
                   {"eps", text(options.eps)},
                   {"weight_decay", text(options.weight_decay)},
                   {"hessian_power", text(options.hessian_power)},
                   {"samples", std::to_string(options.samples)},
                   {"update_each", std::to_string(options.update_each)},
                   {"average_conv_kernel", options.average_conv_kernel ? "true" : "false"}};

  // Written now: the file's tensors share the parameters' storage, which the steps change.
  const soda_parity::TempFolder folder;
  const fs::path input = folder.path() / "input.safetensors",
                 output = folder.path() / "output.safetensors", log = folder.path() / "log.txt";
  soda::save_safetensors(input, file);

  soda::optim::AdaHessian<double> optimizer(model->parameters(), options);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    const auto& x = images[static_cast<std::size_t>(s)];
    const auto& y = labels[static_cast<std::size_t>(s)];
    losses.push_back(
        optimizer.step([&] { return soda::nn::cross_entropy((*model)(x), y); }).item());
  }

  Comparison result;
  if (optimizer.generator().offset() != probes.offset()) {
    result.failure = "the optimizer drew other probes than the test exported (generator offset " +
                     std::to_string(optimizer.generator().offset()) + ", expected " +
                     std::to_string(probes.offset()) + ")";
    return result;
  }
  result.failure = soda_parity::python_torch_problem(log);
  if (!result.failure.empty()) return result;
  const fs::path script = soda_parity::parity_script(adahessian_script);
  result.failure = soda_parity::missing_script_problem(script, adahessian_script);
  if (!result.failure.empty()) return result;
  double seconds = 0;
  result.failure =
      soda_parity::run_parity_script(script, {input.string(), output.string()}, log, seconds);
  if (!result.failure.empty()) return result;

  try {
    const auto answer = soda::load_safetensors(output);
    result.losses =
        relative_difference(soda::Tensor<double>({steps}, losses), answer.get<double>("losses"));
    for (std::size_t i = 0; i < named.size(); ++i) {
      const auto& name = named[i].first;
      result.parameters =
          std::max(result.parameters,
                   relative_difference(named[i].second, answer.get<double>("param." + name)));
      result.state = std::max(
          {result.state,
           relative_difference(optimizer.exp_avg(i), answer.get<double>("exp_avg." + name)),
           relative_difference(optimizer.exp_hessian_diag_sq(i),
                               answer.get<double>("exp_hessian_diag_sq." + name))});
    }
  } catch (const soda::Error& e) {
    result.failure = std::string(adahessian_script) + " wrote an unreadable answer: " + e.what();
  }
  return result;
}

void check(const Comparison& c) {
  REQUIRE_MESSAGE(c.failure.empty(), c.failure);
  MESSAGE("largest relative differences after " << steps << " steps: parameters " << c.parameters
                                                << ", losses " << c.losses << ", optimizer state "
                                                << c.state);
  CHECK(c.parameters < parameter_tolerance);
  CHECK(c.losses < 1e-10);
  CHECK(c.state < 1e-8);
}

}  // namespace

TEST_SUITE("parity/adahessian") {
  TEST_CASE("the official AdaHessian step: one probe, spatial averaging, official weight decay") {
    check(compare({.lr = 0.02, .weight_decay = 1e-3, .seed = 5}));
  }

  TEST_CASE("generalisations: two probes per estimate, estimates every third step, power 1/2") {
    check(compare({.lr = 0.02,
                   .weight_decay = 1e-3,
                   .hessian_power = 0.5,
                   .samples = 2,
                   .update_each = 3,
                   .seed = 6}));
  }
}
