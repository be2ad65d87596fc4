// softmax, log_softmax and logsumexp (autodiff/ops/softmax.hpp) along every axis, keepdim both
// ways, on non-contiguous inputs; plus the identities that tie them together.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "checks.hpp"

using namespace soda_test;

TEST_CASE("softmax along each axis has exact first and second derivatives") {
  const Params p{normal({2, 3, 4}, 1)};
  for (const std::int64_t axis : {0, 1, 2, -1, -2}) {
    INFO("axis " << axis);
    SODA_CHECK_OP([axis](const Params& q) { return soda::softmax(q[0], axis); }, p);
  }
}

TEST_CASE("log_softmax along each axis has exact first and second derivatives") {
  const Params p{normal({2, 3, 4}, 2)};
  for (const std::int64_t axis : {0, 1, 2, -1}) {
    INFO("axis " << axis);
    SODA_CHECK_OP([axis](const Params& q) { return soda::log_softmax(q[0], axis); }, p);
  }
}

TEST_CASE("logsumexp along each axis has exact derivatives, keepdim both ways") {
  const Params p{normal({2, 3, 4}, 3)};
  for (const std::int64_t axis : {0, 1, 2, -1}) {
    for (const bool keepdim : {false, true}) {
      INFO("axis " << axis << ", keepdim " << keepdim);
      SODA_CHECK_OP(
          [axis, keepdim](const Params& q) { return soda::logsumexp(q[0], axis, keepdim); }, p);
    }
  }
}

TEST_CASE("softmax-family ops on non-contiguous inputs have exact derivatives") {
  soda::Generator gen(4);
  const auto base = soda::randn<double>({5, 8}, gen);
  const Params p{soda::transpose(soda::slice(base, 1, 0, 8, 2), 0, 1)};  // [4, 5], strided
  REQUIRE_FALSE(p[0].is_contiguous());
  SODA_CHECK_OP([](const Params& q) { return soda::softmax(q[0], 1); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::softmax(q[0], 0); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::log_softmax(q[0] * q[0], 0); }, p);
  SODA_CHECK_OP(
      [](const Params& q) { return soda::logsumexp(soda::transpose(q[0], 0, 1), 1, true); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::logsumexp(q[0], 0); }, p);
}

TEST_CASE("softmax-family ops of a 1-D input reduce to a scalar or keep their length") {
  const Params p{normal({6}, 5)};
  SODA_CHECK_OP([](const Params& q) { return soda::softmax(q[0]); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::log_softmax(q[0] * 2.0); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::logsumexp(q[0]); }, p);
  CHECK(soda::logsumexp(p[0]).shape() == soda::Shape{});
  CHECK(soda::logsumexp(p[0], 0, true).shape() == soda::Shape{1});
}

TEST_CASE("log_softmax is x minus logsumexp, and softmax is its exponential") {
  const auto x = normal({3, 5}, 6);
  const auto lse = soda::logsumexp(x, 1, true);
  CHECK(soda::max_abs_difference(soda::log_softmax(x, 1), x - lse) < 1e-14);
  CHECK(soda::max_abs_difference(soda::softmax(x, 1), soda::exp(soda::log_softmax(x, 1))) < 1e-15);
  CHECK(soda::max_abs_difference(soda::sum(soda::softmax(x, 0), {0}), soda::ones<double>({5})) <
        1e-15);
}

TEST_CASE("softmax-family ops stay finite and exact for large logits") {
  const Params p{Tensor({2, 3}, {1000.0, 1001.0, 999.0, -1000.0, -1002.0, -999.5})};
  const auto ls = soda::log_softmax(p[0], 1);
  const auto lse = soda::logsumexp(p[0], 1);
  for (std::int64_t i = 0; i < 6; ++i) CHECK(std::isfinite(ls.data()[i]));
  CHECK(lse.data()[0] ==
        doctest::Approx(1001.0 + std::log(1 + std::exp(-1.0) + std::exp(-2.0))).epsilon(1e-15));
  // The gradient of a sum of logsumexps is the softmax (to the rounding of x − lse near 1000).
  const auto g =
      soda::grad([](const Params& q) { return soda::sum(soda::logsumexp(q[0], 1)); }, p)[0];
  CHECK(soda::max_abs_difference(g, soda::softmax(p[0], 1)) < 1e-12);
}

TEST_CASE("the sum of a softmax has zero gradient and zero Hessian") {
  soda::Generator gen(7);
  const Params p{soda::randn<double>({3, 4}, gen)};
  const Params v{soda::randn<double>({3, 4}, gen)};
  auto f = [](const Params& q) { return soda::sum(soda::softmax(q[0], 1)); };
  const auto [value, grads, hv] = soda::value_grad_hvp(f, p, v);
  CHECK(value.item() == doctest::Approx(3.0).epsilon(1e-14));
  CHECK(soda::max_abs_difference(grads[0], soda::zeros<double>({3, 4})) < 1e-15);
  CHECK(soda::max_abs_difference(hv[0], soda::zeros<double>({3, 4})) < 1e-15);
}

TEST_CASE("softmax cross-entropy's Hessian is diag(p) - p pᵀ per row") {
  soda::Generator gen(8);
  const Params p{soda::randn<double>({1, 5}, gen)};
  const Index label({1, 1}, {3});
  auto f = [label](const Params& q) {
    return -soda::sum(soda::gather(soda::log_softmax(q[0], 1), 1, label));
  };
  const auto s = soda::softmax(p[0], 1);
  for (std::int64_t i = 0; i < 5; ++i) {
    auto e = soda::zeros<double>({1, 5});
    e.data()[i] = 1;
    const auto column = soda::hvp(f, p, {e})[0];
    for (std::int64_t j = 0; j < 5; ++j) {
      const double expected = (i == j ? s.data()[i] : 0.0) - s.data()[i] * s.data()[j];
      CHECK(column.data()[j] == doctest::Approx(expected).epsilon(1e-13));
    }
  }
}
