// soda::optim::AdaHessian (Yao, Gholami, Shen, Mustafa, Keutzer, Mahoney, AAAI 2021) as its
// official implementation (amirgholami/adahessian, image_classification/optim_adahessian.py) does:
//   D = mean over probes of z ⊙ Hz (Rademacher z; for a convolution kernel, |D| averaged over
//       its spatial window per output/input channel pair);
//   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·D²;
//   p = p − lr·(m / (1 − β1^t) / ((√v)^k / √(1 − β2^t)^k + eps) + weight_decay·p).
// A step costs one forward-over-reverse pass (soda::value_grad_hvp): loss, g and Hz together.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "soda/autodiff/functional.hpp"
#include "soda/autodiff/grad_mode.hpp"
#include "soda/autodiff/hessian_at.hpp"
#include "soda/core/error.hpp"
#include "soda/core/generator.hpp"
#include "soda/core/tensor.hpp"
#include "soda/hessian/diagonal.hpp"
#include "soda/hessian/parameter_vector.hpp"
#include "soda/nn/module.hpp"
#include "soda/optim/number_text.hpp"
#include "soda/optim/optimizer.hpp"
#include "soda/optim/optimizer_state.hpp"

namespace soda::optim {

// The official defaults; the paper's CIFAR ResNet recipe adds weight_decay = 5e-4 (README).
struct AdaHessianOptions {
  double lr = 0.15;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-4;
  double weight_decay = 0;       // the official code's: lr·weight_decay·p joins the update
  double hessian_power = 1;      // k in (√v)^k, within [0, 1]; 0 is momentum SGD, 1 Newton-like
  std::int64_t samples = 1;      // Rademacher probes averaged per curvature estimate
  std::int64_t update_each = 1;  // estimate the curvature at every this many steps, else reuse it
  bool average_conv_kernel = true;  // spatial averaging of kernels with 3 or more dimensions
  std::uint64_t seed = 0;           // the probes' generator

  bool operator==(const AdaHessianOptions&) const = default;
};

namespace detail {

// The official spatial averaging: a kernel [out, in, k...] gets, in every entry of each
// (out, in) window, the mean of |D| over that window. Vectors and matrices are returned as they
// are (only D² enters the update, so their sign does not matter).
template <class T>
Tensor<T> spatially_averaged(const Tensor<T>& diagonal) {
  auto out = soda::detail::copy_contiguous(diagonal);
  if (out.ndim() < 3 || out.numel() == 0) return out;
  const std::int64_t window = out.numel() / (out.shape()[0] * out.shape()[1]);
  T* d = out.data();
  for (std::int64_t start = 0; start < out.numel(); start += window) {
    double sum = 0;
    for (std::int64_t j = 0; j < window; ++j) sum += std::abs(static_cast<double>(d[start + j]));
    const auto mean = static_cast<T>(sum / static_cast<double>(window));
    for (std::int64_t j = 0; j < window; ++j) d[start + j] = mean;
  }
  return out;
}

}  // namespace detail

template <class T = float>
class AdaHessian final : public Optimizer<T> {
  static_assert(std::is_floating_point_v<T>, "AdaHessian updates float or double parameters");

 public:
  AdaHessian(std::vector<Tensor<T>> params, AdaHessianOptions options = {})
      : params_(std::move(params)), options_(options), generator_(options.seed) {
    check_options(options_, "AdaHessian");
    detail::check_parameters(params_, "AdaHessian");
    steps_.assign(params_.size(), 0);
    exp_avg_.resize(params_.size());
    exp_hessian_diag_sq_.resize(params_.size());
    diagonal_.resize(params_.size());
  }

  // Copies own their state (the parameters stay shared handles).
  AdaHessian(const AdaHessian& other)
      : Optimizer<T>(other),
        params_(other.params_),
        options_(other.options_),
        generator_(other.generator_),
        step_count_(other.step_count_),
        hvp_count_(other.hvp_count_),
        steps_(other.steps_),
        exp_avg_(detail::copies_of(other.exp_avg_)),
        exp_hessian_diag_sq_(detail::copies_of(other.exp_hessian_diag_sq_)),
        diagonal_(detail::copies_of(other.diagonal_)) {}
  AdaHessian& operator=(const AdaHessian& other) {
    if (this != &other) *this = AdaHessian(other);
    return *this;
  }
  AdaHessian(AdaHessian&&) noexcept = default;
  AdaHessian& operator=(AdaHessian&&) noexcept = default;
  ~AdaHessian() override = default;

  std::unique_ptr<Optimizer<T>> clone() const override {
    return std::make_unique<AdaHessian>(*this);
  }
  std::string name() const override { return "adahessian"; }

  // One step on loss(). At a curvature step (every update_each-th, from the first) it draws
  // `samples` Rademacher probes z from the optimizer's generator, parameter by parameter, and gets
  // the loss, g and Hz in one forward-over-reverse pass (more probes: one linearization, replayed
  // per probe); at the other steps only the loss and g, reusing the last curvature.
  Tensor<T> step(const LossClosure<T>& loss) override { return step_accumulated({loss}); }

  // The same on the sum of the parts' losses (micro-batches of one batch): the same probes z go
  // through every part, and g and Hz are summed over the parts, as H of a sum is the sum of Hs.
  Tensor<T> step_accumulated(const std::vector<LossClosure<T>>& parts) override {
    if (parts.empty()) throw ValueError("AdaHessian.step_accumulated: no loss parts given");
    if (step_count_ % options_.update_each != 0) return Optimizer<T>::step_accumulated(parts);
    std::vector<Shape> shapes;
    for (const auto& p : params_) shapes.push_back(p.shape());
    std::vector<hessian::ParameterVector<T>> probes;
    for (std::int64_t s = 0; s < options_.samples; ++s) {
      probes.push_back(hessian::rademacher_vector<T>(shapes, generator_));
    }
    Tensor<T> value;
    std::vector<Tensor<T>> grads;
    std::vector<hessian::ParameterVector<T>> products;
    for (const auto& part : parts) {
      auto [part_value, part_grads, part_products] = value_grad_products(part, probes);
      value = value.defined() ? add(value, part_value) : part_value;
      this->accumulate(grads, part_grads);
      for (std::size_t s = 0; s < part_products.size(); ++s) {
        if (s < products.size()) {
          hessian::add_scaled(products[s], 1.0, part_products[s]);
        } else {
          products.push_back(std::move(part_products[s]));
        }
      }
    }
    hvp_count_ += options_.samples;
    step(grads, mean_diagonal(probes, products));
    return value;
  }

  // One step with the gradients and a fresh Hessian-diagonal estimate (z ⊙ Hz, as
  // hessian::diagonal_from_probe gives it; spatial averaging is applied here). An undefined
  // gradient skips its parameter, as a None grad does in PyTorch.
  void step(const std::vector<Tensor<T>>& grads, const std::vector<Tensor<T>>& hessian_diagonal) {
    detail::check_gradients(params_, grads, "AdaHessian.step");
    soda::detail::check_same_shapes(params_, hessian_diagonal, "AdaHessian.step (diagonal)");
    for (std::size_t i = 0; i < params_.size(); ++i) {
      diagonal_[i] = options_.average_conv_kernel
                         ? detail::spatially_averaged(hessian_diagonal[i])
                         : soda::detail::copy_contiguous(hessian_diagonal[i]);
    }
    step(grads);
  }

  using Optimizer<T>::step;  // step() (module style) comes from the interface

  // One step reusing the last curvature estimate (update_each's steps between estimates).
  void step(const std::vector<Tensor<T>>& grads) override {
    detail::check_gradients(params_, grads, "AdaHessian.step");
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (grads[i].defined() && !diagonal_[i].defined()) {
        throw ValueError("AdaHessian.step: parameter " + std::to_string(i) +
                         " has no Hessian-diagonal estimate yet; the first step needs one");
      }
    }
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (grads[i].defined()) update(i, grads[i]);
    }
    ++step_count_;
  }

  double learning_rate() const override { return options_.lr; }
  void set_learning_rate(double lr) override {
    AdaHessianOptions changed = options_;
    changed.lr = lr;
    check_options(changed, "AdaHessian.set_learning_rate");
    options_ = changed;
  }
  const AdaHessianOptions& options() const { return options_; }
  std::int64_t step_count() const override { return step_count_; }
  const std::vector<Tensor<T>>& parameters() const override { return params_; }
  // Hessian-vector products taken so far (samples per curvature step).
  std::int64_t hvp_count() const { return hvp_count_; }
  // The probes' generator: its seed and offset say which probes the next step draws.
  const Generator& generator() const { return generator_; }

  std::int64_t parameter_steps(std::size_t index) const { return steps_.at(index); }
  Tensor<T> exp_avg(std::size_t index) const { return exp_avg_.at(index); }
  Tensor<T> exp_hessian_diag_sq(std::size_t index) const { return exp_hessian_diag_sq_.at(index); }
  // The curvature the next step without a fresh estimate reuses (spatially averaged).
  Tensor<T> hessian_diagonal(std::size_t index) const { return diagonal_.at(index); }

  // Copies of exp_avg.<index>, exp_hessian_diag_sq.<index> and hessian_diagonal.<index>.
  nn::NamedTensors<T> state_dict() const override {
    nn::NamedTensors<T> out;
    detail::append_buffers(out, "exp_avg", exp_avg_);
    detail::append_buffers(out, "exp_hessian_diag_sq", exp_hessian_diag_sq_);
    detail::append_buffers(out, "hessian_diagonal", diagonal_);
    return out;
  }

  std::map<std::string, std::string> state_metadata() const override {
    std::vector<bool> diagonals;
    for (const auto& d : diagonal_) diagonals.push_back(d.defined());
    const auto& o = options_;
    return {{"adahessian.lr", detail::exact_text(o.lr)},
            {"adahessian.beta1", detail::exact_text(o.beta1)},
            {"adahessian.beta2", detail::exact_text(o.beta2)},
            {"adahessian.eps", detail::exact_text(o.eps)},
            {"adahessian.weight_decay", detail::exact_text(o.weight_decay)},
            {"adahessian.hessian_power", detail::exact_text(o.hessian_power)},
            {"adahessian.samples", std::to_string(o.samples)},
            {"adahessian.update_each", std::to_string(o.update_each)},
            {"adahessian.average_conv_kernel", o.average_conv_kernel ? "true" : "false"},
            {"adahessian.seed", std::to_string(o.seed)},
            {"adahessian.generator_offset", std::to_string(generator_.offset())},
            {"adahessian.step_count", std::to_string(step_count_)},
            {"adahessian.hvp_count", std::to_string(hvp_count_)},
            {"adahessian.parameter_count", std::to_string(params_.size())},
            {"adahessian.parameter_steps", detail::count_list_text(steps_)},
            {"adahessian.hessian_diagonals", detail::index_list(diagonals)}};
  }

  // Restores state_dict() and state_metadata(), the probes' generator included, so that a resumed
  // run draws the same probes and continues bit for bit. Changes nothing on an error.
  void load_state_dict(const nn::NamedTensors<T>& tensors,
                       const std::map<std::string, std::string>& metadata) override {
    const detail::MetadataReader read(metadata, "AdaHessian.load_state_dict");
    AdaHessianOptions loaded;
    loaded.lr = read.real("adahessian.lr");
    loaded.beta1 = read.real("adahessian.beta1");
    loaded.beta2 = read.real("adahessian.beta2");
    loaded.eps = read.real("adahessian.eps");
    loaded.weight_decay = read.real("adahessian.weight_decay");
    loaded.hessian_power = read.real("adahessian.hessian_power");
    loaded.samples = read.count("adahessian.samples");
    loaded.update_each = read.count("adahessian.update_each");
    loaded.average_conv_kernel = read.boolean("adahessian.average_conv_kernel");
    loaded.seed = static_cast<std::uint64_t>(read.count("adahessian.seed"));
    check_options(loaded, read.op());
    const auto offset = static_cast<std::uint64_t>(read.count("adahessian.generator_offset"));
    const auto steps = read.count("adahessian.step_count");
    const auto hvps = read.count("adahessian.hvp_count");
    read.check_parameter_count("adahessian.parameter_count", params_.size());
    auto parameter_steps = read.count_list("adahessian.parameter_steps", params_.size());
    std::vector<bool> stepped;
    for (const auto s : parameter_steps) stepped.push_back(s > 0);
    const auto listed = read.index_set("adahessian.hessian_diagonals", params_.size());

    // The moments and the diagonals are listed separately, so they are read in two passes.
    nn::NamedTensors<T> moments, diagonals;
    for (const auto& entry : tensors) {
      (entry.first.rfind("hessian_diagonal.", 0) == 0 ? diagonals : moments).push_back(entry);
    }
    auto moment_buffers =
        detail::read_buffers(moments, {"exp_avg", "exp_hessian_diag_sq"}, params_, stepped,
                             "adahessian.parameter_steps (the parameters with steps)", read.op());
    auto diagonal_buffers = detail::read_buffers(diagonals, {"hessian_diagonal"}, params_, listed,
                                                 "adahessian.hessian_diagonals", read.op());
    options_ = loaded;
    generator_ = Generator(loaded.seed);
    generator_.set_offset(offset);
    step_count_ = steps;
    hvp_count_ = hvps;
    steps_ = std::move(parameter_steps);
    exp_avg_ = std::move(moment_buffers[0]);
    exp_hessian_diag_sq_ = std::move(moment_buffers[1]);
    diagonal_ = std::move(diagonal_buffers[0]);
  }

 private:
  static void check_options(const AdaHessianOptions& o, const std::string& op) {
    auto require = [&](bool holds, const std::string& what, const std::string& value) {
      if (!holds) throw ValueError(op + ": invalid " + what + " " + value);
    };
    using detail::exact_text;
    require(std::isfinite(o.lr) && o.lr >= 0, "learning rate (must be finite and >= 0)",
            exact_text(o.lr));
    require(o.beta1 >= 0 && o.beta1 < 1, "beta1 (must be in [0, 1))", exact_text(o.beta1));
    require(o.beta2 >= 0 && o.beta2 < 1, "beta2 (must be in [0, 1))", exact_text(o.beta2));
    require(std::isfinite(o.eps) && o.eps >= 0, "eps (must be finite and >= 0)", exact_text(o.eps));
    require(std::isfinite(o.weight_decay) && o.weight_decay >= 0,
            "weight_decay (must be finite and >= 0)", exact_text(o.weight_decay));
    require(o.hessian_power >= 0 && o.hessian_power <= 1, "hessian_power (must be in [0, 1])",
            exact_text(o.hessian_power));
    require(o.samples >= 1, "samples (must be at least 1)", std::to_string(o.samples));
    require(o.update_each >= 1, "update_each (must be at least 1)", std::to_string(o.update_each));
  }

  // The loss, g and H·z for every probe z: one forward-over-reverse pass for one probe, one
  // linearization replayed per probe for more.
  std::tuple<Tensor<T>, std::vector<Tensor<T>>, std::vector<hessian::ParameterVector<T>>>
  value_grad_products(const LossClosure<T>& loss,
                      const std::vector<hessian::ParameterVector<T>>& probes) const {
    if (probes.size() == 1) {
      auto [value, grads, hz] = value_grad_hvp(loss, params_, probes.front());
      std::vector<hessian::ParameterVector<T>> products;
      products.push_back(std::move(hz));
      return {std::move(value), std::move(grads), std::move(products)};
    }
    const auto linearized = hessian_at(loss, params_);
    return {linearized.value(), linearized.gradient(), linearized.apply_many(probes)};
  }

  // The mean over probes of z ⊙ Hz, parameter by parameter.
  static std::vector<Tensor<T>> mean_diagonal(
      const std::vector<hessian::ParameterVector<T>>& probes,
      const std::vector<hessian::ParameterVector<T>>& products) {
    auto mean = hessian::diagonal_from_probe(probes.front(), products.front());
    if (probes.size() == 1) return mean;
    for (std::size_t s = 1; s < probes.size(); ++s) {
      hessian::add_scaled(mean, 1.0, hessian::diagonal_from_probe(probes[s], products[s]));
    }
    hessian::scale(mean, 1.0 / static_cast<double>(probes.size()));
    return mean;
  }

  void update(std::size_t i, const Tensor<T>& grad) {
    if (steps_[i] == 0) {
      exp_avg_[i] = zeros<T>(params_[i].shape());
      exp_hessian_diag_sq_[i] = zeros<T>(params_[i].shape());
    }
    const auto step = static_cast<double>(++steps_[i]);
    const double power = options_.hessian_power;
    const T bias_correction1 = static_cast<T>(1 - std::pow(options_.beta1, step));
    // √(1 − β2^t)^k, computed in double as the official code computes it in Python.
    const T bias_correction2_root =
        static_cast<T>(std::pow(std::sqrt(1 - std::pow(options_.beta2, step)), power));
    const T beta1 = static_cast<T>(options_.beta1), beta2 = static_cast<T>(options_.beta2);
    const T one_minus_beta1 = static_cast<T>(1 - options_.beta1);
    const T one_minus_beta2 = static_cast<T>(1 - options_.beta2);
    const T eps = static_cast<T>(options_.eps), lr = static_cast<T>(options_.lr);
    const T weight_decay = static_cast<T>(options_.weight_decay);
    const bool newton_power = power == 1;
    T* m = exp_avg_[i].data();
    T* v = exp_hessian_diag_sq_[i].data();
    const T* d = diagonal_[i].data();
    detail::for_each_parameter_element(params_[i], grad, [&](T& p, T g, std::int64_t k) {
      m[k] = m[k] * beta1 + one_minus_beta1 * g;
      v[k] = v[k] * beta2 + one_minus_beta2 * d[k] * d[k];
      const T root = std::sqrt(v[k]);
      const T powered = newton_power ? root : static_cast<T>(std::pow(root, power));
      const T denominator = powered / bias_correction2_root + eps;
      p = p - lr * (m[k] / bias_correction1 / denominator + weight_decay * p);
    });
  }

  std::vector<Tensor<T>> params_;
  AdaHessianOptions options_;
  Generator generator_;
  std::int64_t step_count_ = 0;
  std::int64_t hvp_count_ = 0;
  std::vector<std::int64_t> steps_;
  std::vector<Tensor<T>> exp_avg_, exp_hessian_diag_sq_;
  std::vector<Tensor<T>> diagonal_;  // the last estimate, after spatial averaging
};

}  // namespace soda::optim
