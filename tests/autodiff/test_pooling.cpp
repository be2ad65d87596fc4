// max_pool2d, avg_pool2d and avg_pool2d_input_grad (autodiff/ops/pooling.hpp): exact derivatives
// for several window geometries, values against naive scalar loops written from PyTorch's
// definitions, PyTorch's rules for ties, NaN and -inf, the adjoint identity of the avg pair,
// results independent of the thread count, and every error path.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "checks.hpp"

using namespace soda_test;

namespace {

// One pooling call's windows, written out in full (no defaults).
struct Window {
  soda::Size2d kernel, stride, padding;
};

// The geometries every op is checked on, with an input shape each fits.
struct Case {
  const char* name;
  soda::Shape shape;
  Window window;
};

const std::vector<Case> cases{
    {"kernel 2 stride 2", {2, 3, 4, 6}, {2, 2, 0}},
    {"kernel 3 stride 1 padding 1 (overlapping)", {1, 2, 5, 5}, {3, 1, 1}},
    {"kernel 3 stride 2 padding 1", {2, 2, 7, 6}, {3, 2, 1}},
    {"non-square kernel, stride and padding", {1, 2, 5, 7}, {{2, 3}, {1, 2}, {1, 1}}},
    {"odd sizes drop the last row and column", {1, 2, 5, 7}, {2, 2, 0}},
    {"kernel covering the whole plane", {2, 3, 4, 5}, {{4, 5}, {4, 5}, 0}},
    {"padded windows, some spanning whole rows", {2, 2, 6, 5}, {{2, 5}, 1, {1, 2}}},
};

// Distinct values at least 0.1 apart, in shuffled order: no window has a near-tie, so the
// maxima do not move under the finite-difference steps.
soda::Tensor<double> spread_values(const soda::Shape& shape, std::uint64_t seed) {
  auto x = soda::Tensor<double>::empty(shape);
  std::vector<double> values(static_cast<std::size_t>(x.numel()));
  std::iota(values.begin(), values.end(), 0.0);
  std::mt19937_64 engine(seed);
  std::shuffle(values.begin(), values.end(), engine);
  const double middle = static_cast<double>(values.size()) / 2;
  for (std::size_t i = 0; i < values.size(); ++i) x.data()[i] = 0.1 * (values[i] - middle);
  return x;
}

std::int64_t output_extent(std::int64_t in, std::int64_t kernel, std::int64_t stride,
                           std::int64_t padding) {
  return static_cast<std::int64_t>(
             std::floor(static_cast<double>(in + 2 * padding - kernel) / stride)) +
         1;
}

soda::Shape output_shape(const soda::Shape& in, const Window& w) {
  return {in[0], in[1], output_extent(in[2], w.kernel.h, w.stride.h, w.padding.h),
          output_extent(in[3], w.kernel.w, w.stride.w, w.padding.w)};
}

// Calls visit(h, w) for every in-plane position of output (oh, ow)'s window, row-major.
template <class Visit>
void for_each_window_position(const soda::Shape& in, const Window& w, std::int64_t oh,
                              std::int64_t ow, Visit visit) {
  for (std::int64_t i = 0; i < w.kernel.h; ++i) {
    for (std::int64_t j = 0; j < w.kernel.w; ++j) {
      const auto h = oh * w.stride.h - w.padding.h + i;
      const auto c = ow * w.stride.w - w.padding.w + j;
      if (h >= 0 && h < in[2] && c >= 0 && c < in[3]) visit(h, c);
    }
  }
}

// PyTorch's max pooling, naively: the first largest in-plane value of each window (padding is
// -inf, so it never wins over an in-plane value). `argmax` gets the flat in-plane positions.
template <class T>
soda::Tensor<T> reference_max_pool(const soda::Tensor<T>& x, const Window& w,
                                   std::vector<std::int64_t>* argmax = nullptr) {
  const auto& in = x.shape();
  const auto out_shape = output_shape(in, w);
  auto out = soda::zeros<T>(out_shape);
  if (argmax != nullptr) argmax->clear();
  for (std::int64_t n = 0; n < out_shape[0]; ++n)
    for (std::int64_t c = 0; c < out_shape[1]; ++c)
      for (std::int64_t oh = 0; oh < out_shape[2]; ++oh)
        for (std::int64_t ow = 0; ow < out_shape[3]; ++ow) {
          std::vector<std::pair<T, std::int64_t>> window;
          for_each_window_position(in, w, oh, ow, [&](std::int64_t h, std::int64_t col) {
            window.push_back({x.at({n, c, h, col}), h * in[3] + col});
          });
          const auto best =
              std::max_element(window.begin(), window.end(),
                               [](const auto& a, const auto& b) { return a.first < b.first; });
          out.at({n, c, oh, ow}) = best->first;
          if (argmax != nullptr) argmax->push_back(best->second);
        }
  return out;
}

// PyTorch's average pooling with count_include_pad=True: in-plane sum / (kh * kw).
template <class T>
soda::Tensor<T> reference_avg_pool(const soda::Tensor<T>& x, const Window& w) {
  const auto& in = x.shape();
  const auto out_shape = output_shape(in, w);
  auto out = soda::zeros<T>(out_shape);
  for (std::int64_t n = 0; n < out_shape[0]; ++n)
    for (std::int64_t c = 0; c < out_shape[1]; ++c)
      for (std::int64_t oh = 0; oh < out_shape[2]; ++oh)
        for (std::int64_t ow = 0; ow < out_shape[3]; ++ow) {
          double total = 0;
          for_each_window_position(in, w, oh, ow, [&](std::int64_t h, std::int64_t col) {
            total += static_cast<double>(x.at({n, c, h, col}));
          });
          out.at({n, c, oh, ow}) =
              static_cast<T>(total / static_cast<double>(w.kernel.h * w.kernel.w));
        }
  return out;
}

// The adjoint of average pooling, gathered per input position (the op scatters per output):
// each input receives g / (kh * kw) from every output whose window covers it.
template <class T>
soda::Tensor<T> reference_avg_pool_input_grad(const soda::Tensor<T>& g, const soda::Shape& in,
                                              const Window& w) {
  auto out = soda::zeros<T>(in);
  const auto& gs = g.shape();
  for (std::int64_t n = 0; n < in[0]; ++n)
    for (std::int64_t c = 0; c < in[1]; ++c)
      for (std::int64_t h = 0; h < in[2]; ++h)
        for (std::int64_t col = 0; col < in[3]; ++col) {
          double total = 0;
          for (std::int64_t oh = 0; oh < gs[2]; ++oh)
            for (std::int64_t ow = 0; ow < gs[3]; ++ow) {
              const auto top = oh * w.stride.h - w.padding.h;
              const auto left = ow * w.stride.w - w.padding.w;
              if (h >= top && h < top + w.kernel.h && col >= left && col < left + w.kernel.w) {
                total += static_cast<double>(g.at({n, c, oh, ow}));
              }
            }
          out.at({n, c, h, col}) =
              static_cast<T>(total / static_cast<double>(w.kernel.h * w.kernel.w));
        }
  return out;
}

// The gradient of sum(max_pool(x) ⊙ weights): each weight added at its window's maximum.
soda::Tensor<double> reference_max_pool_gradient(const soda::Shape& in,
                                                 const std::vector<std::int64_t>& argmax,
                                                 const soda::Tensor<double>& weights) {
  auto out = soda::zeros<double>(in);
  const auto plane = in[2] * in[3];
  const auto out_plane = weights.numel() / (in[0] * in[1]);
  for (std::int64_t i = 0; i < weights.numel(); ++i) {
    out.data()[i / out_plane * plane + argmax[static_cast<std::size_t>(i)]] += weights.data()[i];
  }
  return out;
}

double dot(const soda::Tensor<double>& a, const soda::Tensor<double>& b) {
  const auto x = copy_of(a), y = copy_of(b);
  double total = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) total += x.data()[i] * y.data()[i];
  return total;
}

}  // namespace

TEST_CASE("max_pool2d has exact derivatives for every geometry") {
  for (const auto& [name, shape, w] : cases) {
    INFO(std::string(name));
    const Params p{spread_values(shape, 1)};
    SODA_CHECK_OP(
        [w](const Params& q) { return soda::max_pool2d(q[0], w.kernel, w.stride, w.padding); }, p);
    // Curvature on both sides of the pooling (exp keeps the values distinct).
    SODA_CHECK_OP(
        [w](const Params& q) {
          return soda::tanh(soda::max_pool2d(soda::exp(q[0]), w.kernel, w.stride, w.padding));
        },
        p);
  }
}

TEST_CASE("max_pool2d of a parameter times a pooled parameter has exact cross derivatives") {
  const Window w{3, 2, 1};
  const auto x = spread_values({2, 2, 7, 6}, 2);
  const auto scale = normal(output_shape(x.shape(), w), 3);
  SODA_CHECK_OP(
      [w](const Params& q) {
        return soda::mul(soda::max_pool2d(q[0], w.kernel, w.stride, w.padding), q[1]);
      },
      {x, scale});
}

TEST_CASE("max_pool2d of a non-contiguous view has exact derivatives") {
  const auto x = spread_values({5, 2, 6, 1}, 4);  // permuted to [1, 2, 5, 6]
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::max_pool2d(soda::permute(q[0], {3, 1, 0, 2}), 2);
      },
      {x});
}

TEST_CASE("avg_pool2d has exact derivatives for every geometry") {
  for (const auto& [name, shape, w] : cases) {
    INFO(std::string(name));
    const Params p{normal(shape, 5)};
    SODA_CHECK_OP(
        [w](const Params& q) { return soda::avg_pool2d(q[0], w.kernel, w.stride, w.padding); }, p);
    SODA_CHECK_OP(
        [w](const Params& q) {
          return soda::tanh(soda::avg_pool2d(soda::tanh(q[0]), w.kernel, w.stride, w.padding));
        },
        p);
  }
}

TEST_CASE("avg_pool2d_input_grad has exact derivatives for every geometry") {
  for (const auto& [name, shape, w] : cases) {
    INFO(std::string(name));
    const Params p{normal(output_shape(shape, w), 6)};
    SODA_CHECK_OP(
        [&shape, w](const Params& q) {
          return soda::avg_pool2d_input_grad(q[0], shape, w.kernel, w.stride, w.padding);
        },
        p);
    SODA_CHECK_OP(
        [&shape, w](const Params& q) {
          return soda::tanh(
              soda::avg_pool2d_input_grad(soda::tanh(q[0]), shape, w.kernel, w.stride, w.padding));
        },
        p);
  }
}

TEST_CASE("pooling ops of a non-contiguous view and chained pools have exact derivatives") {
  const auto x = normal({6, 2, 7, 1}, 7);  // permuted to [1, 2, 6, 7]
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::avg_pool2d(soda::permute(q[0], {3, 1, 0, 2}), {3, 2}, soda::Size2d{2, 1}, 1);
      },
      {x});
  SODA_CHECK_OP(
      [](const Params& q) { return soda::max_pool2d(soda::avg_pool2d(soda::exp(q[0]), 2, 1), 2); },
      {spread_values({1, 2, 6, 6}, 8)});
}

TEST_CASE("max_pool2d's values and gradient match a naive loop, in double and float") {
  for (const auto& [name, shape, w] : cases) {
    INFO(std::string(name));
    const auto x = normal(shape, 9);
    std::vector<std::int64_t> argmax;
    const auto expected = reference_max_pool(x, w, &argmax);
    CHECK(relative_error(expected, soda::max_pool2d(x, w.kernel, w.stride, w.padding)) == 0);
    const auto xf = x.to<float>();
    CHECK(relative_error(reference_max_pool(xf, w),
                         soda::max_pool2d(xf, w.kernel, w.stride, w.padding)) == 0);

    const auto weights = normal(expected.shape(), 10);
    const auto grads = soda::grad(
        [&](const Params& q) {
          return soda::sum(soda::max_pool2d(q[0], w.kernel, w.stride, w.padding) * weights);
        },
        Params{x});
    CHECK(relative_error(reference_max_pool_gradient(shape, argmax, weights), grads[0]) < 1e-14);
  }
}

TEST_CASE("avg_pool2d and its adjoint match naive loops, in double and float") {
  for (const auto& [name, shape, w] : cases) {
    INFO(std::string(name));
    const auto x = normal(shape, 11);
    CHECK(relative_error(reference_avg_pool(x, w),
                         soda::avg_pool2d(x, w.kernel, w.stride, w.padding)) < 1e-14);
    const auto xf = x.to<float>();
    CHECK(relative_error(reference_avg_pool(xf, w),
                         soda::avg_pool2d(xf, w.kernel, w.stride, w.padding)) < 1e-6);

    const auto g = normal(output_shape(shape, w), 12);
    CHECK(relative_error(reference_avg_pool_input_grad(g, shape, w),
                         soda::avg_pool2d_input_grad(g, shape, w.kernel, w.stride, w.padding)) <
          1e-14);
    const auto gf = g.to<float>();
    CHECK(relative_error(reference_avg_pool_input_grad(gf, shape, w),
                         soda::avg_pool2d_input_grad(gf, shape, w.kernel, w.stride, w.padding)) <
          1e-6);
  }
}

TEST_CASE("the reverse rules read a broadcast (stride-0) gradient, as sum's gives them") {
  const Window w{3, 2, 1};
  const auto x = normal({2, 2, 7, 6}, 20);
  const auto ones = soda::ones<double>(output_shape(x.shape(), w));
  const auto avg_grad = soda::grad(
      [&](const Params& q) {
        return soda::sum(soda::avg_pool2d(q[0], w.kernel, w.stride, w.padding));
      },
      Params{x});
  CHECK(relative_error(reference_avg_pool_input_grad(ones, x.shape(), w), avg_grad[0]) < 1e-14);
  std::vector<std::int64_t> argmax;
  reference_max_pool(x, w, &argmax);
  const auto max_grad = soda::grad(
      [&](const Params& q) {
        return soda::sum(soda::max_pool2d(q[0], w.kernel, w.stride, w.padding));
      },
      Params{x});
  CHECK(relative_error(reference_max_pool_gradient(x.shape(), argmax, ones), max_grad[0]) == 0);
}

TEST_CASE("avg_pool2d and avg_pool2d_input_grad are adjoint: <P x, g> = <x, Pᵀ g>") {
  for (const auto& [name, shape, w] : cases) {
    INFO(std::string(name));
    const auto x = normal(shape, 13);
    const auto g = normal(output_shape(shape, w), 14);
    const double left = dot(soda::avg_pool2d(x, w.kernel, w.stride, w.padding), g);
    const double right =
        dot(x, soda::avg_pool2d_input_grad(g, shape, w.kernel, w.stride, w.padding));
    CHECK(left == doctest::Approx(right).epsilon(1e-13));
  }
}

TEST_CASE("pooling planes run in parallel and still match the naive loops") {
  const auto x = normal({8, 16, 32, 32}, 15);
  for (const Window w : {Window{2, 2, 0}, Window{{32, 32}, 1, 0}, Window{3, 2, 1}}) {
    std::vector<std::int64_t> argmax;
    const auto expected_max = reference_max_pool(x, w, &argmax);
    CHECK(relative_error(expected_max, soda::max_pool2d(x, w.kernel, w.stride, w.padding)) == 0);
    CHECK(relative_error(reference_avg_pool(x, w),
                         soda::avg_pool2d(x, w.kernel, w.stride, w.padding)) < 1e-13);
    const auto weights = normal(expected_max.shape(), 16);
    CHECK(relative_error(reference_avg_pool_input_grad(weights, x.shape(), w),
                         soda::avg_pool2d_input_grad(weights, x.shape(), w.kernel, w.stride,
                                                     w.padding)) < 1e-13);
    const auto grads = soda::grad(
        [&](const Params& q) {
          return soda::sum(soda::max_pool2d(q[0], w.kernel, w.stride, w.padding) * weights);
        },
        Params{x});
    CHECK(relative_error(reference_max_pool_gradient(x.shape(), argmax, weights), grads[0]) <
          1e-14);
  }
}

TEST_CASE("pooling gives the same bits whatever the thread count") {
  const auto x = normal({8, 16, 32, 32}, 21);
  const auto g = normal({8, 16, 16, 16}, 22);
  auto run = [&] {
    const auto grads = soda::grad(
        [&](const Params& q) { return soda::sum(soda::max_pool2d(q[0], 3, 2, 1) * g); }, Params{x});
    return std::vector<soda::Tensor<double>>{soda::max_pool2d(x, 2), soda::avg_pool2d(x, 3, 2, 1),
                                             soda::avg_pool2d_input_grad(g, x.shape(), 3, 2, 1),
                                             grads[0]};
  };
  const auto threaded = run();
  const int threads = soda::max_threads();
  soda::set_num_threads(1);
  const auto serial = run();
  soda::set_num_threads(threads);
  CHECK(max_difference(threaded, serial) == 0);
}

TEST_CASE("the stride defaults to the kernel") {
  const auto x = normal({1, 2, 7, 8}, 17);
  const auto by_default = soda::max_pool2d(x, {3, 2});
  CHECK(by_default.shape() == soda::Shape{1, 2, 2, 4});
  CHECK(relative_error(reference_max_pool(x, {{3, 2}, {3, 2}, 0}), by_default) == 0);
  CHECK(relative_error(reference_avg_pool(x, {{3, 2}, {3, 2}, 0}), soda::avg_pool2d(x, {3, 2})) <
        1e-14);
}

TEST_CASE("max_pool2d breaks ties at the first maximum in row-major window order, as PyTorch") {
  // [[1, 3], [3, 2]]: both 3s tie; the gradient goes to the one in the first row.
  const auto x = soda::Tensor<double>({1, 1, 2, 2}, {1, 3, 3, 2});
  const auto grads =
      soda::grad([](const Params& q) { return soda::sum(soda::max_pool2d(q[0], 2)); }, Params{x});
  CHECK(relative_error(soda::Tensor<double>({1, 1, 2, 2}, {0, 1, 0, 0}), grads[0]) == 0);

  // Constant planes with overlapping, padded windows: every window's first in-plane element.
  // Small windows (3 x 3) and large ones (5 x 5, which the kernel scans in one pass).
  for (const auto& [shape, w] : {std::pair{soda::Shape{1, 1, 3, 4}, Window{3, 1, 1}},
                                 std::pair{soda::Shape{1, 2, 6, 7}, Window{5, 1, 2}}}) {
    const auto flat = soda::ones<double>(shape);
    std::vector<std::int64_t> argmax;
    reference_max_pool(flat, w, &argmax);
    const auto weights = normal(output_shape(flat.shape(), w), 18);
    const auto tied = soda::grad(
        [&](const Params& q) {
          return soda::sum(soda::max_pool2d(q[0], w.kernel, w.stride, w.padding) * weights);
        },
        Params{flat});
    CHECK(relative_error(reference_max_pool_gradient(flat.shape(), argmax, weights), tied[0]) <
          1e-14);
    // The top-left window [-p, k - p) x [-p, k - p) starts at in-plane position (0, 0); so does
    // the next one, one column on, while the padding still covers its left edge.
    CHECK(argmax[0] == 0);
    CHECK(argmax[1] == 0);
    CHECK(argmax[static_cast<std::size_t>(w.padding.w + 1)] == 1);
  }
}

TEST_CASE("max_pool2d: a window of -inf takes its first in-plane element") {
  const double inf = std::numeric_limits<double>::infinity();
  const auto x = soda::Tensor<double>({1, 1, 2, 2}, {-inf, -inf, -inf, -inf});
  for (const Window w : {Window{3, 1, 1}, Window{2, 2, 0}, Window{{2, 1}, 1, 0}}) {
    std::vector<std::int64_t> argmax;
    const auto expected = reference_max_pool(x, w, &argmax);
    const auto weights = normal(expected.shape(), 19);
    const auto grads = soda::grad(
        [&](const Params& q) {
          return soda::sum(soda::max_pool2d(q[0], w.kernel, w.stride, w.padding) * weights);
        },
        Params{x});
    CHECK(relative_error(reference_max_pool_gradient(x.shape(), argmax, weights), grads[0]) == 0);
    CHECK(soda::max_pool2d(x, w.kernel, w.stride, w.padding).at({0, 0, 0, 0}) == -inf);
  }
  // Kernel 3, stride 1, padding 1 on a 2 x 2 plane: all four windows cover the whole plane, so
  // all four point at position (0, 0).
  const auto grads = soda::grad(
      [](const Params& q) { return soda::sum(soda::max_pool2d(q[0], 3, 1, 1)); }, Params{x});
  CHECK(relative_error(soda::Tensor<double>({1, 1, 2, 2}, {4, 0, 0, 0}), grads[0]) == 0);
}

TEST_CASE("max_pool2d: a NaN wins its window, the last NaN when there are several, as PyTorch") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Row-major: window 0 of kernel 2 holds 1, NaN / 2, NaN; window 1 holds 5, 6 / 4, 0.
  const auto x = soda::Tensor<double>({1, 1, 2, 4}, {1, nan, 5, 6, 2, nan, 4, 0});
  const auto y = soda::max_pool2d(x, 2);
  CHECK(std::isnan(y.at({0, 0, 0, 0})));
  CHECK(y.at({0, 0, 0, 1}) == 6);
  const auto g =
      soda::grad([](const Params& q) { return soda::sum(soda::max_pool2d(q[0], 2)); }, Params{x});
  CHECK(relative_error(soda::Tensor<double>({1, 1, 2, 4}, {0, 0, 0, 1, 0, 1, 0, 0}), g[0]) == 0);
  // Overlapping windows of kernel 3 with padding, and a window spanning whole rows.
  const auto overlapping = soda::grad(
      [](const Params& q) { return soda::sum(soda::max_pool2d(q[0], 3, 1, 1)); }, Params{x});
  // Windows at columns 0..3: [-1, 2) holds NaN at 1 and 5; [0, 3) the same; [1, 4) the same;
  // [2, 5) holds 5, 6, 4, 0, so 6.
  CHECK(relative_error(soda::Tensor<double>({1, 1, 2, 4}, {0, 0, 0, 2, 0, 6, 0, 0}),
                       overlapping[0]) == 0);
  const auto whole = soda::max_pool2d(x, {2, 4});
  CHECK(std::isnan(whole.at({0, 0, 0, 0})));
}

TEST_CASE("max_pool2d keeps the first of equal zeros, -0 or +0, as PyTorch") {
  const auto x = soda::Tensor<double>({1, 1, 2, 4}, {-0.0, 0.0, 0.0, -1, 0.0, -0.0, -0.0, -1});
  for (const Window w : {Window{2, 2, 0}, Window{{2, 3}, 1, 0}, Window{{2, 4}, 1, 0}}) {
    const auto expected = reference_max_pool(x, w);
    const auto y = soda::max_pool2d(x, w.kernel, w.stride, w.padding);
    REQUIRE(y.shape() == expected.shape());
    for (std::int64_t i = 0; i < y.numel(); ++i) {
      CHECK(std::signbit(copy_of(y).data()[i]) == std::signbit(expected.data()[i]));
    }
  }
  CHECK(std::signbit(soda::max_pool2d(x, 2).at({0, 0, 0, 0})));
  CHECK_FALSE(std::signbit(soda::max_pool2d(x, 2).at({0, 0, 0, 1})));
}

TEST_CASE("pooling of an empty batch gives an empty output") {
  const auto x = soda::zeros<double>({0, 3, 4, 4});
  CHECK(soda::max_pool2d(x, 2).shape() == soda::Shape{0, 3, 2, 2});
  CHECK(soda::avg_pool2d(x, 2).shape() == soda::Shape{0, 3, 2, 2});
  CHECK(
      soda::avg_pool2d_input_grad(soda::zeros<double>({0, 3, 2, 2}), x.shape(), 2, 2, 0).shape() ==
      x.shape());
}

TEST_CASE("pooling ops reject bad inputs, naming the op and the shapes") {
  const auto x = soda::ones<double>({1, 2, 4, 4});
  const std::vector<std::pair<std::string, std::function<void(soda::Size2d, soda::Size2d,
                                                              soda::Size2d, const soda::Shape&)>>>
      ops{{"max_pool2d",
           [](soda::Size2d k, soda::Size2d s, soda::Size2d p, const soda::Shape& shape) {
             (void)soda::max_pool2d(soda::ones<double>(shape), k, s, p);
           }},
          {"avg_pool2d",
           [](soda::Size2d k, soda::Size2d s, soda::Size2d p, const soda::Shape& shape) {
             (void)soda::avg_pool2d(soda::ones<double>(shape), k, s, p);
           }},
          {"avg_pool2d_input_grad",
           [](soda::Size2d k, soda::Size2d s, soda::Size2d p, const soda::Shape& shape) {
             (void)soda::avg_pool2d_input_grad(soda::ones<double>({1, 2, 2, 2}), shape, k, s, p);
           }}};
  for (const auto& [name, call] : ops) {
    INFO("op " << name);
    auto check = [&](const std::string& message, const std::string& detail) {
      CHECK(contains(message, name + ":"));
      CHECK(contains(message, detail));
    };
    check(message_of<soda::ShapeError>([&] { call(2, 2, 0, {2, 4, 4}); }), "[2, 4, 4]");
    check(message_of<soda::ShapeError>([&] { call(2, 2, 0, {1, 1, 2, 4, 4}); }), "rank 4");
    check(message_of<soda::ValueError>([&] { call({0, 2}, 2, 0, {1, 2, 4, 4}); }), "(0, 2)");
    check(message_of<soda::ValueError>([&] { call({2, -1}, 2, 0, {1, 2, 4, 4}); }), "kernel");
    check(message_of<soda::ValueError>([&] { call(2, {1, 0}, 0, {1, 2, 4, 4}); }), "stride (1, 0)");
    check(message_of<soda::ValueError>([&] { call(2, -2, 0, {1, 2, 4, 4}); }), "stride");
    // PyTorch allows padding up to half the kernel: 1 for kernel 3, 2 for kernel 4.
    check(message_of<soda::ValueError>([&] { call(3, 1, 2, {1, 2, 4, 4}); }), "padding (2, 2)");
    check(message_of<soda::ValueError>([&] { call(4, 1, {0, 3}, {1, 2, 4, 4}); }), "(4, 4)");
    check(message_of<soda::ValueError>([&] { call(3, 1, {-1, 0}, {1, 2, 4, 4}); }), "padding");
    // Windows larger than the padded plane: no output.
    check(message_of<soda::ShapeError>([&] { call(5, 1, 0, {1, 2, 4, 4}); }), "[1, 2, 4, 4]");
    check(message_of<soda::ShapeError>([&] {
            call({2, 6}, 1, {0, 1}, {1, 2, 4, 3});
          }),
          "too small");
    check(message_of<soda::ShapeError>([&] { call(1, 1, 0, {1, 2, 0, 4}); }), "[1, 2, 0, 4]");
  }
  // The adjoint's gradient must be avg_pool2d's output for input_shape.
  const auto g = soda::ones<double>({1, 2, 2, 2});
  for (const soda::Shape& input_shape : {soda::Shape{1, 2, 5, 5}, soda::Shape{2, 2, 4, 4},
                                         soda::Shape{1, 3, 4, 4}, soda::Shape{1, 2, 4, 7}}) {
    const auto message = message_of<soda::ShapeError>(
        [&] { (void)soda::avg_pool2d_input_grad(g, input_shape, 2, 1, 0); });
    CHECK(contains(message, "avg_pool2d_input_grad:"));
    CHECK(contains(message, "[1, 2, 2, 2]"));
    CHECK(contains(message, soda::to_string(input_shape)));
  }
  CHECK_THROWS_AS(soda::avg_pool2d_input_grad(soda::ones<double>({1, 2, 2}), x.shape(), 2, 2, 0),
                  soda::ShapeError);
  // Input shape [1, 2, 4, 4] with kernel 2 stride 2 would fit g; the wrong rank of g is named.
  CHECK(contains(
      message_of<soda::ShapeError>([&] {
        (void)soda::avg_pool2d_input_grad(soda::ones<double>({1, 2, 2, 2, 1}), x.shape(), 2, 2, 0);
      }),
      "[1, 2, 2, 2, 1]"));
}
