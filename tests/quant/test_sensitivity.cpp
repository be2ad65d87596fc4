// soda/quant/sensitivity.hpp: HAWQ-V1/V2 sensitivities are the layer report's figures times an
// independently computed quantization perturbation; candidates for the bit allocation, their
// errors, and the whole path layer_report → layer_sensitivities → optimal_bit_allocation.
#include <doctest/doctest.h>

#include <soda/hessian/hessian_operator.hpp>
#include <soda/hessian/layer_report.hpp>
#include <soda/models/resnet_cifar.hpp>
#include <soda/quant/bit_allocation.hpp>
#include <soda/quant/layer_geometry.hpp>
#include <soda/quant/sensitivity.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

namespace {

using soda::hessian::LabeledBatch;
using soda::hessian::LayerReport;
using soda::quant::LayerSensitivity;

// A ResNet-8 with 2 base channels on two batches of three 6×6 one-channel images (double, so the
// perturbation oracle below agrees to the last bits): 19 report layers, 10 of them quantizable.
struct SensitivityProblem {
  std::shared_ptr<soda::models::ResNetCifar<double>> model;
  std::vector<LabeledBatch<double>> batches;

  explicit SensitivityProblem(std::uint64_t seed = 3) {
    soda::Generator gen(seed);
    soda::models::ResNetCifarOptions options;
    options.depth = 8;
    options.in_channels = 1;
    options.num_classes = 3;
    options.base_channels = 2;
    model = std::make_shared<soda::models::ResNetCifar<double>>(options, gen);
    model->eval();
    for (int b = 0; b < 2; ++b) {
      batches.push_back(
          {soda::randn<double>({3, 1, 6, 6}, gen), soda::randint<std::int64_t>({3}, gen, 0, 3)});
    }
  }

  LayerReport report(std::uint64_t seed = 0) const {
    const soda::hessian::HessianOperator<double> op(model, batches);
    soda::hessian::LayerReportOptions options;
    options.max_iterations = 8;
    options.max_trace_samples = 24;
    options.trace_tolerance = 0;
    options.seed = seed;
    return soda::hessian::layer_report(op, options);
  }
};

// The spec's quantizer written out per element: S[o] = max|w[o]| / (2^(b−1) − 1),
// q = clamp(round_half_even(w / S), ±(2^(b−1) − 1)), and Σ (q·S − w)².
double sensitivity_oracle_squared_norm(const soda::Tensor<double>& weight, int bits) {
  const auto w = soda::contiguous(weight.detach());
  const std::int64_t channels = w.shape()[0], per_channel = w.numel() / channels;
  const double q_max = std::pow(2.0, bits - 1) - 1;
  double sum = 0;
  for (std::int64_t o = 0; o < channels; ++o) {
    double largest = 0;
    for (std::int64_t k = 0; k < per_channel; ++k)
      largest = std::max(largest, std::abs(w.data()[o * per_channel + k]));
    const double scale = largest > 0 ? largest / q_max : 1.0;
    for (std::int64_t k = 0; k < per_channel; ++k) {
      const double x = w.data()[o * per_channel + k];
      const double q = std::clamp(std::nearbyint(x / scale), -q_max, q_max);  // ties to even
      sum += (q * scale - x) * (q * scale - x);
    }
  }
  return sum;
}

soda::Tensor<double> sensitivity_parameter(const soda::nn::Module<double>& model,
                                           const std::string& name) {
  for (const auto& [n, t] : model.named_parameters()) {
    if (n == name) return t;
  }
  FAIL("no parameter " << name);
  return {};
}

}  // namespace

TEST_CASE("weight_perturbation_squared_norm on a hand-worked weight") {
  // Row 0 [1, 0.3, −0.5]: at 2 bits S = 1 and the ternary grid gives [1, 0, −0] (−0.5 ties to
  // even 0): 0.3² + 0.5² = 0.34. At 4 bits S = 1/7: 0.3·7 = 2.1 → 2, −3.5 → −4 (even), so
  // (0.3 − 2/7)² + (0.5 − 4/7)² = (0.1/7)² + (0.5/7)² = 0.26/49. Row 1 [0, 0, 0] is exact.
  const soda::Tensor<double> w({2, 3}, {1, 0.3, -0.5, 0, 0, 0});
  CHECK(soda::quant::weight_perturbation_squared_norm(w, 2) ==
        doctest::Approx(0.34).epsilon(1e-14));
  CHECK(soda::quant::weight_perturbation_squared_norm(w, 4) ==
        doctest::Approx(0.26 / 49).epsilon(1e-12));
  CHECK(soda::quant::weight_perturbation_squared_norm(w, 8) <
        soda::quant::weight_perturbation_squared_norm(w, 4));
}

TEST_CASE("layer_sensitivities: the report's figures times the spec quantizer's perturbation") {
  const SensitivityProblem problem;
  const LayerReport report = problem.report();
  REQUIRE(report.layers.size() == 19);
  const auto layers = soda::quant::layer_sensitivities(*problem.model, report);

  std::vector<std::string> names, expected;
  for (const auto& s : layers) names.push_back(s.name);
  for (const auto& [name, tensor] : problem.model->named_parameters()) {
    if (tensor.ndim() >= 2) expected.push_back(name.substr(0, name.size() - 7));  // ".weight"
  }
  CHECK(names == expected);  // every conv and fc, in report order; no BatchNorm layer
  REQUIRE(layers.size() == 10);
  for (const auto& s : layers) CHECK(s.name.find("bn") == std::string::npos);
  CHECK(std::find(names.begin(), names.end(), "layer2.0.downsample.0") != names.end());

  for (const auto& s : layers) {
    INFO("layer " << s.name);
    const auto curvature = std::find_if(report.layers.begin(), report.layers.end(),
                                        [&](const auto& l) { return l.name == s.name; });
    REQUIRE(curvature != report.layers.end());
    // "Sensitivities agree with the Hessian tools' per-layer figures": the same numbers.
    CHECK(s.top_eigenvalue == curvature->top_eigenvalue);
    CHECK(s.average_trace == curvature->average_trace);
    CHECK(s.parameter_count == curvature->parameter_count);
    CHECK(s.average_trace_standard_error ==
          curvature->trace_standard_error / static_cast<double>(curvature->parameter_count));
    CHECK(s.hawq_v1 == curvature->top_eigenvalue / static_cast<double>(curvature->parameter_count));
    const auto weight = sensitivity_parameter(*problem.model, s.name + ".weight");
    CHECK(s.weight_count == weight.numel());
    REQUIRE(s.perturbations.size() == 3);
    for (const auto& p : s.perturbations) {
      const double oracle = sensitivity_oracle_squared_norm(weight, p.weight_bits);
      CHECK(p.squared_norm == doctest::Approx(oracle).epsilon(1e-12));
      CHECK(p.hawq_v2 == doctest::Approx(curvature->average_trace * oracle).epsilon(1e-12));
    }
    // Fewer bits, coarser grid, larger perturbation.
    CHECK(s.perturbation(2).squared_norm > s.perturbation(4).squared_norm);
    CHECK(s.perturbation(4).squared_norm > s.perturbation(8).squared_norm);
    CHECK(s.perturbation(8).squared_norm > 0);
  }
  // fc's Hessian block holds its bias too; its quantized weights are the 3·8 of fc.weight.
  CHECK(layers.back().name == "fc");
  CHECK(layers.back().parameter_count == 3 * 8 + 3);
  CHECK(layers.back().weight_count == 3 * 8);

  const int only_four[] = {4};
  const auto four = soda::quant::layer_sensitivities(*problem.model, report, only_four);
  REQUIRE(four.front().perturbations.size() == 1);
  CHECK(four.front().perturbations[0].squared_norm == layers.front().perturbation(4).squared_norm);
  CHECK_THROWS_WITH_AS(four.front().perturbation(8),
                       doctest::Contains("\"conv1\" has no perturbation for 8-bit weights"),
                       soda::ValueError);
  const int bad[] = {8, 3};
  CHECK_THROWS_WITH_AS(soda::quant::layer_sensitivities(*problem.model, report, bad),
                       doctest::Contains("weight bits must be 2, 4 or 8, got 3"), soda::ValueError);
  const int twice[] = {4, 4};
  CHECK_THROWS_WITH_AS(soda::quant::layer_sensitivities(*problem.model, report, twice),
                       doctest::Contains("asked for twice"), soda::ValueError);

  LayerReport foreign = report;
  foreign.layers[0].name = "stem";
  foreign.layers[0].parameter_names = {"stem.weight"};
  CHECK_THROWS_WITH_AS(soda::quant::layer_sensitivities(*problem.model, foreign),
                       doctest::Contains("lists stem.weight, which the model lacks"),
                       soda::ValueError);
  LayerReport shrunk = report;
  shrunk.layers[0].parameter_count = 5;
  CHECK_THROWS_WITH_AS(soda::quant::layer_sensitivities(*problem.model, shrunk),
                       doctest::Contains("\"conv1\" has 5 parameters, fewer than the 18"),
                       soda::ShapeError);
  // A block without the weight (fc's bias alone) carries no curvature of it: skipped.
  LayerReport bias_only = report;
  bias_only.layers.back().parameter_names = {"fc.bias"};
  const auto without_fc = soda::quant::layer_sensitivities(*problem.model, bias_only);
  CHECK(without_fc.size() == layers.size() - 1);
  CHECK(without_fc.back().name == "layer3.0.downsample.0");
}

TEST_CASE("layer_sensitivities: orderings are reproducible for one seed") {
  const SensitivityProblem problem;
  const auto first = soda::quant::layer_sensitivities(*problem.model, problem.report(7));
  const auto again = soda::quant::layer_sensitivities(*problem.model, problem.report(7));
  const auto order = soda::quant::hawq_v1_order(first);
  CHECK(order == soda::quant::hawq_v1_order(again));
  // HAWQ-V1's order by hand: λ/|B| descending.
  std::vector<std::size_t> by_hand(first.size());
  std::iota(by_hand.begin(), by_hand.end(), std::size_t{0});
  std::stable_sort(by_hand.begin(), by_hand.end(), [&](std::size_t a, std::size_t b) {
    return first[a].hawq_v1 > first[b].hawq_v1;
  });
  CHECK(order == by_hand);
  for (std::size_t i = 0; i < first.size(); ++i) {
    CHECK(first[i].hawq_v1 == again[i].hawq_v1);
    CHECK(first[i].perturbation(2).hawq_v2 == again[i].perturbation(2).hawq_v2);
  }
  // The JSON and CSV carry every figure; the CSV has one row per layer and weight width.
  const auto json = soda::quant::sensitivities_to_json(first);
  CHECK(json.size() == first.size());
  CHECK(json[0]["name"] == "conv1");
  CHECK(json[0]["perturbations"][2]["hawq_v2"].get<double>() == first[0].perturbation(2).hawq_v2);
  const std::string csv = soda::quant::sensitivities_to_csv(first);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == static_cast<long>(1 + 3 * first.size()));
  CHECK(csv.rfind("layer,parameter_count,weight_count,top_eigenvalue", 0) == 0);

  LayerSensitivity no_eigen = first[0];
  no_eigen.hawq_v1 = std::nan("");
  CHECK_THROWS_WITH_AS(soda::quant::hawq_v1_order({no_eigen}),
                       doctest::Contains("layer \"conv1\" has HAWQ-V1 sensitivity nan"),
                       soda::ValueError);
}

TEST_CASE("layer_candidates: one candidate per bit pair from HAWQ-V2 and the geometry") {
  const SensitivityProblem problem;
  const auto sensitivities = soda::quant::layer_sensitivities(*problem.model, problem.report());
  const auto geometry = soda::quant::resnet_layer_geometry(*problem.model, 6, 6);
  const std::vector<std::pair<int, int>> pairs{{8, 8}, {4, 8}, {4, 4}, {2, 8}};
  const auto layers = soda::quant::layer_candidates(sensitivities, geometry, pairs);
  REQUIRE(layers.size() == geometry.size());
  for (std::size_t i = 0; i < layers.size(); ++i) {
    INFO("layer " << geometry[i].name);
    CHECK(layers[i].name == geometry[i].name);
    CHECK(layers[i].parameter_count == geometry[i].parameter_count);
    CHECK(layers[i].mac_count == geometry[i].mac_count);
    REQUIRE(layers[i].candidates.size() == pairs.size());
    for (std::size_t c = 0; c < pairs.size(); ++c) {
      const auto& candidate = layers[i].candidates[c];
      CHECK(candidate.weight_bits == pairs[c].first);
      CHECK(candidate.activation_bits == pairs[c].second);
      // Untrained, so some traces estimate slightly below 0: within noise, they count as 0.
      CHECK(candidate.sensitivity ==
            std::max(0.0, sensitivities[i].perturbation(pairs[c].first).hawq_v2));
      CHECK(candidate.latency_seconds == 0);
    }
  }

  auto short_geometry = geometry;
  short_geometry.erase(short_geometry.begin() + 3);  // layer2.0.conv1
  CHECK_THROWS_WITH_AS(soda::quant::layer_candidates(sensitivities, short_geometry, pairs),
                       doctest::Contains("layer \"layer2.0.conv1\" has a sensitivity but no "
                                         "geometry"),
                       soda::ValueError);
  auto short_sensitivities = sensitivities;
  short_sensitivities.pop_back();
  CHECK_THROWS_WITH_AS(soda::quant::layer_candidates(short_sensitivities, geometry, pairs),
                       doctest::Contains("layer \"fc\" has a geometry but no sensitivity"),
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(soda::quant::layer_candidates(sensitivities, geometry, {{8, 2}}),
                       doctest::Contains("activation bits must be 4 or 8, got 2"),
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(soda::quant::layer_candidates(sensitivities, geometry, {{4, 4}, {4, 4}}),
                       doctest::Contains("the pair W4A4 is given twice"), soda::ValueError);
  CHECK_THROWS_AS(soda::quant::layer_candidates(sensitivities, geometry, {}), soda::ValueError);
  auto mismatched = geometry;
  mismatched[0].parameter_count += 1;
  CHECK_THROWS_WITH_AS(soda::quant::layer_candidates(sensitivities, mismatched, pairs),
                       doctest::Contains("\"conv1\" has 18 weights in the sensitivities but 19"),
                       soda::ShapeError);
  soda::quant::LatencyTable empty_table(1, "portable");
  CHECK_THROWS_WITH_AS(soda::quant::layer_candidates(sensitivities, geometry, pairs, &empty_table),
                       doctest::Contains("no latency for layer \"conv1\" at W8A8"),
                       soda::ValueError);
  auto negative = sensitivities;
  negative[2].average_trace = -1e-3;
  negative[2].average_trace_standard_error = 1e-3;
  for (auto& p : negative[2].perturbations) p.hawq_v2 = negative[2].average_trace * p.squared_norm;
  const auto clamped = soda::quant::layer_candidates(negative, geometry, pairs);
  for (const auto& candidate : clamped[2].candidates) CHECK(candidate.sensitivity == 0);
  negative[2].average_trace_standard_error = 1e-4;
  CHECK_THROWS_WITH_AS(soda::quant::layer_candidates(negative, geometry, pairs),
                       doctest::Contains("\"layer1.0.conv2\" has HAWQ-V2 sensitivity -"),
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(soda::quant::layer_candidates(negative, geometry, pairs),
                       doctest::Contains("negative beyond two standard errors"), soda::ValueError);
  auto no_trace = sensitivities;
  no_trace[1].perturbations[0].hawq_v2 = std::nan("");
  CHECK_THROWS_WITH_AS(
      soda::quant::layer_candidates(no_trace, geometry, pairs),
      doctest::Contains("\"layer1.0.conv1\" has HAWQ-V2 sensitivity nan at 8 bits"),
      soda::ValueError);
}

TEST_CASE("from a layer report to the optimal bit allocation of a small ResNet-8") {
  // 1. Curvature per layer (PyHessian-style power iteration and Hutchinson probes).
  const SensitivityProblem problem;
  const soda::hessian::HessianOperator<double> op(problem.model, problem.batches);
  soda::hessian::LayerReportOptions options;
  options.max_iterations = 8;
  options.max_trace_samples = 24;
  options.trace_tolerance = 0;
  const LayerReport report = soda::hessian::layer_report(op, options);
  // 2. HAWQ-V2 sensitivities for 8-, 4- and 2-bit weights, and the layers' shapes on 6×6 images.
  const auto sensitivities = soda::quant::layer_sensitivities(*problem.model, report);
  const auto geometry = soda::quant::resnet_layer_geometry(*problem.model, 6, 6);
  // 3. The allocation's candidates and a size budget halfway between all-2-bit and all-8-bit.
  const auto layers =
      soda::quant::layer_candidates(sensitivities, geometry, {{8, 8}, {4, 8}, {4, 4}, {2, 8}});
  std::int64_t weights = 0;
  for (const auto& g : geometry) weights += g.parameter_count;
  const double budget = 5.0 * static_cast<double>(weights);
  const auto allocation = soda::quant::optimal_bit_allocation(layers, {budget, {}, {}});
  CHECK(static_cast<double>(allocation.size_bits) <= budget);
  CHECK(allocation.layers.size() == geometry.size());
  CHECK(allocation.layers.front().name == "conv1");
  // The integer program's answer is the least sensitive point of the exact Pareto frontier.
  const auto frontier = soda::quant::pareto_frontier(layers);
  const auto best = soda::quant::choose_at_size_budget(frontier, budget);
  CHECK(allocation.sensitivity == doctest::Approx(best.sensitivity).epsilon(1e-12));
  // The budget rules out 8 bits everywhere.
  CHECK(std::any_of(allocation.layers.begin(), allocation.layers.end(),
                    [](const auto& l) { return l.weight_bits < 8; }));
}
