// soda/nn/conv2d.hpp: values against a direct 7-loop convolution (strides, padding, rectangular
// kernels, unbatched input), PyTorch's default initialisation, state-dict names, exact gradients
// and H·v through the module's own parameters (train and eval mode), and every error path.
#include <doctest/doctest.h>
#include <soda/nn/conv2d.hpp>
#include <soda/soda.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../autodiff/checks.hpp"

using namespace soda_test;
using soda::Shape;
using soda::Size2d;
using soda::nn::Conv2d;
using soda::nn::Conv2dOptions;

namespace {

// y[n, o, i, j] = b[o] + Σ_{c, p, q} x[n, c, i·s − pad + p, j·s − pad + q] W[o, c, p, q], with
// zeros outside x: the definition, looped.
Tensor naive_conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2d stride,
                    Size2d padding) {
  const auto xc = copy_of(x), wc = copy_of(weight);
  const std::int64_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  const std::int64_t o = weight.shape()[0], kh = weight.shape()[2], kw = weight.shape()[3];
  const std::int64_t ho = (h + 2 * padding.h - kh) / stride.h + 1;
  const std::int64_t wo = (w + 2 * padding.w - kw) / stride.w + 1;
  auto y = soda::zeros<double>({n, o, ho, wo});
  for (std::int64_t b = 0; b < n; ++b)
    for (std::int64_t oc = 0; oc < o; ++oc)
      for (std::int64_t i = 0; i < ho; ++i)
        for (std::int64_t j = 0; j < wo; ++j) {
          double s = bias.defined() ? copy_of(bias).data()[oc] : 0.0;
          for (std::int64_t ic = 0; ic < c; ++ic)
            for (std::int64_t p = 0; p < kh; ++p)
              for (std::int64_t q = 0; q < kw; ++q) {
                const std::int64_t r = i * stride.h - padding.h + p;
                const std::int64_t col = j * stride.w - padding.w + q;
                if (r < 0 || r >= h || col < 0 || col >= w) continue;
                s += xc.data()[((b * c + ic) * h + r) * w + col] *
                     wc.data()[((oc * c + ic) * kh + p) * kw + q];
              }
          y.data()[((b * o + oc) * ho + i) * wo + j] = s;
        }
  return y;
}
}  // namespace

TEST_SUITE("nn/conv2d") {
  TEST_CASE("Conv2d computes the convolution plus a per-channel bias, for strides and padding") {
    struct Case {
      std::int64_t in, out;
      Size2d kernel, stride, padding;
      Shape input;
    };
    const std::vector<Case> cases{{3, 4, 3, 1, 1, {2, 3, 6, 5}},
                                  {2, 5, 3, 2, 1, {2, 2, 7, 8}},
                                  {1, 2, {2, 3}, {2, 1}, {0, 1}, {3, 1, 5, 6}},
                                  {4, 3, 1, 1, 0, {2, 4, 3, 3}},
                                  {2, 2, 5, 1, 2, {1, 2, 5, 5}},
                                  {3, 2, {3, 1}, 3, 0, {2, 3, 9, 4}}};
    for (const auto& k : cases) {
      INFO("input " << soda::to_string(k.input) << ", kernel " << k.kernel.h << "x" << k.kernel.w
                    << ", stride " << k.stride.h << "x" << k.stride.w << ", padding " << k.padding.h
                    << "x" << k.padding.w);
      soda::Generator gen(1);
      Conv2d<double> layer(k.in, k.out, k.kernel, gen, {k.stride, k.padding});
      const auto x = normal(k.input, 2);
      const auto expected = naive_conv2d(x, layer.weight(), layer.bias(), k.stride, k.padding);
      const auto y = layer(x);
      CHECK(y.shape() == expected.shape());
      CHECK(relative_error(expected, y) < 1e-13);
    }
  }

  TEST_CASE("an unbatched input [C, H, W] gives [O, Ho, Wo], as PyTorch") {
    soda::Generator gen(1);
    Conv2d<double> layer(2, 3, 3, gen, {.padding = 1});
    const auto x = normal({2, 4, 5}, 3);
    const auto y = layer(x);
    CHECK(y.shape() == Shape{3, 4, 5});
    CHECK(relative_error(layer(soda::reshape(x, {1, 2, 4, 5})), soda::reshape(y, {1, 3, 4, 5})) ==
          0);
  }

  TEST_CASE("without bias the layer is the bare convolution and has only a weight") {
    soda::Generator gen(1);
    Conv2d<double> layer(2, 3, 3, gen, {.stride = 2, .bias = false});
    CHECK_FALSE(layer.bias().defined());
    CHECK(names_of(layer.state_dict()) == std::vector<std::string>{"weight"});
    const auto x = normal({2, 2, 7, 7}, 4);
    CHECK(relative_error(naive_conv2d(x, layer.weight(), Tensor{}, 2, 0), layer(x)) < 1e-13);
  }

  TEST_CASE("state-dict names, shapes and accessors are PyTorch's") {
    soda::Generator gen(1);
    Conv2d<double> layer(3, 8, {3, 5}, gen, {.stride = {1, 2}, .padding = {1, 2}});
    CHECK(layer.type_name() == "Conv2d");
    CHECK(names_of(layer.state_dict()) == std::vector<std::string>{"weight", "bias"});
    CHECK(layer.named_buffers().empty());
    CHECK(layer.weight().shape() == Shape{8, 3, 3, 5});
    CHECK(layer.bias().shape() == Shape{8});
    CHECK(layer.parameter_count() == 8 * 3 * 3 * 5 + 8);
    CHECK(layer.in_channels() == 3);
    CHECK(layer.out_channels() == 8);
    CHECK(layer.kernel_size() == Size2d{3, 5});
    CHECK(layer.stride() == Size2d{1, 2});
    CHECK(layer.padding() == Size2d{1, 2});
    CHECK(layer.parameters()[0].impl() == layer.weight().impl());
    CHECK(layer.parameters()[1].impl() == layer.bias().impl());
    CHECK(layer.weight().requires_grad());
    CHECK(layer.bias().requires_grad());
  }

  TEST_CASE("braced options keep PyTorch's defaults for the fields they leave out") {
    // Guards the by-reference options: GCC 12 with AVX-512 built {.stride = 2} as padding 2 when
    // the struct was a by-value argument.
    soda::Generator gen(1);
    Conv2d<float> plain(3, 4, 3, gen);
    CHECK(plain.stride() == Size2d{1, 1});
    CHECK(plain.padding() == Size2d{0, 0});
    CHECK(plain.bias().defined());
    Conv2d<float> strided(3, 4, 3, gen, {.stride = 2});
    CHECK(strided.stride() == Size2d{2, 2});
    CHECK(strided.padding() == Size2d{0, 0});
    CHECK(strided.bias().defined());
    Conv2d<float> padded(3, 4, 3, gen, {.padding = 2});
    CHECK(padded.stride() == Size2d{1, 1});
    CHECK(padded.padding() == Size2d{2, 2});
  }

  TEST_CASE("the positional constructor is the options constructor") {
    soda::Generator a(5), b(5);
    Conv2d<float> positional(3, 4, 3, 2, 1, false, a);
    Conv2d<float> with_options(3, 4, 3, b, {.stride = 2, .padding = 1, .bias = false});
    CHECK(positional.stride() == with_options.stride());
    CHECK(positional.padding() == with_options.padding());
    CHECK_FALSE(positional.bias().defined());
    CHECK(soda::max_abs_difference(positional.weight(), with_options.weight()) == 0);
  }

  TEST_CASE("default initialisation is U(±1/√(C·kh·kw)) for weight and bias") {
    soda::Generator gen(2);
    Conv2d<float> layer(16, 2048, {3, 2}, gen);
    const double bound = 1.0 / std::sqrt(16.0 * 3 * 2);
    for (const auto& p : layer.parameters()) check_uniform_draws(p.to<double>(), bound);
  }

  TEST_CASE("initialisation depends only on the generator: weight first, then bias") {
    soda::Generator a(9), b(9), c(10);
    Conv2d<float> first(3, 4, 3, a), same(3, 4, 3, b), other(3, 4, 3, c);
    CHECK(soda::max_abs_difference(first.weight(), same.weight()) == 0);
    CHECK(soda::max_abs_difference(first.bias(), same.bias()) == 0);
    CHECK(soda::max_abs_difference(first.weight(), other.weight()) > 0);
    soda::Generator manual(9);
    const auto w = soda::nn::kaiming_uniform_(soda::Tensor<float>::empty({4, 3, 3, 3}), manual,
                                              std::sqrt(5.0));
    const auto bias = soda::nn::uniform_(soda::Tensor<float>::empty({4}), manual,
                                         -1 / std::sqrt(27.0), 1 / std::sqrt(27.0));
    CHECK(soda::max_abs_difference(first.weight(), w) == 0);
    CHECK(soda::max_abs_difference(first.bias(), bias) == 0);
  }

  TEST_CASE("gradients and H·v through the module's parameters and input are exact") {
    for (const bool training : {true, false}) {
      for (const bool bias : {true, false}) {
        INFO("training " << training << ", bias " << bias);
        soda::Generator gen(3);
        Conv2d<double> layer(2, 3, 3, gen, {.stride = 2, .padding = 1, .bias = bias});
        layer.train(training);
        const auto x = normal({2, 2, 5, 4}, 4);
        const CurvedLoss loss({2, 3, 3, 2}, 5);
        auto f = [&] { return loss(layer(x)); };
        Params params = layer.parameters();
        params.push_back(x);
        check_closure_derivatives(f, params, 6, 1e-7, 1e-7);
      }
    }
  }

  TEST_CASE("as a function of its input the layer passes every check of SODA_CHECK_OP") {
    soda::Generator gen(7);
    Conv2d<double> layer(2, 2, {2, 3}, gen, {.padding = {1, 0}});
    for (const bool training : {true, false}) {
      INFO("training " << training);
      layer.train(training);
      SODA_CHECK_OP([&](const Params& q) { return layer(q[0]); }, {normal({2, 2, 4, 4}, 8)});
      SODA_CHECK_OP([&](const Params& q) { return soda::tanh(layer(q[0])); },
                    {normal({2, 3, 5}, 9)});
    }
  }

  TEST_CASE("errors name the layer, the input shape and the weight shape") {
    soda::Generator gen(1);
    Conv2d<double> layer(3, 4, 3, gen);
    CHECK_THROWS_WITH_AS(layer(normal({2, 5, 8, 8}, 1)),
                         "Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(0, 0)): input "
                         "of shape [2, 5, 8, 8] and weight of shape [4, 3, 3, 3]: the input has 5 "
                         "channels, the layer expects 3",
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(layer(normal({5, 8, 8}, 1)),
                         doctest::Contains("the input has 5 channels, the layer expects 3"),
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(layer(normal({2, 3}, 1)),
                         "Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(0, 0)): input "
                         "of shape [2, 3] and weight of shape [4, 3, 3, 3]: expected an input "
                         "[N, 3, H, W] (or [3, H, W] unbatched)",
                         soda::ShapeError);
    CHECK_THROWS_AS(layer(normal({1, 2, 3, 8, 8}, 1)), soda::ShapeError);
    CHECK_THROWS_WITH_AS(layer(normal({2, 3, 2, 8}, 1)),
                         doctest::Contains("the padded input (2 x 8) is smaller than the kernel"),
                         soda::ShapeError);
    // Each constructor argument out of range names the layer as built.
    CHECK_THROWS_WITH_AS(Conv2d<double>(0, 4, 3, gen),
                         "Conv2d(0, 4, kernel_size=(3, 3), stride=(1, 1), padding=(0, 0)): "
                         "channels, kernel size and stride must be positive, padding non-negative",
                         soda::ValueError);
    CHECK_THROWS_AS(Conv2d<double>(3, 0, 3, gen), soda::ValueError);
    CHECK_THROWS_AS(Conv2d<double>(3, 4, {3, 0}, gen), soda::ValueError);
    CHECK_THROWS_AS(Conv2d<double>(3, 4, 3, gen, {.stride = {1, 0}}), soda::ValueError);
    CHECK_THROWS_WITH_AS(Conv2d<double>(3, 4, 3, gen, {.padding = -1, .bias = false}),
                         doctest::Contains("padding=(-1, -1), bias=false)"), soda::ValueError);
  }
}
