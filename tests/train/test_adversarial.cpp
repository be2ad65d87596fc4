// soda/train/adversarial.hpp: FGSM against a hand-computed linear case, the input gradient
// against finite differences, PGD's projection, and that an attack leaves the model as it was.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

namespace {

using soda::Tensor;

// logits = W x + b with W = [[1, -2], [0.5, 1]], b = [0.1, -0.3].
std::shared_ptr<soda::nn::Linear<double>> attack_linear_model() {
  soda::Generator gen(0);
  auto model = std::make_shared<soda::nn::Linear<double>>(2, 2, true, gen);
  const auto params = model->parameters();
  const std::vector<double> w{1, -2, 0.5, 1}, b{0.1, -0.3};
  std::copy(w.begin(), w.end(), params[0].data());
  std::copy(b.begin(), b.end(), params[1].data());
  return model;
}

double attack_mean_loss(soda::nn::Module<double>& model, const Tensor<double>& x,
                        const Tensor<std::int64_t>& labels) {
  soda::NoGradGuard no_grad;
  return soda::nn::cross_entropy(model(x), labels).item();
}

}  // namespace

TEST_CASE("FGSM on a linear model moves each input by epsilon along the hand-computed sign") {
  auto linear = attack_linear_model();
  auto& model = *linear;
  // ∂L/∂x = Wᵀ(p − e_y): for y = 0 that is p₁·(W₁ − W₀) = p₁·(−0.5, 3), signs (−, +); for y = 1
  // it is p₀·(W₀ − W₁) = p₀·(0.5, −3), signs (+, −).
  const Tensor<double> x({2, 2}, {0.1, 0.2, -0.4, 0.3});
  const Tensor<std::int64_t> y({2}, {0, 1});
  const double eps = 0.05;
  const auto adversarial = soda::train::fgsm(model, x, y, eps);
  const std::vector<double> expected{0.1 - eps, 0.2 + eps, -0.4 + eps, 0.3 - eps};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CHECK(adversarial.data()[i] == doctest::Approx(expected[i]).epsilon(1e-15));
  }
  CHECK(attack_mean_loss(model, adversarial, y) > attack_mean_loss(model, x, y));

  SUBCASE("per-channel units scale epsilon and bounds clip the result") {
    soda::train::InputSpace space{.lower = {-1, -1}, .upper = {1, 0.25}, .unit = {1, 2}};
    const auto scaled = soda::train::fgsm(model, x, y, eps, space);
    const std::vector<double> clipped{0.1 - eps, 0.25, -0.4 + eps, 0.3 - 2 * eps};
    for (std::size_t i = 0; i < clipped.size(); ++i) {
      CHECK(scaled.data()[i] == doctest::Approx(clipped[i]).epsilon(1e-15));
    }
  }
}

TEST_CASE("normalized_pixels gives the bounds and units of (pixel - mean) / stddev") {
  const auto space = soda::train::InputSpace::normalized_pixels({0.5f, 0.25f}, {0.25f, 0.5f});
  CHECK(space.lower == std::vector<double>{-2.0, -0.5});
  CHECK(space.upper == std::vector<double>{2.0, 1.5});
  CHECK(space.unit == std::vector<double>{4.0, 2.0});
}

TEST_CASE("input_gradient matches central finite differences of the loss (double)") {
  soda::Generator gen(3);
  auto model = soda::models::small_cnn<double>(1, 8, 8, 3, gen);
  model->eval();
  const auto x = soda::randn<double>({2, 1, 8, 8}, gen);
  const Tensor<std::int64_t> y({2}, {2, 0});
  const auto [gradient, loss] = soda::train::input_gradient(*model, x, y);
  CHECK(loss == doctest::Approx(attack_mean_loss(*model, x, y)).epsilon(1e-14));
  const double h = 1e-6;
  for (std::int64_t i = 0; i < x.numel(); i += 5) {
    auto plus = soda::detail::copy_contiguous(x), minus = soda::detail::copy_contiguous(x);
    plus.data()[i] += h;
    minus.data()[i] -= h;
    const double numeric =
        (attack_mean_loss(*model, plus, y) - attack_mean_loss(*model, minus, y)) / (2 * h);
    CAPTURE(i);
    CHECK(gradient.data()[i] == doctest::Approx(numeric).epsilon(1e-6).scale(1e-3));
  }
}

TEST_CASE("PGD stays in the epsilon ball and the bounds, raises the loss, and is seeded") {
  soda::Generator gen(5);
  auto model = soda::models::small_cnn<double>(1, 8, 8, 3, gen);
  const auto x = soda::rand<double>({4, 1, 8, 8}, gen);
  const Tensor<std::int64_t> y({4}, {0, 1, 2, 1});
  const soda::train::AttackOptions options{
      .epsilon = 0.03, .steps = 5, .random_start = true, .train_mode = false};
  const soda::train::InputSpace space{.lower = {0.0}, .upper = {1.0}, .unit = {}};
  const auto adversarial = soda::train::adversarial_inputs(*model, x, y, options, space, 11);
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    CHECK(std::abs(adversarial.data()[i] - x.data()[i]) <= 0.03 + 1e-15);
    CHECK(adversarial.data()[i] >= 0.0);
    CHECK(adversarial.data()[i] <= 1.0);
  }
  model->eval();
  CHECK(attack_mean_loss(*model, adversarial, y) > attack_mean_loss(*model, x, y));
  const auto again = soda::train::adversarial_inputs(*model, x, y, options, space, 11);
  const auto other = soda::train::adversarial_inputs(*model, x, y, options, space, 12);
  CHECK(std::equal(again.data(), again.data() + again.numel(), adversarial.data()));
  CHECK_FALSE(std::equal(other.data(), other.data() + other.numel(), adversarial.data()));
}

TEST_CASE("an attack in train mode leaves BatchNorm statistics, mode and gradients as they were") {
  soda::Generator gen(7);
  soda::models::ResNetCifarOptions options;
  options.depth = 8;
  options.in_channels = 1;
  options.num_classes = 3;
  auto model = std::make_shared<soda::models::ResNetCifar<float>>(options, gen);
  model->eval();
  std::vector<std::vector<float>> before;
  for (const auto& [name, b] : model->named_buffers()) {
    before.emplace_back(b.data(), b.data() + b.numel());
  }
  const auto x = soda::randn<float>({4, 1, 8, 8}, gen);
  const Tensor<std::int64_t> y({4}, {0, 1, 2, 0});
  soda::train::adversarial_inputs(*model, x, y, {.epsilon = 0.1, .train_mode = true});
  CHECK_FALSE(model->is_training());
  std::size_t i = 0;
  for (const auto& [name, b] : model->named_buffers()) {
    CAPTURE(name);
    CHECK(std::equal(b.data(), b.data() + b.numel(), before[i++].data()));
  }
  for (const auto& p : model->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("bad attack options and inputs are refused with the value named") {
  auto linear = attack_linear_model();
  auto& model = *linear;
  const Tensor<double> x({1, 2}, {0.0, 0.0});
  const Tensor<std::int64_t> y({1}, {0});
  CHECK_THROWS_WITH_AS(soda::train::fgsm(model, x, y, -0.1), doctest::Contains("epsilon"),
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(soda::train::adversarial_inputs(model, x, y, {.steps = 0}),
                       doctest::Contains("steps = 0"), soda::ValueError);
  CHECK_THROWS_WITH_AS(
      soda::train::fgsm(model, x, y, 0.1, soda::train::InputSpace{.lower = {0, 0, 0}}),
      doctest::Contains("3 values per bound"), soda::ValueError);
  CHECK_THROWS_AS(soda::train::fgsm(model, Tensor<double>({2}, {0.0, 0.0}), y, 0.1),
                  soda::ShapeError);
}
