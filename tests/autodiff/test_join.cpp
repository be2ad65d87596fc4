// concat and stack (autodiff/ops/join.hpp): gradients split back into the pieces; forward rules
// concatenate the tangents, with zeros for pieces that carry none (constants).
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "checks.hpp"

using namespace soda_test;

TEST_CASE("concat along each axis has exact derivatives for every piece") {
  const Params p{normal({2, 3, 4}, 1), normal({2, 3, 4}, 2)};
  for (const std::int64_t axis : {0, 1, 2, -1}) {
    INFO("axis " << axis);
    SODA_CHECK_OP([axis](const Params& q) { return soda::concat({q[0], q[1]}, axis); }, p);
    SODA_CHECK_OP(
        [axis](const Params& q) {
          return soda::exp(soda::concat({q[0] * q[1], q[1]}, axis));
        },
        p);
  }
}

TEST_CASE("concat of pieces of different lengths, with a constant and a repeated piece") {
  const Params p{normal({3, 2}, 3), normal({3, 4}, 4)};
  const auto constant = normal({3, 1}, 5);
  SODA_CHECK_OP([](const Params& q) { return soda::concat({q[0], q[1], q[0]}, 1); }, p);
  SODA_CHECK_OP(
      [constant](const Params& q) {
        return soda::tanh(soda::concat({constant, q[1], q[0] * q[0]}, 1));
      },
      p);
  SODA_CHECK_OP([constant](const Params& q) { return soda::concat({q[0], constant}, -1); }, p);
}

TEST_CASE("concat reads non-contiguous pieces") {
  soda::Generator gen(6);
  const auto base = soda::randn<double>({4, 6}, gen);
  const Params p{soda::slice(base, 1, 0, 6, 2), normal({3, 4}, 7)};  // [4, 3] strided, [3, 4]
  REQUIRE_FALSE(p[0].is_contiguous());
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::concat({soda::transpose(q[0], 0, 1), q[1]}, 0);
      },
      p);
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::sigmoid(soda::concat({q[0], soda::transpose(q[1], 0, 1)}, 1));
      },
      p);
  const auto joined = soda::concat({soda::transpose(p[0], 0, 1), p[1]}, 0);
  CHECK(soda::max_abs_difference(soda::slice(joined, 0, 0, 3), soda::transpose(p[0], 0, 1)) == 0);
  CHECK(soda::max_abs_difference(soda::slice(joined, 0, 3, 6), p[1]) == 0);
}

TEST_CASE("stack along each axis has exact derivatives") {
  const Params p{normal({3, 4}, 8), normal({3, 4}, 9), normal({3, 4}, 10)};
  for (const std::int64_t axis : {0, 1, 2, -1}) {
    INFO("axis " << axis);
    SODA_CHECK_OP([axis](const Params& q) { return soda::stack({q[0], q[1], q[2]}, axis); }, p);
    SODA_CHECK_OP(
        [axis](const Params& q) {
          return soda::square(soda::stack({q[2], q[0] * q[1]}, axis));
        },
        p);
  }
}

TEST_CASE("stack of 0-d tensors builds a vector") {
  const Params p{Tensor::scalar(0.5), Tensor::scalar(-1.25)};
  SODA_CHECK_OP([](const Params& q) { return soda::stack({q[0], q[1], q[0] * q[1]}); }, p);
  const auto s = soda::stack({p[0], p[1]});
  CHECK(s.shape() == soda::Shape{2});
}

TEST_CASE("a function of concatenated and stacked pieces has the exact Hessian") {
  soda::Generator gen(11);
  auto f = [](const Params& q) {
    const auto joined = soda::concat({q[0], soda::exp(q[1]), q[0] * q[1]}, 1);        // [2, 9]
    const auto stacked = soda::stack({soda::tanh(joined), soda::square(joined)}, 1);  // [2, 2, 9]
    return soda::sum(soda::log(soda::sum(soda::exp(stacked), {2}) + 1.0));
  };
  const Params p{soda::randn<double>({2, 3}, gen), soda::randn<double>({2, 3}, gen)};
  CHECK(gradient_error(f, p) < 1e-6);
  CHECK(hvp_error(f, p, random_like(p, gen)) < 1e-6);
}
