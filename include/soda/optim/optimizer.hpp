// soda::optim::Optimizer: what a training loop needs from any optimizer (a step on a loss closure,
// the learning rate for schedules, its state for checkpoints), and the checks they all share.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "soda/autodiff/functional.hpp"
#include "soda/core/error.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/kernels/strided_loop.hpp"
#include "soda/core/parallel.hpp"
#include "soda/core/shape.hpp"
#include "soda/core/tensor.hpp"
#include "soda/nn/module.hpp"

namespace soda::optim {

// The loss a step minimises: a closure that reads the parameters by handle and returns a scalar
// (the batch's mean loss). A first-order optimizer differentiates it once; AdaHessian runs it
// forward-over-reverse for the gradient and H·z together.
template <class T>
using LossClosure = std::function<Tensor<T>()>;

// The interface Trainer drives. Three ways to step: on a loss closure (what works for every
// optimizer), on given gradients (the functional style), or on what soda::backward accumulated
// (the module style). Optimizers implement step(grads), and step(loss) when one gradient is not
// what they need; a derived class brings the other overloads in with `using Optimizer<T>::step`.
template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // One step on loss(); returns the loss at the parameters before the step (detached). By
  // default the loss is differentiated once (soda::value_and_grad), then step(grads).
  virtual Tensor<T> step(const LossClosure<T>& loss) {
    auto [value, grads] = value_and_grad(loss, parameters());
    step(grads);
    return value;
  }

  // One step on the sum of the parts' losses (gradient accumulation: a batch too large for one
  // pass, split into micro-batches whose closures return their share of the batch's mean loss).
  // Each part is differentiated alone, so only one part's graph is alive at a time; returns the
  // summed loss. By default the parts' gradients are summed, then step(grads).
  virtual Tensor<T> step_accumulated(const std::vector<LossClosure<T>>& parts) {
    if (parts.empty()) throw ValueError(name() + ".step_accumulated: no loss parts given");
    Tensor<T> total;
    std::vector<Tensor<T>> grads;
    for (const auto& part : parts) {
      auto [value, part_grads] = value_and_grad(part, parameters());
      total = total.defined() ? add(total, value) : value;
      accumulate(grads, part_grads);
    }
    step(grads);
    return total;
  }

  // One step with one gradient per parameter, in order; an undefined gradient skips its parameter.
  // Everything is checked before any parameter changes.
  virtual void step(const std::vector<Tensor<T>>& grads) = 0;

  // One step with the gradients soda::backward accumulated in each parameter's grad().
  void step() { step(accumulated_gradients()); }

  // The name checkpoints record, so that a checkpoint of one optimizer is not loaded into another.
  virtual std::string name() const = 0;
  virtual double learning_rate() const = 0;
  virtual void set_learning_rate(double lr) = 0;
  virtual std::int64_t step_count() const = 0;
  virtual const std::vector<Tensor<T>>& parameters() const = 0;

  // Buffers (copies) and scalar state as text, for safetensors tensors and metadata; loading
  // restores both, so that a run continues bit for bit, and changes nothing on an error.
  virtual nn::NamedTensors<T> state_dict() const = 0;
  virtual std::map<std::string, std::string> state_metadata() const = 0;
  virtual void load_state_dict(const nn::NamedTensors<T>& tensors,
                               const std::map<std::string, std::string>& metadata) = 0;

  // A snapshot with its own buffers; the parameters stay shared handles.
  virtual std::unique_ptr<Optimizer> clone() const = 0;

  // Drops every parameter's accumulated gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad() const {
    for (const auto& p : parameters()) p.zero_grad();
  }

 protected:
  // sum[i] += part[i], parameter by parameter; an undefined tensor counts as zero.
  static void accumulate(std::vector<Tensor<T>>& sum, const std::vector<Tensor<T>>& part) {
    if (sum.empty()) {
      sum = part;
      return;
    }
    for (std::size_t i = 0; i < sum.size(); ++i) {
      if (!part[i].defined()) continue;
      sum[i] = sum[i].defined() ? add(sum[i], part[i]) : part[i];
    }
  }

  // What soda::backward accumulated in each parameter's grad() (undefined where nothing was).
  std::vector<Tensor<T>> accumulated_gradients() const {
    std::vector<Tensor<T>> grads;
    for (const auto& p : parameters()) grads.push_back(p.grad());
    return grads;
  }

  Optimizer() = default;
  Optimizer(const Optimizer&) = default;
  Optimizer& operator=(const Optimizer&) = default;
  Optimizer(Optimizer&&) noexcept = default;
  Optimizer& operator=(Optimizer&&) noexcept = default;
};

namespace detail {

// A parameter list every optimizer accepts: not empty, every tensor defined, no broadcast view
// (an in-place update of a stride-0 axis is ill-defined; PyTorch refuses it too) and no tensor
// listed twice.
template <class T>
void check_parameters(const std::vector<Tensor<T>>& params, const std::string& op) {
  if (params.empty()) throw ValueError(op + ": got an empty parameter list");
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    if (!p.defined()) {
      throw ValueError(op + ": parameter " + std::to_string(i) + " is an undefined tensor");
    }
    for (std::size_t axis = 0; axis < p.shape().size(); ++axis) {
      if (p.shape()[axis] > 1 && p.strides()[axis] == 0) {
        throw ValueError(op + ": parameter " + std::to_string(i) + " of shape " +
                         to_string(p.shape()) + " is a broadcast view (stride 0 on axis " +
                         std::to_string(axis) + "); pass a tensor that owns its elements");
      }
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (params[j].impl() == p.impl()) {
        throw ValueError(op + ": parameter " + std::to_string(i) +
                         " is the same tensor as parameter " + std::to_string(j) +
                         "; each parameter may appear once");
      }
    }
  }
}

// One gradient per parameter, in order, each undefined (skip) or of its parameter's shape.
template <class T>
void check_gradients(const std::vector<Tensor<T>>& params, const std::vector<Tensor<T>>& grads,
                     const std::string& op) {
  if (grads.size() != params.size()) {
    throw ShapeError(op + ": expected " + std::to_string(params.size()) +
                     " gradients (one per parameter, in order), got " +
                     std::to_string(grads.size()));
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (grads[i].defined() && grads[i].shape() != params[i].shape()) {
      throw ShapeError(op + ": gradient " + std::to_string(i) + " has shape " +
                       to_string(grads[i].shape()) + " but parameter " + std::to_string(i) +
                       " has shape " + to_string(params[i].shape()));
    }
  }
}

// Calls update(p, g, k) for every element of a parameter: p the element (a reference, updated in
// place), g the gradient's element and k the element's row-major index, which addresses the
// optimizer's own contiguous state buffers. Contiguous operands are split across threads; each
// element's update depends on that element alone, so the result never depends on the split.
template <class T, class Update>
void for_each_parameter_element(const Tensor<T>& param, const Tensor<T>& grad, Update&& update) {
  const std::int64_t n = param.numel();
  if (n == 0) return;
  T* p = param.raw_data();
  const T* g = grad.raw_data();
  if (param.is_contiguous() && grad.is_contiguous()) {
    soda::detail::parallel_for(n, soda::detail::elementwise_grain,
                               [&](std::int64_t begin, std::int64_t end) {
                                 for (std::int64_t k = begin; k < end; ++k) update(p[k], g[k], k);
                               });
    return;
  }
  soda::detail::for_each_row<3>(
      param.shape(), {param.strides(), grad.strides(), contiguous_strides(param.shape())},
      [&](const auto& offsets, const auto& strides, std::int64_t length) {
        for (std::int64_t j = 0; j < length; ++j) {
          update(p[offsets[0] + j * strides[0]], g[offsets[1] + j * strides[1]],
                 offsets[2] + j * strides[2]);
        }
      });
}

}  // namespace detail

}  // namespace soda::optim
