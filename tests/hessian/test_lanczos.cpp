#include <soda/hessian/lanczos.hpp>

#include <cmath>
#include <limits>

#include "checks.hpp"

using namespace soda::hessian;

namespace {

// The basis as the columns of a matrix, for checks against the dense operator.
Eigen::MatrixXd lanczos_basis_matrix(const std::vector<ParameterVector<double>>& basis) {
  Eigen::MatrixXd q(soda_test::flatten(basis.front()).size(),
                    static_cast<Eigen::Index>(basis.size()));
  for (std::size_t j = 0; j < basis.size(); ++j) {
    q.col(static_cast<Eigen::Index>(j)) = soda_test::flatten(basis[j]);
  }
  return q;
}

Eigen::MatrixXd lanczos_tridiagonal(const LanczosResult<double>& r) {
  const auto m = static_cast<Eigen::Index>(r.alphas.size());
  Eigen::MatrixXd t = Eigen::MatrixXd::Zero(m, m);
  for (Eigen::Index i = 0; i < m; ++i) t(i, i) = r.alphas[static_cast<std::size_t>(i)];
  for (Eigen::Index i = 0; i + 1 < m; ++i) {
    t(i, i + 1) = t(i + 1, i) = r.betas[static_cast<std::size_t>(i)];
  }
  return t;
}

const std::vector<soda::Shape> lanczos_shapes{{5, 4}, {10}};  // 30 entries in two tensors

std::vector<double> lanczos_spectrum() {
  std::vector<double> values{10, 7, 5, 3, 2};
  for (int i = 0; i < 25; ++i) values.push_back(1.5 - 0.1 * i);  // down to −0.9
  return values;
}

}  // namespace

TEST_CASE("lanczos: orthonormal basis with QᵀHQ = T_m, one product per step") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(lanczos_spectrum(), 11),
                                      lanczos_shapes);
  soda::Generator gen(5);
  const auto start = gaussian_vector<double>(lanczos_shapes, gen);
  const auto r = lanczos(op, start, 12);
  REQUIRE(r.alphas.size() == 12);
  CHECK(r.betas.size() == 11);
  CHECK(r.hvp_count == 12);
  CHECK(op.products() == 12);
  CHECK_FALSE(r.breakdown);
  const auto q = lanczos_basis_matrix(r.basis);
  CHECK((q.transpose() * q - Eigen::MatrixXd::Identity(12, 12)).norm() < 1e-13);
  CHECK((q.transpose() * op.matrix() * q - lanczos_tridiagonal(r)).norm() < 1e-12);
  CHECK((q.col(0) - soda_test::flatten(start).normalized()).norm() < 1e-14);
  // The Lanczos relation's remainder: H Q − Q T = β_m q_m e_mᵀ, of norm β_m.
  const Eigen::MatrixXd remainder = op.matrix() * q - q * lanczos_tridiagonal(r);
  CHECK(remainder.norm() == doctest::Approx(r.residual_norm).epsilon(1e-10));
  CHECK(lanczos(op, start, 12, {.keep_basis = false}).basis.empty());
}

TEST_CASE("lanczos: Ritz pairs match the dense solver; residual bounds are the true residuals") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(lanczos_spectrum(), 12),
                                      lanczos_shapes);
  soda::Generator gen(6);
  const auto r = lanczos(op, gaussian_vector<double>(lanczos_shapes, gen), 15);
  const auto ritz = ritz_decomposition(r.alphas, r.betas);
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> reference(lanczos_tridiagonal(r));
  double weight_sum = 0;
  for (std::size_t i = 0; i < ritz.values.size(); ++i) {
    CHECK(ritz.values[i] ==
          doctest::Approx(reference.eigenvalues()[static_cast<Eigen::Index>(i)]).epsilon(1e-12));
    weight_sum += ritz.weights[i];
    const auto y =
        ritz_vector(r.basis, Eigen::VectorXd(ritz.vectors.col(static_cast<Eigen::Index>(i))));
    const auto fy = soda_test::flatten(y);
    CHECK(fy.norm() == doctest::Approx(1.0).epsilon(1e-12));
    const double residual = (op.matrix() * fy - ritz.values[i] * fy).norm();
    CHECK(std::abs(ritz.residual_bound(i, r.residual_norm) - residual) <= 1e-6 * residual + 1e-12);
  }
  CHECK(weight_sum == doctest::Approx(1.0).epsilon(1e-13));
  // After 15 of 30 steps the well-separated top of the spectrum has converged.
  CHECK(ritz.values.back() == doctest::Approx(10.0).epsilon(1e-10));
  CHECK(ritz.values[ritz.values.size() - 2] == doctest::Approx(7.0).epsilon(1e-8));
}

TEST_CASE("lanczos: n steps give the whole spectrum; more steps are clamped to n") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(lanczos_spectrum(), 13),
                                      lanczos_shapes);
  soda::Generator gen(7);
  const auto r = lanczos(op, gaussian_vector<double>(lanczos_shapes, gen), 100);
  CHECK(r.alphas.size() == 30);
  CHECK(r.hvp_count == 30);
  const auto ritz = ritz_decomposition(r.alphas, r.betas);
  const auto exact = soda_test::descending_eigenvalues(op.matrix()).reverse().eval();
  for (std::size_t i = 0; i < 30; ++i) {
    CHECK(ritz.values[i] ==
          doctest::Approx(exact[static_cast<Eigen::Index>(i)]).scale(1).epsilon(1e-10));
  }
}

TEST_CASE("lanczos: breakdown on an operator with two distinct eigenvalues stops after two steps") {
  std::vector<double> values(15, 4.0);
  values.resize(30, -2.0);
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum(values, 14), lanczos_shapes);
  soda::Generator gen(8);
  const auto r = lanczos(op, gaussian_vector<double>(lanczos_shapes, gen), 20);
  CHECK(r.breakdown);
  REQUIRE(r.alphas.size() == 2);
  CHECK(r.hvp_count == 2);
  CHECK(std::isfinite(r.residual_norm));
  const auto ritz = ritz_decomposition(r.alphas, r.betas);
  CHECK(ritz.values[0] == doctest::Approx(-2.0).epsilon(1e-12));
  CHECK(ritz.values[1] == doctest::Approx(4.0).epsilon(1e-12));
  for (const double w : ritz.weights) CHECK(std::isfinite(w));

  SUBCASE("a restart goes on in the orthogonal complement, T_m block diagonal") {
    LanczosProcess process(op, gaussian_vector<double>(lanczos_shapes, gen));
    while (process.can_step()) process.step();
    CHECK(process.steps() == 2);
    CHECK_THROWS_AS(process.step(), soda::ValueError);
    REQUIRE(process.restart(gaussian_vector<double>(lanczos_shapes, gen)));
    while (process.can_step()) process.step();
    CHECK(process.steps() == 4);
    CHECK(process.betas()[1] == 0);
    const auto q = lanczos_basis_matrix(process.basis());
    CHECK((q.transpose() * q - Eigen::MatrixXd::Identity(4, 4)).norm() < 1e-12);
  }
}

TEST_CASE("lanczos: breakdown on a multiple of the identity and on zero, without dividing by 0") {
  soda::Generator gen(9);
  const auto start = gaussian_vector<double>(lanczos_shapes, gen);
  soda_test::DenseOperator<double> identity(3 * Eigen::MatrixXd::Identity(30, 30), lanczos_shapes);
  const auto r = lanczos(identity, start, 10);
  CHECK(r.breakdown);
  REQUIRE(r.alphas.size() == 1);
  CHECK(r.alphas[0] == doctest::Approx(3.0));
  CHECK(r.betas.empty());
  const auto ritz = ritz_decomposition(r.alphas, r.betas);
  CHECK(ritz.weights[0] == doctest::Approx(1.0));

  soda_test::DenseOperator<double> zero(Eigen::MatrixXd::Zero(30, 30), lanczos_shapes);
  const auto z = lanczos(zero, start, 10);
  CHECK(z.breakdown);
  CHECK(z.alphas == std::vector<double>{0.0});
  CHECK(z.residual_norm == 0);
}

TEST_CASE("lanczos in float: breakdown judged at float precision") {
  std::vector<double> values(15, 4.0);
  values.resize(30, -2.0);
  soda_test::DenseOperator<float> op(soda_test::matrix_with_spectrum(values, 15), lanczos_shapes);
  soda::Generator gen(10);
  const auto r = lanczos(op, gaussian_vector<float>(lanczos_shapes, gen), 20);
  CHECK(r.breakdown);
  REQUIRE(r.alphas.size() == 2);
  const auto ritz = ritz_decomposition(r.alphas, r.betas);
  CHECK(ritz.values[0] == doctest::Approx(-2.0).epsilon(1e-5));
  CHECK(ritz.values[1] == doctest::Approx(4.0).epsilon(1e-5));
}

TEST_CASE("lanczos: bad arguments are rejected with a clear error") {
  soda_test::DenseOperator<double> op(Eigen::MatrixXd::Identity(30, 30), lanczos_shapes);
  soda::Generator gen(11);
  const auto start = gaussian_vector<double>(lanczos_shapes, gen);
  CHECK_THROWS_WITH_AS(lanczos(op, start, 0), doctest::Contains("steps = 0"), soda::ValueError);
  CHECK_THROWS_WITH_AS(lanczos(op, zeros_like<double>(lanczos_shapes), 5),
                       doctest::Contains("start vector is zero"), soda::ValueError);
  CHECK_THROWS_AS(lanczos(op, gaussian_vector<double>({{30}}, gen), 5), soda::ShapeError);
  CHECK_THROWS_AS(ritz_decomposition({1.0, 2.0}, {}), soda::ShapeError);
  CHECK_THROWS_AS(ritz_decomposition({}, {}), soda::ValueError);
  LanczosProcess process(op, start);
  CHECK_THROWS_WITH_AS(process.restart(start), doctest::Contains("after a breakdown"),
                       soda::ValueError);
}
