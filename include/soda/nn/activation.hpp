// Activation modules ReLU, Tanh and Sigmoid: parameter-free wrappers of soda::relu, soda::tanh and
// soda::sigmoid, so activations can sit in a Sequential as in torch.nn.
#pragma once

#include <string>

// Op rules call other ops, so a translation unit needs every op's definition: take them all.
#include "soda/autodiff/autodiff.hpp"
#include "soda/nn/module.hpp"

namespace soda::nn {

template <class T = float>
class ReLU : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

template <class T = float>
class Tanh : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return tanh(x); }
  std::string type_name() const override { return "Tanh"; }
};

template <class T = float>
class Sigmoid : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return sigmoid(x); }
  std::string type_name() const override { return "Sigmoid"; }
};

}  // namespace soda::nn
