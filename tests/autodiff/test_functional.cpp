// The functional entry points (autodiff/functional.hpp): value_and_grad, grad, hvp, value_grad_hvp
// and jvp, checked on functions with known Hessians, against central differences, for symmetry,
// in closure form, and in float.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <Eigen/Dense>

#include "checks.hpp"

using namespace soda_test;

namespace {

// f(x) = ½ xᵀ A x for x of shape [n, 1].
Tensor half_quadratic(const Tensor& a, const Tensor& x) {
  return soda::sum(x * soda::matmul(a, x)) * 0.5;
}

// Rosenbrock's chain: Σᵢ 100 (xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)².
Tensor rosenbrock(const Tensor& x) {
  const auto n = x.shape()[0];
  const auto head = soda::slice(x, 0, 0, n - 1);
  const auto tail = soda::slice(x, 0, 1, n);
  return soda::sum(soda::square(tail - soda::square(head)) * 100.0 + soda::square(1.0 - head));
}

// Its Hessian, by hand.
Eigen::MatrixXd rosenbrock_hessian(const std::vector<double>& x) {
  const auto n = static_cast<Eigen::Index>(x.size());
  Eigen::MatrixXd h = Eigen::MatrixXd::Zero(n, n);
  for (Eigen::Index i = 0; i + 1 < n; ++i) {
    const double xi = x[static_cast<std::size_t>(i)], next = x[static_cast<std::size_t>(i + 1)];
    h(i, i) += 1200 * xi * xi - 400 * next + 2;
    h(i + 1, i + 1) += 200;
    h(i, i + 1) += -400 * xi;
    h(i + 1, i) += -400 * xi;
  }
  return h;
}

// The unit vector k of the parameters' concatenated, flattened entries.
Params unit(const Params& like, std::int64_t k) {
  Params e;
  for (const auto& p : like) {
    auto z = soda::zeros<double>(p.shape());
    if (k >= 0 && k < p.numel()) z.data()[k] = 1;
    k -= p.numel();
    e.push_back(z);
  }
  return e;
}

Eigen::VectorXd flat(const Params& ps) {
  std::vector<double> values;
  for (const auto& p : ps) {
    const auto c = copy_of(p);
    values.insert(values.end(), c.data(), c.data() + c.numel());
  }
  return Eigen::Map<Eigen::VectorXd>(values.data(), static_cast<Eigen::Index>(values.size()));
}

std::int64_t count(const Params& ps) {
  std::int64_t n = 0;
  for (const auto& p : ps) n += p.numel();
  return n;
}

double dot(const Params& a, const Params& b) {
  return flat(a).dot(flat(b));
}

}  // namespace

TEST_CASE("hvp of a quadratic ½xᵀAx is ½(A+Aᵀ) times v, exactly") {
  soda::Generator gen(1);
  const auto a = soda::randn<double>({6, 6}, gen);  // not symmetric
  const Params x{soda::randn<double>({6, 1}, gen)};
  const Params v{soda::randn<double>({6, 1}, gen)};
  auto f = [&a](const Params& q) { return half_quadratic(a, q[0]); };
  const auto symmetric = (a + soda::transpose(a, 0, 1)) * 0.5;
  const auto hv = soda::hvp(f, x, v);
  CHECK(relative_error(soda::matmul(symmetric, v[0]), hv[0]) < 1e-14);
  const auto [value, grads] = soda::value_and_grad(f, x);
  CHECK(relative_error(soda::matmul(symmetric, x[0]), grads[0]) < 1e-14);
  CHECK(value.item() ==
        doctest::Approx(soda::sum(x[0] * soda::matmul(a, x[0])).item() / 2).epsilon(1e-14));
}

TEST_CASE("hvp of Rosenbrock's function (n = 2) gives the known Hessian's columns") {
  const std::vector<double> point{-1.2, 1.0};
  const Params x{Tensor({2}, point)};
  auto f = [](const Params& q) { return rosenbrock(q[0]); };
  const auto h = rosenbrock_hessian(point);
  CHECK(h(0, 0) == doctest::Approx(1200 * 1.44 - 400 + 2));
  CHECK(h(0, 1) == doctest::Approx(480));
  for (std::int64_t i = 0; i < 2; ++i) {
    const auto column = flat(soda::hvp(f, x, unit(x, i)));
    CHECK((column - h.col(i)).cwiseAbs().maxCoeff() < 1e-12 * h.cwiseAbs().maxCoeff());
  }
  const auto g = soda::grad(f, x)[0];
  CHECK(g.data()[0] == doctest::Approx(-400 * -1.2 * (1.0 - 1.44) - 2 * (1 + 1.2)).epsilon(1e-14));
  CHECK(g.data()[1] == doctest::Approx(200 * (1.0 - 1.44)).epsilon(1e-14));
}

TEST_CASE("hvp of Rosenbrock's chain (n = 5) gives the known tridiagonal Hessian") {
  const std::vector<double> point{0.3, -0.8, 1.1, 0.5, -1.4};
  const Params x{Tensor({5}, point)};
  auto f = [](const Params& q) { return rosenbrock(q[0]); };
  const auto h = rosenbrock_hessian(point);
  for (std::int64_t i = 0; i < 5; ++i) {
    INFO("column " << i);
    const auto column = flat(soda::hvp(f, x, unit(x, i)));
    CHECK((column - h.col(i)).cwiseAbs().maxCoeff() < 1e-12 * h.cwiseAbs().maxCoeff());
  }
}

TEST_CASE("the Hessian of a tanh MLP is symmetric: uᵀ(Hv) = vᵀ(Hu)") {
  const Mlp<> mlp(6, 4, 5, 3);
  auto f = mlp.loss_fn();
  soda::Generator gen(2);
  for (int trial = 0; trial < 3; ++trial) {
    const auto u = random_like(mlp.params, gen);
    const auto v = random_like(mlp.params, gen);
    const double uhv = dot(u, soda::hvp(f, mlp.params, v));
    const double vhu = dot(v, soda::hvp(f, mlp.params, u));
    CHECK(std::abs(uhv - vhu) <= 1e-12 * std::max({1.0, std::abs(uhv), std::abs(vhu)}));
  }
}

TEST_CASE("the Hessian of a tanh MLP with a squared loss is symmetric") {
  soda::Generator gen(3);
  const auto x = soda::randn<double>({5, 3}, gen);
  const auto y = soda::randn<double>({5, 2}, gen);
  auto f = [&](const Params& q) {
    const auto h = soda::tanh(soda::matmul(x, q[0]) + q[1]);
    return soda::mean(soda::square(soda::matmul(h, q[2]) + q[3] - y));
  };
  const Params p{soda::randn<double>({3, 4}, gen), soda::randn<double>({4}, gen),
                 soda::randn<double>({4, 2}, gen), soda::randn<double>({2}, gen)};
  const auto u = random_like(p, gen);
  const auto v = random_like(p, gen);
  const double uhv = dot(u, soda::hvp(f, p, v));
  const double vhu = dot(v, soda::hvp(f, p, u));
  CHECK(std::abs(uhv - vhu) <= 1e-12 * std::max({1.0, std::abs(uhv), std::abs(vhu)}));
  CHECK(hvp_error(f, p, v) < 1e-6);
}

TEST_CASE("value_grad_hvp equals value_and_grad and hvp called separately, bit for bit") {
  const Mlp<> mlp(5, 3, 4, 3);
  auto f = mlp.loss_fn();
  soda::Generator gen(4);
  const auto v = random_like(mlp.params, gen);
  const auto [value, grads, hv] = soda::value_grad_hvp(f, mlp.params, v);
  const auto [value2, grads2] = soda::value_and_grad(f, mlp.params);
  CHECK(value.item() == value2.item());
  CHECK(max_difference(grads, grads2) == 0);
  CHECK(max_difference(grads, soda::grad(f, mlp.params)) == 0);
  CHECK(max_difference(hv, soda::hvp(f, mlp.params, v)) == 0);
  CHECK_FALSE(value.requires_grad());
  CHECK_FALSE(grads[0].requires_grad());
  CHECK_FALSE(hv[0].has_tangent());
}

TEST_CASE("the dense Hessian of a small MLP built from hvp columns matches finite differences") {
  const Mlp<> mlp(4, 3, 4, 2);
  auto f = mlp.loss_fn();
  const auto n = count(mlp.params);  // 3·4 + 4 + 4·2 + 2 = 26
  REQUIRE(n == 26);
  Eigen::MatrixXd h(n, n), numeric(n, n);
  for (std::int64_t k = 0; k < n; ++k) {
    const auto e = unit(mlp.params, k);
    h.col(k) = flat(soda::hvp(f, mlp.params, e));
    numeric.col(k) = flat(numerical_hvp(f, mlp.params, e));
  }
  const double scale = std::max(1.0, h.cwiseAbs().maxCoeff());
  CHECK((h - numeric).cwiseAbs().maxCoeff() < 1e-6 * scale);
  CHECK(h.isApprox(h.transpose(), 1e-12));
  CHECK((h - h.transpose()).cwiseAbs().maxCoeff() < 1e-14 * scale);
  // The same matrix from hessian_at, all columns in one stacked replay.
  std::vector<Params> units;
  for (std::int64_t k = 0; k < n; ++k) units.push_back(unit(mlp.params, k));
  const auto columns = soda::hessian_at(f, mlp.params).apply_many(units);
  Eigen::MatrixXd stacked(n, n);
  for (std::int64_t k = 0; k < n; ++k) stacked.col(k) = flat(columns[static_cast<std::size_t>(k)]);
  CHECK((stacked - h).cwiseAbs().maxCoeff() < 1e-12 * scale);
  // A cross-entropy Hessian at a point is positive semi-definite in the last layer's block.
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> last_layer(h.bottomRightCorner(10, 10));
  CHECK(last_layer.eigenvalues().minCoeff() > -1e-12);
}

TEST_CASE("hvp is linear in v and zero for v = 0") {
  const Mlp<> mlp(4, 3, 3, 2);
  auto f = mlp.loss_fn();
  soda::Generator gen(5);
  const auto u = random_like(mlp.params, gen);
  const auto v = random_like(mlp.params, gen);
  Params combo;
  for (std::size_t i = 0; i < u.size(); ++i) combo.push_back(u[i] * 2.0 + v[i]);
  const auto hu = soda::hvp(f, mlp.params, u), hv = soda::hvp(f, mlp.params, v);
  Params expected;
  for (std::size_t i = 0; i < u.size(); ++i) expected.push_back(hu[i] * 2.0 + hv[i]);
  CHECK(relative_error(expected, soda::hvp(f, mlp.params, combo)) < 1e-12);
  Params zero;
  for (const auto& p : mlp.params) zero.push_back(soda::zeros<double>(p.shape()));
  CHECK(max_difference(soda::hvp(f, mlp.params, zero), zero) == 0);
}

TEST_CASE("jvp of a vector-valued function matches central differences of f") {
  soda::Generator gen(6);
  const auto x = soda::randn<double>({4, 3}, gen);
  auto f = [&x](const Params& q) {
    return soda::softmax(soda::tanh(soda::matmul(x, q[0]) + q[1]), 1) * q[1];
  };
  const Params p{soda::randn<double>({3, 5}, gen), soda::randn<double>({5}, gen)};
  const auto v = random_like(p, gen);
  CHECK(jvp_error(f, p, v) < 1e-6);
  CHECK(soda::jvp(f, p, v).shape() == soda::Shape{4, 5});
}

TEST_CASE("jvp of a scalar function is the gradient's dot product with v") {
  const Mlp<> mlp(5, 3, 4, 3);
  auto f = mlp.loss_fn();
  soda::Generator gen(7);
  const auto v = random_like(mlp.params, gen);
  const auto jv = soda::jvp(f, mlp.params, v);
  CHECK(jv.shape() == soda::Shape{});
  CHECK(jv.item() == doctest::Approx(dot(soda::grad(f, mlp.params), v)).epsilon(1e-13));
  CHECK(jvp_error(f, mlp.params, v) < 1e-6);
}

TEST_CASE("every functional API accepts a closure f() and restores the parameters' state") {
  const Mlp<> mlp(5, 3, 4, 3);
  auto list = mlp.loss_fn();
  const Params p = mlp.params;           // handles: the closure reads these very tensors
  Tensor(p[1]).set_requires_grad(true);  // state the call must put back
  auto closure = [&mlp, &p]() { return mlp.loss(p); };
  soda::Generator gen(8);
  const auto v = random_like(p, gen);
  auto check_restored = [&p] {
    CHECK(p[1].requires_grad());
    for (std::size_t i = 0; i < p.size(); ++i) {
      CHECK(p[i].requires_grad() == (i == 1));
      CHECK_FALSE(p[i].has_tangent());
      CHECK_FALSE(p[i].grad().defined());
      CHECK(p[i].is_leaf());
    }
  };
  const auto [value, grads] = soda::value_and_grad(closure, p);
  check_restored();
  const auto [value2, grads2] = soda::value_and_grad(list, p);
  CHECK(value.item() == value2.item());
  CHECK(max_difference(grads, grads2) == 0);
  CHECK(max_difference(soda::grad(closure, p), grads2) == 0);
  check_restored();
  CHECK(max_difference(soda::hvp(closure, p, v), soda::hvp(list, p, v)) == 0);
  check_restored();
  const auto [value3, grads3, hv3] = soda::value_grad_hvp(closure, p, v);
  CHECK(value3.item() == value2.item());
  CHECK(max_difference(grads3, grads2) == 0);
  CHECK(max_difference(hv3, soda::hvp(list, p, v)) == 0);
  check_restored();
  CHECK(soda::jvp(closure, p, v).item() == soda::jvp(list, p, v).item());
  check_restored();
}

TEST_CASE("a closure that throws still restores the parameters' state") {
  soda::Generator gen(9);
  const Params p{soda::randn<double>({3}, gen)};
  const Params v{soda::randn<double>({3}, gen)};
  auto failing = [&p]() -> Tensor {
    (void)soda::exp(p[0]);
    throw std::runtime_error("user error");
  };
  CHECK_THROWS_AS(soda::value_grad_hvp(failing, p, v), std::runtime_error);
  CHECK_THROWS_AS(soda::jvp(failing, p, v), std::runtime_error);
  CHECK_FALSE(p[0].requires_grad());
  CHECK_FALSE(p[0].has_tangent());
  CHECK(soda::grad_enabled());
}

TEST_CASE("hvp in float agrees with double to 1e-3") {
  const Mlp<double> md(8, 4, 6, 3);
  const Mlp<float> mf(8, 4, 6, 3);  // the same draws, rounded to float
  soda::Generator gen(10);
  const auto v = random_like(md.params, gen);
  std::vector<soda::Tensor<float>> vf;
  for (const auto& t : v) vf.push_back(t.to<float>());
  const auto hd = soda::hvp(md.loss_fn(), md.params, v);
  const auto hf = soda::hvp(mf.loss_fn(), mf.params, vf);
  const auto [valf, gradf] = soda::value_and_grad(mf.loss_fn(), mf.params);
  const auto [vald, gradd] = soda::value_and_grad(md.loss_fn(), md.params);
  CHECK(static_cast<double>(valf.item()) == doctest::Approx(vald.item()).epsilon(1e-5));
  double diff = 0, norm = 0, gdiff = 0, gnorm = 0;
  for (std::size_t i = 0; i < hd.size(); ++i) {
    const auto a = copy_of(hd[i]), b = hf[i].to<double>(), ga = copy_of(gradd[i]),
               gb = gradf[i].to<double>();
    for (std::int64_t j = 0; j < a.numel(); ++j) {
      diff += std::pow(a.data()[j] - b.data()[j], 2);
      norm += std::pow(a.data()[j], 2);
      gdiff += std::pow(ga.data()[j] - gb.data()[j], 2);
      gnorm += std::pow(ga.data()[j], 2);
    }
  }
  CHECK(std::sqrt(diff / norm) < 1e-3);
  CHECK(std::sqrt(gdiff / gnorm) < 1e-4);
}

TEST_CASE("gradients and H·v come back contiguous, whatever view a rule left behind") {
  // matmul by Wᵀ (as nn::Linear computes) leaves W's gradient a transposed view, and a broadcast
  // scalar leaves a stride-0 one: callers must be able to read data() of every result.
  const auto x = normal({5, 4}, 1);
  const Params params{normal({3, 4}, 2), normal({1}, 3)};
  auto f = [&](const Params& p) {
    const auto y = soda::matmul(x, soda::transpose(p[0], 0, 1)) + p[1];
    return soda::sum(soda::square(y));
  };
  soda::Generator gen(4);
  const auto v = random_like(params, gen);
  const auto [value, grads, hv] = soda::value_grad_hvp(f, params, v);
  for (const auto& results : {soda::grad(f, params), grads, hv}) {
    for (const auto& g : results) {
      CHECK(g.is_contiguous());
      CHECK_NOTHROW((void)g.data());
    }
  }
  CHECK(relative_error(numerical_gradient(f, params), grads) < 1e-6);
  // A module read by handle: nn::Linear's weight gradient.
  soda::Generator layer_gen(5);
  soda::nn::Linear<double> layer(4, 3, layer_gen);
  auto loss = [&] { return soda::sum(soda::square(layer(x))); };
  for (const auto& g : soda::grad(loss, layer.parameters())) {
    CHECK(g.is_contiguous());
    CHECK_NOTHROW((void)g.data());
  }
}
