#include <soda/hessian/trace.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "checks.hpp"

using namespace soda::hessian;

namespace {

struct TraceTestSpread {
  double mean = 0, deviation = 0;  // sample mean and sample standard deviation
};

TraceTestSpread trace_test_spread(const std::vector<double>& xs) {
  TraceTestSpread out;
  for (const double x : xs) out.mean += x;
  out.mean /= static_cast<double>(xs.size());
  for (const double x : xs) out.deviation += (x - out.mean) * (x - out.mean);
  out.deviation = std::sqrt(out.deviation / static_cast<double>(xs.size() - 1));
  return out;
}

constexpr int trace_test_seeds = 200;

// One estimate per seed 0..199 with everything else in `options` fixed.
template <class Op>
std::vector<TraceEstimate> trace_test_over_seeds(Op& op, TraceOptions options) {
  std::vector<TraceEstimate> out;
  for (int seed = 0; seed < trace_test_seeds; ++seed) {
    options.seed = static_cast<std::uint64_t>(seed);
    out.push_back(estimate_trace(op, options));
  }
  return out;
}

std::vector<double> trace_test_values(const std::vector<TraceEstimate>& estimates) {
  std::vector<double> out;
  for (const auto& e : estimates) out.push_back(e.trace);
  return out;
}

// The root mean square of the reported standard errors: what the spread over seeds should be.
double trace_test_reported_error(const std::vector<TraceEstimate>& estimates) {
  double sum = 0;
  for (const auto& e : estimates) sum += e.standard_error * e.standard_error;
  return std::sqrt(sum / static_cast<double>(estimates.size()));
}

// Var(zᵀHz) for Rademacher z: 2 (‖H‖_F² - Σ H_ii²), an oracle for one probe's spread.
double trace_test_probe_variance(const Eigen::MatrixXd& h) {
  return 2 * (h.squaredNorm() - h.diagonal().squaredNorm());
}

// 60 eigenvalues 100·0.6^i with alternating signs: a few dominate, as in a trained network.
soda_test::DenseOperator<double> trace_test_decaying_operator() {
  std::vector<double> eigenvalues;
  for (int i = 0; i < 60; ++i)
    eigenvalues.push_back((i % 3 == 2 ? -100.0 : 100.0) * std::pow(0.6, i));
  return {soda_test::matrix_with_spectrum(eigenvalues, 11), {{6, 5}, {30}}};
}

}  // namespace

TEST_CASE("hutchinson trace is unbiased on the small MLP Hessian, with the spread theory gives") {
  const soda_test::SmallMlp mlp;
  auto h = mlp.hessian();
  const auto dense = soda_test::dense_matrix(h);
  const double exact = dense.trace();
  const auto estimates = trace_test_over_seeds(h, {.max_samples = 10, .tolerance = 0, .seed = 0});
  for (const auto& e : estimates) {
    CHECK(e.samples.size() == 10);
    CHECK(e.hvp_count == 10);
    CHECK_FALSE(e.converged);
    CHECK(e.method == "hutchinson");
  }
  const auto spread = trace_test_spread(trace_test_values(estimates));
  CHECK(std::abs(spread.mean - exact) < 3 * spread.deviation / std::sqrt(trace_test_seeds));
  // The spread over seeds matches both theory and the standard errors the estimates report.
  const double theory = std::sqrt(trace_test_probe_variance(dense) / 10);
  CHECK(spread.deviation / theory == doctest::Approx(1).epsilon(0.25));
  CHECK(trace_test_reported_error(estimates) / spread.deviation == doctest::Approx(1).epsilon(0.5));
}

TEST_CASE("hutch++ is unbiased on the small MLP Hessian, its standard error matching its spread") {
  const soda_test::SmallMlp mlp;
  auto h = mlp.hessian();
  const double exact = soda_test::dense_matrix(h).trace();
  const auto estimates = trace_test_over_seeds(
      h, {.max_samples = 12, .tolerance = 0, .method = TraceMethod::hutch_plus_plus});
  for (const auto& e : estimates) {
    CHECK(e.hvp_count == 12);
    CHECK(e.samples.size() == 4);  // 12 - 4 sketch products - 4 basis products
    CHECK(e.method == "hutch++");
  }
  const auto spread = trace_test_spread(trace_test_values(estimates));
  CHECK(std::abs(spread.mean - exact) < 3 * spread.deviation / std::sqrt(trace_test_seeds));
  CHECK(trace_test_reported_error(estimates) / spread.deviation == doctest::Approx(1).epsilon(0.5));
}

TEST_CASE(
    "on a fast-decaying spectrum hutch++ is unbiased with far less variance than hutchinson") {
  auto op = trace_test_decaying_operator();
  const double exact = op.matrix().trace();
  const TraceOptions options{.max_samples = 30, .tolerance = 0};
  const auto plain = trace_test_over_seeds(op, options);
  auto sketched_options = options;
  sketched_options.method = TraceMethod::hutch_plus_plus;
  const auto sketched = trace_test_over_seeds(op, sketched_options);
  CHECK(op.products() == 2 * 30 * trace_test_seeds);  // the reported budget is what was spent

  const auto plain_spread = trace_test_spread(trace_test_values(plain));
  const auto sketched_spread = trace_test_spread(trace_test_values(sketched));
  CHECK(std::abs(plain_spread.mean - exact) <
        3 * plain_spread.deviation / std::sqrt(trace_test_seeds));
  CHECK(std::abs(sketched_spread.mean - exact) <
        3 * sketched_spread.deviation / std::sqrt(trace_test_seeds));
  CHECK(sketched_spread.deviation < plain_spread.deviation / 10);
  CHECK(plain_spread.deviation / std::sqrt(trace_test_probe_variance(op.matrix()) / 30) ==
        doctest::Approx(1).epsilon(0.25));
  CHECK(trace_test_reported_error(sketched) / sketched_spread.deviation ==
        doctest::Approx(1).epsilon(0.5));
}

TEST_CASE("hutch++ is exact once the sketch spans a low-rank matrix, and spends dropped columns") {
  std::vector<double> eigenvalues(20, 0.0);
  eigenvalues[0] = 5, eigenvalues[1] = -2, eigenvalues[2] = 1;
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(eigenvalues, 4), {{4, 5}});
  const auto e = hutch_plus_plus_trace(
      op, {.max_samples = 20, .tolerance = 0, .seed = 3, .sketch_size = 5, .batch = 2});
  CHECK(e.trace == doctest::Approx(4).epsilon(1e-12));
  CHECK(e.standard_error < 1e-12);
  // H·S has rank 3: two of the 5 columns are dropped, so 20 - 5 - 3 = 12 residual probes.
  CHECK(e.samples.size() == 12);
  CHECK(e.hvp_count == 20);
  CHECK(op.products() == 20);
}

TEST_CASE("same seed gives the same numbers, another seed others, whatever the batch") {
  const soda_test::SmallMlp mlp;
  auto h = mlp.hessian();
  auto dense = trace_test_decaying_operator();
  for (const auto method : {TraceMethod::hutchinson, TraceMethod::hutch_plus_plus}) {
    CAPTURE(trace_method_name(method));
    const TraceOptions options{.max_samples = 15, .tolerance = 0, .seed = 5, .method = method};
    const auto first = estimate_trace(h, options);
    const auto again = estimate_trace(h, options);
    CHECK(first.samples == again.samples);
    CHECK(first.trace == again.trace);
    CHECK(first.standard_error == again.standard_error);
    auto other_seed = options;
    other_seed.seed = 6;
    CHECK(estimate_trace(h, other_seed).trace != first.trace);

    // Probes do not depend on the batch; a dense operator applies them one by one, so its numbers
    // are identical, while hessian_at stacks them in one replay (rounding may differ).
    auto batched = options;
    batched.batch = 4;
    const auto stacked = estimate_trace(h, batched);
    REQUIRE(stacked.samples.size() == first.samples.size());
    for (std::size_t i = 0; i < first.samples.size(); ++i) {
      CHECK(stacked.samples[i] == doctest::Approx(first.samples[i]).epsilon(1e-12));
    }
    CHECK(estimate_trace(dense, batched).samples == estimate_trace(dense, options).samples);
  }
}

TEST_CASE("the tolerance stops the run early and says so") {
  // Rademacher z has z_i² = 1, so zᵀDz = tr(D) for every probe: the mean settles at once.
  const Eigen::VectorXd d = Eigen::VectorXd::LinSpaced(12, -3, 8);
  soda_test::DenseOperator<float> diagonal(d.asDiagonal().toDenseMatrix(), {{3, 4}});
  const auto exact = hutchinson_trace(diagonal, {.max_samples = 50, .tolerance = 1e-6});
  CHECK(exact.converged);
  CHECK(exact.samples.size() == 2);
  CHECK(exact.hvp_count == 2);
  CHECK(exact.trace == doctest::Approx(d.sum()));
  CHECK(exact.standard_error == 0);

  const soda_test::SmallMlp mlp;
  auto h = mlp.hessian();
  std::vector<EstimatorProgress> reports;
  const auto e = hutchinson_trace(
      h, {.max_samples = 100, .tolerance = 1e-2, .progress = [&](const EstimatorProgress& p) {
            reports.push_back(p);
          }});
  CHECK(e.converged);
  CHECK(e.samples.size() < 100);
  CHECK(e.hvp_count == static_cast<std::int64_t>(e.samples.size()));
  REQUIRE(reports.size() == e.samples.size());
  for (std::size_t i = 0; i < reports.size(); ++i) {
    CHECK(reports[i].stage == "trace");
    CHECK(reports[i].step == static_cast<std::int64_t>(i + 1));
    CHECK(reports[i].max_steps == 100);
  }
  CHECK(reports.back().estimate == doctest::Approx(e.trace).epsilon(1e-14));
  const std::size_t n = e.samples.size();
  const double last = e.samples.back() / static_cast<double>(n);
  const double previous_mean =
      (e.trace - last) * static_cast<double>(n) / static_cast<double>(n - 1);
  CHECK(std::abs(e.trace - previous_mean) / (std::abs(previous_mean) + 1e-6) < 1e-2);

  // With batches the stop falls on the same probe; the rest of its batch is counted as spent.
  const auto batched = hutchinson_trace(h, {.max_samples = 100, .tolerance = 1e-2, .batch = 8});
  CHECK(batched.samples.size() == e.samples.size());
  CHECK(batched.hvp_count >= static_cast<std::int64_t>(e.samples.size()));
  CHECK(batched.hvp_count % 8 == 0);
  CHECK(batched.hvp_count < static_cast<std::int64_t>(e.samples.size()) + 8);

  CHECK_FALSE(hutchinson_trace(h, {.max_samples = 5, .tolerance = 0}).converged);
}

TEST_CASE("hutch++ reports its sketch, then its residual probes") {
  auto op = trace_test_decaying_operator();
  std::vector<std::string> stages;
  const auto e = hutch_plus_plus_trace(
      op, {.max_samples = 9,
           .tolerance = 0,
           .progress = [&](const EstimatorProgress& p) { stages.push_back(p.stage); },
           .batch = 2});
  // Sketch of 3: products in batches 2 + 1, basis products 2 + 1, then 3 residual probes.
  CHECK(stages == std::vector<std::string>{"trace sketch", "trace sketch", "trace sketch",
                                           "trace sketch", "trace", "trace", "trace"});
  CHECK(e.hvp_count == 9);
  CHECK(op.products() == 9);
}

TEST_CASE("bad trace options are refused with a message saying what to change") {
  auto op = trace_test_decaying_operator();
  CHECK_THROWS_WITH_AS(hutchinson_trace(op, {.max_samples = 0}),
                       "hutchinson_trace: max_samples must be at least 1 (got 0)",
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(hutchinson_trace(op, {.batch = 0}),
                       "hutchinson_trace: batch must be at least 1 (got 0)", soda::ValueError);
  CHECK_THROWS_WITH_AS(hutchinson_trace(op, {.tolerance = -0.5}),
                       "hutchinson_trace: tolerance must be finite and >= 0 (got -0.5; 0 runs all "
                       "max_samples)",
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(hutch_plus_plus_trace(op, {.max_samples = 20, .sketch_size = 10}),
                       "hutch_plus_plus_trace: sketch_size 10 is too large for max_samples 20 (the "
                       "sketch takes 2 * 10 products and at least one residual probe must remain; "
                       "use sketch_size <= 9)",
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(hutch_plus_plus_trace(op, {.max_samples = 2}),
                       "hutch_plus_plus_trace: max_samples 2 leaves no room for a sketch (needs at "
                       "least 3: a sketch vector, its product with H and one residual probe)",
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(hutch_plus_plus_trace(op, {.sketch_size = -1}),
                       "hutch_plus_plus_trace: sketch_size must be >= 0 (got -1; 0 picks "
                       "max_samples / 3)",
                       soda::ValueError);
  CHECK_THROWS_AS(estimate_trace(op, {.max_samples = 0, .method = TraceMethod::hutch_plus_plus}),
                  soda::ValueError);
  CHECK(op.products() == 0);
}

TEST_CASE("a trace estimate writes itself as JSON; one sample has no standard error") {
  auto op = trace_test_decaying_operator();
  const auto e = estimate_trace(op, {.max_samples = 1});
  CHECK(std::isnan(e.standard_error));
  const auto json = e.to_json();
  CHECK(json["method"] == "hutchinson");
  CHECK(json["trace"].get<double>() == e.trace);
  CHECK(json["samples_used"] == 1);
  CHECK(json["hvp_count"] == 1);
  CHECK(json["converged"] == false);
  CHECK(json["samples"].size() == 1);
  // Keys in a fixed order; NaN (unknown) is written as null.
  const auto text = json.dump();
  CHECK(text.find("{\"method\":\"hutchinson\",\"trace\":") == 0);
  CHECK(text.find("\"standard_error\":null") != std::string::npos);
}
