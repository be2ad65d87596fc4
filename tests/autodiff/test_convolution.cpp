// conv2d and its adjoints (autodiff/ops/convolution.hpp): values against a direct six-loop
// reference, exact first and second derivatives of all three ops, the adjoint identities, and
// errors that name the op and the shapes.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "checks.hpp"

using namespace soda_test;

namespace {

struct Geometry {
  soda::Shape input, weight;
  soda::Size2d stride, padding;
};

// The geometries every test sweeps: 3×3 same, strided, pointwise, strided pointwise (ResNet's
// shortcut), non-square with uneven coverage.
const std::vector<Geometry> geometries{
    {{2, 3, 5, 5}, {4, 3, 3, 3}, 1, 1},           {{2, 2, 7, 6}, {3, 2, 3, 3}, 2, 1},
    {{3, 4, 4, 5}, {2, 4, 1, 1}, 1, 0},           {{2, 3, 6, 6}, {5, 3, 1, 1}, 2, 0},
    {{1, 2, 6, 5}, {3, 2, 2, 3}, {2, 1}, {0, 1}}, {{5, 1, 4, 4}, {2, 1, 3, 3}, 3, 2},
};

// y[n, o, oh, ow] = Σ_{c,i,j} x[n, c, oh·sh − ph + i, ow·sw − pw + j] · w[o, c, i, j].
Tensor reference_conv2d(const Tensor& x, const Tensor& w, soda::Size2d s, soda::Size2d p) {
  const auto N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const auto O = w.size(0), kh = w.size(2), kw = w.size(3);
  const auto Ho = (H + 2 * p.h - kh) / s.h + 1, Wo = (W + 2 * p.w - kw) / s.w + 1;
  auto y = soda::zeros<double>({N, O, Ho, Wo});
  const auto xc = copy_of(x), wc = copy_of(w);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < O; ++o)
      for (std::int64_t oh = 0; oh < Ho; ++oh)
        for (std::int64_t ow = 0; ow < Wo; ++ow) {
          double total = 0;
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t i = 0; i < kh; ++i)
              for (std::int64_t j = 0; j < kw; ++j) {
                const auto ih = oh * s.h - p.h + i, iw = ow * s.w - p.w + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                total += xc.data()[((n * C + c) * H + ih) * W + iw] *
                         wc.data()[((o * C + c) * kh + i) * kw + j];
              }
          y.data()[((n * O + o) * Ho + oh) * Wo + ow] = total;
        }
  return y;
}

double inner(const Tensor& a, const Tensor& b) {
  return soda::sum(a * b).item();
}

}  // namespace

TEST_CASE("conv2d matches the direct six-loop definition") {
  std::uint64_t seed = 1;
  for (const auto& g : geometries) {
    const auto x = normal(g.input, seed++), w = normal(g.weight, seed++);
    CHECK(relative_error(reference_conv2d(x, w, g.stride, g.padding),
                         soda::conv2d(x, w, g.stride, g.padding)) < 1e-12);
  }
}

TEST_CASE("conv2d in float matches the double reference") {
  const auto x = normal({4, 8, 9, 9}, 3), w = normal({6, 8, 3, 3}, 4);
  const auto y = soda::conv2d(x.to<float>(), w.to<float>(), 1, 1).to<double>();
  CHECK(relative_error(reference_conv2d(x, w, 1, 1), y) < 1e-4);
}

TEST_CASE("conv2d reads non-contiguous operands") {
  const auto x = normal({3, 2, 5, 5}, 5), w = normal({4, 3, 3, 3}, 6);
  const auto xt = soda::permute(x, {1, 0, 2, 3});  // [2, 3, 5, 5], a strided view
  CHECK(relative_error(reference_conv2d(copy_of(xt), w, 1, 0), soda::conv2d(xt, w, 1, 0)) < 1e-12);
}

TEST_CASE("the adjoints satisfy <conv(x, w), g> = <x, input_grad(g, w)> = <w, weight_grad(x, g)>") {
  std::uint64_t seed = 20;
  for (const auto& geo : geometries) {
    const auto x = normal(geo.input, seed++), w = normal(geo.weight, seed++);
    const auto y = soda::conv2d(x, w, geo.stride, geo.padding);
    const auto g = normal(y.shape(), seed++);
    const double forward = inner(y, g);
    const auto gx = soda::conv2d_input_grad(g, w, x.shape(), geo.stride, geo.padding);
    const auto gw = soda::conv2d_weight_grad(x, g, w.shape(), geo.stride, geo.padding);
    CHECK(inner(x, gx) == doctest::Approx(forward).epsilon(1e-12));
    CHECK(inner(w, gw) == doctest::Approx(forward).epsilon(1e-12));
  }
}

TEST_CASE("conv2d has exact derivatives in input and weight for every geometry") {
  std::uint64_t seed = 40;
  for (const auto& g : geometries) {
    CAPTURE(soda::to_string(g.input));
    CAPTURE(soda::to_string(g.weight));
    const Params p{normal(g.input, seed++), normal(g.weight, seed++)};
    SODA_CHECK_OP([&](const Params& q) { return soda::conv2d(q[0], q[1], g.stride, g.padding); },
                  p);
  }
}

TEST_CASE("conv2d_input_grad has exact derivatives in the gradient and the weight") {
  std::uint64_t seed = 60;
  for (const auto& g : geometries) {
    CAPTURE(soda::to_string(g.input));
    const auto y = soda::conv2d(normal(g.input, 1), normal(g.weight, 2), g.stride, g.padding);
    const Params p{normal(y.shape(), seed++), normal(g.weight, seed++)};
    SODA_CHECK_OP(
        [&](const Params& q) {
          return soda::conv2d_input_grad(q[0], q[1], g.input, g.stride, g.padding);
        },
        p);
  }
}

TEST_CASE("conv2d_weight_grad has exact derivatives in the input and the gradient") {
  std::uint64_t seed = 80;
  for (const auto& g : geometries) {
    CAPTURE(soda::to_string(g.input));
    const auto y = soda::conv2d(normal(g.input, 1), normal(g.weight, 2), g.stride, g.padding);
    const Params p{normal(g.input, seed++), normal(y.shape(), seed++)};
    SODA_CHECK_OP(
        [&](const Params& q) {
          return soda::conv2d_weight_grad(q[0], q[1], g.weight, g.stride, g.padding);
        },
        p);
  }
}

TEST_CASE("a two-layer conv net has an exact HVP through both convolutions") {
  const auto x = normal({3, 2, 6, 6}, 100);
  const Params p{normal({4, 2, 3, 3}, 101), normal({2, 4, 3, 3}, 102)};
  auto loss = [&](const Params& q) {
    const auto h = soda::tanh(soda::conv2d(x, q[0], 1, 1));
    return soda::sum(soda::square(soda::conv2d(h, q[1], 2, 1)));
  };
  soda::Generator gen(103);
  const auto v = random_like(p, gen);
  CHECK(gradient_error(loss, p) < 1e-6);
  CHECK(hvp_error(loss, p, v) < 1e-6);
}

TEST_CASE("the weight gradient does not depend on the thread count") {
  const auto x = normal({13, 3, 8, 8}, 110).to<float>();
  const auto g = normal({13, 5, 8, 8}, 111).to<float>();
  const int saved = soda::max_threads();
  soda::set_num_threads(1);
  const auto one = soda::conv2d_weight_grad(x, g, {5, 3, 3, 3}, 1, 1);
  soda::set_num_threads(2);
  const auto two = soda::conv2d_weight_grad(x, g, {5, 3, 3, 3}, 1, 1);
  soda::set_num_threads(saved);
  CHECK(soda::max_abs_difference(one, two) == 0);
}

TEST_CASE("conv2d errors name the op and the shapes") {
  const auto x = soda::zeros<double>({2, 3, 5, 5});
  CHECK_THROWS_WITH_AS(
      soda::conv2d(x, soda::zeros<double>({4, 2, 3, 3})),
      "conv2d: input [2, 3, 5, 5] has 3 channels but weight [4, 2, 3, 3] expects 2",
      soda::ShapeError);
  CHECK_THROWS_WITH_AS(
      soda::conv2d(soda::zeros<double>({3, 5, 5}), soda::zeros<double>({4, 3, 3, 3})),
      "conv2d: expects input [N, C, H, W] and weight [O, C, kh, kw], got [3, 5, 5] and "
      "[4, 3, 3, 3]",
      soda::ShapeError);
  CHECK_THROWS_WITH_AS(soda::conv2d(x, soda::zeros<double>({4, 3, 7, 7}), 1, 0),
                       "conv2d: kernel (7, 7) is larger than the padded input (5, 5) of input "
                       "[2, 3, 5, 5]",
                       soda::ShapeError);
  CHECK_THROWS_AS(soda::conv2d(x, soda::zeros<double>({4, 3, 3, 3}), 0, 1), soda::ValueError);
  CHECK_THROWS_AS(soda::conv2d(x, soda::zeros<double>({4, 3, 3, 3}), 1, -1), soda::ValueError);
  CHECK_THROWS_WITH_AS(
      soda::conv2d_input_grad(soda::zeros<double>({2, 4, 4, 4}), soda::zeros<double>({4, 3, 3, 3}),
                              {2, 3, 5, 5}, 1, 1),
      "conv2d_input_grad: gradient [2, 4, 4, 4] does not match the output shape [2, 4, 5, 5] of "
      "input [2, 3, 5, 5] and weight [4, 3, 3, 3]",
      soda::ShapeError);
  CHECK_THROWS_AS(
      soda::conv2d_weight_grad(x, soda::zeros<double>({2, 4, 3, 3}), {4, 3, 3, 3}, 1, 1),
      soda::ShapeError);
}
