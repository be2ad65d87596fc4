#include <soda/hessian/eigenvalues.hpp>

#include <algorithm>
#include <cmath>

#include "checks.hpp"

using namespace soda::hessian;

namespace {

const std::vector<soda::Shape> eigen_test_shapes{{5, 4}, {4, 5}};  // 40 entries in two tensors

// Well separated at the top (ratios 0.7, 0.71, 0.6), then a bulk down to −0.5.
std::vector<double> eigen_test_spectrum() {
  std::vector<double> values{10, 7, 5, 3};
  for (int i = 0; i < 36; ++i) values.push_back(2.0 - 2.5 * i / 35.0);
  return values;
}

// ‖H u − λ u‖ from the dense matrix: the independent oracle for the reported residuals.
double eigen_test_residual(const Eigen::MatrixXd& h, const ParameterVector<double>& u,
                           double value) {
  const auto x = soda_test::flatten(u);
  return (h * x - value * x).norm();
}

// Checks values against the oracle (relative), residuals against the dense ones, and that the
// vectors are orthonormal.
void check_eigen_result(const EigenResult<double>& result, const Eigen::MatrixXd& h,
                        const std::vector<double>& expected, double relative) {
  REQUIRE(result.eigenvalues.size() == expected.size());
  REQUIRE(result.eigenvectors.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CHECK(std::abs(result.eigenvalues[i] - expected[i]) <= relative * std::abs(expected[i]));
    const double residual = eigen_test_residual(h, result.eigenvectors[i], result.eigenvalues[i]);
    CHECK(std::abs(result.residual_norms[i] - residual) <=
          1e-6 * residual + 1e-12 * std::max(1.0, std::abs(expected[i])));
    CHECK(residual <= 3e-3 * std::abs(expected[i]));
    for (std::size_t j = 0; j <= i; ++j) {
      const double product = dot(result.eigenvectors[i], result.eigenvectors[j]);
      CHECK(product == doctest::Approx(i == j ? 1.0 : 0.0).scale(1).epsilon(1e-10));
    }
  }
}

bool eigen_results_identical(const EigenResult<double>& a, const EigenResult<double>& b) {
  if (a.eigenvalues != b.eigenvalues || a.residual_norms != b.residual_norms ||
      a.iterations != b.iterations || a.hvp_count != b.hvp_count) {
    return false;
  }
  for (std::size_t i = 0; i < a.eigenvectors.size(); ++i) {
    const auto x = soda_test::flatten(a.eigenvectors[i]), y = soda_test::flatten(b.eigenvectors[i]);
    if (!(x.array() == y.array()).all()) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("top_eigenvalues: power iteration with deflation finds the top 3 of a known spectrum") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(eigen_test_spectrum(), 21),
                                      eigen_test_shapes);
  const auto result = top_eigenvalues(op, 3, {.max_iterations = 1000, .tolerance = 1e-7});
  CHECK(result.converged);
  check_eigen_result(result, op.matrix(), {10, 7, 5}, 1e-4);
  CHECK(result.hvp_count == op.products());
  CHECK(result.hvp_count == result.iterations[0] + result.iterations[1] + result.iterations[2]);
  MESSAGE("power, tolerance 1e-7: " << result.hvp_count << " products for the top 3");
}

TEST_CASE("top_eigenvalues_lanczos: the same top 3 in fewer products than power iteration") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(eigen_test_spectrum(), 21),
                                      eigen_test_shapes);
  const auto lanczos_result = top_eigenvalues_lanczos(op, 3);  // tolerance 1e-3
  CHECK(lanczos_result.converged);
  check_eigen_result(lanczos_result, op.matrix(), {10, 7, 5}, 1e-5);
  CHECK(lanczos_result.hvp_count == op.products());
  CHECK(lanczos_result.iterations == std::vector<std::int64_t>(3, lanczos_result.hvp_count));

  soda_test::DenseOperator<double> power_op(op.matrix(), eigen_test_shapes);
  const auto power_default = top_eigenvalues(power_op, 3);  // PyHessian's defaults
  const auto power_tight =
      top_eigenvalues(power_op, 3, {.max_iterations = 1000, .tolerance = 1e-7});
  CHECK(lanczos_result.hvp_count < power_default.hvp_count);
  CHECK(lanczos_result.hvp_count < power_tight.hvp_count);
  MESSAGE("top 3 of {10, 7, 5, 3, bulk}: Lanczos "
          << lanczos_result.hvp_count << " products, power (tol 1e-3) " << power_default.hvp_count
          << ", power (tol 1e-7) " << power_tight.hvp_count);
  // PyHessian's stopping test is loose: at tolerance 1e-3 power iteration is off by up to ~1%.
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(power_default.eigenvalues[i] ==
          doctest::Approx(lanczos_result.eigenvalues[i]).epsilon(1e-2));
  }
}

TEST_CASE("top eigenvalues of a small MLP's Hessian match its dense eigen-decomposition") {
  const soda_test::SmallMlp mlp;
  auto hessian = mlp.hessian();
  const auto dense = soda_test::dense_matrix(hessian);
  const Eigen::VectorXd exact = soda_test::descending_eigenvalues(dense);
  std::vector<double> by_magnitude(exact.data(), exact.data() + exact.size());
  std::sort(by_magnitude.begin(), by_magnitude.end(),
            [](double a, double b) { return std::abs(a) > std::abs(b); });
  // Power iteration meets the largest magnitudes first: 1.07, 0.997, −0.918 (ratios near 0.93,
  // so it needs a tight tolerance and many iterations).
  const auto power =
      top_eigenvalues(hessian, 3, {.max_iterations = 3000, .tolerance = 1e-9, .seed = 1});
  CHECK(power.converged);
  check_eigen_result(power, dense, {by_magnitude.begin(), by_magnitude.begin() + 3}, 1e-4);
  // Lanczos ranks algebraically: 1.07, 0.997, 0.730.
  const auto lanczos_result = top_eigenvalues_lanczos(hessian, 3, {.seed = 1});
  CHECK(lanczos_result.converged);
  check_eigen_result(lanczos_result, dense, {exact[0], exact[1], exact[2]}, 1e-4);
  MESSAGE("small MLP top 3: Lanczos " << lanczos_result.hvp_count << " products, power (tol 1e-9) "
                                      << power.hvp_count);
}

TEST_CASE("top_eigenvalues: a warm start from the previous eigenvectors converges at once") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(eigen_test_spectrum(), 22),
                                      eigen_test_shapes);
  const EigenOptions options{.max_iterations = 1000, .tolerance = 1e-6};
  const auto cold = top_eigenvalues(op, 3, options);
  const auto warm = top_eigenvalues(op, 3, options, cold.eigenvectors);
  CHECK(warm.converged);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(cold.iterations[i] > 10);
    CHECK(warm.iterations[i] <= 3);
    CHECK(warm.eigenvalues[i] == doctest::Approx(cold.eigenvalues[i]).epsilon(1e-6));
  }
  // A partial warm start: the rest start from random vectors.
  const auto partial = top_eigenvalues(op, 3, options, {cold.eigenvectors[0]});
  CHECK(partial.iterations[0] <= 3);
  CHECK(partial.eigenvalues[2] == doctest::Approx(5.0).epsilon(1e-4));
}

TEST_CASE("top eigenvalues: the same seed gives bit-identical results") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(eigen_test_spectrum(), 23),
                                      eigen_test_shapes);
  const EigenOptions options{.seed = 42};
  CHECK(eigen_results_identical(top_eigenvalues(op, 2, options), top_eigenvalues(op, 2, options)));
  CHECK(eigen_results_identical(top_eigenvalues_lanczos(op, 2, options),
                                top_eigenvalues_lanczos(op, 2, options)));
  CHECK_FALSE(eigen_results_identical(top_eigenvalues(op, 2, options),
                                      top_eigenvalues(op, 2, {.seed = 43})));
}

TEST_CASE("top eigenvalues: power ranks by magnitude, Lanczos algebraically") {
  std::vector<double> values{-8, 5, 3};
  for (int i = 0; i < 37; ++i) values.push_back(1.0 - 0.05 * i);
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(values, 24),
                                      eigen_test_shapes);
  const auto power = top_eigenvalues(op, 2, {.max_iterations = 1000, .tolerance = 1e-8});
  CHECK(power.eigenvalues[0] == doctest::Approx(-8.0).epsilon(1e-6));
  CHECK(power.eigenvalues[1] == doctest::Approx(5.0).epsilon(1e-6));
  const auto lanczos_result = top_eigenvalues_lanczos(op, 2);
  CHECK(lanczos_result.eigenvalues[0] == doctest::Approx(5.0).epsilon(1e-6));
  CHECK(lanczos_result.eigenvalues[1] == doctest::Approx(3.0).epsilon(1e-6));
}

TEST_CASE("top_eigenvalues_lanczos: breakdowns restart, so repeated eigenvalues are all found") {
  SUBCASE("a multiple of the identity") {
    soda_test::DenseOperator<double> op(2 * Eigen::MatrixXd::Identity(40, 40), eigen_test_shapes);
    const auto result = top_eigenvalues_lanczos(op, 3);
    CHECK(result.converged);
    CHECK(result.hvp_count == 3);
    check_eigen_result(result, op.matrix(), {2, 2, 2}, 1e-12);
    const auto power = top_eigenvalues(op, 3);
    check_eigen_result(power, op.matrix(), {2, 2, 2}, 1e-12);
  }
  SUBCASE("two distinct eigenvalues, the top one three times") {
    std::vector<double> values{5, 5, 5};
    values.resize(40, 1.0);
    soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(values, 25),
                                        eigen_test_shapes);
    const auto result = top_eigenvalues_lanczos(op, 3);
    CHECK(result.converged);
    check_eigen_result(result, op.matrix(), {5, 5, 5}, 1e-10);
    const auto two = top_eigenvalues_lanczos(op, 2);
    check_eigen_result(two, op.matrix(), {5, 5}, 1e-10);
  }
  SUBCASE("the zero operator") {
    soda_test::DenseOperator<double> op(Eigen::MatrixXd::Zero(40, 40), eigen_test_shapes);
    const auto result = top_eigenvalues_lanczos(op, 2);
    CHECK(result.converged);
    CHECK(result.eigenvalues == std::vector<double>{0, 0});
    const auto power = top_eigenvalues(op, 2);
    CHECK(power.converged);
    CHECK(power.eigenvalues == std::vector<double>{0, 0});
    CHECK(power.residual_norms == std::vector<double>{0, 0});
  }
}

TEST_CASE("top eigenvalues in float") {
  soda_test::DenseOperator<float> op(soda_test::matrix_with_spectrum(eigen_test_spectrum(), 26),
                                     eigen_test_shapes);
  const auto lanczos_result = top_eigenvalues_lanczos(op, 3);
  const auto power = top_eigenvalues(op, 3, {.max_iterations = 1000, .tolerance = 1e-6});
  const std::vector<double> expected{10, 7, 5};
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(lanczos_result.eigenvalues[i] == doctest::Approx(expected[i]).epsilon(1e-5));
    CHECK(power.eigenvalues[i] == doctest::Approx(expected[i]).epsilon(1e-4));
  }
}

TEST_CASE("top eigenvalues: progress reports and JSON") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(eigen_test_spectrum(), 27),
                                      eigen_test_shapes);
  std::vector<EstimatorProgress> seen;
  EigenOptions options;
  options.progress = [&](const EstimatorProgress& p) { seen.push_back(p); };
  const auto result = top_eigenvalues(op, 2, options);
  REQUIRE(static_cast<std::int64_t>(seen.size()) == result.hvp_count);
  CHECK(seen.back().stage == "top eigenvalues");
  CHECK(seen.back().step == result.hvp_count);
  CHECK(seen.back().max_steps == 200);
  CHECK(seen.back().estimate == result.eigenvalues[1]);
  seen.clear();
  const auto lanczos_result = top_eigenvalues_lanczos(op, 2, options);
  REQUIRE(static_cast<std::int64_t>(seen.size()) == lanczos_result.hvp_count);
  CHECK(seen.back().hvp_count == lanczos_result.hvp_count);
  CHECK(seen.back().estimate == lanczos_result.eigenvalues[0]);
  const auto json = lanczos_result.to_json();
  CHECK(json["eigenvalues"].size() == 2);
  CHECK(json["residual_norms"].size() == 2);
  CHECK(json["hvp_count"] == lanczos_result.hvp_count);
  CHECK(json["converged"] == true);
  CHECK(json.begin().key() == "eigenvalues");
}

TEST_CASE("top eigenvalues: bad k and options are rejected with a clear error") {
  soda_test::DenseOperator<double> op(Eigen::MatrixXd::Identity(40, 40), eigen_test_shapes);
  CHECK_THROWS_WITH_AS(top_eigenvalues(op, 0), doctest::Contains("k = 0"), soda::ValueError);
  CHECK_THROWS_WITH_AS(top_eigenvalues(op, 41), doctest::Contains("[1, 40]"), soda::ValueError);
  CHECK_THROWS_WITH_AS(top_eigenvalues_lanczos(op, -1), doctest::Contains("k = -1"),
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(top_eigenvalues_lanczos(op, 41), doctest::Contains("[1, 40]"),
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(top_eigenvalues_lanczos(op, 5, {.max_iterations = 4}),
                       doctest::Contains("max_iterations = 4"), soda::ValueError);
  CHECK_THROWS_AS(top_eigenvalues(op, 1, {.max_iterations = 0}), soda::ValueError);
  CHECK_THROWS_AS(top_eigenvalues(op, 1, {.tolerance = -1}), soda::ValueError);
  soda::Generator gen(1);
  const std::vector<ParameterVector<double>> two_starts{
      gaussian_vector<double>(eigen_test_shapes, gen),
      gaussian_vector<double>(eigen_test_shapes, gen)};
  CHECK_THROWS_WITH_AS(top_eigenvalues(op, 1, {}, two_starts), doctest::Contains("2 start vectors"),
                       soda::ValueError);
  CHECK_THROWS_AS(top_eigenvalues(op, 1, {}, {gaussian_vector<double>({{40}}, gen)}),
                  soda::ShapeError);
}
