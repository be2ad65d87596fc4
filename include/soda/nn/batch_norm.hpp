// Batch normalisation (Ioffe & Szegedy, 2015) as torch.nn.functional.batch_norm, BatchNorm1d and
// BatchNorm2d: y = (x − E[x]) / √(Var[x] + ε) · γ + β per channel (axis 1), Var biased. Training
// uses batch statistics and updates running ones with the unbiased variance; eval uses the running.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// The whole op set: an op's rules may call ops defined in other headers.
#include "soda/autodiff/autodiff.hpp"
#include "soda/nn/module.hpp"

// In soda::detail, not soda::nn::detail: a nested detail would hide soda::detail from the
// unqualified detail:: of every other header in soda::nn.
namespace soda::detail {

template <class T>
void check_batch_norm_channels(const Tensor<T>& v, const char* name, const Tensor<T>& x) {
  if (v.defined() && v.shape() != Shape{x.shape()[1]}) {
    throw ShapeError(std::string("batch_norm: ") + name + " of shape " + to_string(v.shape()) +
                     " does not match input of shape " + to_string(x.shape()) + " (expected [" +
                     std::to_string(x.shape()[1]) + "], one value per channel)");
  }
}

// running ← (1 − momentum)·running + momentum·batch, per channel, written into the buffers'
// storage. Reads primal values only (tangents and the tape never see it), so derivatives are
// those of the normalisation alone, as in PyTorch.
template <class T>
void update_batch_norm_running_stats(const Tensor<T>& running_mean, const Tensor<T>& running_var,
                                     const Tensor<T>& batch_mean, const Tensor<T>& batch_var,
                                     std::int64_t count, double momentum) {
  const std::int64_t channels = running_mean.shape()[0];
  // Bessel's correction: PyTorch normalises with the biased variance but tracks the unbiased.
  const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
  const T* mean = batch_mean.raw_data();
  const T* var = batch_var.raw_data();
  const std::int64_t mean_stride = batch_mean.strides()[1], var_stride = batch_var.strides()[1];
  T* run_mean = running_mean.raw_data();
  T* run_var = running_var.raw_data();
  const std::int64_t run_mean_stride = running_mean.strides()[0];
  const std::int64_t run_var_stride = running_var.strides()[0];
  for (std::int64_t c = 0; c < channels; ++c) {
    T& m = run_mean[c * run_mean_stride];
    T& v = run_var[c * run_var_stride];
    m = static_cast<T>((1.0 - momentum) * static_cast<double>(m) +
                       momentum * static_cast<double>(mean[c * mean_stride]));
    v = static_cast<T>((1.0 - momentum) * static_cast<double>(v) +
                       momentum * unbias * static_cast<double>(var[c * var_stride]));
  }
}

}  // namespace soda::detail

namespace soda::nn {

// x [N, C, ...]; weight, bias, running_mean, running_var [C] (weight and bias may be undefined
// for an unscaled normalisation). In training, or when no running statistics are given, x is
// normalised with its own per-channel mean and biased variance over every axis but 1, and the
// running statistics (if given) move towards the batch's by `momentum`. Otherwise the running
// statistics normalise. Made of differentiable ops only (the fused normalize_channels among them),
// so gradients and H·v through the batch statistics are exact.
template <class T>
Tensor<T> batch_norm(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias,
                     const Tensor<T>& running_mean, const Tensor<T>& running_var, bool training,
                     double momentum = 0.1, double eps = 1e-5) {
  if (x.ndim() < 2) {
    throw ShapeError("batch_norm: expects an input [N, C, ...] of rank >= 2, got shape " +
                     to_string(x.shape()));
  }
  detail::check_batch_norm_channels(weight, "weight", x);
  detail::check_batch_norm_channels(bias, "bias", x);
  detail::check_batch_norm_channels(running_mean, "running_mean", x);
  detail::check_batch_norm_channels(running_var, "running_var", x);
  if (running_mean.defined() != running_var.defined()) {
    throw ValueError("batch_norm: give both running_mean and running_var, or neither");
  }
  if (!training && !running_mean.defined()) {
    throw ValueError(
        "batch_norm: evaluation mode normalises with running_mean and running_var, which are "
        "undefined; pass training = true to use the batch's statistics");
  }
  if (!(eps >= 0.0)) {
    throw ValueError("batch_norm: eps must be non-negative, got " + std::to_string(eps));
  }
  const std::int64_t channels = x.shape()[1];
  // Weight, bias and statistics as [1, C, 1, ...]: stride-0 broadcasts against x, never copies.
  Shape per_channel(static_cast<std::size_t>(x.ndim()), 1);
  per_channel[1] = channels;
  const auto as_channels = [&](const Tensor<T>& v) { return reshape(v, per_channel); };
  const auto eps_tensor = Tensor<T>::scalar(static_cast<T>(eps));

  if (!training) {
    // y = x·scale + shift, scale = γ/√(σ²+ε), shift = β − μ·scale: the per-channel work is
    // done on [C] values, leaving two passes over x (PyTorch's CPU kernel does the same).
    Tensor<T> scale = div(Tensor<T>::scalar(T(1)), sqrt(add(running_var.detach(), eps_tensor)));
    if (weight.defined()) scale = mul(scale, weight);
    Tensor<T> shift = neg(mul(running_mean.detach(), scale));
    if (bias.defined()) shift = add(shift, bias);
    return add(mul(x, as_channels(scale)), as_channels(shift));
  }

  const std::int64_t count = x.numel() / std::max<std::int64_t>(channels, 1);
  if (count <= 1) {
    throw ValueError(
        "batch_norm: training needs more than one value per channel, got input of shape " +
        to_string(x.shape()));
  }
  // The fused normalisation (autodiff/ops/normalization.hpp) computes the moments once for both
  // x̂ and the running statistics; γ and β then cost one product and one sum over x.
  const auto input = x.is_contiguous() ? x : contiguous(x);
  std::vector<double> moments_mean, moments_var;
  detail::channel_moments(input, moments_mean, moments_var);
  Tensor<T> y = detail::record_normalize_channels(input, eps, moments_mean, moments_var);
  if (weight.defined()) y = mul(y, as_channels(weight));
  if (bias.defined()) y = add(y, as_channels(bias));
  if (running_mean.defined()) {
    auto batch_mean = Tensor<T>::empty(per_channel), batch_var = Tensor<T>::empty(per_channel);
    for (std::int64_t c = 0; c < channels; ++c) {
      batch_mean.raw_data()[c] = static_cast<T>(moments_mean[static_cast<std::size_t>(c)]);
      batch_var.raw_data()[c] = static_cast<T>(moments_var[static_cast<std::size_t>(c)]);
    }
    detail::update_batch_norm_running_stats(running_mean, running_var, batch_mean, batch_var, count,
                                            momentum);
  }
  return y;
}

// BatchNorm's settings, with PyTorch's defaults. momentum = nullopt uses the cumulative moving
// average (factor 1 / num_batches_tracked), as PyTorch's momentum=None.
struct BatchNormOptions {
  double eps = 1e-5;
  std::optional<double> momentum = 0.1;
  bool affine = true;               // learnable weight (γ = 1) and bias (β = 0)
  bool track_running_stats = true;  // without them, evaluation also uses batch statistics
};

// What BatchNorm1d and BatchNorm2d share (PyTorch's _BatchNorm); they differ in the input ranks
// they accept. Parameters weight, bias; buffers running_mean, running_var, num_batches_tracked.
template <class T = float>
class BatchNormBase : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override {
    check_input(x);
    const bool tracking = this->is_training() && options_.track_running_stats;
    const double batches = tracking ? static_cast<double>(num_batches_tracked_.item()) + 1 : 0;
    const double factor = tracking ? options_.momentum.value_or(1.0 / batches) : 0.0;
    // Without running statistics, evaluation normalises with the batch's too (as PyTorch).
    const bool use_batch_stats = this->is_training() || !options_.track_running_stats;
    Tensor<T> y = batch_norm(x, weight_, bias_, running_mean_, running_var_, use_batch_stats,
                             factor, options_.eps);
    // Counted once the batch went through, so a rejected input leaves the buffers untouched.
    if (tracking) *num_batches_tracked_.raw_data() = static_cast<T>(batches);
    return y;
  }

  // PyTorch's repr, used in error messages.
  std::string signature() const {
    return this->type_name() + "(" + std::to_string(num_features_) + ")";
  }

  std::int64_t num_features() const { return num_features_; }
  const BatchNormOptions& options() const { return options_; }
  // Undefined without affine.
  const Tensor<T>& weight() const { return weight_; }
  const Tensor<T>& bias() const { return bias_; }
  // Undefined without track_running_stats.
  const Tensor<T>& running_mean() const { return running_mean_; }
  const Tensor<T>& running_var() const { return running_var_; }
  const Tensor<T>& num_batches_tracked() const { return num_batches_tracked_; }

 protected:
  // Options by reference, as Conv2d's: GCC 12 with AVX-512 miscompiles option structs built in
  // by-value stack arguments.
  BatchNormBase(std::int64_t num_features, const BatchNormOptions& options, const char* class_name)
      : num_features_(num_features), options_(options) {
    if (num_features <= 0) {
      throw ValueError(std::string(class_name) + ": num_features must be positive, got " +
                       std::to_string(num_features));
    }
    if (!(options.eps >= 0.0)) {
      throw ValueError(std::string(class_name) + ": eps must be non-negative, got " +
                       std::to_string(options.eps));
    }
    // Registration order is PyTorch's state_dict order.
    if (options.affine) {
      weight_ = this->register_parameter("weight", ones<T>({num_features}));
      bias_ = this->register_parameter("bias", zeros<T>({num_features}));
      weight_.set_requires_grad(true);
      bias_.set_requires_grad(true);
    }
    if (options.track_running_stats) {
      running_mean_ = this->register_buffer("running_mean", zeros<T>({num_features}));
      running_var_ = this->register_buffer("running_var", ones<T>({num_features}));
      num_batches_tracked_ = this->register_buffer("num_batches_tracked", zeros<T>({}));
    }
  }

  // Throws a ShapeError naming the module when x's rank or channel count does not fit.
  virtual void check_input(const Tensor<T>& x) const = 0;

  void check_channels(const Tensor<T>& x, const std::string& expected) const {
    if (x.shape()[1] != num_features_) {
      throw ShapeError(signature() + ": input of shape " + to_string(x.shape()) + " has " +
                       std::to_string(x.shape()[1]) + " channels; expected " + expected);
    }
  }

 private:
  std::int64_t num_features_;
  BatchNormOptions options_;
  Tensor<T> weight_;
  Tensor<T> bias_;
  Tensor<T> running_mean_;
  Tensor<T> running_var_;
  Tensor<T> num_batches_tracked_;
};

// Over [N, C] or [N, C, L], statistics per channel C.
template <class T = float>
class BatchNorm1d : public BatchNormBase<T> {
 public:
  explicit BatchNorm1d(std::int64_t num_features, const BatchNormOptions& options = {})
      : BatchNormBase<T>(num_features, options, "BatchNorm1d") {}

  std::string type_name() const override { return "BatchNorm1d"; }

 protected:
  void check_input(const Tensor<T>& x) const override {
    const std::string expected = "[N, " + std::to_string(this->num_features()) + "] or [N, " +
                                 std::to_string(this->num_features()) + ", L]";
    if (x.ndim() != 2 && x.ndim() != 3) {
      throw ShapeError(this->signature() + ": expected an input " + expected + ", got shape " +
                       to_string(x.shape()));
    }
    this->check_channels(x, expected);
  }
};

// Over [N, C, H, W], statistics per channel C.
template <class T = float>
class BatchNorm2d : public BatchNormBase<T> {
 public:
  explicit BatchNorm2d(std::int64_t num_features, const BatchNormOptions& options = {})
      : BatchNormBase<T>(num_features, options, "BatchNorm2d") {}

  std::string type_name() const override { return "BatchNorm2d"; }

 protected:
  void check_input(const Tensor<T>& x) const override {
    const std::string expected = "[N, " + std::to_string(this->num_features()) + ", H, W]";
    if (x.ndim() != 4) {
      throw ShapeError(this->signature() + ": expected an input " + expected + ", got shape " +
                       to_string(x.shape()));
    }
    this->check_channels(x, expected);
  }
};

}  // namespace soda::nn
