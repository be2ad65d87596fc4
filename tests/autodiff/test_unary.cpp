// Element-wise unary ops (autodiff/ops/unary.hpp): first and second derivatives against central
// differences, on contiguous and non-contiguous inputs, and the conventions at kinks.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "checks.hpp"

using namespace soda_test;

namespace {

Tensor positive(const soda::Shape& shape, std::uint64_t seed) {
  soda::Generator gen(seed);
  return soda::rand<double>(shape, gen, 0.5, 2.0);
}

}  // namespace

TEST_CASE("exp has exact first and second derivatives") {
  SODA_CHECK_OP([](const Params& p) { return soda::exp(p[0]); }, {normal({3, 4}, 1)});
}

TEST_CASE("log has exact first and second derivatives on positive inputs") {
  SODA_CHECK_OP([](const Params& p) { return soda::log(p[0]); }, {positive({3, 4}, 2)});
}

TEST_CASE("sqrt has exact first and second derivatives on positive inputs") {
  SODA_CHECK_OP([](const Params& p) { return soda::sqrt(p[0]); }, {positive({3, 4}, 3)});
}

TEST_CASE("tanh has exact first and second derivatives") {
  SODA_CHECK_OP([](const Params& p) { return soda::tanh(p[0]); }, {normal({3, 4}, 4)});
}

TEST_CASE("sigmoid has exact first and second derivatives") {
  SODA_CHECK_OP([](const Params& p) { return soda::sigmoid(p[0]); }, {normal({3, 4}, 5)});
}

TEST_CASE("relu has exact derivatives away from its kink") {
  soda::Generator gen(6);
  SODA_CHECK_OP([](const Params& p) { return soda::relu(p[0]); },
                {randn_avoiding({3, 4}, gen, {0.0})});
}

TEST_CASE("abs has exact derivatives away from zero") {
  soda::Generator gen(7);
  SODA_CHECK_OP([](const Params& p) { return soda::abs(p[0]); },
                {randn_avoiding({3, 4}, gen, {0.0})});
}

TEST_CASE("square has exact first and second derivatives") {
  SODA_CHECK_OP([](const Params& p) { return soda::square(p[0]); }, {normal({3, 4}, 8)});
}

TEST_CASE("pow by a scalar exponent has exact derivatives for several exponents") {
  for (const double e : {2.5, -1.5, 0.5, 3.0, 1.0, 0.0}) {
    INFO("exponent " << e);
    SODA_CHECK_OP([e](const Params& p) { return soda::pow(p[0], e); }, {positive({3, 4}, 9)});
  }
}

TEST_CASE("pow by an integer exponent is differentiable at negative inputs") {
  SODA_CHECK_OP([](const Params& p) { return soda::pow(p[0], 3.0); }, {normal({3, 4}, 10)});
}

TEST_CASE("clamp has exact derivatives away from its bounds") {
  soda::Generator gen(11);
  SODA_CHECK_OP([](const Params& p) { return soda::clamp(p[0], -0.5, 0.7); },
                {randn_avoiding({4, 5}, gen, {-0.5, 0.7})});
}

TEST_CASE("unary ops differentiate through a non-contiguous (transposed, strided) input") {
  soda::Generator gen(12);
  const auto base = soda::rand<double>({6, 4}, gen, 0.5, 2.0);
  // The parameter itself is a strided view: every other row, transposed -> [4, 3].
  const auto view = soda::transpose(soda::slice(base, 0, 0, 6, 2), 0, 1);
  REQUIRE_FALSE(view.is_contiguous());
  SODA_CHECK_OP([](const Params& p) { return soda::log(p[0]) * soda::sqrt(p[0]); }, {view});
  SODA_CHECK_OP([](const Params& p) { return soda::sigmoid(soda::transpose(p[0], 0, 1)); }, {view});
  SODA_CHECK_OP([](const Params& p) { return soda::exp(soda::slice(p[0], 1, 0, 4, 2)); },
                {normal({3, 4}, 13)});
}

TEST_CASE("a composition of unary ops has the chain rule's second derivative") {
  soda::Generator gen(14);
  auto f = [](const Params& p) {
    const auto& x = p[0];
    return soda::sum(soda::tanh(soda::exp(x * 0.3)) * soda::sigmoid(x) +
                     soda::log(soda::square(x) + 1.0) + soda::sqrt(soda::abs(x) + 0.5));
  };
  const Params x{randn_avoiding({5}, gen, {0.0})};
  CHECK(gradient_error(f, x) < 1e-6);
  CHECK(hvp_error(f, x, random_like(x, gen)) < 1e-6);
}

TEST_CASE("relu and abs have derivative 0 at 0; clamp has derivative 1 at its bounds") {
  const Params x{Tensor({5}, {-1.0, 0.0, 1.0, -0.5, 0.5})};
  const auto g_relu = soda::grad([](const Params& p) { return soda::sum(soda::relu(p[0])); }, x)[0];
  const auto g_abs = soda::grad([](const Params& p) { return soda::sum(soda::abs(p[0])); }, x)[0];
  const auto g_clamp =
      soda::grad([](const Params& p) { return soda::sum(soda::clamp(p[0], -0.5, 0.5)); }, x)[0];
  CHECK(soda::max_abs_difference(g_relu, Tensor({5}, {0, 0, 1, 0, 1})) == 0);
  CHECK(soda::max_abs_difference(g_abs, Tensor({5}, {-1, 0, 1, -1, 1})) == 0);
  CHECK(soda::max_abs_difference(g_clamp, Tensor({5}, {0, 1, 0, 1, 1})) == 0);
}

TEST_CASE("piecewise-linear unary ops have a zero Hessian") {
  soda::Generator gen(15);
  const Params x{randn_avoiding({6}, gen, {0.0, -0.5, 0.5})};
  const Params v{soda::randn<double>({6}, gen)};
  auto f = [](const Params& p) {
    return soda::sum(soda::relu(p[0]) + soda::abs(p[0]) * 2.0 + soda::clamp(p[0], -0.5, 0.5));
  };
  const auto hv = soda::hvp(f, x, v);
  CHECK(soda::max_abs_difference(hv[0], soda::zeros<double>({6})) == 0);
}
