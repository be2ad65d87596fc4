// Sample inputs for the element-wise ops (autodiff/ops/unary.hpp, arithmetic.hpp): every unary
// function and every broadcasting binary op over unit, empty and scalar shapes, each operand
// broadcast in turn, seen through every view, as a parameter and as a constant.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "sample_inputs.hpp"

namespace soda_test::samples {
namespace {

// [2, 37]: rows long enough for the vectorised loops (4 lanes of up to 8 doubles, and a tail).
const std::vector<Shape> elementwise_shapes{
    {}, {1}, {4}, {0}, {1, 3}, {3, 1}, {2, 3}, {1, 2, 3}, {2, 1, 3}, {2, 3, 1}, {2, 0, 3}, {2, 37}};

struct UnaryFunction {
  std::string name;
  Body body;
  Draw draw;
};

std::vector<UnaryFunction> unary_functions() {
  auto one = [](auto f) { return [f](const Tensors& x) { return f(x[0]); }; };
  return {
      {"neg", one([](const Tensor& x) { return soda::neg(x); }), normal_values()},
      {"exp", one([](const Tensor& x) { return soda::exp(x); }), normal_values()},
      {"log", one([](const Tensor& x) { return soda::log(x); }), positive_values()},
      {"sqrt", one([](const Tensor& x) { return soda::sqrt(x); }), positive_values()},
      {"tanh", one([](const Tensor& x) { return soda::tanh(x); }), normal_values()},
      {"sigmoid", one([](const Tensor& x) { return soda::sigmoid(x); }), normal_values()},
      {"relu", one([](const Tensor& x) { return soda::relu(x); }), values_avoiding({0})},
      {"abs", one([](const Tensor& x) { return soda::abs(x); }), values_avoiding({0})},
      {"square", one([](const Tensor& x) { return soda::square(x); }), normal_values()},
      {"pow 3", one([](const Tensor& x) { return soda::pow(x, 3.0); }), normal_values()},
      {"pow 1", one([](const Tensor& x) { return soda::pow(x, 1.0); }), normal_values()},
      {"pow 2.5", one([](const Tensor& x) { return soda::pow(x, 2.5); }), positive_values()},
      {"pow -1", one([](const Tensor& x) { return soda::pow(x, -1.0); }), positive_values()},
      {"clamp [-0.5, 0.8]", one([](const Tensor& x) { return soda::clamp(x, -0.5, 0.8); }),
       values_avoiding({-0.5, 0.8})},
  };
}

struct BinaryFunction {
  std::string name;
  Body body;
  Draw draw_a, draw_b;
};

std::vector<BinaryFunction> binary_functions() {
  auto two = [](auto f) { return [f](const Tensors& x) { return f(x[0], x[1]); }; };
  return {
      {"add", two([](const Tensor& a, const Tensor& b) { return soda::add(a, b); }),
       normal_values(), normal_values()},
      {"sub", two([](const Tensor& a, const Tensor& b) { return soda::sub(a, b); }),
       normal_values(), normal_values()},
      {"mul", two([](const Tensor& a, const Tensor& b) { return soda::mul(a, b); }),
       normal_values(), normal_values()},
      {"div", two([](const Tensor& a, const Tensor& b) { return soda::div(a, b); }),
       normal_values(), positive_values()},
      {"maximum", two([](const Tensor& a, const Tensor& b) { return soda::maximum(a, b); }),
       lattice_values(0.3), lattice_values(0.7)},
      {"minimum", two([](const Tensor& a, const Tensor& b) { return soda::minimum(a, b); }),
       lattice_values(0.3), lattice_values(0.7)},
  };
}

// Pairs of operand shapes: equal, each side rank-extended, each side a 0-d scalar, both sides
// broadcast, unit extents and empty extents.
const std::vector<std::pair<Shape, Shape>> binary_shapes{
    {{2, 3}, {2, 3}}, {{2, 3}, {3}},     {{3}, {2, 3}},    {{2, 3}, {}},  {{}, {2, 3}},
    {{}, {}},         {{2, 1}, {1, 3}},  {{2, 3}, {2, 1}}, {{1}, {2, 3}}, {{2, 1, 3}, {4, 1}},
    {{1, 1}, {1}},    {{0, 3}, {3}},     {{2, 0}, {2, 1}}, {{0}, {}},     {{1, 0}, {3, 1}},
    {{2, 37}, {37}},  {{2, 37}, {2, 1}}, {{}, {2, 37}}};

// Shapes on which each operand is also a constant, in every view.
const std::vector<std::pair<Shape, Shape>> constant_shapes{
    {{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{2, 1, 3}, {4, 1}}};

std::vector<Sample> binary_samples(const BinaryFunction& f) {
  std::vector<Sample> out;
  auto add = [&](const Shape& a, View va, bool ca, const Shape& b, View vb, bool cb) {
    out.push_back(
        make_sample(f.name, {{"a", a, va, ca, f.draw_a}, {"b", b, vb, cb, f.draw_b}}, f.body));
  };
  for (const auto& [a, b] : binary_shapes) {
    for (const auto view : views_for(a)) add(a, view, false, b, View::contiguous, false);
    for (const auto view : views_for(b, {View::contiguous}))
      add(a, View::contiguous, false, b, view, false);
  }
  for (const auto& [a, b] : constant_shapes) {
    for (const auto view : views_for(a)) add(a, view, true, b, View::stepped, false);
    for (const auto view : views_for(b)) add(a, View::stepped, false, b, view, true);
  }
  return out;
}

Draw mask_values() {
  return [](const Shape& shape, soda::Generator& gen) {
    return soda::randint<std::int64_t>(shape, gen, 0, 2).to<double>();
  };
}

std::vector<Sample> where_samples() {
  const auto body = [](const Tensors& x) { return soda::where(x[0], x[1], x[2]); };
  const std::vector<std::vector<Shape>> shapes{
      {{2, 3}, {2, 3}, {2, 3}}, {{2, 1}, {1, 3}, {3}},    {{3}, {2, 3}, {}},
      {{}, {2, 3}, {2, 3}},     {{2, 3}, {}, {}},         {{0, 3}, {3}, {1}},
      {{2, 1, 3}, {4, 1}, {3}}, {{1, 1}, {2, 1}, {1, 4}}, {{2, 3, 1}, {2, 3, 2}, {2, 1, 2}}};
  std::vector<Sample> out;
  for (const auto& s : shapes) {
    for (const auto view : views_for(s[0])) {
      out.push_back(make_sample("where",
                                {{"condition", s[0], view, true, mask_values()},
                                 {"a", s[1]},
                                 {"b", s[2], View::contiguous, false, normal_values()}},
                                body));
    }
    for (const auto view : views_for(s[1], {View::contiguous})) {
      out.push_back(make_sample("where",
                                {{"condition", s[0], View::contiguous, true, mask_values()},
                                 {"a", s[1], view},
                                 {"b", s[2]}},
                                body));
    }
    for (const auto view : views_for(s[2], {View::contiguous})) {
      out.push_back(make_sample("where",
                                {{"condition", s[0], View::contiguous, true, mask_values()},
                                 {"a", s[1], View::contiguous, true},
                                 {"b", s[2], view}},
                                body));
    }
  }
  return out;
}

// One parameter used as both operands (its gradient gathers from both roles).
std::vector<Sample> repeated_operand_samples() {
  return {
      make_sample("x * x", {{"x", {2, 3}}}, [](const Tensors& x) { return x[0] * x[0]; }),
      make_sample("x * xT", {{"x", {3, 3}}},
                  [](const Tensors& x) { return x[0] * soda::transpose(x[0], 0, 1); }),
      make_sample("x / (x[0] + 3)", {{"x", {2, 3}, View::stepped}},
                  [](const Tensors& x) { return x[0] / (soda::select(x[0], 0, 0) + 3.0); }),
      make_sample(
          "maximum(x, xT)", {{"x", {3, 3}, View::contiguous, false, distinct_values()}},
          [](const Tensors& x) { return soda::maximum(x[0], soda::transpose(x[0], 0, 1)); }),
      make_sample("2 - x / 4 + x", {{"x", {}}},
                  [](const Tensors& x) { return 2.0 - x[0] / 4.0 + x[0]; }),
  };
}

}  // namespace

TEST_CASE("sample inputs: every unary function over unit, empty and scalar shapes and views") {
  for (const auto& f : unary_functions()) {
    check_samples(unary_samples(f.name, f.body, elementwise_shapes, f.draw));
  }
}

TEST_CASE("sample inputs: binary arithmetic broadcasts each operand, in every view") {
  for (const auto& f : binary_functions()) check_samples(binary_samples(f));
}

TEST_CASE("sample inputs: where broadcasts its condition and both operands, in every view") {
  check_samples(where_samples());
}

TEST_CASE("sample inputs: one parameter in both operands of a binary op") {
  check_samples(repeated_operand_samples());
}

TEST_CASE("sample inputs: element-wise ops read a broadcast gradient") {
  for (const auto& f : unary_functions()) {
    check_samples(summed_samples(unary_samples(f.name, f.body, elementwise_shapes, f.draw)));
  }
  for (const auto& f : binary_functions()) check_samples(summed_samples(binary_samples(f)));
  check_samples(summed_samples(where_samples()));
}

}  // namespace soda_test::samples
