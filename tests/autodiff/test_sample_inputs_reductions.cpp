// Sample inputs for the reductions and the softmax family (autodiff/ops/reduce.hpp, softmax.hpp):
// every list of axes, keepdim both ways, sum_to from every broadcast, over unit, empty and scalar
// shapes, with the input seen through every view.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <cmath>

#include "sample_inputs.hpp"

namespace soda_test::samples {
namespace {

using Axes = std::vector<std::int64_t>;

struct ReductionCase {
  Shape shape;
  Axes axes;  // empty: every axis
};

// Unit axes reduced and kept, 0-d and 1-d inputs, leading, trailing, middle and split axes, and
// rows of 37 (long enough for the vectorised loops).
const std::vector<ReductionCase> reduction_cases{{{}, {}},
                                                 {{4}, {}},
                                                 {{4}, {0}},
                                                 {{1}, {0}},
                                                 {{2, 3}, {}},
                                                 {{2, 3}, {0}},
                                                 {{2, 3}, {1}},
                                                 {{2, 3}, {-1, 0}},
                                                 {{1, 3}, {0}},
                                                 {{3, 1}, {1}},
                                                 {{3, 1}, {0}},
                                                 {{2, 3, 2}, {}},
                                                 {{2, 3, 2}, {0, 2}},
                                                 {{2, 3, 2}, {1}},
                                                 {{2, 3, 2}, {0, 1}},
                                                 {{2, 1, 3}, {1}},
                                                 {{2, 1, 3}, {0, 2}},
                                                 {{2, 37}, {1}},
                                                 {{2, 37}, {0}},
                                                 {{37, 2}, {}}};

// Reductions over an empty tensor that still have a value: a sum over an empty axis is 0, and
// reducing a non-empty axis of an empty tensor gives an empty result.
const std::vector<ReductionCase> empty_sum_cases{{{0, 3}, {0}}, {{0, 3}, {1}}, {{2, 0}, {1}},
                                                 {{2, 0}, {0}}, {{0}, {}},     {{2, 0, 3}, {0, 2}}};

const std::vector<ReductionCase> empty_mean_and_max_cases{{{0, 3}, {1}}, {{2, 0}, {0}}};

std::string reduction_name(const std::string& op, const Axes& axes, bool keepdim) {
  return op + " axes " + (axes.empty() ? std::string("all") : soda::to_string(axes)) +
         (keepdim ? " keepdim" : "");
}

using Reduction = std::function<Tensor(const Tensor&, Axes, bool)>;

void add_reduction_samples(std::vector<Sample>& out, const std::string& op, const Reduction& f,
                           const std::vector<ReductionCase>& cases, const Draw& draw,
                           const std::vector<View>& excluded) {
  for (const auto& c : cases) {
    for (const bool keepdim : {false, true}) {
      const auto axes = c.axes;
      auto more = unary_samples(
          reduction_name(op, axes, keepdim),
          [f, axes, keepdim](const Tensors& x) { return f(x[0], axes, keepdim); }, {c.shape}, draw,
          excluded);
      out.insert(out.end(), more.begin(), more.end());
    }
  }
}

std::vector<Sample> reduction_samples() {
  const Reduction sum = [](const Tensor& x, Axes a, bool k) { return soda::sum(x, a, k); };
  const Reduction mean = [](const Tensor& x, Axes a, bool k) { return soda::mean(x, a, k); };
  const Reduction max = [](const Tensor& x, Axes a, bool k) { return soda::max(x, a, k); };
  std::vector<Sample> out;
  add_reduction_samples(out, "sum", sum, reduction_cases, normal_values(), {});
  add_reduction_samples(out, "sum", sum, empty_sum_cases, normal_values(), {});
  add_reduction_samples(out, "mean", mean, reduction_cases, normal_values(), {});
  add_reduction_samples(out, "mean", mean, empty_mean_and_max_cases, normal_values(), {});
  // Expanded views repeat values, which would tie maxima: max takes distinct values, unrepeated.
  const std::vector<View> repeating{View::expanded, View::rank_expanded};
  add_reduction_samples(out, "max", max, reduction_cases, distinct_values(), repeating);
  add_reduction_samples(out, "max", max, empty_mean_and_max_cases, distinct_values(), repeating);
  // Repeated along an axis that is kept: no ties within a reduced group.
  out.push_back(make_sample("max axes [1]",
                            {{"x", {2, 3}, View::expanded, false, distinct_values()}},
                            [](const Tensors& x) { return soda::max(x[0], {1}); }));
  out.push_back(make_sample("max axes [-1] keepdim",
                            {{"x", {2, 2, 3}, View::rank_expanded, false, distinct_values()}},
                            [](const Tensors& x) { return soda::max(x[0], {-1}, true); }));
  return out;
}

std::vector<Sample> sum_to_samples() {
  const std::vector<std::pair<Shape, Shape>> cases{{{2, 3}, {3}},
                                                   {{2, 3}, {1, 3}},
                                                   {{2, 3}, {2, 1}},
                                                   {{2, 3}, {1, 1}},
                                                   {{2, 3}, {}},
                                                   {{2, 3}, {2, 3}},
                                                   {{2, 1, 3}, {1, 1, 3}},
                                                   {{2, 1, 3}, {3}},
                                                   {{2, 1, 3}, {2, 1, 1}},
                                                   {{0, 3}, {3}},
                                                   {{0, 3}, {1, 3}},
                                                   {{2, 0}, {2, 1}},
                                                   {{1}, {}},
                                                   {{}, {}}};
  std::vector<Sample> out;
  for (const auto& pair : cases) {
    const auto from = pair.first;
    const auto to = pair.second;  // captured below: no structured binding
    auto more = unary_samples("sum_to " + soda::to_string(to),
                              [to](const Tensors& x) { return soda::sum_to(x[0], to); }, {from});
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

struct AxisCase {
  Shape shape;
  std::int64_t axis;
};

// Each axis of 1-d, 2-d and 3-d inputs, axes of extent 1, and empty inputs whose softmax axis
// is not the empty one.
const std::vector<AxisCase> softmax_cases{
    {{4}, 0},    {{1}, 0},       {{2, 3}, 0},    {{2, 3}, 1},    {{2, 3}, -1},
    {{2, 1}, 1}, {{1, 3}, 0},    {{2, 3, 2}, 0}, {{2, 3, 2}, 1}, {{2, 3, 2}, 2},
    {{0, 3}, 1}, {{2, 0, 3}, 2}, {{2, 0}, 0},    {{2, 37}, 1},   {{37, 2}, 0}};

std::vector<Sample> softmax_samples() {
  std::vector<Sample> out;
  for (const auto& c : softmax_cases) {
    const auto axis = c.axis;
    const std::string along = " axis " + std::to_string(axis);
    auto add = [&](std::vector<Sample> more) { out.insert(out.end(), more.begin(), more.end()); };
    add(unary_samples("softmax" + along,
                      [axis](const Tensors& x) { return soda::softmax(x[0], axis); }, {c.shape}));
    add(unary_samples("log_softmax" + along,
                      [axis](const Tensors& x) { return soda::log_softmax(x[0], axis); },
                      {c.shape}));
    for (const bool keepdim : {false, true}) {
      add(unary_samples(
          "logsumexp" + along + (keepdim ? " keepdim" : ""),
          [axis, keepdim](const Tensors& x) { return soda::logsumexp(x[0], axis, keepdim); },
          {c.shape}));
    }
  }
  // Softmax over an empty axis: nothing to normalise, an empty result.
  for (const auto& shape : {Shape{2, 0}, Shape{0}}) {
    auto more = unary_samples("softmax axis -1",
                              [](const Tensors& x) { return soda::softmax(x[0], -1); }, {shape});
    out.insert(out.end(), more.begin(), more.end());
    more = unary_samples("log_softmax axis -1",
                         [](const Tensors& x) { return soda::log_softmax(x[0], -1); }, {shape});
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

}  // namespace

TEST_CASE("sample inputs: sum, mean and max over every list of axes, keepdim both ways") {
  check_samples(reduction_samples());
}

TEST_CASE("sample inputs: sum_to from every broadcast shape, empty ones included") {
  check_samples(sum_to_samples());
}

TEST_CASE("sample inputs: softmax, log_softmax and logsumexp along every axis") {
  check_samples(softmax_samples());
}

TEST_CASE(
    "sample inputs: logsumexp over an empty axis is -inf, as log(0), with an empty gradient") {
  for (const bool keepdim : {false, true}) {
    INFO("keepdim " << keepdim);
    const auto x = soda::zeros<double>({2, 0});
    const auto y = soda::logsumexp(x, 1, keepdim);
    CHECK(y.shape() == (keepdim ? Shape{2, 1} : Shape{2}));
    for (const double v : values_of(y)) CHECK((std::isinf(v) && v < 0));
    const auto grads = soda::grad(
        [keepdim](const Params& p) { return soda::sum(soda::logsumexp(p[0], 1, keepdim)); },
        Params{x});
    CHECK(grads[0].shape() == Shape{2, 0});
  }
}

TEST_CASE("sample inputs: reductions without a value over an empty axis refuse, naming the shape") {
  const auto x = soda::ones<double>({2, 0});
  check_rejections<soda::ValueError>({
      {"mean over an empty axis", [&] { (void)soda::mean(x, {1}); }, {"mean", "[2, 0]"}},
      {"max over an empty axis", [&] { (void)soda::max(x, {1}); }, {"max", "[2, 0]"}},
      {"mean of an empty tensor",
       [&] { (void)soda::mean(soda::ones<double>({0})); },
       {"mean", "[0]"}},
      // A 0-d tensor has no axis to normalise along.
      {"softmax of a 0-d tensor",
       [] { (void)soda::softmax(soda::ones<double>({})); },
       {"softmax", "rank 0"}},
      {"logsumexp of a 0-d tensor",
       [] { (void)soda::logsumexp(soda::ones<double>({})); },
       {"logsumexp", "rank 0"}},
  });
}

TEST_CASE("sample inputs: sum_to refuses a shape that does not broadcast to the input") {
  const auto x = soda::ones<double>({2, 3});
  check_rejections({
      {"sum_to [4]", [&] { (void)soda::sum_to(x, {4}); }, {"sum_to", "[2, 3]", "[4]"}},
      {"sum_to a higher rank",
       [&] {
         (void)soda::sum_to(x, {1, 2, 3});
       },
       {"sum_to", "[2, 3]", "[1, 2, 3]"}},
  });
}

TEST_CASE("sample inputs: reductions and the softmax family read a broadcast gradient") {
  check_samples(summed_samples(reduction_samples()));
  check_samples(summed_samples(sum_to_samples()));
  check_samples(summed_samples(softmax_samples()));
}

}  // namespace soda_test::samples
