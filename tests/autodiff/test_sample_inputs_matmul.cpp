// Sample inputs for matmul (autodiff/ops/matmul.hpp) and the nn-level functions built on it:
// every matrix extent 1 in turn (a one-wide Linear head, a width-1 input), batch 1, broadcast
// batches, empty extents, each operand in every view and as a constant, and products large enough
// that Eigen hands them to OpenBLAS (m + n + k >= 20), where a bad leading dimension shows.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "sample_inputs.hpp"

namespace soda_test::samples {
namespace {

const Body matmul_body = [](const Tensors& x) { return soda::matmul(x[0], x[1]); };

// Operand shapes: m, k and n of 1 in every combination, batches, empty extents, BLAS sizes.
const std::vector<std::pair<Shape, Shape>> matmul_shapes{
    {{3, 4}, {4, 5}},           // plain
    {{1, 4}, {4, 5}},           // m = 1
    {{3, 1}, {1, 5}},           // k = 1
    {{3, 4}, {4, 1}},           // n = 1
    {{1, 1}, {1, 5}},           // m = k = 1
    {{3, 1}, {1, 1}},           // k = n = 1
    {{1, 4}, {4, 1}},           // m = n = 1: a dot product
    {{1, 1}, {1, 1}},           // m = k = n = 1
    {{8, 6}, {6, 1}},           // a one-wide Linear head [B, k] @ [k, 1]
    {{8, 1}, {1, 6}},           // a width-1 input [B, 1] @ [1, h]
    {{1, 3, 4}, {1, 4, 5}},     // batch 1
    {{2, 3, 4}, {2, 4, 5}},     // batched
    {{2, 3, 4}, {4, 5}},        // a batch against a matrix
    {{3, 4}, {2, 4, 5}},        // a matrix against a batch
    {{1, 3, 4}, {2, 4, 5}},     // a batch of 1 broadcast
    {{2, 1, 3, 4}, {3, 4, 2}},  // batch axes broadcast on both sides
    {{2, 1, 4}, {4, 5}},        // m = 1 in a batch (rows fold)
    {{2, 3, 1}, {2, 1, 5}},     // k = 1 in a batch
    {{2, 3, 4}, {2, 4, 1}},     // n = 1 in a batch
    {{2, 1, 4}, {2, 4, 1}},     // m = n = 1 in a batch
    {{0, 4}, {4, 5}},           // empty m
    {{3, 0}, {0, 5}},           // empty k: zeros
    {{3, 4}, {4, 0}},           // empty n
    {{0, 3, 4}, {4, 5}},        // empty batch
    {{1, 3, 4}, {0, 4, 5}},     // a batch of 1 broadcast to an empty batch
    {{33, 17}, {17, 40}},       // BLAS
    {{1, 40}, {40, 33}},        // BLAS with m = 1
    {{40, 33}, {33, 1}},        // BLAS with n = 1
    {{33, 1}, {1, 40}},         // BLAS with k = 1
    {{2, 20, 17}, {17, 12}},    // BLAS, batched, rows folded
    {{2, 1, 30}, {2, 30, 9}},   // BLAS, batched, m = 1
};

// Shapes whose operands also go through every view, as parameters and as constants.
const std::vector<std::pair<Shape, Shape>> matmul_view_shapes{
    {{3, 4}, {4, 5}},       {{1, 4}, {4, 5}},     {{3, 1}, {1, 5}},
    {{3, 4}, {4, 1}},       {{8, 6}, {6, 1}},     {{2, 3, 4}, {4, 5}},
    {{2, 1, 4}, {2, 4, 1}}, {{33, 17}, {17, 40}}, {{1, 40}, {40, 33}}};

std::vector<Sample> matmul_samples() {
  std::vector<Sample> out;
  auto add = [&](const Shape& a, View va, bool ca, const Shape& b, View vb, bool cb) {
    out.push_back(make_sample("matmul", {{"a", a, va, ca}, {"b", b, vb, cb}}, matmul_body));
  };
  for (const auto& [a, b] : matmul_shapes) {
    add(a, View::contiguous, false, b, View::contiguous, false);
    // Both operands read column-major: the backward pass's transposes, in the forward pass.
    if (layout_for(View::transposed, a) && layout_for(View::transposed, b))
      add(a, View::transposed, false, b, View::transposed, false);
  }
  for (const auto& [a, b] : matmul_view_shapes) {
    for (const auto view : views_for(a, {View::contiguous})) {
      add(a, view, false, b, View::contiguous, false);
      add(a, view, true, b, View::contiguous, false);
    }
    for (const auto view : views_for(b, {View::contiguous})) {
      add(a, View::contiguous, false, b, view, false);
      add(a, View::contiguous, false, b, view, true);
    }
  }
  // One parameter in both roles.
  out.push_back(make_sample("x @ xT", {{"x", {1, 4}}}, [](const Tensors& x) {
    return soda::matmul(x[0], soda::transpose(x[0], 0, 1));
  }));
  out.push_back(make_sample("xT @ x", {{"x", {5, 1}}}, [](const Tensors& x) {
    return soda::matmul(soda::transpose(x[0], 0, 1), x[0]);
  }));
  return out;
}

// y = x Wᵀ + b, as nn::Linear computes it (the weight [out, in] read transposed, in place).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return soda::matmul(x, soda::transpose(weight, 0, 1)) + bias;
}

// Two-layer tanh MLPs in the shapes a one-wide layer takes: a regression head, a width-1 input,
// a width-1 hidden layer, batch 1, and the README's [64, 10] -> 32 -> 1 example.
std::vector<Sample> mlp_samples() {
  struct MlpShape {
    std::int64_t batch, in, hidden, out;
  };
  const std::vector<MlpShape> shapes{{8, 3, 4, 1}, {8, 1, 4, 2}, {8, 3, 1, 2},
                                     {1, 3, 4, 2}, {1, 1, 1, 1}, {64, 10, 32, 1}};
  const Body mlp = [](const Tensors& p) {
    return linear(soda::tanh(linear(p[0], p[1], p[2])), p[3], p[4]);
  };
  std::vector<Sample> out;
  for (const auto& s : shapes) {
    out.push_back(make_sample("tanh MLP",
                              {{"x", {s.batch, s.in}, View::contiguous, true},
                               {"w1", {s.hidden, s.in}},
                               {"b1", {s.hidden}},
                               {"w2", {s.out, s.hidden}},
                               {"b2", {s.out}}},
                              mlp));
  }
  return out;
}

// nn-level losses and normalisation at batch 1, one class, one output.
std::vector<Sample> nn_function_samples() {
  std::vector<Sample> out;
  for (const auto& [batch, classes] :
       std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 1}, {1, 3}, {4, 1}, {4, 3}}) {
    soda::Generator gen(static_cast<std::uint64_t>(batch * 10 + classes));
    const auto labels = soda::randint<std::int64_t>({batch}, gen, 0, classes);
    for (const double smoothing : {0.0, 0.1}) {
      out.push_back(make_sample("cross_entropy labels " + soda::to_string(labels.shape()) +
                                    " smoothing " + std::to_string(smoothing),
                                {{"logits", {batch, classes}, View::transposed}},
                                [labels, smoothing](const Tensors& x) {
                                  return soda::nn::cross_entropy(x[0], labels, smoothing);
                                }));
    }
  }
  for (const Shape& shape : {Shape{1, 1}, Shape{4, 1}, Shape{1}, Shape{2, 3}}) {
    for (const auto view : views_for(shape)) {
      out.push_back(make_sample(
          "mse_loss", {{"prediction", shape, view}, {"target", shape, View::contiguous, true}},
          [](const Tensors& x) { return soda::nn::mse_loss(x[0], x[1]); }));
    }
  }
  for (const Shape& shape : {Shape{4, 3}, Shape{2, 1, 3}, Shape{1, 2, 2, 2}}) {
    const Shape channels{shape[1]};
    out.push_back(
        make_sample("batch_norm training", {{"x", shape}, {"weight", channels}, {"bias", channels}},
                    [](const Tensors& x) {
                      return soda::nn::batch_norm(x[0], x[1], x[2], Tensor{}, Tensor{}, true);
                    }));
  }
  return out;
}

}  // namespace

TEST_CASE("sample inputs: matmul with every extent 1, batches, empty extents, views and BLAS") {
  check_samples(matmul_samples());
}

TEST_CASE("sample inputs: tanh MLPs with a one-wide layer, batch 1 and the README's example") {
  check_samples(mlp_samples());
}

TEST_CASE("sample inputs: cross_entropy, mse_loss and batch_norm at batch 1 and one class") {
  check_samples(nn_function_samples());
}

TEST_CASE("sample inputs: matmul refuses empty operands whose inner extents disagree") {
  check_rejections({
      {"[0, 3] @ [4, 5]",
       [] {
         (void)soda::matmul(soda::ones<double>({0, 3}), soda::ones<double>({4, 5}));
       },
       {"matmul", "[0, 3]", "[4, 5]"}},
      {"[2, 3, 4] @ [0, 4, 5]",
       [] {
         (void)soda::matmul(soda::ones<double>({2, 3, 4}), soda::ones<double>({0, 4, 5}));
       },
       {"matmul", "[2, 3, 4]", "[0, 4, 5]"}},
  });
}

TEST_CASE("sample inputs: matmul reads a broadcast gradient") {
  check_samples(summed_samples(matmul_samples()));
}

}  // namespace soda_test::samples
