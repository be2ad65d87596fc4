#include <soda/hessian/density.hpp>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "checks.hpp"

using namespace soda::hessian;

namespace {

const std::vector<soda::Shape> density_test_shapes{{8, 4}, {8}};  // 40 entries in two tensors

std::vector<double> density_test_spectrum() {
  std::vector<double> values{10, 7, 5, 3};
  for (int i = 0; i < 36; ++i) values.push_back(2.0 - 2.5 * i / 35.0);
  return values;
}

// Σ density·Δx (PyHessian's normalisation) and the trapezoid rule, and the density's mean.
struct DensityIntegrals {
  double riemann = 0, trapezoid = 0, mean = 0;
};

DensityIntegrals density_test_integrals(const SpectralDensity& d) {
  DensityIntegrals out;
  const double dx = d.grid[1] - d.grid[0];
  for (std::size_t i = 0; i < d.grid.size(); ++i) {
    out.riemann += d.density[i] * dx;
    out.mean += d.grid[i] * d.density[i] * dx;
    const bool end = i == 0 || i + 1 == d.grid.size();
    out.trapezoid += (end ? 0.5 : 1.0) * d.density[i] * dx;
  }
  return out;
}

bool densities_identical(const SpectralDensity& a, const SpectralDensity& b) {
  return a.ritz_values == b.ritz_values && a.weights == b.weights && a.grid == b.grid &&
         a.density == b.density && a.hvp_count == b.hvp_count;
}

}  // namespace

TEST_CASE("spectral_density: integrates to 1; n Lanczos steps give the whole spectrum") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(density_test_spectrum(), 31),
                                      density_test_shapes);
  const auto d = spectral_density(op, {.lanczos_steps = 100, .runs = 2});  // clamped to n = 40
  CHECK(d.lanczos_steps == 40);
  CHECK(d.hvp_count == 80);
  CHECK(op.products() == 80);
  REQUIRE(d.ritz_values.size() == 2);
  const auto exact = soda_test::descending_eigenvalues(op.matrix()).reverse().eval();
  for (const auto& values : d.ritz_values) {
    REQUIRE(values.size() == 40);
    for (std::size_t i = 0; i < 40; ++i) {
      CHECK(values[i] ==
            doctest::Approx(exact[static_cast<Eigen::Index>(i)]).scale(1).epsilon(1e-9));
    }
  }
  REQUIRE(d.grid.size() == 10000);
  REQUIRE(d.density.size() == 10000);
  const auto integrals = density_test_integrals(d);
  CHECK(integrals.riemann == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(integrals.trapezoid == doctest::Approx(1.0).epsilon(1e-3));
  // Narrow Gaussians: the density's mean is the quadrature's first moment, tr(H)/n.
  CHECK(integrals.mean == doctest::Approx(d.moment(1)).epsilon(1e-3));
  CHECK(d.moment(0) == doctest::Approx(1.0).epsilon(1e-13));
  // The grid reaches 1% of the span beyond the extreme Ritz values.
  const double span = 10 - (-0.5);
  CHECK(d.grid.front() == doctest::Approx(-0.5 - 0.01 * span).epsilon(1e-9));
  CHECK(d.grid.back() == doctest::Approx(10 + 0.01 * span).epsilon(1e-9));
  CHECK(std::all_of(d.density.begin(), d.density.end(), [](double x) { return x >= 0; }));
}

TEST_CASE("spectral_density: each run's moments are vᵀHv and vᵀH²v of its Rademacher start") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(density_test_spectrum(), 32),
                                      density_test_shapes);
  const auto d = spectral_density(op, {.lanczos_steps = 5, .runs = 3, .seed = 9});
  CHECK(d.hvp_count == 15);
  // Run r starts from the r-th Rademacher draw of Generator(seed), normalised.
  soda::Generator gen(9);
  double first = 0, second = 0;
  for (std::size_t r = 0; r < 3; ++r) {
    const Eigen::VectorXd v =
        soda_test::flatten(rademacher_vector<double>(density_test_shapes, gen)).normalized();
    const Eigen::VectorXd hv = op.matrix() * v;
    double run_first = 0, run_second = 0, weight_sum = 0;
    for (std::size_t i = 0; i < d.ritz_values[r].size(); ++i) {
      run_first += d.weights[r][i] * d.ritz_values[r][i];
      run_second += d.weights[r][i] * d.ritz_values[r][i] * d.ritz_values[r][i];
      weight_sum += d.weights[r][i];
    }
    CHECK(weight_sum == doctest::Approx(1.0).epsilon(1e-13));
    CHECK(run_first == doctest::Approx(v.dot(hv)).epsilon(1e-12));
    CHECK(run_second == doctest::Approx(hv.squaredNorm()).epsilon(1e-12));
    first += run_first / 3;
    second += run_second / 3;
  }
  CHECK(d.moment(1) == doctest::Approx(first).epsilon(1e-13));
  CHECK(d.moment(2) == doctest::Approx(second).epsilon(1e-13));
}

TEST_CASE("spectral_density of a small MLP: moments estimate tr(H)/n and tr(H²)/n") {
  const soda_test::SmallMlp mlp;
  auto hessian = mlp.hessian();
  const auto dense = soda_test::dense_matrix(hessian);
  const double n = 51;
  const double trace = dense.trace() / n, trace_of_square = (dense * dense).trace() / n;
  const auto d = spectral_density(hessian, {.lanczos_steps = 10, .runs = 40, .seed = 3});
  CHECK(d.hvp_count == 400);
  const double error1 = std::abs(d.moment(1) - trace),
               error2 = std::abs(d.moment(2) - trace_of_square);
  MESSAGE("tr(H)/n " << trace << ": SLQ " << d.moment(1) << " ± " << d.moment_standard_error(1)
                     << "; tr(H²)/n " << trace_of_square << ": SLQ " << d.moment(2) << " ± "
                     << d.moment_standard_error(2));
  CHECK(d.moment_standard_error(1) > 0);
  CHECK(error1 <= 3 * d.moment_standard_error(1));
  CHECK(error2 <= 3 * d.moment_standard_error(2));
  CHECK(density_test_integrals(d).riemann == doctest::Approx(1.0).epsilon(1e-12));
  // Full steps: each run's Ritz values lie within the true spectrum, the extremes converged.
  const auto full = spectral_density(hessian, {.lanczos_steps = 51, .seed = 3});
  const Eigen::VectorXd exact = soda_test::descending_eigenvalues(dense);
  CHECK(full.ritz_values[0].back() == doctest::Approx(exact[0]).epsilon(1e-8));
  CHECK(full.ritz_values[0].front() == doctest::Approx(exact[50]).epsilon(1e-8));
}

TEST_CASE("spectral_density: the same seed gives bit-identical results") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(density_test_spectrum(), 33),
                                      density_test_shapes);
  const DensityOptions options{.lanczos_steps = 8, .runs = 2, .grid_points = 500, .seed = 4};
  CHECK(densities_identical(spectral_density(op, options), spectral_density(op, options)));
  auto other = options;
  other.seed = 5;
  CHECK_FALSE(densities_identical(spectral_density(op, options), spectral_density(op, other)));
}

TEST_CASE("spectral_density: breakdown stops a run at the number of distinct eigenvalues") {
  std::vector<double> values(10, 4.0);
  values.resize(40, -1.0);
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(values, 34),
                                      density_test_shapes);
  const auto d = spectral_density(op, {.lanczos_steps = 20, .runs = 3, .seed = 6});
  CHECK(d.hvp_count == 6);
  soda::Generator gen(6);
  const Eigen::MatrixXd projector = (op.matrix() + Eigen::MatrixXd::Identity(40, 40)) / 5;
  for (std::size_t r = 0; r < 3; ++r) {
    REQUIRE(d.ritz_values[r].size() == 2);
    CHECK(d.ritz_values[r][0] == doctest::Approx(-1.0).epsilon(1e-12));
    CHECK(d.ritz_values[r][1] == doctest::Approx(4.0).epsilon(1e-12));
    // The weight of 4 is the squared length of v's part in its eigenspace.
    const Eigen::VectorXd v =
        soda_test::flatten(rademacher_vector<double>(density_test_shapes, gen)).normalized();
    CHECK(d.weights[r][1] == doctest::Approx((projector * v).squaredNorm()).epsilon(1e-10));
  }
  CHECK(density_test_integrals(d).riemann == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("spectral_density of a multiple of the identity: one Gaussian at its eigenvalue") {
  soda_test::DenseOperator<double> op(3 * Eigen::MatrixXd::Identity(40, 40), density_test_shapes);
  const auto d = spectral_density(op, {.grid_points = 1001});
  CHECK(d.hvp_count == 1);
  // Span zero: the grid is padded by 1% of |λ| = 3 on each side, 9.5 σ with σ² = 1e-5.
  CHECK(d.grid.front() == doctest::Approx(2.97));
  CHECK(d.grid.back() == doctest::Approx(3.03));
  const auto peak = std::max_element(d.density.begin(), d.density.end());
  CHECK(d.grid[static_cast<std::size_t>(peak - d.density.begin())] == doctest::Approx(3.0));
  CHECK(*peak == doctest::Approx(1 / std::sqrt(2 * std::numbers::pi * 1e-5)).epsilon(1e-6));
}

TEST_CASE("spectral_density: progress, JSON, float operators and bad options") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(density_test_spectrum(), 35),
                                      density_test_shapes);
  std::vector<EstimatorProgress> seen;
  DensityOptions options{.lanczos_steps = 6, .runs = 2, .grid_points = 100};
  options.progress = [&](const EstimatorProgress& p) { seen.push_back(p); };
  const auto d = spectral_density(op, options);
  REQUIRE(seen.size() == 12);
  CHECK(seen.back().stage == "density");
  CHECK(seen.back().step == 12);
  CHECK(seen.back().max_steps == 12);
  CHECK(seen.back().hvp_count == 12);
  CHECK(seen.back().estimate == doctest::Approx(d.moment(1)));
  const auto json = d.to_json();
  CHECK(json["runs"] == 2);
  CHECK(json["hvp_count"] == 12);
  CHECK(json["ritz_values"].size() == 2);
  CHECK(json["density"].size() == 100);
  CHECK(json["grid"].size() == 100);

  soda_test::DenseOperator<float> float_op(op.matrix(), density_test_shapes);
  const auto f = spectral_density(float_op, {.lanczos_steps = 6, .runs = 2, .grid_points = 100});
  CHECK(f.moment(1) == doctest::Approx(d.moment(1)).epsilon(1e-5));

  const auto throws_with = [&](const DensityOptions& bad, const char* message) {
    CHECK_THROWS_WITH_AS(spectral_density(op, bad), doctest::Contains(message), soda::ValueError);
  };
  throws_with({.lanczos_steps = 0}, "lanczos_steps");
  throws_with({.runs = 0}, "runs");
  throws_with({.grid_points = 1}, "grid_points");
  throws_with({.sigma_squared = 0}, "sigma_squared");
  throws_with({.padding = -0.1}, "padding");
}
