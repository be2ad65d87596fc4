#include <soda/hessian/diagonal.hpp>

#include <cmath>
#include <vector>

#include "checks.hpp"

using namespace soda::hessian;

namespace {

constexpr int diagonal_test_seeds = 200;

// Per element over seeds 0..199: the mean of the estimates, their sample standard deviation and
// the root mean square of the standard errors the estimates reported (zero when samples < 2).
struct DiagonalTestSpread {
  Eigen::VectorXd mean, deviation, reported_error;
};

template <class Op>
DiagonalTestSpread diagonal_test_over_seeds(Op& op, DiagonalOptions options) {
  std::vector<Eigen::VectorXd> estimates;
  DiagonalTestSpread out;
  const auto n = soda::hessian::total_size(op.shapes());
  out.reported_error = Eigen::VectorXd::Zero(n);
  for (int seed = 0; seed < diagonal_test_seeds; ++seed) {
    options.seed = static_cast<std::uint64_t>(seed);
    const auto e = hutchinson_diagonal(op, options);
    estimates.push_back(soda_test::flatten(e.diagonal));
    if (!e.standard_error.empty()) {
      out.reported_error += soda_test::flatten(e.standard_error).cwiseAbs2();
    }
  }
  out.reported_error = (out.reported_error / diagonal_test_seeds).cwiseSqrt();
  out.mean = Eigen::VectorXd::Zero(n);
  for (const auto& x : estimates) out.mean += x;
  out.mean /= diagonal_test_seeds;
  out.deviation = Eigen::VectorXd::Zero(n);
  for (const auto& x : estimates) out.deviation += (x - out.mean).cwiseAbs2();
  out.deviation = (out.deviation / (diagonal_test_seeds - 1)).cwiseSqrt();
  return out;
}

// Var(z_i (Hz)_i) = Σ_{j≠i} H_ij² for Rademacher z: the oracle for one probe's spread.
Eigen::VectorXd diagonal_test_probe_variance(const Eigen::MatrixXd& h) {
  return h.cwiseAbs2().rowwise().sum() - h.diagonal().cwiseAbs2();
}

// Every element's mean within 4 standard errors of the exact diagonal, and no more than 2 beyond
// 3 (with 51 elements, about 0.14 are expected beyond 3 by chance).
void diagonal_test_check_unbiased(const DiagonalTestSpread& spread, const Eigen::VectorXd& exact) {
  int beyond_three = 0;
  for (Eigen::Index i = 0; i < exact.size(); ++i) {
    CAPTURE(i);
    const double error = std::abs(spread.mean[i] - exact[i]);
    const double standard_error = spread.deviation[i] / std::sqrt(diagonal_test_seeds);
    CHECK(error <= 4 * standard_error + 1e-12);
    if (error > 3 * standard_error + 1e-12) ++beyond_three;
  }
  CHECK(beyond_three <= 2);
}

}  // namespace

TEST_CASE("the hutchinson diagonal of a diagonal matrix is exact with one sample") {
  const Eigen::VectorXd d = Eigen::VectorXd::LinSpaced(12, -2.5, 3);
  soda_test::DenseOperator<double> op(d.asDiagonal().toDenseMatrix(), {{3, 2}, {6}});
  const auto e = hutchinson_diagonal(op);
  CHECK(soda_test::flatten(e.diagonal) == d);  // z_i² = 1 exactly
  CHECK(e.standard_error.empty());
  CHECK(e.samples == 1);
  CHECK(e.hvp_count == 1);
  CHECK(shapes_of(e.diagonal) == op.shapes());

  soda_test::DenseOperator<float> single(d.asDiagonal().toDenseMatrix(), {{12}});
  const auto f = hutchinson_diagonal(single, {.samples = 3});
  CHECK(soda_test::flatten(f.diagonal) == d.cast<float>().cast<double>());
  CHECK(soda_test::flatten(f.standard_error) == Eigen::VectorXd::Zero(12));
}

TEST_CASE(
    "the hutchinson diagonal is unbiased on the small MLP Hessian, with the spread theory gives") {
  const soda_test::SmallMlp mlp;
  auto h = mlp.hessian();
  const auto dense = soda_test::dense_matrix(h);
  const Eigen::VectorXd variance = diagonal_test_probe_variance(dense);

  const auto one = diagonal_test_over_seeds(h, {.samples = 1});
  diagonal_test_check_unbiased(one, dense.diagonal());
  CHECK(one.deviation.squaredNorm() / variance.sum() == doctest::Approx(1).epsilon(0.25));

  // With 8 probes the reported standard errors agree with the spread over seeds and with theory.
  const auto eight = diagonal_test_over_seeds(h, {.samples = 8});
  diagonal_test_check_unbiased(eight, dense.diagonal());
  CHECK(eight.deviation.norm() / std::sqrt(variance.sum() / 8) == doctest::Approx(1).epsilon(0.25));
  CHECK(eight.reported_error.norm() / eight.deviation.norm() == doctest::Approx(1).epsilon(0.5));
  for (Eigen::Index i = 0; i < dense.rows(); ++i) {
    CAPTURE(i);
    CHECK(eight.reported_error[i] / std::sqrt(variance[i] / 8) == doctest::Approx(1).epsilon(0.5));
  }
}

TEST_CASE("the hutchinson diagonal is unbiased on a dense matrix with a chosen spectrum") {
  soda_test::DenseOperator<double> op(
      soda_test::matrix_with_spectrum({9, 4, 2, 1, 0.5, -0.5, -1, -3, 0, 0, 0, 0}, 21), {{2, 6}});
  const auto spread = diagonal_test_over_seeds(op, {.samples = 2});
  diagonal_test_check_unbiased(spread, op.matrix().diagonal());
  CHECK(op.products() == 2 * diagonal_test_seeds);
}

TEST_CASE("the same seed gives the same diagonal, another seed another, whatever the batch") {
  const soda_test::SmallMlp mlp;
  auto h = mlp.hessian();
  const DiagonalOptions options{.samples = 5, .seed = 9};
  const auto first = hutchinson_diagonal(h, options);
  const auto again = hutchinson_diagonal(h, options);
  CHECK(soda_test::flatten(first.diagonal) == soda_test::flatten(again.diagonal));
  CHECK(soda_test::flatten(first.standard_error) == soda_test::flatten(again.standard_error));
  auto other = options;
  other.seed = 10;
  CHECK(soda_test::flatten(hutchinson_diagonal(h, other).diagonal) !=
        soda_test::flatten(first.diagonal));

  // hessian_at stacks a batch in one replay (rounding may differ); a dense operator does not.
  auto batched = options;
  batched.batch = 2;
  const auto stacked = hutchinson_diagonal(h, batched);
  CHECK(stacked.hvp_count == 5);
  CHECK((soda_test::flatten(stacked.diagonal) - soda_test::flatten(first.diagonal)).norm() <
        1e-12 * soda_test::flatten(first.diagonal).norm());
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum({3, 1, -2, 0.5}, 2), {{4}});
  CHECK(soda_test::flatten(hutchinson_diagonal(op, batched).diagonal) ==
        soda_test::flatten(hutchinson_diagonal(op, options).diagonal));
}

TEST_CASE("diagonal_from_probe is z ⊙ Hz, and one probe of the estimator is exactly that") {
  const std::vector<soda::Tensor<double>> z{soda::Tensor<double>({3}, {1.0, -1.0, 1.0}),
                                            soda::Tensor<double>({1}, {-1.0})};
  const std::vector<soda::Tensor<double>> hz{soda::Tensor<double>({3}, {2.0, 3.0, 4.0}),
                                             soda::Tensor<double>({1}, {5.0})};
  CHECK(soda_test::flatten(diagonal_from_probe(z, hz)) == Eigen::Vector4d(2, -3, 4, -5));
  CHECK_THROWS_AS(diagonal_from_probe(z, std::vector<soda::Tensor<double>>{hz[0]}),
                  soda::ShapeError);

  // AdaHessian draws its own z and gets Hz from its training pass; the estimator's first probe
  // is the generator's first Rademacher draw, so the two agree.
  const soda_test::SmallMlp mlp;
  auto h = mlp.hessian();
  soda::Generator gen(4);
  const auto probe = rademacher_vector<double>(h.shapes(), gen);
  const auto by_hand = diagonal_from_probe(probe, h.apply(probe));
  CHECK(soda_test::flatten(by_hand) ==
        soda_test::flatten(hutchinson_diagonal(h, {.seed = 4}).diagonal));
}

TEST_CASE("the hutchinson diagonal reports progress per probe") {
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum({3, 1, -2, 0.5}, 2), {{4}});
  std::vector<EstimatorProgress> reports;
  const auto e = hutchinson_diagonal(
      op, {.samples = 4,
           .progress = [&](const EstimatorProgress& p) { reports.push_back(p); },
           .batch = 3});
  REQUIRE(reports.size() == 4);
  for (std::size_t i = 0; i < reports.size(); ++i) {
    CHECK(reports[i].stage == "diagonal");
    CHECK(reports[i].step == static_cast<std::int64_t>(i + 1));
    CHECK(reports[i].max_steps == 4);
  }
  CHECK(reports[0].hvp_count == 3);  // a batch of 3 probes went through before the first report
  CHECK(reports[3].hvp_count == 4);
  CHECK(reports.back().estimate == doctest::Approx(soda_test::flatten(e.diagonal).sum()));
}

TEST_CASE("bad diagonal options are refused with a message saying what to change") {
  soda_test::DenseOperator<double> op(Eigen::MatrixXd::Identity(3, 3), {{3}});
  CHECK_THROWS_WITH_AS(hutchinson_diagonal(op, {.samples = 0}),
                       "hutchinson_diagonal: samples must be at least 1 (got 0)", soda::ValueError);
  CHECK_THROWS_WITH_AS(hutchinson_diagonal(op, {.batch = -2}),
                       "hutchinson_diagonal: batch must be at least 1 (got -2)", soda::ValueError);
  CHECK(op.products() == 0);
}
