// Broadcasting arithmetic (autodiff/ops/arithmetic.hpp): + − × ÷, neg, maximum, minimum, where,
// with tensors and scalars on either side, broadcasting, and non-contiguous operands.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "checks.hpp"

using namespace soda_test;

namespace {

// Values in ±[0.5, 2]: safe divisors.
Tensor away_from_zero(const soda::Shape& shape, std::uint64_t seed) {
  soda::Generator gen(seed);
  const auto magnitude = soda::rand<double>(shape, gen, 0.5, 2.0);
  const auto sign = soda::sign(soda::randn<double>(shape, gen));
  return copy_of(magnitude * soda::where(sign, sign, soda::ones<double>({})));
}

}  // namespace

TEST_CASE("add, sub, mul and div of same-shaped tensors have exact derivatives in both operands") {
  const Params p{normal({3, 4}, 1), away_from_zero({3, 4}, 2)};
  SODA_CHECK_OP([](const Params& q) { return soda::add(q[0], q[1]); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::sub(q[0], q[1]); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::mul(q[0], q[1]); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::div(q[0], q[1]); }, p);
}

TEST_CASE("binary ops broadcast [3,1] against [4] and reduce gradients back to each shape") {
  const Params p{normal({3, 1}, 3), away_from_zero({4}, 4)};
  SODA_CHECK_OP([](const Params& q) { return q[0] + q[1]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] - q[1]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] * q[1]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] / q[1]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[1] / q[0]; },
                Params{away_from_zero({3, 1}, 5), normal({4}, 6)});
}

TEST_CASE("binary ops broadcast [2,3,4] against [3,1]") {
  const Params p{normal({2, 3, 4}, 7), away_from_zero({3, 1}, 8)};
  SODA_CHECK_OP([](const Params& q) { return q[0] + q[1]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] - q[1]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] * q[1]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] / q[1]; }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::maximum(q[0], q[1]); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::minimum(q[1], q[0]); }, p);
}

TEST_CASE("arithmetic with a plain scalar on either side has exact derivatives") {
  const Params p{away_from_zero({3, 4}, 9)};
  SODA_CHECK_OP([](const Params& q) { return q[0] + 2.5; }, p);
  SODA_CHECK_OP([](const Params& q) { return 2.5 + q[0]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] - 1.5; }, p);
  SODA_CHECK_OP([](const Params& q) { return 1.5 - q[0]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] * 3.0; }, p);
  SODA_CHECK_OP([](const Params& q) { return 3 * q[0]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] / 4.0; }, p);
  SODA_CHECK_OP([](const Params& q) { return 4.0 / q[0]; }, p);
}

TEST_CASE("a 0-d tensor parameter broadcast against a matrix gets the summed gradient") {
  const Params p{Tensor::scalar(0.7), away_from_zero({3, 4}, 10)};
  SODA_CHECK_OP([](const Params& q) { return q[0] * q[1]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[1] / q[0]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] / q[1]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] - q[1]; }, p);
}

TEST_CASE("neg has derivative -1") {
  SODA_CHECK_OP([](const Params& q) { return -q[0]; }, {normal({3, 4}, 11)});
  SODA_CHECK_OP([](const Params& q) { return soda::neg(q[0] * q[0]); }, {normal({3, 4}, 12)});
}

TEST_CASE("maximum and minimum route the gradient to the larger / smaller operand") {
  const Params p{normal({3, 4}, 13), normal({3, 4}, 14)};
  SODA_CHECK_OP([](const Params& q) { return soda::maximum(q[0], q[1]); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::minimum(q[0], q[1]); }, p);
  // With broadcasting and a constant operand (its tangent is missing in the forward rule).
  const auto c = normal({4}, 15);
  SODA_CHECK_OP([c](const Params& q) { return soda::maximum(q[0], c); }, {normal({3, 4}, 16)});
  SODA_CHECK_OP([c](const Params& q) { return soda::minimum(c, q[0]); }, {normal({3, 4}, 17)});
  SODA_CHECK_OP([](const Params& q) { return soda::maximum(q[0] * q[0], q[1]) * q[0]; }, p);
}

TEST_CASE("ties in maximum and minimum send the whole gradient to the first operand") {
  const Params p{Tensor({3}, {1.0, 2.0, 3.0}), Tensor({3}, {1.0, 5.0, 0.0})};
  const auto gmax =
      soda::grad([](const Params& q) { return soda::sum(soda::maximum(q[0], q[1])); }, p);
  const auto gmin =
      soda::grad([](const Params& q) { return soda::sum(soda::minimum(q[0], q[1])); }, p);
  CHECK(soda::max_abs_difference(gmax[0], Tensor({3}, {1, 0, 1})) == 0);
  CHECK(soda::max_abs_difference(gmax[1], Tensor({3}, {0, 1, 0})) == 0);
  CHECK(soda::max_abs_difference(gmin[0], Tensor({3}, {1, 1, 0})) == 0);
  CHECK(soda::max_abs_difference(gmin[1], Tensor({3}, {0, 0, 1})) == 0);
}

TEST_CASE("where passes the gradient to the chosen branch, with broadcast condition and branches") {
  const auto condition = soda::greater(normal({3, 4}, 18), soda::zeros<double>({}));
  const Params p{normal({3, 4}, 19), normal({4}, 20)};
  SODA_CHECK_OP([condition](const Params& q) { return soda::where(condition, q[0], q[1]); }, p);
  SODA_CHECK_OP(
      [condition](const Params& q) { return soda::where(condition, q[1] * q[1], q[0] * q[1]); }, p);
  // A [3,1] condition broadcast over [3,4] branches, and a scalar constant branch.
  const auto rows = Tensor({3, 1}, {1.0, 0.0, 1.0});
  SODA_CHECK_OP(
      [rows](const Params& q) { return soda::where(rows, q[0], soda::zeros<double>({})); }, p);
  SODA_CHECK_OP(
      [rows](const Params& q) { return soda::where(rows, Tensor::scalar(2.0), soda::exp(q[1])); },
      p);
}

TEST_CASE("binary ops differentiate through non-contiguous operands") {
  soda::Generator gen(21);
  const auto base = soda::randn<double>({4, 6}, gen);
  const auto strided = soda::slice(base, 1, 1, 6, 2);  // [4, 3], stride 2
  REQUIRE_FALSE(strided.is_contiguous());
  const Params p{strided, away_from_zero({3, 4}, 22)};
  SODA_CHECK_OP([](const Params& q) { return q[0] * soda::transpose(q[1], 0, 1); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::transpose(q[0], 0, 1) / q[1]; }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::maximum(soda::transpose(q[0], 0, 1), q[1]); },
                p);
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::slice(q[1], 1, 0, 4, 3) - soda::transpose(soda::slice(q[0], 0, 0, 4, 2), 0, 1);
      },
      p);
}

TEST_CASE("a tensor used as both operands accumulates both contributions") {
  const Params p{away_from_zero({5}, 23)};
  SODA_CHECK_OP([](const Params& q) { return q[0] * q[0]; }, p);
  SODA_CHECK_OP([](const Params& q) { return q[0] / (q[0] * q[0] + 1.0); }, p);
  SODA_CHECK_OP([](const Params& q) { return (q[0] - q[0] * 2.0) * (q[0] + 3.0); }, p);
}

TEST_CASE("div's Hessian is exact in a rational function of two variables") {
  soda::Generator gen(24);
  auto f = [](const Params& q) {
    const auto& x = q[0];
    const auto& y = q[1];
    return soda::sum((x * y - 1.0) / (y * y + 1.0) + x / (x * x + y * y + 0.5));
  };
  const Params p{soda::randn<double>({6}, gen), soda::randn<double>({6}, gen)};
  CHECK(gradient_error(f, p) < 1e-6);
  CHECK(hvp_error(f, p, random_like(p, gen)) < 1e-6);
}
