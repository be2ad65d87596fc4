// BatchNorm folded into the preceding Conv2d before quantization (shared/spec/quantization.md):
// per output channel o, s = γ[o]/√(σ²[o]+ε), w'[o] = w[o]·s, b'[o] = β[o] + (b[o] − μ[o])·s,
// with the BatchNorm's running statistics (its eval-mode transform) and b = 0 without a conv bias.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "soda/core/convert.hpp"
#include "soda/core/error.hpp"
#include "soda/nn/batch_norm.hpp"
#include "soda/nn/conv2d.hpp"

namespace soda::quant {

// The folded layer: conv2d(x, weight, stride, padding) + bias equals the Conv2d followed by the
// BatchNorm2d in eval mode. Plain tensors rather than an nn::Conv2d, whose constructor draws its
// own parameters; the tensors are constants (they do not require grad).
template <class T = float>
struct FoldedConv2d {
  Tensor<T> weight;  // [O, C, kh, kw]
  Tensor<T> bias;    // [O]
  Size2d stride = 1;
  Size2d padding = 0;

  // x [N, C, H, W] -> [N, O, Ho, Wo].
  Tensor<T> forward(const Tensor<T>& x) const {
    if (x.ndim() != 4 || x.shape()[1] != weight.shape()[1]) {
      throw ShapeError("FoldedConv2d: input of shape " + to_string(x.shape()) +
                       " does not fit weight of shape " + to_string(weight.shape()) +
                       " (expected [N, " + std::to_string(weight.shape()[1]) + ", H, W])");
    }
    const Tensor<T> y = conv2d(x, weight, stride, padding);
    return add(y, reshape(bias, {weight.shape()[0], 1, 1}));
  }
};

// Folds `batch_norm` (which must track running statistics) into `conv`. The per-channel factors
// and products are computed in double and rounded to T once, so a float fold is within one
// rounding of the exact folded parameters.
template <class T>
FoldedConv2d<T> fold_batch_norm(const nn::Conv2d<T>& conv, const nn::BatchNorm2d<T>& batch_norm) {
  const auto describe = [&] {
    return "fold_batch_norm: " + conv.signature() + " with weight of shape " +
           to_string(conv.weight().shape()) + " and " + batch_norm.signature() + " with " +
           std::to_string(batch_norm.num_features()) + " channels (statistics of shape [" +
           std::to_string(batch_norm.num_features()) + "])";
  };
  if (conv.out_channels() != batch_norm.num_features()) {
    throw ShapeError(describe() + ": the convolution's " + std::to_string(conv.out_channels()) +
                     " output channels do not match the BatchNorm's " +
                     std::to_string(batch_norm.num_features()) + " channels");
  }
  if (!batch_norm.running_mean().defined()) {
    throw ValueError(describe() +
                     ": the BatchNorm has no running statistics (track_running_stats = false), "
                     "so its eval-mode transform depends on the batch and cannot be folded");
  }
  const std::int64_t channels = conv.out_channels();
  const Tensor<double> weight = conv.weight().template to<double>();
  const Tensor<double> mean = batch_norm.running_mean().template to<double>();
  const Tensor<double> variance = batch_norm.running_var().template to<double>();
  // Without affine, γ = 1 and β = 0; without a conv bias, b = 0.
  const Tensor<double> gamma =
      batch_norm.weight().defined() ? batch_norm.weight().template to<double>() : Tensor<double>();
  const Tensor<double> beta =
      batch_norm.bias().defined() ? batch_norm.bias().template to<double>() : Tensor<double>();
  const Tensor<double> conv_bias =
      conv.bias().defined() ? conv.bias().template to<double>() : Tensor<double>();
  const double eps = batch_norm.options().eps;

  auto folded_weight = Tensor<T>::empty(conv.weight().shape());
  auto folded_bias = Tensor<T>::empty({channels});
  const std::int64_t per_channel = weight.numel() / channels;
  const double* w = weight.data();
  T* w_out = folded_weight.data();
  for (std::int64_t o = 0; o < channels; ++o) {
    const double denominator = variance.data()[o] + eps;
    if (!(denominator > 0) || !std::isfinite(denominator)) {
      throw ValueError(describe() + ": running_var + eps of channel " + std::to_string(o) + " is " +
                       std::to_string(denominator) + "; it must be positive and finite");
    }
    const double gamma_o = gamma.defined() ? gamma.data()[o] : 1.0;
    const double beta_o = beta.defined() ? beta.data()[o] : 0.0;
    const double bias_o = conv_bias.defined() ? conv_bias.data()[o] : 0.0;
    const double scale = gamma_o / std::sqrt(denominator);
    for (std::int64_t k = 0; k < per_channel; ++k) {
      w_out[o * per_channel + k] = static_cast<T>(w[o * per_channel + k] * scale);
    }
    folded_bias.data()[o] = static_cast<T>(beta_o + (bias_o - mean.data()[o]) * scale);
  }
  return FoldedConv2d<T>{folded_weight, folded_bias, conv.stride(), conv.padding()};
}

}  // namespace soda::quant
