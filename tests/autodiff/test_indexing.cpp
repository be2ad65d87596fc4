// Picking elements (autodiff/ops/indexing.hpp): index_select and its adjoint index_add, gather and
// its adjoint scatter_add, with repeated indices (gradients must accumulate) and int64 indices.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "checks.hpp"

using namespace soda_test;

TEST_CASE("index_select along each axis, with repeated indices, has exact derivatives") {
  const Params p{normal({4, 3, 5}, 1)};
  SODA_CHECK_OP([](const Params& q) { return soda::index_select(q[0], 0, {3, 0, 3, 1}); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::exp(soda::index_select(q[0], 1, {2, 2})); }, p);
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::index_select(q[0] * q[0], -1, {4, 0, 1, 4, 4});
      },
      p);
}

TEST_CASE("index_select's gradient adds up over repeated indices") {
  const Params p{Tensor({3, 2}, {1, 2, 3, 4, 5, 6})};
  const auto g = soda::grad(
      [](const Params& q) {
        return soda::sum(soda::index_select(q[0], 0, {2, 0, 2, 2}));
      },
      p)[0];
  CHECK(soda::max_abs_difference(g, Tensor({3, 2}, {1, 1, 0, 0, 3, 3})) == 0);
}

TEST_CASE("index_select reads a non-contiguous input") {
  soda::Generator gen(2);
  const auto base = soda::randn<double>({6, 4}, gen);
  const Params p{soda::transpose(soda::slice(base, 0, 0, 6, 2), 0, 1)};  // [4, 3], strided
  REQUIRE_FALSE(p[0].is_contiguous());
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::tanh(soda::index_select(q[0], 1, {1, 2, 1}));
      },
      p);
  SODA_CHECK_OP([](const Params& q) { return soda::index_select(q[0], 0, {3, 1}); }, p);
}

TEST_CASE("index_add accumulates slices and has exact derivatives") {
  const Params p{normal({4, 3}, 3)};
  SODA_CHECK_OP([](const Params& q) { return soda::index_add(q[0], {2, 3}, 0, {1, 0, 1, 1}); }, p);
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::exp(soda::index_add(q[0], {4, 5}, 1, {4, 0, 4}));
      },
      p);
  const auto added = soda::index_add(Tensor({3}, {1.0, 2.0, 4.0}), {2}, 0, {1, 0, 1});
  CHECK(soda::max_abs_difference(added, Tensor({2}, {2.0, 5.0})) == 0);
}

TEST_CASE(
    "gather along axis 1 with int64 indices (the logit of each label) has exact derivatives") {
  const Params p{normal({4, 5}, 4)};
  const Index labels({4, 1}, {2, 0, 4, 2});
  SODA_CHECK_OP([labels](const Params& q) { return soda::gather(q[0], 1, labels); }, p);
  SODA_CHECK_OP(
      [labels](const Params& q) { return soda::gather(soda::log_softmax(q[0], 1), 1, labels); }, p);
}

TEST_CASE("gather along axis 0 and axis 1 with repeated indices has exact derivatives") {
  const Params p{normal({3, 4}, 5)};
  const Index rows({2, 4}, {0, 2, 2, 1, 2, 2, 0, 0});
  const Index cols({3, 3}, {3, 3, 0, 1, 1, 1, 0, 2, 3});
  SODA_CHECK_OP([rows](const Params& q) { return soda::gather(q[0], 0, rows); }, p);
  SODA_CHECK_OP([cols](const Params& q) { return soda::exp(soda::gather(q[0] * q[0], 1, cols)); },
                p);
  SODA_CHECK_OP(
      [cols](const Params& q) {
        return soda::gather(q[0], -1, cols) * soda::gather(q[0], 1, cols);
      },
      p);
}

TEST_CASE("gather reads non-contiguous inputs and indices") {
  soda::Generator gen(6);
  const auto base = soda::randn<double>({4, 6}, gen);
  const Params p{soda::slice(base, 1, 0, 6, 2)};  // [4, 3], strided
  const Index index_base({3, 4}, {2, 0, 1, 2, 0, 0, 2, 1, 1, 2, 0, 0});
  const auto index = soda::transpose(index_base, 0, 1);  // [4, 3], non-contiguous
  REQUIRE_FALSE(index.is_contiguous());
  SODA_CHECK_OP([index](const Params& q) { return soda::gather(q[0], 1, index); }, p);
  SODA_CHECK_OP(
      [index](const Params& q) {
        return soda::tanh(soda::gather(soda::transpose(q[0], 0, 1), 0, index));
      },
      p);
}

TEST_CASE("gather's values and gradient follow torch.gather") {
  const Params p{Tensor({2, 3}, {10, 11, 12, 20, 21, 22})};
  const Index index({2, 2}, {2, 2, 0, 1});
  const auto picked = soda::gather(p[0], 1, index);
  CHECK(soda::max_abs_difference(picked, Tensor({2, 2}, {12, 12, 20, 21})) == 0);
  const auto g = soda::grad(
      [index](const Params& q) { return soda::sum(soda::gather(q[0], 1, index)); }, p)[0];
  CHECK(soda::max_abs_difference(g, Tensor({2, 3}, {0, 0, 2, 1, 1, 0})) == 0);
}

TEST_CASE("scatter_add has exact derivatives") {
  const Params p{normal({2, 3}, 7)};
  const Index index({2, 3}, {0, 3, 3, 1, 1, 2});
  SODA_CHECK_OP([index](const Params& q) { return soda::scatter_add(q[0], {2, 4}, 1, index); }, p);
  SODA_CHECK_OP(
      [index](const Params& q) {
        return soda::exp(soda::scatter_add(q[0] * q[0], {2, 4}, 1, index));
      },
      p);
}

TEST_CASE("a cross-entropy loss over a mini-batch picked by index_select has the exact Hessian") {
  soda::Generator gen(8);
  const auto x = soda::randn<double>({6, 3}, gen);
  const Index labels({3, 1}, {1, 3, 0});
  auto f = [&](const Params& q) {
    const auto batch = soda::index_select(x, 0, {4, 1, 4});
    const auto logits = soda::matmul(soda::tanh(batch), q[0]);
    return -soda::mean(soda::gather(soda::log_softmax(logits, 1), 1, labels));
  };
  const Params p{soda::randn<double>({3, 4}, gen)};
  CHECK(gradient_error(f, p) < 1e-6);
  CHECK(hvp_error(f, p, random_like(p, gen)) < 1e-6);
}
