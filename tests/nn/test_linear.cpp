// soda/nn/linear.hpp: values against a scalar loop, any leading batch dims, PyTorch's default
// initialisation, state-dict names, exact gradients and H·v through the module's own parameters
// (train and eval mode), and every error path.
#include <doctest/doctest.h>
#include <soda/nn/linear.hpp>
#include <soda/soda.hpp>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../autodiff/checks.hpp"

using namespace soda_test;
using soda::Shape;

namespace {

// y[..., o] = Σ_i x[..., i] W[o, i] + b[o], by scalar loops.
Tensor naive_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const auto in = weight.shape()[1], out = weight.shape()[0];
  const auto xc = copy_of(x), wc = copy_of(weight);
  const auto rows = x.numel() / in;
  Shape shape = x.shape();
  shape.back() = out;
  auto y = soda::zeros<double>(shape);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t o = 0; o < out; ++o) {
      double s = bias.defined() ? copy_of(bias).data()[o] : 0.0;
      for (std::int64_t i = 0; i < in; ++i) s += xc.data()[r * in + i] * wc.data()[o * in + i];
      y.data()[r * out + o] = s;
    }
  }
  return y;
}
}  // namespace

TEST_SUITE("nn/linear") {
  TEST_CASE("Linear computes x·Wᵀ + b over the last axis, for any leading batch dims") {
    soda::Generator gen(1);
    soda::nn::Linear<double> layer(5, 3, gen);
    for (const Shape& shape : {Shape{4, 5}, Shape{2, 3, 5}, Shape{2, 1, 3, 5}, Shape{1, 5}}) {
      INFO("input shape " << soda::to_string(shape));
      const auto x = normal(shape, 2);
      const auto y = layer(x);
      Shape expected = shape;
      expected.back() = 3;
      CHECK(y.shape() == expected);
      CHECK(relative_error(naive_linear(x, layer.weight(), layer.bias()), y) < 1e-14);
    }
  }

  TEST_CASE("a 1-D input [in] gives [out], as PyTorch") {
    soda::Generator gen(1);
    soda::nn::Linear<double> layer(4, 2, gen);
    const auto x = normal({4}, 3);
    const auto y = layer(x);
    CHECK(y.shape() == Shape{2});
    CHECK(relative_error(naive_linear(soda::reshape(x, {1, 4}), layer.weight(), layer.bias()),
                         soda::reshape(y, {1, 2})) < 1e-14);
  }

  TEST_CASE("a non-contiguous input gives the same values as its contiguous copy") {
    soda::Generator gen(1);
    soda::nn::Linear<double> layer(4, 3, gen);
    const auto x = soda::transpose(normal({4, 6}, 4), 0, 1);  // [6, 4], strided
    REQUIRE_FALSE(x.is_contiguous());
    CHECK(relative_error(layer(copy_of(x)), layer(x)) < 1e-15);
  }

  TEST_CASE("without bias the layer is x·Wᵀ and has only a weight") {
    soda::Generator gen(1);
    soda::nn::Linear<double> layer(5, 3, false, gen);
    CHECK_FALSE(layer.bias().defined());
    CHECK(names_of(layer.named_parameters()) == std::vector<std::string>{"weight"});
    const auto x = normal({4, 5}, 5);
    CHECK(relative_error(naive_linear(x, layer.weight(), Tensor{}), layer(x)) < 1e-14);
  }

  TEST_CASE("state-dict names, shapes and counts are PyTorch's") {
    soda::Generator gen(1);
    soda::nn::Linear<double> layer(7, 4, gen);
    CHECK(layer.type_name() == "Linear");
    CHECK(names_of(layer.state_dict()) == std::vector<std::string>{"weight", "bias"});
    CHECK(names_of(layer.named_parameters()) == std::vector<std::string>{"weight", "bias"});
    CHECK(layer.named_buffers().empty());
    CHECK(layer.weight().shape() == Shape{4, 7});
    CHECK(layer.bias().shape() == Shape{4});
    CHECK(layer.parameter_count() == 7 * 4 + 4);
    CHECK(layer.in_features() == 7);
    CHECK(layer.out_features() == 4);
    // The registered tensors are the ones forward computes with (same handles).
    CHECK(layer.parameters()[0].impl() == layer.weight().impl());
    CHECK(layer.parameters()[1].impl() == layer.bias().impl());
    CHECK(layer.weight().requires_grad());
    CHECK(layer.bias().requires_grad());
  }

  TEST_CASE("default initialisation is U(±1/√in_features) for weight and bias") {
    soda::Generator gen(2);
    soda::nn::Linear<float> layer(400, 1000, gen);
    const double bound = 1.0 / std::sqrt(400.0);
    for (const auto& p : layer.parameters()) check_uniform_draws(p.to<double>(), bound);
  }

  TEST_CASE("initialisation depends only on the generator: weight first, then bias") {
    soda::Generator a(9), b(9), c(10);
    soda::nn::Linear<float> first(6, 5, a), same(6, 5, b), other(6, 5, c);
    CHECK(soda::max_abs_difference(first.weight(), same.weight()) == 0);
    CHECK(soda::max_abs_difference(first.bias(), same.bias()) == 0);
    CHECK(soda::max_abs_difference(first.weight(), other.weight()) > 0);
    // The same draws by hand, in PyTorch's order.
    soda::Generator manual(9);
    const auto w =
        soda::nn::kaiming_uniform_(soda::Tensor<float>::empty({5, 6}), manual, std::sqrt(5.0));
    const auto bias = soda::nn::uniform_(soda::Tensor<float>::empty({5}), manual,
                                         -1 / std::sqrt(6.0), 1 / std::sqrt(6.0));
    CHECK(soda::max_abs_difference(first.weight(), w) == 0);
    CHECK(soda::max_abs_difference(first.bias(), bias) == 0);
  }

  TEST_CASE("gradients and H·v through the module's parameters and input are exact") {
    for (const bool training : {true, false}) {
      for (const bool bias : {true, false}) {
        INFO("training " << training << ", bias " << bias);
        soda::Generator gen(3);
        soda::nn::Linear<double> layer(4, 3, bias, gen);
        layer.train(training);
        const auto x = normal({2, 5, 4}, 4);
        const CurvedLoss loss({2, 5, 3}, 5);
        auto f = [&] { return loss(layer(x)); };
        Params params = layer.parameters();
        params.push_back(x);
        check_closure_derivatives(f, params, 6, 1e-7, 1e-7);
      }
    }
  }

  TEST_CASE("as a function of its input the layer passes every check of SODA_CHECK_OP") {
    soda::Generator gen(7);
    soda::nn::Linear<double> layer(3, 2, gen);
    for (const bool training : {true, false}) {
      INFO("training " << training);
      layer.train(training);
      // J·v, stacked tangents (apply_many) and the trace replay, with the weights as constants.
      SODA_CHECK_OP([&](const Params& q) { return layer(q[0]); }, {normal({4, 3}, 8)});
      SODA_CHECK_OP([&](const Params& q) { return soda::tanh(layer(q[0])); },
                    {normal({2, 4, 3}, 9)});
    }
  }

  TEST_CASE("soda::backward accumulates into the parameters' grad, as loss.backward()") {
    soda::Generator gen(8);
    soda::nn::Linear<double> layer(3, 2, gen);
    const auto x = normal({5, 3}, 9);
    soda::backward(soda::sum(layer(x)));
    // d/dW Σ (x Wᵀ + b) = column sums of x per output row; d/db = batch size.
    const auto gw = copy_of(layer.weight().grad());
    for (std::int64_t o = 0; o < 2; ++o) {
      for (std::int64_t i = 0; i < 3; ++i) {
        double column = 0;
        for (std::int64_t r = 0; r < 5; ++r) column += x.at({r, i});
        CHECK(gw.at({o, i}) == doctest::Approx(column).epsilon(1e-14));
      }
    }
    CHECK(layer.bias().grad().at({0}) == doctest::Approx(5.0));
    layer.zero_grad();
    CHECK_FALSE(layer.weight().grad().defined());
  }

  TEST_CASE("errors name the layer, the input shape and the weight shape") {
    soda::Generator gen(1);
    soda::nn::Linear<double> layer(4, 3, gen);
    CHECK_THROWS_WITH_AS(layer(normal({2, 5}, 1)),
                         "Linear(in_features=4, out_features=3, bias=true): input of shape [2, 5] "
                         "does not end in in_features = 4 (weight shape [3, 4])",
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(layer(Tensor::scalar(1.0)),
                         doctest::Contains("input of shape [] does not end in in_features = 4"),
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(soda::nn::Linear<double>(0, 3, gen),
                         "Linear(in_features=0, out_features=3, bias=true): in_features and "
                         "out_features must be positive",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(soda::nn::Linear<double>(4, -1, false, gen),
                         doctest::Contains("Linear(in_features=4, out_features=-1, bias=false)"),
                         soda::ValueError);
  }
}
