#include "checks.hpp"
using namespace soda::hessian;
TEST_CASE("parameter vectors: dot, norm, add_scaled, orthogonalize") {
  soda::Generator gen(3);
  const std::vector<soda::Shape> shapes{{3, 2}, {4}};
  auto a = gaussian_vector<double>(shapes, gen);
  auto b = rademacher_vector<double>(shapes, gen);
  const auto fa = soda_test::flatten(a), fb = soda_test::flatten(b);
  CHECK(dot(a, b) == doctest::Approx(fa.dot(fb)).epsilon(1e-14));
  CHECK(norm(b) == doctest::Approx(std::sqrt(10.0)));
  auto c = clone(a);
  add_scaled(c, 2.5, b);
  CHECK((soda_test::flatten(c) - (fa + 2.5 * fb)).norm() < 1e-14);
  CHECK((soda_test::flatten(a) - fa).norm() == 0);  // clone is independent
  auto q = clone(b);
  normalize(q);
  CHECK(norm(q) == doctest::Approx(1.0));
  orthogonalize(c, std::vector<ParameterVector<double>>{q});
  CHECK(std::abs(dot(c, q)) < 1e-13);
  auto z = zeros_like<double>(shapes);
  CHECK(normalize(z) == 0);
  const auto m = linear_combination(2.0, a, -1.0, b);
  CHECK((soda_test::flatten(m) - (2 * fa - fb)).norm() < 1e-14);
  CHECK_THROWS_AS(dot(a, zeros_like<double>({{3, 2}})), soda::ShapeError);
}
TEST_CASE("small MLP Hessian is symmetric and the dense operator matches its matrix") {
  const soda_test::SmallMlp mlp;
  auto h = mlp.hessian();
  static_assert(SymmetricOperator<decltype(h)>);
  const auto dense = soda_test::dense_matrix(h);
  CHECK(dense.rows() == 51);
  const auto eig = soda_test::descending_eigenvalues(dense);
  CHECK(eig[0] > 0);
  CHECK(eig[50] < 0);
  soda_test::DenseOperator<double> op(soda_test::matrix_with_spectrum({3, 2, 1, -1}, 1), {{2, 2}});
  CHECK((soda_test::descending_eigenvalues(op.matrix()) - Eigen::Vector4d(3, 2, 1, -1)).norm() <
        1e-12);
}
