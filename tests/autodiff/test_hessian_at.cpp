// hessian_at (autodiff/hessian_at.hpp): linearize once, then apply H to one vector or a stack of
// vectors by replaying the recorded forward rules; must agree with value_and_grad and hvp.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <optional>

#include "checks.hpp"

using namespace soda_test;

TEST_CASE("hessian_at's value and gradient equal value_and_grad") {
  const Mlp<> mlp(8, 5, 6, 4);
  auto f = mlp.loss_fn();
  const auto h = soda::hessian_at(f, mlp.params);
  const auto [value, grads] = soda::value_and_grad(f, mlp.params);
  CHECK(h.value().item() == value.item());
  CHECK(max_difference(h.gradient(), grads) == 0);
  CHECK(h.recorded_ops() > 0);
}

TEST_CASE("hessian_at(f).apply(v) equals hvp(f, v) bit for bit on an MLP with cross-entropy") {
  const Mlp<> mlp(8, 5, 6, 4);
  auto f = mlp.loss_fn();
  const auto h = soda::hessian_at(f, mlp.params);
  soda::Generator gen(1);
  for (int trial = 0; trial < 3; ++trial) {
    const auto v = random_like(mlp.params, gen);
    const auto hv = h.apply(v);
    const auto expected = soda::hvp(f, mlp.params, v);
    REQUIRE(hv.size() == expected.size());
    for (std::size_t i = 0; i < hv.size(); ++i) {
      CHECK(hv[i].shape() == mlp.params[i].shape());
      CHECK(soda::max_abs_difference(hv[i], expected[i]) == 0);
    }
  }
}

TEST_CASE("apply_many of three vectors equals three single applies") {
  const Mlp<> mlp(8, 5, 6, 4);
  const auto h = soda::hessian_at(mlp.loss_fn(), mlp.params);
  soda::Generator gen(2);
  const std::vector<Params> vs{random_like(mlp.params, gen), random_like(mlp.params, gen),
                               random_like(mlp.params, gen)};
  const auto many = h.apply_many(vs);
  REQUIRE(many.size() == 3);
  for (std::size_t j = 0; j < vs.size(); ++j) {
    INFO("vector " << j);
    CHECK(relative_error(h.apply(vs[j]), many[j]) < 1e-12);
  }
  CHECK(h.apply_many({}).empty());
}

TEST_CASE("apply is repeatable: the same vector gives the same result every time") {
  const Mlp<> mlp(6, 4, 5, 3);
  const auto h = soda::hessian_at(mlp.loss_fn(), mlp.params);
  soda::Generator gen(3);
  const auto v = random_like(mlp.params, gen);
  const auto first = h.apply(v);
  (void)h.apply_many({random_like(mlp.params, gen), v});
  CHECK(max_difference(first, h.apply(v)) == 0);
  CHECK(max_difference(first, h.apply(v)) == 0);
  CHECK(max_difference(h.gradient(), soda::grad(mlp.loss_fn(), mlp.params)) == 0);
}

TEST_CASE("hessian_at accepts a closure f() and restores the parameters' state") {
  const Mlp<> mlp(6, 4, 5, 3);
  const Params p = mlp.params;
  auto closure = [&mlp, &p]() { return mlp.loss(p); };
  const auto h = soda::hessian_at(closure, p);
  for (const auto& x : p) {
    CHECK_FALSE(x.requires_grad());
    CHECK_FALSE(x.has_tangent());
    CHECK(x.is_leaf());
  }
  const auto list = soda::hessian_at(mlp.loss_fn(), p);
  CHECK(h.value().item() == list.value().item());
  CHECK(max_difference(h.gradient(), list.gradient()) == 0);
  soda::Generator gen(4);
  const auto v = random_like(p, gen);
  CHECK(max_difference(h.apply(v), soda::hvp(closure, p, v)) == 0);
  CHECK(max_difference(h.apply(v), list.apply(v)) == 0);
  for (const auto& x : p) {
    CHECK_FALSE(x.requires_grad());
    CHECK_FALSE(x.has_tangent());
  }
}

TEST_CASE("hessian_at of a quadratic applies ½(A+Aᵀ)") {
  soda::Generator gen(5);
  const auto a = soda::randn<double>({5, 5}, gen);
  auto f = [&a](const Params& q) { return soda::sum(q[0] * soda::matmul(a, q[0])) * 0.5; };
  const Params x{soda::randn<double>({5, 2}, gen)};
  const Params v{soda::randn<double>({5, 2}, gen)};
  const auto expected = soda::matmul((a + soda::transpose(a, 0, 1)) * 0.5, v[0]);
  CHECK(relative_error(expected, soda::hessian_at(f, x).apply(v)[0]) < 1e-14);
}

TEST_CASE("parameters f ignores, or enters only linearly, get zero Hessian rows") {
  soda::Generator gen(6);
  const Params p{soda::randn<double>({3}, gen), soda::randn<double>({2}, gen),
                 soda::randn<double>({3}, gen)};
  auto f = [](const Params& q) { return soda::sum(soda::exp(q[0])) + soda::sum(q[2]); };
  const auto h = soda::hessian_at(f, p);
  const auto v = random_like(p, gen);
  const auto hv = h.apply(v);
  CHECK(soda::max_abs_difference(hv[0], soda::exp(p[0]) * v[0]) < 1e-15);
  CHECK(soda::max_abs_difference(hv[1], soda::zeros<double>({2})) == 0);
  CHECK(soda::max_abs_difference(hv[2], soda::zeros<double>({3})) == 0);
  CHECK(max_difference(hv, soda::hvp(f, p, v)) == 0);
}

TEST_CASE("a LinearizedHessian outlives the parameters and the function that made it") {
  soda::Generator gen(7);
  const auto v = soda::randn<double>({4}, gen);
  std::optional<soda::LinearizedHessian<double>> h;
  Params expected;
  {
    const Params p{soda::randn<double>({4}, gen)};
    auto f = [](const Params& q) { return soda::sum(soda::tanh(q[0]) * q[0]); };
    h.emplace(soda::hessian_at(f, p));
    expected = soda::hvp(f, p, {v});
  }
  CHECK(max_difference(h->apply({v}), expected) == 0);
}

TEST_CASE("hessian_at replays through every kind of op: views, joins, indexing, reductions") {
  soda::Generator gen(8);
  const auto x = soda::randn<double>({5, 3}, gen);
  const Index labels({3, 1}, {2, 0, 1});
  auto f = [&](const Params& q) {
    const auto batch = soda::index_select(x, 0, {4, 0, 2});
    const auto hidden = soda::sigmoid(soda::matmul(batch, soda::transpose(q[0], 0, 1)));  // [3, 4]
    const auto joined =
        soda::concat({hidden, soda::slice(hidden, 1, 0, 4, 2) * q[1]}, 1);  // [3, 6]
    const auto logits = soda::reshape(soda::stack({joined, soda::relu(joined - 0.5)}, 2), {3, 12});
    const auto loss = -soda::mean(soda::gather(soda::log_softmax(logits, 1), 1, labels));
    return loss + soda::logsumexp(soda::max(logits, {0}), 0) * 0.1 +
           soda::sum(soda::softmax(q[1], 0) * q[1]);
  };
  const Params p{soda::randn<double>({4, 3}, gen), soda::randn<double>({2}, gen)};
  const auto h = soda::hessian_at(f, p);
  const std::vector<Params> vs{random_like(p, gen), random_like(p, gen)};
  const auto many = h.apply_many(vs);
  for (std::size_t j = 0; j < vs.size(); ++j) {
    const auto single = h.apply(vs[j]);
    CHECK(max_difference(single, soda::hvp(f, p, vs[j])) == 0);
    CHECK(relative_error(single, many[j]) < 1e-12);
    CHECK(relative_error(numerical_hvp(f, p, vs[j]), single) < 1e-6);
  }
}

TEST_CASE("hessian_at in float agrees with hvp in float") {
  const Mlp<float> mlp(6, 4, 5, 3);
  const auto h = soda::hessian_at(mlp.loss_fn(), mlp.params);
  soda::Generator gen(9);
  std::vector<soda::Tensor<float>> v;
  for (const auto& p : mlp.params) v.push_back(soda::randn<float>(p.shape(), gen));
  CHECK(max_difference(h.apply(v), soda::hvp(mlp.loss_fn(), mlp.params, v)) == 0);
}
