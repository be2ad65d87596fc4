// Reductions (autodiff/ops/reduce.hpp): sum, mean and max over all axes and over lists of axes,
// keepdim both ways, negative axes, non-contiguous inputs; sum_to; max's tie convention.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "checks.hpp"

using namespace soda_test;

namespace {

using Axes = std::vector<std::int64_t>;

const std::vector<Axes> axis_lists{{}, {0}, {1}, {2}, {-1}, {0, 2}, {1, -1}, {0, 1, 2}};

}  // namespace

TEST_CASE("sum over all axes and over each list of axes has exact derivatives, keepdim both ways") {
  const Params p{normal({2, 3, 4}, 1)};
  for (const auto& axes : axis_lists) {
    for (const bool keepdim : {false, true}) {
      INFO("axes of size " << axes.size()
                           << (axes.empty() ? "" : ", first " + std::to_string(axes[0]))
                           << ", keepdim " << keepdim);
      // Multiplied by the input so the Hessian of the curved loss is not trivial.
      SODA_CHECK_OP(
          [axes, keepdim](const Params& q) { return soda::sum(q[0] * q[0], axes, keepdim); }, p);
      SODA_CHECK_OP([axes, keepdim](const Params& q) { return soda::sum(q[0], axes, keepdim); }, p);
    }
  }
}

TEST_CASE(
    "mean over all axes and over each list of axes has exact derivatives, keepdim both ways") {
  const Params p{normal({2, 3, 4}, 2)};
  for (const auto& axes : axis_lists) {
    for (const bool keepdim : {false, true}) {
      INFO("axes of size " << axes.size() << ", keepdim " << keepdim);
      SODA_CHECK_OP(
          [axes, keepdim](const Params& q) { return soda::mean(soda::exp(q[0]), axes, keepdim); },
          p);
    }
  }
}

TEST_CASE("max over all axes and over each list of axes has exact derivatives, keepdim both ways") {
  const Params p{normal({2, 3, 4}, 3)};
  for (const auto& axes : axis_lists) {
    for (const bool keepdim : {false, true}) {
      INFO("axes of size " << axes.size() << ", keepdim " << keepdim);
      SODA_CHECK_OP([axes, keepdim](const Params& q) { return soda::max(q[0], axes, keepdim); }, p);
      SODA_CHECK_OP(
          [axes, keepdim](const Params& q) {
            return soda::max(soda::tanh(q[0]) * q[0], axes, keepdim);
          },
          p);
    }
  }
}

TEST_CASE("reductions differentiate through non-contiguous inputs") {
  soda::Generator gen(4);
  const auto base = soda::randn<double>({4, 6, 3}, gen);
  const auto view = soda::permute(soda::slice(base, 1, 0, 6, 2), {2, 0, 1});  // [3, 4, 3], strided
  REQUIRE_FALSE(view.is_contiguous());
  const Params p{view};
  SODA_CHECK_OP([](const Params& q) { return soda::sum(q[0] * q[0], {1}); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::mean(soda::exp(q[0]), {0, 2}, true); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::max(q[0], {-1}); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::max(soda::transpose(q[0], 0, 2), {0}, true); },
                p);
}

TEST_CASE("reductions of a 1-D and a 0-d tensor") {
  SODA_CHECK_OP([](const Params& q) { return soda::sum(soda::square(q[0])); }, {normal({7}, 5)});
  SODA_CHECK_OP([](const Params& q) { return soda::max(q[0] * q[0], {0}, true); },
                {normal({7}, 6)});
  SODA_CHECK_OP([](const Params& q) { return soda::mean(q[0] * q[0]); }, {Tensor::scalar(0.3)});
  SODA_CHECK_OP([](const Params& q) { return soda::sum(soda::exp(q[0])); }, {Tensor::scalar(0.3)});
}

TEST_CASE("sum_to reduces a broadcast value back to its source shape") {
  const Params p{normal({2, 3, 4}, 7)};
  for (const soda::Shape& target : {soda::Shape{3, 4}, soda::Shape{1, 4}, soda::Shape{3, 1},
                                    soda::Shape{2, 1, 4}, soda::Shape{4}, soda::Shape{}}) {
    INFO("target " << soda::to_string(target));
    SODA_CHECK_OP([target](const Params& q) { return soda::sum_to(q[0] * q[0], target); }, p);
  }
}

TEST_CASE("max shares the gradient evenly among tied maxima") {
  const Params p{Tensor({2, 3}, {1.0, 3.0, 3.0, 2.0, 2.0, 2.0})};
  const auto g_rows =
      soda::grad([](const Params& q) { return soda::sum(soda::max(q[0], {1})); }, p)[0];
  CHECK(soda::max_abs_difference(g_rows, Tensor({2, 3}, {0, 0.5, 0.5, 1.0 / 3, 1.0 / 3, 1.0 / 3})) <
        1e-15);
  const auto g_all = soda::grad([](const Params& q) { return soda::max(q[0]); }, p)[0];
  CHECK(soda::max_abs_difference(g_all, Tensor({2, 3}, {0, 0.5, 0.5, 0, 0, 0})) == 0);
}

TEST_CASE("mean's gradient is 1/count on every element of the reduced axes") {
  const Params p{normal({2, 5}, 8)};
  const auto g = soda::grad([](const Params& q) { return soda::sum(soda::mean(q[0], {1})); }, p)[0];
  CHECK(soda::max_abs_difference(g, soda::full<double>({2, 5}, 0.2)) < 1e-16);
}

TEST_CASE("a variance-like composite of mean and max has an exact Hessian") {
  soda::Generator gen(9);
  auto variance = [](const Params& q) {
    const auto centred = q[0] - soda::mean(q[0], {1}, true);
    return soda::sum(soda::mean(centred * centred, {1}) * soda::max(q[0], {0}));
  };
  const Params p{soda::randn<double>({4, 4}, gen)};
  CHECK(gradient_error(variance, p) < 1e-6);
  CHECK(hvp_error(variance, p, random_like(p, gen)) < 1e-6);
}
