#include "checks.hpp"

#include <soda/hessian/hessian_operator.hpp>
#include <soda/hessian/layer_report.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace {

using soda::hessian::HessianOperator;
using soda::hessian::LabeledBatch;
using soda::hessian::LayerReport;
using soda::hessian::LayerReportOptions;

// mlp(3, {5}, 4): layers "1" (3×5 + 5) and "3" (5×4 + 4), 44 parameters, on 3 batches.
struct LayerReportMlp {
  std::shared_ptr<soda::nn::Sequential<double>> model;
  std::vector<LabeledBatch<double>> batches;

  LayerReportMlp() {
    soda::Generator gen(11);
    model = soda::models::mlp<double>(3, {5}, 4, gen);
    batches = soda_test::random_batches(gen, {5, 4, 7}, 3, 4).batches;
  }
};

// A ResNet-8 with 2 base channels on 6×6 one-channel images: 15 layers, 1,257 parameters.
struct LayerReportResNet {
  std::shared_ptr<soda::models::ResNetCifar<double>> model;
  std::vector<LabeledBatch<double>> batches;

  LayerReportResNet() {
    soda::Generator gen(2);
    model = soda_test::tiny_resnet(gen, 2);
    model->eval();
    batches.push_back(
        {soda::randn<double>({4, 1, 6, 6}, gen), soda::randint<std::int64_t>({4}, gen, 0, 3)});
  }
};

// The dense Hessian from H·e_i, 64 columns per apply_many call (a ResNet's products are
// overhead-bound, so stacking saves most of the time), symmetrised.
Eigen::MatrixXd layer_report_dense_hessian(const HessianOperator<double>& op) {
  const auto n = static_cast<Eigen::Index>(op.parameter_count());
  Eigen::MatrixXd h(n, n);
  for (Eigen::Index start = 0; start < n; start += 64) {
    std::vector<soda::hessian::ParameterVector<double>> units;
    for (Eigen::Index i = start; i < std::min(n, start + 64); ++i) {
      Eigen::VectorXd e = Eigen::VectorXd::Zero(n);
      e[i] = 1;
      units.push_back(soda_test::unflatten<double>(e, op.shapes()));
    }
    const auto columns = op.apply_many(units);
    for (std::size_t j = 0; j < columns.size(); ++j) {
      h.col(start + static_cast<Eigen::Index>(j)) = soda_test::flatten(columns[j]);
    }
  }
  return (h + h.transpose()) / 2;
}

// The diagonal block H_BB of a layer whose parameters are contiguous in the operator's order.
Eigen::MatrixXd layer_report_block(const Eigen::MatrixXd& dense, const HessianOperator<double>& op,
                                   const soda::hessian::LayerCurvature& layer) {
  Eigen::Index start = 0;
  for (std::size_t i = 0; i < layer.parameter_indices.front(); ++i) {
    start += static_cast<Eigen::Index>(soda::numel(op.shapes()[i]));
  }
  const auto size = static_cast<Eigen::Index>(layer.parameter_count);
  return dense.block(start, start, size, size);
}

// The eigenvalue of largest magnitude, signed: what power iteration converges to.
double layer_report_dominant_eigenvalue(const Eigen::MatrixXd& h) {
  const auto values = soda_test::descending_eigenvalues(h);
  const double top = values[0], bottom = values[values.size() - 1];
  return std::abs(top) >= std::abs(bottom) ? top : bottom;
}

LayerReportOptions layer_report_exact_eigen_options() {
  LayerReportOptions options;
  options.max_iterations = 5000;
  options.eigen_tolerance = 1e-10;
  options.traces = false;
  return options;
}

// A stacked replay folds the k directions into one GEMM of another shape (a convolution's channel
// axis, a matmul's rows), whose rounding may differ in the last bits from k separate GEMMs (Eigen
// even switches kernels with the size): per-layer figures then agree to 1e-12 of their scale.
void layer_report_check_agree(const LayerReport& a, const LayerReport& b) {
  REQUIRE(a.layers.size() == b.layers.size());
  for (std::size_t l = 0; l < a.layers.size(); ++l) {
    const auto &x = a.layers[l], &y = b.layers[l];
    INFO("layer " << x.name);
    CHECK(x.eigen_iterations == y.eigen_iterations);
    CHECK(std::abs(x.top_eigenvalue - y.top_eigenvalue) <= 1e-12 * std::abs(x.top_eigenvalue));
    const double scale = std::abs(x.trace) + x.trace_standard_error;
    CHECK(std::abs(x.trace - y.trace) <= 1e-12 * scale);
    CHECK(std::abs(x.trace_standard_error - y.trace_standard_error) <=
          1e-12 * x.trace_standard_error);
  }
  CHECK(a.trace_samples == b.trace_samples);
}

}  // namespace

TEST_CASE("layer_groups groups parameters by module path, in order of first appearance") {
  const auto groups =
      soda::hessian::layer_groups({"conv1.weight", "bn1.weight", "bn1.bias",
                                   "layer1.0.conv1.weight", "fc.weight", "scale", "fc.bias"});
  REQUIRE(groups.size() == 5);
  CHECK(groups[0] == std::pair<std::string, std::vector<std::size_t>>{"conv1", {0}});
  CHECK(groups[1] == std::pair<std::string, std::vector<std::size_t>>{"bn1", {1, 2}});
  CHECK(groups[2] == std::pair<std::string, std::vector<std::size_t>>{"layer1.0.conv1", {3}});
  CHECK(groups[3] == std::pair<std::string, std::vector<std::size_t>>{"fc", {4, 6}});
  CHECK(groups[4] == std::pair<std::string, std::vector<std::size_t>>{"scale", {5}});
  CHECK(soda::hessian::layer_groups({}).empty());
}

TEST_CASE("layer_report: each layer's top eigenvalue is the dominant eigenvalue of its block") {
  const LayerReportMlp problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  const auto report = soda::hessian::layer_report(op, layer_report_exact_eigen_options());
  REQUIRE(report.layers.size() == 2);
  CHECK(report.layers[0].name == "1");
  CHECK(report.layers[0].parameter_names == std::vector<std::string>{"1.weight", "1.bias"});
  CHECK(report.layers[0].parameter_count == 20);
  CHECK(report.layers[1].name == "3");
  CHECK(report.layers[1].parameter_count == 24);
  const auto dense = layer_report_dense_hessian(op);
  std::int64_t iterations = 0;
  for (const auto& layer : report.layers) {
    INFO("layer " << layer.name);
    const double expected = layer_report_dominant_eigenvalue(layer_report_block(dense, op, layer));
    CHECK(layer.eigen_converged);
    CHECK(std::abs(layer.top_eigenvalue - expected) < 1e-4 * std::abs(expected));
    CHECK(std::isnan(layer.trace));
    iterations += layer.eigen_iterations;
  }
  CHECK(report.hvp_count == iterations);
  CHECK(report.trace_samples == 0);
}

TEST_CASE("layer_report on a ResNet: layers by module prefix, eigenvalues of their blocks") {
  const LayerReportResNet problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  auto options = layer_report_exact_eigen_options();
  options.max_stack = 8;
  const auto report = soda::hessian::layer_report(op, options);
  std::vector<std::string> names;
  for (const auto& layer : report.layers) names.push_back(layer.name);
  CHECK(names ==
        std::vector<std::string>{"conv1", "bn1", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2",
                                 "layer1.0.bn2", "layer2.0.conv1", "layer2.0.bn1", "layer2.0.conv2",
                                 "layer2.0.bn2", "layer2.0.downsample.0", "layer2.0.downsample.1",
                                 "layer3.0.conv1", "layer3.0.bn1", "layer3.0.conv2", "layer3.0.bn2",
                                 "layer3.0.downsample.0", "layer3.0.downsample.1", "fc"});
  const auto dense = layer_report_dense_hessian(op);
  std::int64_t total = 0;
  for (const auto& layer : report.layers) {
    INFO("layer " << layer.name << " after " << layer.eigen_iterations << " iterations");
    total += layer.parameter_count;
    const double expected = layer_report_dominant_eigenvalue(layer_report_block(dense, op, layer));
    CHECK(layer.eigen_converged);
    CHECK(std::abs(layer.top_eigenvalue - expected) <= 1e-4 * std::abs(expected) + 1e-12);
  }
  CHECK(total == op.parameter_count());
}

TEST_CASE("layer_report: shared-probe traces are unbiased for every block and the whole model") {
  const LayerReportMlp problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  const auto dense = soda_test::dense_matrix(op);
  LayerReportOptions options;
  options.eigenvalues = false;
  options.max_trace_samples = 1;

  // One probe: exactly z_Bᵀ(Hz)_B with z the first Rademacher draw of Generator(seed).
  options.seed = 3;
  const auto single = soda::hessian::layer_report(op, options);
  soda::Generator gen(3);
  const auto z = soda_test::flatten(soda::hessian::rademacher_vector<double>(op.shapes(), gen));
  const Eigen::VectorXd hz = dense * z;
  CHECK(single.layers[0].trace == doctest::Approx(z.head(20).dot(hz.head(20))).epsilon(1e-12));
  CHECK(single.layers[1].trace == doctest::Approx(z.tail(24).dot(hz.tail(24))).epsilon(1e-12));
  CHECK(single.model_trace == doctest::Approx(z.dot(hz)).epsilon(1e-12));
  CHECK(std::isnan(single.layers[0].trace_standard_error));
  CHECK(single.trace_samples == 1);
  CHECK(single.hvp_count == 1);

  // Over 200 seeds the mean of each estimate is within 3 standard errors of the exact trace.
  const std::vector<double> exact{dense.block(0, 0, 20, 20).trace(),
                                  dense.block(20, 20, 24, 24).trace(), dense.trace()};
  const int seeds = 200;
  std::vector<std::vector<double>> samples(3);
  for (int seed = 0; seed < seeds; ++seed) {
    options.seed = static_cast<std::uint64_t>(seed);
    const auto report = soda::hessian::layer_report(op, options);
    samples[0].push_back(report.layers[0].trace);
    samples[1].push_back(report.layers[1].trace);
    samples[2].push_back(report.model_trace);
  }
  for (std::size_t k = 0; k < 3; ++k) {
    const auto [mean, standard_error] = soda::hessian::detail::mean_and_standard_error(samples[k]);
    INFO("estimate " << k << ": mean " << mean << " ± " << standard_error << ", exact "
                     << exact[k]);
    CHECK(standard_error > 0);
    CHECK(std::abs(mean - exact[k]) < 3 * standard_error);
  }
}

TEST_CASE("layer_report: trace statistics, stopping rule, averages and HVP count") {
  const LayerReportMlp problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  LayerReportOptions options;
  options.eigenvalues = false;
  options.max_trace_samples = 40;
  options.trace_tolerance = 0;  // all 40 probes
  options.max_stack = 1;
  const auto report = soda::hessian::layer_report(op, options);
  CHECK(report.trace_samples == 40);
  CHECK_FALSE(report.traces_converged);
  CHECK(report.hvp_count == 40);
  for (const auto& layer : report.layers) {
    CHECK(layer.trace_standard_error > 0);
    CHECK(layer.average_trace == layer.trace / static_cast<double>(layer.parameter_count));
    CHECK(std::isnan(layer.top_eigenvalue));
    CHECK(layer.eigen_iterations == 0);
  }
  // Each probe's model sample is the sum of its layer samples, so the means agree too.
  CHECK(report.model_trace ==
        doctest::Approx(report.layers[0].trace + report.layers[1].trace).epsilon(1e-12));

  // A loose tolerance stops early, on the probe where every layer's mean settled.
  options.trace_tolerance = 0.5;
  options.max_stack = 3;
  const auto early = soda::hessian::layer_report(op, options);
  CHECK(early.traces_converged);
  CHECK(early.trace_samples >= 2);
  CHECK(early.trace_samples < 40);
  CHECK(early.hvp_count >= early.trace_samples);
  CHECK(early.hvp_count < early.trace_samples + 3);
}

TEST_CASE("layer_report: same seed, same report; the stack size changes figures by rounding only") {
  const LayerReportMlp problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  LayerReportOptions options;
  options.max_iterations = 50;
  options.eigen_tolerance = 1e-8;
  options.max_trace_samples = 20;
  options.trace_tolerance = 0;
  options.seed = 5;
  options.max_stack = 4;
  const auto first = soda::hessian::layer_report(op, options);
  const auto again = soda::hessian::layer_report(op, options);
  CHECK(first.to_json().dump() == again.to_json().dump());
  CHECK(first.to_csv() == again.to_csv());
  CHECK(first.hvp_count == again.hvp_count);

  // Each layer's start and each probe depend on the seed only, whichever layers share a stack.
  for (const std::int64_t stack : {1, 2, 3}) {
    INFO("max_stack " << stack);
    options.max_stack = stack;
    layer_report_check_agree(first, soda::hessian::layer_report(op, options));
  }

  options.max_stack = 4;
  options.seed = 6;
  const auto other = soda::hessian::layer_report(op, options);
  CHECK(other.layers[0].trace != first.layers[0].trace);
  CHECK(other.layers[0].top_eigenvalue != first.layers[0].top_eigenvalue);
}

TEST_CASE("layer_report on a ResNet: the stack size changes figures by rounding only") {
  const LayerReportResNet problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  LayerReportOptions options;
  options.max_iterations = 12;
  options.eigen_tolerance = 1e-4;
  options.max_trace_samples = 6;
  options.trace_tolerance = 0;
  options.max_stack = 1;
  const auto alone = soda::hessian::layer_report(op, options);
  options.max_stack = 5;
  const auto stacked = soda::hessian::layer_report(op, options);
  layer_report_check_agree(alone, stacked);
  CHECK(alone.hvp_count == stacked.hvp_count);
}

TEST_CASE("layer_report writes JSON and CSV, with null for figures not computed") {
  const LayerReportMlp problem;
  const HessianOperator<double> op(problem.model, problem.batches);
  LayerReportOptions options;
  options.max_iterations = 20;
  options.traces = false;
  int progress_calls = 0;
  options.progress = [&](const soda::hessian::EstimatorProgress& state) {
    CHECK(state.stage == "layer eigenvalues");
    CHECK(state.step == ++progress_calls);
    CHECK(state.max_steps == 20);
  };
  const auto report = soda::hessian::layer_report(op, options);
  CHECK(progress_calls >= 2);
  const auto json = report.to_json();
  REQUIRE(json["layers"].size() == 2);
  CHECK(json["layers"][1]["name"] == "3");
  CHECK(json["layers"][1]["parameters"] == nlohmann::ordered_json{"3.weight", "3.bias"});
  CHECK(json["layers"][1]["parameter_count"] == 24);
  CHECK(json["layers"][1]["top_eigenvalue"] == report.layers[1].top_eigenvalue);
  // NaN (not computed) is written as null.
  const auto text = json.dump();
  CHECK(text.find("\"trace\":null,\"trace_standard_error\":null") != std::string::npos);
  CHECK(text.find("\"model_trace\":null") != std::string::npos);
  CHECK(json["hvp_count"] == report.hvp_count);

  const auto csv = report.to_csv();
  CHECK(csv.rfind("layer,parameter_count,top_eigenvalue,eigen_iterations,eigen_converged,trace,"
                  "trace_standard_error,average_trace\n",
                  0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);
  CHECK(csv.find("\n3,24,") != std::string::npos);
  CHECK(csv.find(",nan,nan,nan\n") != std::string::npos);
}

TEST_CASE("layer_report on any operator with names, and clear errors for bad options") {
  // A dense operator: blocks of 3 and 2 coordinates named like two modules.
  const soda_test::DenseOperator<double> dense(
      soda_test::matrix_with_spectrum({4.0, -6.0, 1.0, 0.5, 2.0}, 9), {{3}, {2}});
  auto options = layer_report_exact_eigen_options();
  const auto report = soda::hessian::layer_report(dense, {"a.weight", "b.weight"}, options);
  REQUIRE(report.layers.size() == 2);
  const double expected = layer_report_dominant_eigenvalue(dense.matrix().block(3, 3, 2, 2));
  CHECK(report.layers[1].top_eigenvalue == doctest::Approx(expected).epsilon(1e-6));

  CHECK_THROWS_WITH_AS(soda::hessian::layer_report(dense, {"a.weight"}, options),
                       doctest::Contains("1 parameter names for an operator on 2"),
                       soda::ValueError);
  options.max_stack = 0;
  CHECK_THROWS_WITH_AS(soda::hessian::layer_report(dense, {"a.weight", "b.weight"}, options),
                       doctest::Contains("max_stack must be at least 1"), soda::ValueError);
  options.max_stack = 4;
  options.trace_tolerance = -1;
  CHECK_THROWS_WITH_AS(soda::hessian::layer_report(dense, {"a.weight", "b.weight"}, options),
                       doctest::Contains("trace_tolerance must be finite and >= 0"),
                       soda::ValueError);
}

TEST_CASE("layer_report runs on a float model") {
  soda::Generator gen(11);
  const auto model = soda::models::mlp<float>(3, {5}, 4, gen);
  const std::vector<LabeledBatch<float>> batches{
      {soda::randn<float>({6, 3}, gen), soda::randint<std::int64_t>({6}, gen, 0, 4)}};
  const HessianOperator<float> op(model, batches);
  LayerReportOptions options;
  options.max_trace_samples = 20;
  const auto report = soda::hessian::layer_report(op, options);
  REQUIRE(report.layers.size() == 2);
  for (const auto& layer : report.layers) {
    CHECK(std::isfinite(layer.top_eigenvalue));
    CHECK(std::isfinite(layer.trace));
  }
}
