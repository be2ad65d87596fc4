// soda::optim::Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), following
// torch.optim.Adam and AdamW (PyTorch 1.13, _single_tensor_adam/_single_tensor_adamw) step for
// step:
//   g = ±grad (+ weight_decay·p, Adam);  p = p·(1 − lr·weight_decay) (AdamW);
//   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;  v̂ = max(v̂, v) (amsgrad);
//   p = p − lr / (1 − β1^t) · m / (√v / √(1 − β2^t) + eps).
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "soda/autodiff/grad_mode.hpp"
#include "soda/core/error.hpp"
#include "soda/core/tensor.hpp"
#include "soda/nn/module.hpp"
#include "soda/optim/number_text.hpp"
#include "soda/optim/optimizer.hpp"
#include "soda/optim/optimizer_state.hpp"

namespace soda::optim {

// The hyperparameters under PyTorch's names and defaults (betas as beta1, beta2); AdamW differs
// only in its default weight decay. Set them with designated initialisers:
// AdamOptions{.lr = 1e-3, .weight_decay = 1e-4}.
template <bool DecoupledWeightDecay>
struct AdamOptionsFor {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = DecoupledWeightDecay ? 1e-2 : 0.0;
  bool amsgrad = false;
  bool maximize = false;

  bool operator==(const AdamOptionsFor&) const = default;
};
using AdamOptions = AdamOptionsFor<false>;
using AdamWOptions = AdamOptionsFor<true>;

// Adam with L2 weight decay added to the gradient (DecoupledWeightDecay false) or AdamW with the
// weight decay applied to the parameter directly (true). Use the aliases Adam<T> and AdamW<T>.
// The state is PyTorch's: per parameter a step count, m, v and (amsgrad) the running max of v.
template <class T, bool DecoupledWeightDecay>
class AdaptiveMoments final : public Optimizer<T> {
  static_assert(std::is_floating_point_v<T>, "Adam updates float or double parameters");

 public:
  using Options = AdamOptionsFor<DecoupledWeightDecay>;

  AdaptiveMoments(std::vector<Tensor<T>> params, Options options = {})
      : params_(std::move(params)), options_(options) {
    check_options(options_, display_name());
    detail::check_parameters(params_, display_name());
    steps_.assign(params_.size(), 0);
    exp_avg_.resize(params_.size());
    exp_avg_sq_.resize(params_.size());
    max_exp_avg_sq_.resize(params_.size());
  }

  // Copies own their state (the parameters stay shared handles).
  AdaptiveMoments(const AdaptiveMoments& other)
      : Optimizer<T>(other),
        params_(other.params_),
        options_(other.options_),
        step_count_(other.step_count_),
        steps_(other.steps_),
        exp_avg_(detail::copies_of(other.exp_avg_)),
        exp_avg_sq_(detail::copies_of(other.exp_avg_sq_)),
        max_exp_avg_sq_(detail::copies_of(other.max_exp_avg_sq_)) {}
  AdaptiveMoments& operator=(const AdaptiveMoments& other) {
    if (this != &other) *this = AdaptiveMoments(other);
    return *this;
  }
  AdaptiveMoments(AdaptiveMoments&&) noexcept = default;
  AdaptiveMoments& operator=(AdaptiveMoments&&) noexcept = default;
  ~AdaptiveMoments() override = default;

  std::unique_ptr<Optimizer<T>> clone() const override {
    return std::make_unique<AdaptiveMoments>(*this);
  }
  std::string name() const override { return DecoupledWeightDecay ? "adamw" : "adam"; }

  using Optimizer<T>::step;  // step(loss) and step() (module style) come from the interface

  // An undefined gradient also leaves its parameter's own step count, as a None grad does.
  void step(const std::vector<Tensor<T>>& grads) override {
    detail::check_gradients(params_, grads, display_name() + ".step");
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (grads[i].defined()) update(i, grads[i]);
    }
    ++step_count_;
  }

  double learning_rate() const override { return options_.lr; }
  void set_learning_rate(double lr) override {
    Options changed = options_;
    changed.lr = lr;
    check_options(changed, display_name() + ".set_learning_rate");
    options_ = changed;
  }
  const Options& options() const { return options_; }
  std::int64_t step_count() const override { return step_count_; }
  const std::vector<Tensor<T>>& parameters() const override { return params_; }

  // Parameter `index`'s own step count (PyTorch's state[p]["step"]) and live buffers; the buffers
  // are undefined before its first step (max_exp_avg_sq also without amsgrad).
  std::int64_t parameter_steps(std::size_t index) const { return steps_.at(index); }
  Tensor<T> exp_avg(std::size_t index) const { return exp_avg_.at(index); }
  Tensor<T> exp_avg_sq(std::size_t index) const { return exp_avg_sq_.at(index); }
  Tensor<T> max_exp_avg_sq(std::size_t index) const { return max_exp_avg_sq_.at(index); }

  // Copies of the buffers as exp_avg.<index>, exp_avg_sq.<index> (and max_exp_avg_sq.<index>).
  nn::NamedTensors<T> state_dict() const override {
    nn::NamedTensors<T> out;
    detail::append_buffers(out, "exp_avg", exp_avg_);
    detail::append_buffers(out, "exp_avg_sq", exp_avg_sq_);
    detail::append_buffers(out, "max_exp_avg_sq", max_exp_avg_sq_);
    return out;
  }

  // Options, step counts (in all and per parameter) and the parameter count, as text under
  // "<name>." ("adam." or "adamw.").
  std::map<std::string, std::string> state_metadata() const override {
    const std::string prefix = name() + ".";
    return {{prefix + "lr", detail::exact_text(options_.lr)},
            {prefix + "beta1", detail::exact_text(options_.beta1)},
            {prefix + "beta2", detail::exact_text(options_.beta2)},
            {prefix + "eps", detail::exact_text(options_.eps)},
            {prefix + "weight_decay", detail::exact_text(options_.weight_decay)},
            {prefix + "amsgrad", options_.amsgrad ? "true" : "false"},
            {prefix + "maximize", options_.maximize ? "true" : "false"},
            {prefix + "step_count", std::to_string(step_count_)},
            {prefix + "parameter_count", std::to_string(params_.size())},
            {prefix + "parameter_steps", detail::count_list_text(steps_)}};
  }

  // Restores state_dict() and state_metadata() (hyperparameters included, as PyTorch does); a
  // parameter has buffers exactly when its step count is non-zero. Changes nothing on an error.
  void load_state_dict(const nn::NamedTensors<T>& tensors,
                       const std::map<std::string, std::string>& metadata) override {
    const std::string prefix = name() + ".";
    const detail::MetadataReader read(metadata, display_name() + ".load_state_dict");
    Options loaded;
    loaded.lr = read.real(prefix + "lr");
    loaded.beta1 = read.real(prefix + "beta1");
    loaded.beta2 = read.real(prefix + "beta2");
    loaded.eps = read.real(prefix + "eps");
    loaded.weight_decay = read.real(prefix + "weight_decay");
    loaded.amsgrad = read.boolean(prefix + "amsgrad");
    loaded.maximize = read.boolean(prefix + "maximize");
    check_options(loaded, read.op());
    const auto steps = read.count(prefix + "step_count");
    read.check_parameter_count(prefix + "parameter_count", params_.size());
    auto parameter_steps = read.count_list(prefix + "parameter_steps", params_.size());
    std::vector<bool> stepped;
    for (const auto s : parameter_steps) stepped.push_back(s > 0);
    std::vector<std::string> kinds{"exp_avg", "exp_avg_sq"};
    if (loaded.amsgrad) kinds.push_back("max_exp_avg_sq");
    auto buffers =
        detail::read_buffers(tensors, kinds, params_, stepped,
                             prefix + "parameter_steps (the parameters with steps)", read.op());
    options_ = loaded;
    step_count_ = steps;
    steps_ = std::move(parameter_steps);
    exp_avg_ = std::move(buffers[0]);
    exp_avg_sq_ = std::move(buffers[1]);
    max_exp_avg_sq_ =
        loaded.amsgrad ? std::move(buffers[2]) : std::vector<Tensor<T>>(params_.size());
  }

 private:
  static std::string display_name() { return DecoupledWeightDecay ? "AdamW" : "Adam"; }

  // PyTorch's checks (torch/optim/adam.py), with the value at fault in the message.
  static void check_options(const Options& o, const std::string& op) {
    auto require = [&](bool holds, const std::string& what, double value) {
      if (!holds) throw ValueError(op + ": invalid " + what + " " + detail::exact_text(value));
    };
    require(std::isfinite(o.lr) && o.lr >= 0, "learning rate (must be finite and >= 0)", o.lr);
    require(o.eps >= 0 && std::isfinite(o.eps), "eps (must be finite and >= 0)", o.eps);
    require(o.beta1 >= 0 && o.beta1 < 1, "beta1 (must be in [0, 1))", o.beta1);
    require(o.beta2 >= 0 && o.beta2 < 1, "beta2 (must be in [0, 1))", o.beta2);
    require(std::isfinite(o.weight_decay) && o.weight_decay >= 0,
            "weight_decay (must be finite and >= 0)", o.weight_decay);
  }

  void update(std::size_t i, const Tensor<T>& grad) {
    if (steps_[i] == 0) {
      exp_avg_[i] = zeros<T>(params_[i].shape());
      exp_avg_sq_[i] = zeros<T>(params_[i].shape());
      if (options_.amsgrad) max_exp_avg_sq_[i] = zeros<T>(params_[i].shape());
    }
    const auto step = static_cast<double>(++steps_[i]);
    // PyTorch casts each scalar to the tensor's type once; the bias corrections are in double.
    const double bias_correction1 = 1 - std::pow(options_.beta1, step);
    const double bias_correction2 = 1 - std::pow(options_.beta2, step);
    const T step_size = static_cast<T>(options_.lr / bias_correction1);
    const T bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
    const T beta1 = static_cast<T>(options_.beta1), beta2 = static_cast<T>(options_.beta2);
    const T one_minus_beta1 = static_cast<T>(1 - options_.beta1);
    const T one_minus_beta2 = static_cast<T>(1 - options_.beta2);
    const T eps = static_cast<T>(options_.eps);
    const T weight_decay = static_cast<T>(options_.weight_decay);
    const T decay_factor = static_cast<T>(1 - options_.lr * options_.weight_decay);
    const bool decays = options_.weight_decay != 0, maximize = options_.maximize;
    T* m = exp_avg_[i].data();
    T* v = exp_avg_sq_[i].data();
    T* v_max = options_.amsgrad ? max_exp_avg_sq_[i].data() : nullptr;
    detail::for_each_parameter_element(params_[i], grad, [&](T& p, T g, std::int64_t k) {
      if (maximize) g = -g;
      if constexpr (DecoupledWeightDecay) {
        p = p * decay_factor;
      } else if (decays) {
        g = g + weight_decay * p;
      }
      m[k] = m[k] * beta1 + one_minus_beta1 * g;
      v[k] = v[k] * beta2 + one_minus_beta2 * g * g;
      T second_moment = v[k];
      if (v_max) second_moment = v_max[k] = std::max(v_max[k], v[k]);
      const T denominator = std::sqrt(second_moment) / bias_correction2_sqrt + eps;
      p = p - step_size * m[k] / denominator;  // addcdiv_: (value·m) / denominator
    });
  }

  std::vector<Tensor<T>> params_;
  Options options_;
  std::int64_t step_count_ = 0;
  std::vector<std::int64_t> steps_;
  std::vector<Tensor<T>> exp_avg_, exp_avg_sq_, max_exp_avg_sq_;
};

template <class T = float>
using Adam = AdaptiveMoments<T, false>;
template <class T = float>
using AdamW = AdaptiveMoments<T, true>;

}  // namespace soda::optim
