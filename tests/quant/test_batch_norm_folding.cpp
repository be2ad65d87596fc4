// soda/quant/batch_norm_folding.hpp: the folded convolution reproduces Conv2d followed by an
// eval-mode BatchNorm2d (the oracle is the two modules' own forward), a hand-folded example,
// errors.
#include <doctest/doctest.h>

#include <soda/core/factories.hpp>
#include <soda/quant/batch_norm_folding.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace {

// Non-trivial γ, β, μ, σ² (σ² in [0.25, 2.25]) written into the BatchNorm's storage.
template <class T>
void folding_set_statistics(const soda::nn::BatchNorm2d<T>& batch_norm, soda::Generator& gen) {
  const std::int64_t channels = batch_norm.num_features();
  const auto gamma = soda::randn<T>({channels}, gen, T(1), T(0.5));
  const auto beta = soda::randn<T>({channels}, gen);
  const auto mean = soda::randn<T>({channels}, gen, T(0), T(2));
  const auto spread = soda::randn<T>({channels}, gen);
  for (std::int64_t c = 0; c < channels; ++c) {
    batch_norm.weight().data()[c] = gamma.data()[c];
    batch_norm.bias().data()[c] = beta.data()[c];
    batch_norm.running_mean().data()[c] = mean.data()[c];
    const T s = std::clamp(spread.data()[c], T(-1), T(1));
    batch_norm.running_var().data()[c] = T(0.25) + (s + T(1)) * (s + T(1)) / T(2);
  }
}

// max |a − b| / max |b|: relative to the output's magnitude, so values near zero do not inflate it.
template <class T>
double folding_relative_error(const soda::Tensor<T>& a, const soda::Tensor<T>& b) {
  REQUIRE(a.shape() == b.shape());
  const auto ca = soda::contiguous(a), cb = soda::contiguous(b);
  double error = 0, magnitude = 0;
  for (std::int64_t i = 0; i < cb.numel(); ++i) {
    error = std::max(error, std::abs(static_cast<double>(ca.data()[i]) - cb.data()[i]));
    magnitude = std::max(magnitude, std::abs(static_cast<double>(cb.data()[i])));
  }
  return error / magnitude;
}

template <class T>
double folding_error_against_modules(std::int64_t in_channels, std::int64_t out_channels,
                                     const soda::nn::Conv2dOptions& options, std::uint64_t seed) {
  soda::Generator gen(seed);
  soda::nn::Conv2d<T> conv(in_channels, out_channels, {3, 3}, gen, options);
  soda::nn::BatchNorm2d<T> batch_norm(out_channels);
  folding_set_statistics(batch_norm, gen);
  batch_norm.eval();
  const auto folded = soda::quant::fold_batch_norm(conv, batch_norm);
  const auto x = soda::randn<T>({2, in_channels, 9, 7}, gen);
  const auto expected = batch_norm.forward(conv.forward(x));
  const auto got = folded.forward(x);
  CHECK(!folded.weight.requires_grad());
  return folding_relative_error(got, expected);
}

}  // namespace

TEST_CASE("fold_batch_norm: folded Conv2d equals Conv2d then eval-mode BatchNorm2d") {
  SUBCASE("float, with conv bias") {
    CHECK(folding_error_against_modules<float>(3, 5, {}, 1) < 1e-5);
  }
  SUBCASE("float, without conv bias, stride 2 and padding 1") {
    CHECK(folding_error_against_modules<float>(4, 6, {.stride = 2, .padding = 1, .bias = false},
                                               2) < 1e-5);
  }
  SUBCASE("double, with conv bias, stride (2, 1) and padding (0, 2)") {
    CHECK(folding_error_against_modules<double>(
              2, 3, {.stride = {2, 1}, .padding = {0, 2}, .bias = true}, 3) < 1e-12);
  }
  SUBCASE("double, without conv bias") {
    CHECK(folding_error_against_modules<double>(3, 4, {.bias = false}, 4) < 1e-12);
  }
}

TEST_CASE("fold_batch_norm: a hand-folded single channel") {
  // w = 2, b = 1, μ = 3, σ² + ε = 3 + 1 = 4, γ = 4, β = 0.5: s = 4 / 2 = 2,
  // w' = 2·2 = 4, b' = 0.5 + (1 − 3)·2 = −3.5.
  soda::Generator gen(5);
  soda::nn::Conv2d<float> conv(1, 1, {1, 1}, gen);
  conv.weight().data()[0] = 2.0f;
  conv.bias().data()[0] = 1.0f;
  soda::nn::BatchNorm2d<float> batch_norm(1, {.eps = 1.0});
  batch_norm.running_mean().data()[0] = 3.0f;
  batch_norm.running_var().data()[0] = 3.0f;
  batch_norm.weight().data()[0] = 4.0f;
  batch_norm.bias().data()[0] = 0.5f;
  const auto folded = soda::quant::fold_batch_norm(conv, batch_norm);
  CHECK(folded.weight.shape() == soda::Shape{1, 1, 1, 1});
  CHECK(folded.weight.data()[0] == 4.0f);
  CHECK(folded.bias.shape() == soda::Shape{1});
  CHECK(folded.bias.data()[0] == -3.5f);
  // Without a conv bias, b = 0: b' = 0.5 − 3·2 = −5.5.
  soda::nn::Conv2d<float> unbiased(1, 1, {1, 1}, gen, {.bias = false});
  unbiased.weight().data()[0] = 2.0f;
  CHECK(soda::quant::fold_batch_norm(unbiased, batch_norm).bias.data()[0] == -5.5f);
  // Without affine, γ = 1 and β = 0: s = 0.5, w' = 1, b' = (1 − 3)·0.5 = −1.
  soda::nn::BatchNorm2d<float> plain(1, {.eps = 1.0, .affine = false});
  plain.running_mean().data()[0] = 3.0f;
  plain.running_var().data()[0] = 3.0f;
  const auto folded_plain = soda::quant::fold_batch_norm(conv, plain);
  CHECK(folded_plain.weight.data()[0] == 1.0f);
  CHECK(folded_plain.bias.data()[0] == -1.0f);
}

TEST_CASE("fold_batch_norm: errors name both modules") {
  soda::Generator gen(6);
  soda::nn::Conv2d<float> conv(3, 4, {3, 3}, gen);
  soda::nn::BatchNorm2d<float> wrong(5);
  CHECK_THROWS_WITH_AS(soda::quant::fold_batch_norm(conv, wrong),
                       doctest::Contains("Conv2d(3, 4, kernel_size=(3, 3)"), soda::ShapeError);
  CHECK_THROWS_WITH_AS(soda::quant::fold_batch_norm(conv, wrong),
                       doctest::Contains("weight of shape [4, 3, 3, 3] and BatchNorm2d(5) with 5 "
                                         "channels (statistics of shape [5])"),
                       soda::ShapeError);
  soda::nn::BatchNorm2d<float> untracked(4, {.track_running_stats = false});
  CHECK_THROWS_WITH_AS(soda::quant::fold_batch_norm(conv, untracked),
                       doctest::Contains("no running statistics"), soda::ValueError);
  soda::nn::BatchNorm2d<float> negative(4, {.eps = 0.0});
  negative.running_var().data()[2] = -1.0f;
  CHECK_THROWS_WITH_AS(soda::quant::fold_batch_norm(conv, negative),
                       doctest::Contains("running_var + eps of channel 2 is -1"), soda::ValueError);
}
