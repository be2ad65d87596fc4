// Sample inputs for conv2d and its two adjoints (autodiff/ops/convolution.hpp): batch, channels
// and output channels of 1, planes of height or width 1, pointwise and whole-image kernels, strides
// and padding on each side, empty batches and channels, an im2col GEMM large enough for BLAS, and
// each operand in every view (a channels-last input among them) and as a constant.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "sample_inputs.hpp"

namespace soda_test::samples {
namespace {

struct ConvCase {
  Shape input, weight;
  soda::Size2d stride, padding;
  bool every_view;  // also run each operand through every view
};

const std::vector<ConvCase> conv_cases{
    {{2, 2, 5, 5}, {3, 2, 3, 3}, 1, 0, true},   // plain
    {{1, 2, 5, 5}, {3, 2, 3, 3}, 1, 1, true},   // batch 1, padded
    {{2, 1, 4, 4}, {2, 1, 3, 3}, 1, 0, false},  // one input channel
    {{2, 2, 4, 4}, {1, 2, 3, 3}, 1, 0, true},   // one output channel
    {{1, 1, 1, 1}, {1, 1, 1, 1}, 1, 0, false},  // everything 1
    {{2, 3, 4, 4}, {2, 3, 1, 1}, 1, 0, true},   // pointwise: the image is its columns
    {{2, 2, 4, 4}, {2, 2, 1, 1}, 2, 0, false},  // 1x1 kernel, stride 2
    {{2, 2, 1, 5}, {2, 2, 1, 3}, 1, 0, false},  // height 1
    {{2, 2, 5, 1}, {2, 2, 3, 1}, 1, 0, false},  // width 1
    {{2, 2, 3, 3}, {2, 2, 3, 3}, 1, 0, false},  // whole-image kernel: 1x1 output
    {{2, 2, 5, 5}, {2, 2, 3, 3}, 2, 1, false},
    {{1, 2, 7, 7},
     {2, 2, 2, 2},
     3,
     0,
     false},  // stride beyond the kernel: skipped pixels            // stride 2, padding 1
    {{1, 2, 5, 4}, {2, 2, 3, 2}, {2, 1}, {1, 0}, false},  // different strides and padding per axis
    {{0, 2, 4, 4}, {3, 2, 3, 3}, 1, 0, false},            // empty batch
    {{2, 2, 4, 4}, {0, 2, 3, 3}, 1, 1, false},            // no output channels
    {{2, 0, 4, 4}, {3, 0, 3, 3}, 1, 0, false},            // no input channels: zeros
    {{2, 3, 8, 8}, {8, 3, 3, 3}, 1, 1, true},             // BLAS: an [8, 27] @ [27, 64] GEMM
};

std::string geometry_text(const ConvCase& c) {
  return " stride (" + std::to_string(c.stride.h) + ", " + std::to_string(c.stride.w) +
         ") padding (" + std::to_string(c.padding.h) + ", " + std::to_string(c.padding.w) + ")";
}

Shape conv_output(const ConvCase& c) {
  return {c.input[0], c.weight[0], (c.input[2] + 2 * c.padding.h - c.weight[2]) / c.stride.h + 1,
          (c.input[3] + 2 * c.padding.w - c.weight[3]) / c.stride.w + 1};
}

// Samples of a two-operand op over every case: both contiguous; then, for cases marked
// every_view, each operand in every view, as a parameter and as a constant.
void add_pair_samples(std::vector<Sample>& out, const std::string& what, const ConvCase& c,
                      const std::pair<std::string, Shape>& first,
                      const std::pair<std::string, Shape>& second, const Body& body) {
  auto add = [&](View v1, bool c1, View v2, bool c2) {
    out.push_back(make_sample(
        what + geometry_text(c),
        {{first.first, first.second, v1, c1}, {second.first, second.second, v2, c2}}, body));
  };
  add(View::contiguous, false, View::contiguous, false);
  if (!c.every_view) return;
  for (const auto view : views_for(first.second, {View::contiguous})) {
    add(view, false, View::contiguous, false);
    add(view, true, View::contiguous, false);
  }
  for (const auto view : views_for(second.second, {View::contiguous})) {
    add(View::contiguous, false, view, false);
    add(View::contiguous, false, view, true);
  }
}

std::vector<Sample> convolution_samples() {
  std::vector<Sample> out;
  for (const auto& c : conv_cases) {
    // Plain copies, not a structured binding: clang before 16 cannot capture those in a lambda.
    const auto stride = c.stride, padding = c.padding;
    const auto output = conv_output(c);
    add_pair_samples(
        out, "conv2d", c, {"x", c.input}, {"weight", c.weight},
        [stride, padding](const Tensors& x) { return soda::conv2d(x[0], x[1], stride, padding); });
    const auto input = c.input, weight = c.weight;
    add_pair_samples(out, "conv2d_input_grad", c, {"g", output}, {"weight", c.weight},
                     [input, stride, padding](const Tensors& x) {
                       return soda::conv2d_input_grad(x[0], x[1], input, stride, padding);
                     });
    add_pair_samples(out, "conv2d_weight_grad", c, {"x", c.input}, {"g", output},
                     [weight, stride, padding](const Tensors& x) {
                       return soda::conv2d_weight_grad(x[0], x[1], weight, stride, padding);
                     });
  }
  // A channels-last input, as image loaders give it: stored [N, H, W, C], read as [N, C, H, W].
  out.push_back(make_sample("conv2d of a channels-last input stride (1, 1) padding (1, 1)",
                            {{"x (N, H, W, C)", {2, 4, 4, 3}}, {"weight", {2, 3, 3, 3}}},
                            [](const Tensors& x) {
                              return soda::conv2d(soda::permute(x[0], {0, 3, 1, 2}), x[1], 1, 1);
                            }));
  return out;
}

std::vector<Sample> normalization_samples() {
  const std::vector<Shape> shapes{{4, 3},       {2, 3, 2, 2}, {1, 3, 2, 2}, {3, 1, 2},
                                  {2, 3, 1, 1}, {2, 1},       {2, 3, 4},    {2, 0, 3}};
  std::vector<Sample> out;
  for (const auto& shape : shapes) {
    for (const auto& more :
         {unary_samples("normalize_channels",
                        [](const Tensors& x) { return soda::normalize_channels(x[0], 1e-5); },
                        {shape}),
          unary_samples("channel_inverse_std",
                        [](const Tensors& x) { return soda::channel_inverse_std(x[0], 1e-5); },
                        {shape})}) {
      out.insert(out.end(), more.begin(), more.end());
    }
  }
  return out;
}

struct PoolCase {
  Shape input;
  soda::Size2d kernel, stride, padding;
};

// Windows of 2x2 (their own loop), overlapping, padded, larger than 16 elements (the scanning
// loop), of 1, and over planes of height or width 1; batches and channels of 1 and of 0.
const std::vector<PoolCase> pool_cases{
    {{2, 2, 4, 4}, 2, 2, 0},           {{2, 2, 5, 5}, 2, 2, 0},
    {{1, 1, 5, 5}, 3, 1, 0},           {{2, 1, 4, 5}, {3, 2}, {1, 2}, {1, 0}},
    {{1, 2, 5, 5}, 5, 5, 0},           {{2, 2, 3, 3}, 1, 1, 0},
    {{2, 2, 1, 4}, {1, 2}, {1, 2}, 0}, {{2, 2, 4, 1}, {2, 1}, {2, 1}, 0},
    {{1, 1, 4, 4}, 3, 2, 1},           {{0, 2, 4, 4}, 2, 2, 0},
    {{2, 0, 4, 4}, 2, 2, 0},           {{2, 3, 8, 8}, 3, 2, 1},
    {{1, 2, 4, 9}, {2, 9}, {2, 9}, 0}};  // windows of whole rows, 18 long

std::string pool_text(const PoolCase& c) {
  auto pair = [](soda::Size2d s) {
    return "(" + std::to_string(s.h) + ", " + std::to_string(s.w) + ")";
  };
  return " kernel " + pair(c.kernel) + " stride " + pair(c.stride) + " padding " + pair(c.padding);
}

Shape pool_output(const PoolCase& c) {
  return {c.input[0], c.input[1], (c.input[2] + 2 * c.padding.h - c.kernel.h) / c.stride.h + 1,
          (c.input[3] + 2 * c.padding.w - c.kernel.w) / c.stride.w + 1};
}

std::vector<Sample> pooling_samples() {
  std::vector<Sample> out;
  auto add = [&](std::vector<Sample> more) { out.insert(out.end(), more.begin(), more.end()); };
  for (const auto& c : pool_cases) {
    const auto kernel = c.kernel, stride = c.stride, padding = c.padding;
    // Values repeated along a window's rows or columns would tie: max_pool2d keeps expansions
    // to the batch and channel axes.
    const bool expands_plane = c.input[0] < 2 && c.input[1] < 2;
    add(unary_samples(
        "max_pool2d" + pool_text(c),
        [kernel, stride, padding](const Tensors& x) {
          return soda::max_pool2d(x[0], kernel, stride, padding);
        },
        {c.input}, distinct_values(),
        expands_plane ? std::vector<View>{View::expanded} : std::vector<View>{}));
    add(unary_samples("avg_pool2d" + pool_text(c),
                      [kernel, stride, padding](const Tensors& x) {
                        return soda::avg_pool2d(x[0], kernel, stride, padding);
                      },
                      {c.input}));
    const auto input = c.input;
    add(unary_samples("avg_pool2d_input_grad into " + soda::to_string(input) + pool_text(c),
                      [input, kernel, stride, padding](const Tensors& x) {
                        return soda::avg_pool2d_input_grad(x[0], input, kernel, stride, padding);
                      },
                      {pool_output(c)}));
  }
  return out;
}

}  // namespace

TEST_CASE("sample inputs: conv2d, conv2d_input_grad and conv2d_weight_grad over every geometry") {
  check_samples(convolution_samples());
}

TEST_CASE("sample inputs: normalize_channels and channel_inverse_std over unit and empty axes") {
  check_samples(normalization_samples());
}

TEST_CASE("sample inputs: max_pool2d, avg_pool2d and its adjoint over every window kind") {
  check_samples(pooling_samples());
}

TEST_CASE("sample inputs: convolution, normalisation and pooling refuse empty planes and batches") {
  const auto weight = soda::ones<double>({3, 2, 3, 3});
  check_rejections({
      {"conv2d of an empty plane",
       [&] {
         (void)soda::conv2d(soda::ones<double>({2, 2, 0, 4}), weight);
       },
       {"conv2d", "[2, 2, 0, 4]"}},
      {"conv2d with an empty kernel",
       [&] {
         (void)soda::conv2d(soda::ones<double>({2, 2, 4, 4}), soda::ones<double>({3, 2, 0, 3}));
       },
       {"conv2d", "[3, 2, 0, 3]"}},
      {"max_pool2d of an empty plane",
       [] {
         (void)soda::max_pool2d(soda::ones<double>({2, 2, 0, 4}), 2);
       },
       {"max_pool2d", "[2, 2, 0, 4]"}},
      {"avg_pool2d of an empty plane",
       [] {
         (void)soda::avg_pool2d(soda::ones<double>({2, 2, 4, 0}), 2);
       },
       {"avg_pool2d", "[2, 2, 4, 0]"}},
      {"normalize_channels of a rank-1 input",
       [] { (void)soda::normalize_channels(soda::ones<double>({4}), 1e-5); },
       {"normalize_channels", "[4]"}},
  });
  check_rejections<soda::ValueError>({
      {"normalize_channels of an empty batch",
       [] {
         (void)soda::normalize_channels(soda::ones<double>({0, 3, 2}), 1e-5);
       },
       {"normalize_channels", "[0, 3, 2]"}},
      {"channel_inverse_std of one value per channel",
       [] {
         (void)soda::channel_inverse_std(soda::ones<double>({1, 3}), 1e-5);
       },
       {"channel_inverse_std", "[1, 3]"}},
  });
}

TEST_CASE("sample inputs: convolution, normalisation and pooling read a broadcast gradient") {
  check_samples(summed_samples(convolution_samples()));
  check_samples(summed_samples(normalization_samples()));
  check_samples(summed_samples(pooling_samples()));
}

}  // namespace soda_test::samples
