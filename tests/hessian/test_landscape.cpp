#include "checks.hpp"

#include <soda/hessian/hessian_operator.hpp>
#include <soda/hessian/landscape.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using soda::hessian::HessianOperator;
using soda::hessian::HessianOperatorOptions;
using soda::hessian::LabeledBatch;
using soda::hessian::ParameterVector;

// A smooth 3 → 5 → 4 tanh network on 3 batches (5, 4 and 7 samples), so finite differences of the
// loss see no kinks.
struct LandscapeProblem {
  std::shared_ptr<soda::nn::Sequential<double>> model;
  std::vector<LabeledBatch<double>> batches;
  soda::Tensor<double> all_inputs;
  soda::Tensor<std::int64_t> all_labels;

  LandscapeProblem() {
    soda::Generator gen(21);
    model = std::make_shared<soda::nn::Sequential<double>>();
    model->push_back(std::make_shared<soda::nn::Linear<double>>(3, 5, gen));
    model->push_back(std::make_shared<soda::nn::Tanh<double>>());
    model->push_back(std::make_shared<soda::nn::Linear<double>>(5, 4, gen));
    auto data = soda_test::random_batches(gen, {5, 4, 7}, 3, 4);
    batches = std::move(data.batches);
    all_inputs = data.all_inputs;
    all_labels = data.all_labels;
  }

  // The loss over all 16 samples at once, at θ₀ + alpha·u written by hand (and undone).
  double direct_loss(double alpha, const ParameterVector<double>& u) const {
    const auto params = model->parameters();
    const auto saved = soda::hessian::clone(params);
    for (std::size_t i = 0; i < params.size(); ++i) {
      for (std::int64_t j = 0; j < params[i].numel(); ++j) {
        params[i].data()[j] = saved[i].data()[j] + alpha * u[i].data()[j];
      }
    }
    const double value = soda::nn::cross_entropy((*model)(all_inputs), all_labels).item();
    for (std::size_t i = 0; i < params.size(); ++i) {
      std::copy_n(saved[i].data(), saved[i].numel(), params[i].data());
    }
    return value;
  }
};

// A ResNet-8 with BatchNorm, 2 base channels, on 6×6 one-channel images.
std::shared_ptr<soda::models::ResNetCifar<double>> landscape_resnet(soda::Generator& gen) {
  auto model = soda_test::tiny_resnet(gen, 2);
  model->eval();
  return model;
}

Eigen::VectorXd landscape_flat_state(const soda::nn::NamedTensors<double>& tensors) {
  ParameterVector<double> all;
  for (const auto& [name, t] : tensors) all.push_back(t);
  return soda_test::flatten(all);
}

ParameterVector<double> landscape_unit_direction(const std::vector<soda::Shape>& shapes,
                                                 std::uint64_t seed) {
  soda::Generator gen(seed);
  auto u = soda::hessian::gaussian_vector<double>(shapes, gen);
  soda::hessian::normalize(u);
  return u;
}

}  // namespace

TEST_CASE("linspace includes both ends and is exactly symmetric for symmetric bounds") {
  const auto alphas = soda::hessian::linspace(-0.5, 0.5, 21);
  REQUIRE(alphas.size() == 21);
  CHECK(alphas.front() == -0.5);
  CHECK(alphas.back() == 0.5);
  CHECK(alphas[10] == 0.0);
  for (std::size_t i = 0; i < 21; ++i) {
    CHECK(alphas[20 - i] == -alphas[i]);
    CHECK(alphas[i] == doctest::Approx(-0.5 + 0.05 * static_cast<double>(i)).epsilon(1e-15));
  }
  CHECK(soda::hessian::linspace(2.0, 3.0, 1) == std::vector<double>{2.0});
  CHECK_THROWS_AS(soda::hessian::linspace(0.0, 1.0, 0), soda::ValueError);
}

TEST_CASE("loss_landscape_1d: the loss at θ + αu, equal to op.loss() at 0, θ restored") {
  const LandscapeProblem problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  const auto u = landscape_unit_direction(op.shapes(), 4);
  const auto before = landscape_flat_state(problem.model->named_parameters());
  soda::Generator gen(8);
  const auto v = soda::hessian::gaussian_vector<double>(op.shapes(), gen);
  const auto hv_before = soda_test::flatten(op.apply(v));

  const auto alphas = soda::hessian::linspace(-0.5, 0.5, 21);
  int calls = 0;
  const auto curve = soda::hessian::loss_landscape_1d(
      op, u, alphas, [&](const soda::hessian::EstimatorProgress& state) {
        CHECK(state.stage == "landscape");
        CHECK(state.step == ++calls);
        CHECK(state.max_steps == 21);
      });
  CHECK(calls == 21);
  REQUIRE(curve.losses.size() == 21);
  CHECK(curve.alphas == alphas);
  CHECK(curve.losses[10] == doctest::Approx(op.loss()).epsilon(1e-14));
  for (std::size_t i = 0; i < alphas.size(); ++i) {
    INFO("alpha " << alphas[i]);
    CHECK(curve.losses[i] == doctest::Approx(problem.direct_loss(alphas[i], u)).epsilon(1e-12));
  }
  // The weights are θ₀ again, bit for bit, so the operator's products are unchanged.
  CHECK(landscape_flat_state(problem.model->named_parameters()) == before);
  CHECK(soda_test::flatten(op.apply(v)) == hv_before);
}

TEST_CASE("loss_landscape_1d: the second difference at small α is uᵀHu") {
  const LandscapeProblem problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  for (const std::uint64_t seed : {1, 2, 3}) {
    const auto u = landscape_unit_direction(op.shapes(), seed);
    const double h = 1e-3;
    const auto curve = soda::hessian::loss_landscape_1d(op, u, {-h, 0.0, h});
    const double second_difference =
        (curve.losses[0] - 2 * curve.losses[1] + curve.losses[2]) / (h * h);
    const double curvature = soda::hessian::dot(u, op.apply(u));
    INFO("seed " << seed << ": " << second_difference << " vs uᵀHu = " << curvature);
    CHECK(second_difference == doctest::Approx(curvature).epsilon(1e-5));
  }
}

TEST_CASE("loss_landscape_2d: grid values, symmetric cases and agreement with the 1-D curve") {
  const LandscapeProblem problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  const auto u = landscape_unit_direction(op.shapes(), 5);
  const auto w = landscape_unit_direction(op.shapes(), 6);
  const auto before = landscape_flat_state(problem.model->named_parameters());
  const auto alphas = soda::hessian::linspace(-0.4, 0.4, 5);

  // u₁ = u₂: L depends on α + β only, so the grid is symmetric and constant on anti-diagonals
  // (up to the rounding of θ₀ + αu + βu, summed in that order).
  const auto same = soda::hessian::loss_landscape_2d(op, u, u, alphas, alphas);
  const auto sums = soda::hessian::loss_landscape_1d(op, u, soda::hessian::linspace(-0.8, 0.8, 9));
  REQUIRE(same.losses.size() == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    REQUIRE(same.losses[i].size() == 5);
    for (std::size_t j = 0; j < 5; ++j) {
      CHECK(same.losses[i][j] == doctest::Approx(same.losses[j][i]).epsilon(1e-14));
      CHECK(same.losses[i][j] == doctest::Approx(sums.losses[i + j]).epsilon(1e-14));
    }
  }
  // u₂ = -u₁: the diagonal α = β is θ₀ itself.
  const auto minus_u = soda::hessian::linear_combination(-1.0, u, 0.0, u);
  const auto opposite = soda::hessian::loss_landscape_2d(op, u, minus_u, alphas, alphas);
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(opposite.losses[i][i] == doctest::Approx(op.loss()).epsilon(1e-14));
  }

  // β = 0 is the 1-D curve along u₁, bit for bit; α = 0 the curve along u₂.
  const std::vector<double> betas{-0.3, 0.0, 0.2};
  const auto grid = soda::hessian::loss_landscape_2d(op, u, w, alphas, betas);
  const auto along_u = soda::hessian::loss_landscape_1d(op, u, alphas);
  const auto along_w = soda::hessian::loss_landscape_1d(op, w, betas);
  for (std::size_t i = 0; i < 5; ++i) CHECK(grid.losses[i][1] == along_u.losses[i]);
  for (std::size_t j = 0; j < 3; ++j) CHECK(grid.losses[2][j] == along_w.losses[j]);
  // A grid point off the axes against a direct evaluation at θ₀ + αu + βw.
  const auto combined = soda::hessian::linear_combination(1.0, u, -0.3 / 0.4, w);
  CHECK(grid.losses[4][0] == doctest::Approx(problem.direct_loss(0.4, combined)).epsilon(1e-12));
  CHECK(landscape_flat_state(problem.model->named_parameters()) == before);

  const auto csv = grid.to_csv();
  CHECK(csv.rfind("alpha,beta,loss\n", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 1 + 5 * 3);
  const auto json = grid.to_json();
  CHECK(json["losses"].size() == 5);
  CHECK(json["losses"][4][0] == grid.losses[4][0]);
  CHECK(json["betas"] == nlohmann::ordered_json(betas));
}

TEST_CASE("loss landscapes write CSV and JSON that read back exactly") {
  const LandscapeProblem problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  const auto curve = soda::hessian::loss_landscape_1d(op, landscape_unit_direction(op.shapes(), 1),
                                                      {-0.1, 0.0, 0.1});
  const auto csv = curve.to_csv();
  CHECK(csv.rfind("alpha,loss\n", 0) == 0);
  const auto second_line = csv.substr(csv.find('\n') + 1);
  const auto comma = second_line.find(',');
  CHECK(std::stod(second_line.substr(0, comma)) == -0.1);
  CHECK(std::stod(second_line.substr(comma + 1)) == curve.losses[0]);
  const auto json = nlohmann::ordered_json::parse(curve.to_json().dump());
  CHECK(json["losses"][2].get<double>() == curve.losses[2]);
  CHECK(json["alphas"].size() == 3);
}

TEST_CASE("loss landscapes in train mode use batch statistics and leave BatchNorm as it was") {
  soda::Generator gen(2);
  const auto model = landscape_resnet(gen);
  const std::vector<LabeledBatch<double>> batches{
      {soda::randn<double>({4, 1, 6, 6}, gen), soda::randint<std::int64_t>({4}, gen, 0, 3)},
      {soda::randn<double>({3, 1, 6, 6}, gen), soda::randint<std::int64_t>({3}, gen, 0, 3)}};
  HessianOperatorOptions train;
  train.train_mode = true;
  const HessianOperator<double> in_train(model, batches, train);
  const HessianOperator<double> in_eval(model, batches);
  const auto buffers = landscape_flat_state(model->named_buffers());
  const auto parameters = landscape_flat_state(model->named_parameters());
  const auto u = landscape_unit_direction(in_train.shapes(), 3);

  const auto train_curve = soda::hessian::loss_landscape_1d(in_train, u, {0.0, 0.1});
  const auto eval_curve = soda::hessian::loss_landscape_1d(in_eval, u, {0.0, 0.1});
  CHECK(train_curve.losses[0] == doctest::Approx(in_train.loss()).epsilon(1e-13));
  CHECK(eval_curve.losses[0] == doctest::Approx(in_eval.loss()).epsilon(1e-13));
  CHECK(std::abs(train_curve.losses[0] - eval_curve.losses[0]) > 1e-6);
  CHECK_FALSE(model->is_training());
  CHECK(landscape_flat_state(model->named_buffers()) == buffers);
  CHECK(landscape_flat_state(model->named_parameters()) == parameters);

  // The second difference along u matches the train-mode Hessian too.
  const double h = 1e-3;
  const auto small = soda::hessian::loss_landscape_1d(in_train, u, {-h, 0.0, h});
  const double second_difference =
      (small.losses[0] - 2 * small.losses[1] + small.losses[2]) / (h * h);
  CHECK(second_difference ==
        doctest::Approx(soda::hessian::dot(u, in_train.apply(u))).epsilon(1e-4));
}

TEST_CASE("loss landscapes restore the weights when the loss throws midway") {
  const LandscapeProblem problem;
  auto calls = std::make_shared<int>(0);
  auto throw_at = std::make_shared<int>(-1);
  const soda::hessian::BatchLoss<double> failing = [calls, throw_at](
                                                       const soda::Tensor<double>& output,
                                                       const soda::Tensor<std::int64_t>& labels) {
    if (++*calls == *throw_at) throw std::runtime_error("loss failed on purpose");
    return soda::nn::cross_entropy(output, labels);
  };
  const HessianOperator<double> op(problem.model, problem.batches, {}, failing);
  const auto before = landscape_flat_state(problem.model->named_parameters());
  const auto u = landscape_unit_direction(op.shapes(), 7);
  problem.model->train();

  // Three batches per point: the 5th call is the second batch of α = 0.5.
  *throw_at = *calls + 5;
  CHECK_THROWS_WITH_AS(soda::hessian::loss_landscape_1d(op, u, {0.25, 0.5, 1.0}),
                       "loss failed on purpose", std::runtime_error);
  CHECK(landscape_flat_state(problem.model->named_parameters()) == before);
  CHECK(problem.model->is_training());

  *throw_at = *calls + 4;
  CHECK_THROWS_AS(soda::hessian::loss_landscape_2d(op, u, u, {0.1, 0.2}, {0.3, 0.4}),
                  std::runtime_error);
  CHECK(landscape_flat_state(problem.model->named_parameters()) == before);
}

TEST_CASE("loss landscapes reject directions that do not match the parameters") {
  const LandscapeProblem problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  const auto before = landscape_flat_state(problem.model->named_parameters());
  auto wrong = landscape_unit_direction(op.shapes(), 1);
  wrong[2] = soda::zeros<double>({5, 4});  // "2.weight" is [4, 5]
  CHECK_THROWS_WITH_AS(
      soda::hessian::loss_landscape_1d(op, wrong, {0.1}),
      doctest::Contains("has shape [5, 4] but parameter '2.weight' has shape [4, 5]"),
      soda::ShapeError);
  const auto good = landscape_unit_direction(op.shapes(), 1);
  CHECK_THROWS_WITH_AS(soda::hessian::loss_landscape_2d(op, good, wrong, {0.1}, {0.1}),
                       doctest::Contains("second direction"), soda::ShapeError);
  const ParameterVector<double> too_short(good.begin(), good.begin() + 2);
  CHECK_THROWS_WITH_AS(soda::hessian::loss_landscape_1d(op, too_short, {0.1}),
                       doctest::Contains("has 2 tensors but the operator has 4 parameters"),
                       soda::ShapeError);
  CHECK(landscape_flat_state(problem.model->named_parameters()) == before);
}

TEST_CASE("loss landscapes of a float model restore its weights bit for bit") {
  soda::Generator gen(13);
  const auto model = soda::models::mlp<float>(3, {5}, 4, gen);
  const std::vector<LabeledBatch<float>> batches{
      {soda::randn<float>({6, 3}, gen), soda::randint<std::int64_t>({6}, gen, 0, 4)}};
  const HessianOperator<float> op(model, batches);
  ParameterVector<float> before;
  for (const auto& p : model->parameters()) before.push_back(p.to<float>());
  const auto u = soda::hessian::gaussian_vector<float>(op.shapes(), gen);
  const auto grid = soda::hessian::loss_landscape_2d(op, u, u, {-0.1, 0.0, 0.1}, {0.0, 0.05});
  CHECK(grid.losses[1][0] == doctest::Approx(op.loss()).epsilon(1e-6));
  CHECK(grid.losses[2][0] != grid.losses[0][0]);
  const auto after = model->parameters();
  for (std::size_t i = 0; i < after.size(); ++i) {
    CHECK(std::equal(after[i].data(), after[i].data() + after[i].numel(), before[i].data()));
  }
}
