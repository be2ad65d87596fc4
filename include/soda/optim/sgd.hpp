// soda::optim::SGD: stochastic gradient descent with momentum, dampening, Nesterov momentum and
// L2 weight decay, following torch.optim.SGD (PyTorch 1.13, _single_tensor_sgd) step for step:
//   d = g + weight_decay·p;  b = d (first step) or momentum·b + (1 − dampening)·d;
//   d = d + momentum·b (nesterov) or b;  p = p − lr·d.
#pragma once

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "soda/autodiff/grad_mode.hpp"
#include "soda/core/error.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/kernels/strided_loop.hpp"
#include "soda/core/parallel.hpp"
#include "soda/core/shape.hpp"
#include "soda/core/tensor.hpp"
#include "soda/nn/module.hpp"
#include "soda/optim/number_text.hpp"
#include "soda/optim/optimizer.hpp"
#include "soda/optim/optimizer_state.hpp"

namespace soda::optim {

// torch.optim.SGD's hyperparameters under PyTorch's names; set them with designated
// initialisers: SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4}.
struct SgdOptions {
  double lr = 1e-3;  // PyTorch 2's default (1.13 makes lr a required argument)
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  // L2 penalty: weight_decay·p is added to the gradient
  bool nesterov = false;

  bool operator==(const SgdOptions&) const = default;
};

namespace detail {

// The step's constants cast to T once, as PyTorch casts its Scalar alphas to the tensor's dtype.
template <class T>
struct SgdCoefficients {
  T learning_rate;
  T weight_decay;
  T momentum;
  T one_minus_dampening;
  bool decays;
  bool uses_momentum;
  bool nesterov;
  bool initialises_buffer;  // this parameter's first step with momentum: b = d, not read first
};

// One element (V = T) or one SIMD batch (V = xsimd::batch<T>) of the update; returns the new
// parameter and leaves the new momentum buffer in `buffer`. The operations and their order are
// PyTorch's (p + (−lr)·d equals p − lr·d exactly, since negation is exact).
template <class T, class V>
V sgd_update(V param, V grad, V& buffer, const SgdCoefficients<T>& c) {
  V direction = grad;
  if (c.decays) direction = direction + V(c.weight_decay) * param;
  if (c.uses_momentum) {
    buffer = c.initialises_buffer ? direction
                                  : buffer * V(c.momentum) + V(c.one_minus_dampening) * direction;
    direction = c.nesterov ? direction + V(c.momentum) * buffer : buffer;
  }
  return param - V(c.learning_rate) * direction;
}

// Updates n elements in place; vectorised when every operand is contiguous along the row.
// `buffer` is null without momentum. Loads of an element all precede its stores, so a gradient
// that aliases its parameter is still read before it is overwritten.
template <class T>
void sgd_row(T* param, std::int64_t param_stride, const T* grad, std::int64_t grad_stride,
             T* buffer, std::int64_t buffer_stride, std::int64_t n, const SgdCoefficients<T>& c) {
  const bool reads_buffer = c.uses_momentum && !c.initialises_buffer;
  std::int64_t i = 0;
  if constexpr (soda::detail::vectorizable_v<T>) {
    using Batch = xsimd::batch<T>;
    constexpr std::int64_t width = Batch::size;
    if (param_stride == 1 && grad_stride == 1 && (!c.uses_momentum || buffer_stride == 1)) {
      for (; i + width <= n; i += width) {
        Batch b = reads_buffer ? Batch::load_unaligned(buffer + i) : Batch(T(0));
        const Batch p =
            sgd_update<T>(Batch::load_unaligned(param + i), Batch::load_unaligned(grad + i), b, c);
        p.store_unaligned(param + i);
        if (c.uses_momentum) b.store_unaligned(buffer + i);
      }
    }
  }
  for (; i < n; ++i) {
    T b = reads_buffer ? buffer[i * buffer_stride] : T(0);
    param[i * param_stride] = sgd_update<T>(param[i * param_stride], grad[i * grad_stride], b, c);
    if (c.uses_momentum) buffer[i * buffer_stride] = b;
  }
}

// Applies the update to one parameter. Contiguous operands run in SIMD-width blocks split across
// threads, so the scalar tail is always the tensor's last n mod width elements and the result
// never depends on the thread count; other views go through the strided row loop.
template <class T>
void sgd_update_tensor(const Tensor<T>& param, const Tensor<T>& grad, T* buffer,
                       const SgdCoefficients<T>& c) {
  const std::int64_t n = param.numel();
  if (n == 0) return;
  T* p = param.raw_data();
  const T* g = grad.raw_data();
  if (param.is_contiguous() && grad.is_contiguous()) {
    std::int64_t width = 1;
    if constexpr (soda::detail::vectorizable_v<T>) width = xsimd::batch<T>::size;
    const std::int64_t blocks = (n + width - 1) / width;
    const std::int64_t grain = std::max<std::int64_t>(1, soda::detail::elementwise_grain / width);
    soda::detail::parallel_for(blocks, grain, [&](std::int64_t lo, std::int64_t hi) {
      const std::int64_t begin = lo * width;
      const std::int64_t end = std::min(hi * width, n);
      sgd_row(p + begin, 1, g + begin, 1, buffer ? buffer + begin : nullptr, 1, end - begin, c);
    });
    return;
  }
  soda::detail::for_each_row<3>(
      param.shape(), {param.strides(), grad.strides(), contiguous_strides(param.shape())},
      [&](const auto& offsets, const auto& strides, std::int64_t length) {
        sgd_row(p + offsets[0], strides[0], g + offsets[1], strides[1],
                buffer ? buffer + offsets[2] : nullptr, strides[2], length, c);
      });
}

}  // namespace detail

// Updates a fixed list of parameter handles in place. Use either the functional style,
// opt.step(grads) with grads from soda::value_and_grad, or the module style, soda::backward(loss)
// then opt.step(), which reads p.grad() and skips parameters without one (as PyTorch does).
template <class T = float>
class SGD final : public Optimizer<T> {
  static_assert(std::is_floating_point_v<T>, "SGD updates float or double parameters");

 public:
  SGD(std::vector<Tensor<T>> params, SgdOptions options = {})
      : params_(std::move(params)), options_(options) {
    check_options(options_, "SGD");
    detail::check_parameters(params_, "SGD");
    momentum_buffers_.resize(params_.size());
  }

  // Copies own their momentum buffers (the parameters stay shared handles), so a copy is a
  // snapshot of the optimizer that later steps of the original do not change.
  SGD(const SGD& other)
      : Optimizer<T>(other),
        params_(other.params_),
        options_(other.options_),
        step_count_(other.step_count_),
        momentum_buffers_(detail::copies_of(other.momentum_buffers_)) {}
  SGD& operator=(const SGD& other) {
    if (this != &other) *this = SGD(other);
    return *this;
  }
  SGD(SGD&&) noexcept = default;
  SGD& operator=(SGD&&) noexcept = default;
  ~SGD() override = default;

  std::unique_ptr<Optimizer<T>> clone() const override { return std::make_unique<SGD>(*this); }
  std::string name() const override { return "sgd"; }

  using Optimizer<T>::step;  // step(loss) and step() (module style) come from the interface

  void step(const std::vector<Tensor<T>>& grads) override {
    detail::check_gradients(params_, grads, "SGD.step");
    NoGradGuard no_grad;
    for (std::size_t i = 0; i < params_.size(); ++i) update(i, grads[i]);
    ++step_count_;
  }

  double learning_rate() const override { return options_.lr; }
  // For schedules: opt.set_learning_rate(schedule.learning_rate_at(epoch)). Momentum buffers
  // hold unscaled directions (as in PyTorch), so a new rate applies from the next step on.
  void set_learning_rate(double lr) override {
    SgdOptions changed = options_;
    changed.lr = lr;
    check_options(changed, "SGD.set_learning_rate");
    options_ = changed;
  }

  const SgdOptions& options() const { return options_; }
  // Number of step() calls so far (PyTorch's SGD keeps none; soda keeps it for checkpoints and
  // per-iteration schedules).
  std::int64_t step_count() const override { return step_count_; }
  const std::vector<Tensor<T>>& parameters() const override { return params_; }

  // The live momentum buffer of parameter `index`; undefined until a step with momentum has
  // reached that parameter (as PyTorch's state[p]["momentum_buffer"]).
  Tensor<T> momentum_buffer(std::size_t index) const {
    if (index >= params_.size()) {
      throw IndexError("SGD.momentum_buffer: index " + std::to_string(index) + " but there are " +
                       std::to_string(params_.size()) + " parameters");
    }
    return momentum_buffers_[index];
  }

  // The initialised momentum buffers as momentum_buffer.<parameter index>. Unlike PyTorch these
  // are copies: a snapshot taken now stays valid while training goes on.
  nn::NamedTensors<T> state_dict() const override {
    nn::NamedTensors<T> out;
    detail::append_buffers(out, buffer_kind, momentum_buffers_);
    return out;
  }

  // The scalar state, as strings (the form of safetensors metadata): the options (PyTorch's
  // param_groups), the step count, the parameter count and which buffers state_dict() holds.
  std::map<std::string, std::string> state_metadata() const override {
    std::vector<bool> buffers;
    for (const auto& b : momentum_buffers_) buffers.push_back(b.defined());
    return {{"sgd.lr", detail::exact_text(options_.lr)},
            {"sgd.momentum", detail::exact_text(options_.momentum)},
            {"sgd.dampening", detail::exact_text(options_.dampening)},
            {"sgd.weight_decay", detail::exact_text(options_.weight_decay)},
            {"sgd.nesterov", options_.nesterov ? "true" : "false"},
            {"sgd.step_count", std::to_string(step_count_)},
            {"sgd.parameter_count", std::to_string(params_.size())},
            {"sgd.momentum_buffers", detail::index_list(buffers)}};
  }

  // Restores what state_dict() and state_metadata() saved, so the run continues bit for bit.
  // Like PyTorch's load_state_dict it also restores the hyperparameters. Metadata keys not
  // starting with "sgd." are ignored (a checkpoint may hold other state). Nothing changes unless
  // everything checks out.
  void load_state_dict(const nn::NamedTensors<T>& tensors,
                       const std::map<std::string, std::string>& metadata) override {
    const detail::MetadataReader read(metadata, "SGD.load_state_dict");
    SgdOptions loaded;
    loaded.lr = read.real("sgd.lr");
    loaded.momentum = read.real("sgd.momentum");
    loaded.dampening = read.real("sgd.dampening");
    loaded.weight_decay = read.real("sgd.weight_decay");
    loaded.nesterov = read.boolean("sgd.nesterov");
    check_options(loaded, read.op().c_str());
    const std::int64_t steps = read.count("sgd.step_count");
    read.check_parameter_count("sgd.parameter_count", params_.size());
    const auto listed = read.index_set("sgd.momentum_buffers", params_.size());
    auto buffers = detail::read_buffers(tensors, {buffer_kind}, params_, listed,
                                        "sgd.momentum_buffers", read.op());
    options_ = loaded;
    step_count_ = steps;
    momentum_buffers_ = std::move(buffers.front());
  }

 private:
  static void check_options(const SgdOptions& o, const char* op) {
    auto require = [&](bool holds, const std::string& what) {
      if (!holds) throw ValueError(std::string(op) + ": " + what);
    };
    // !(x >= 0) also rejects NaN; infinities would turn every parameter into inf or NaN.
    require(std::isfinite(o.lr) && o.lr >= 0,
            "invalid learning rate " + detail::exact_text(o.lr) + " (must be finite and >= 0)");
    require(std::isfinite(o.momentum) && o.momentum >= 0,
            "invalid momentum " + detail::exact_text(o.momentum) + " (must be finite and >= 0)");
    require(std::isfinite(o.dampening),
            "invalid dampening " + detail::exact_text(o.dampening) + " (must be finite)");
    require(std::isfinite(o.weight_decay) && o.weight_decay >= 0,
            "invalid weight_decay " + detail::exact_text(o.weight_decay) +
                " (must be finite and >= 0)");
    require(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
            "nesterov momentum requires momentum > 0 and dampening = 0 (got momentum " +
                detail::exact_text(o.momentum) + ", dampening " + detail::exact_text(o.dampening) +
                ")");
  }

  void update(std::size_t i, const Tensor<T>& grad) {
    if (!grad.defined()) return;
    const bool uses_momentum = options_.momentum != 0;
    Tensor<T>& buffer = momentum_buffers_[i];
    const bool initialises_buffer = uses_momentum && !buffer.defined();
    // The only allocation: a parameter's buffer, on its first step with momentum.
    if (initialises_buffer) buffer = Tensor<T>::empty(params_[i].shape());
    const detail::SgdCoefficients<T> c{static_cast<T>(options_.lr),
                                       static_cast<T>(options_.weight_decay),
                                       static_cast<T>(options_.momentum),
                                       static_cast<T>(1.0 - options_.dampening),
                                       options_.weight_decay != 0,
                                       uses_momentum,
                                       options_.nesterov,
                                       initialises_buffer};
    detail::sgd_update_tensor(params_[i], grad, uses_momentum ? buffer.data() : nullptr, c);
  }

  static constexpr const char* buffer_kind = "momentum_buffer";

  std::vector<Tensor<T>> params_;
  SgdOptions options_;
  std::int64_t step_count_ = 0;
  std::vector<Tensor<T>> momentum_buffers_;  // undefined until a parameter's first momentum step
};

}  // namespace soda::optim
