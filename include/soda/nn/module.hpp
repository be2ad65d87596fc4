// Module: the base of every layer and model, in PyTorch's spirit. A module owns named parameters
// and buffers (tensor handles, updated in place) and named children; names join with dots into
// PyTorch state-dict names (layer1.0.conv1.weight, bn1.running_mean).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/tensor.hpp"

namespace soda::nn {

template <class T>
using NamedTensors = std::vector<std::pair<std::string, Tensor<T>>>;

template <class T = float>
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Parameters are handles shared with optimizers and closures: a copied module would alias
  // them, so modules are neither copied nor moved (hold them by shared_ptr).
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor<T> forward(const Tensor<T>& x) = 0;
  Tensor<T> operator()(const Tensor<T>& x) { return forward(x); }

  // The class name, for printing and error messages.
  virtual std::string type_name() const = 0;

  // Every trainable tensor, depth first in registration order (PyTorch's order).
  NamedTensors<T> named_parameters() const {
    NamedTensors<T> out;
    visit("", [&](const std::string& prefix, const Module& m) {
      for (const auto& [name, p] : m.parameters_) out.emplace_back(prefix + name, p);
    });
    return out;
  }

  std::vector<Tensor<T>> parameters() const {
    std::vector<Tensor<T>> out;
    for (const auto& [name, p] : named_parameters()) out.push_back(p);
    return out;
  }

  // Every buffer (running statistics and the like), depth first.
  NamedTensors<T> named_buffers() const {
    NamedTensors<T> out;
    visit("", [&](const std::string& prefix, const Module& m) {
      for (const auto& [name, b] : m.buffers_) out.emplace_back(prefix + name, b);
    });
    return out;
  }

  // Parameters then buffers of each module in turn: PyTorch's state_dict() order.
  NamedTensors<T> state_dict() const {
    NamedTensors<T> out;
    visit("", [&](const std::string& prefix, const Module& m) {
      for (const auto& [name, p] : m.parameters_) out.emplace_back(prefix + name, p);
      for (const auto& [name, b] : m.buffers_) out.emplace_back(prefix + name, b);
    });
    return out;
  }

  std::int64_t parameter_count() const {
    std::int64_t n = 0;
    for (const auto& p : parameters()) n += p.numel();
    return n;
  }

  // Direct children with their names.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

  // Training mode (batch statistics, dropout on) or evaluation mode, for this module and below.
  void train(bool on = true) {
    training_ = on;
    for (auto& [name, child] : children_) child->train(on);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Drops the gradients accumulated by soda::backward.
  void zero_grad() const {
    for (const auto& p : parameters()) p.zero_grad();
  }

 protected:
  // Registers a parameter; returns the handle the module computes with.
  Tensor<T> register_parameter(std::string name, Tensor<T> tensor) {
    check_new_name(name);
    parameters_.emplace_back(std::move(name), tensor);
    return tensor;
  }

  Tensor<T> register_buffer(std::string name, Tensor<T> tensor) {
    check_new_name(name);
    buffers_.emplace_back(std::move(name), tensor);
    return tensor;
  }

  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    if (!module) throw ValueError(type_name() + ": register_module('" + name + "') got null");
    check_new_name(name);
    children_.emplace_back(std::move(name), module);
    return module;
  }

 private:
  template <class F>
  void visit(const std::string& prefix, F&& f) const {
    f(prefix, *this);
    for (const auto& [name, child] : children_) child->visit(prefix + name + ".", f);
  }

  void check_new_name(const std::string& name) const {
    if (name.empty() || name.find('.') != std::string::npos) {
      throw ValueError(type_name() + ": invalid member name '" + name +
                       "' (names are non-empty and contain no '.')");
    }
    auto taken = [&](const auto& list) {
      for (const auto& entry : list) {
        if (entry.first == name) return true;
      }
      return false;
    };
    if (taken(parameters_) || taken(buffers_) || taken(children_)) {
      throw ValueError(type_name() + ": the name '" + name + "' is registered twice");
    }
  }

  NamedTensors<T> parameters_;
  NamedTensors<T> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace soda::nn
