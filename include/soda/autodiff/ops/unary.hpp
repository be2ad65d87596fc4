// Element-wise unary functions. Each reverse rule is g ⊙ f'(x) written with differentiable ops
// (so it is itself differentiated in forward-over-reverse); each forward rule is t ⊙ f'(x).
// Where f' is cheapest from the output y (exp, tanh, sigmoid, sqrt) the rules use y.
#pragma once

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/autodiff/tangent.hpp"
#include "soda/core/factories.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/kernels/functors.hpp"

namespace soda {

namespace detail {

// Records a unary op whose derivative is the primal tensor derivative(x, y).
template <class T, class Derivative>
Tensor<T> unary_op(const char* name, const Tensor<T>& x, Tensor<T> y, Derivative derivative) {
  return record_op<T>(
      name, {x}, std::move(y),
      [derivative](const OpContext<T>& c, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{mul(g, derivative(c.inputs[0], c.output))};
      },
      [derivative](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return mul(t[0], derivative(c.inputs[0], c.output));
      });
}

}  // namespace detail

template <class T>
Tensor<T> exp(const Tensor<T>& x) {
  return detail::unary_op("exp", x, detail::map_unary(x, detail::fn::Exp{}),
                          [](const Tensor<T>&, const Tensor<T>& y) { return y; });
}

template <class T>
Tensor<T> log(const Tensor<T>& x) {
  return detail::unary_op(
      "log", x, detail::map_unary(x, detail::fn::Log{}),
      [](const Tensor<T>& in, const Tensor<T>&) { return div(Tensor<T>::scalar(1), in); });
}

template <class T>
Tensor<T> sqrt(const Tensor<T>& x) {
  return detail::unary_op(
      "sqrt", x, detail::map_unary(x, detail::fn::Sqrt{}),
      [](const Tensor<T>&, const Tensor<T>& y) { return div(Tensor<T>::scalar(T(0.5)), y); });
}

template <class T>
Tensor<T> tanh(const Tensor<T>& x) {
  return detail::unary_op(
      "tanh", x, detail::map_unary(x, detail::fn::Tanh{}),
      [](const Tensor<T>&, const Tensor<T>& y) { return sub(Tensor<T>::scalar(1), mul(y, y)); });
}

template <class T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  return detail::unary_op(
      "sigmoid", x, detail::map_unary(x, detail::fn::Sigmoid{}),
      [](const Tensor<T>&, const Tensor<T>& y) { return mul(y, sub(Tensor<T>::scalar(1), y)); });
}

// The derivative at 0 is taken as 0 (PyTorch's convention).
template <class T>
Tensor<T> relu(const Tensor<T>& x) {
  return detail::unary_op(
      "relu", x, detail::map_unary(x, detail::fn::Relu{}),
      [](const Tensor<T>& in, const Tensor<T>&) { return greater(in, Tensor<T>::scalar(0)); });
}

// The derivative at 0 is taken as 0 (sign(0) = 0, as PyTorch).
template <class T>
Tensor<T> abs(const Tensor<T>& x) {
  return detail::unary_op("abs", x, detail::map_unary(x, detail::fn::Abs{}),
                          [](const Tensor<T>& in, const Tensor<T>&) { return sign(in); });
}

template <class T>
Tensor<T> square(const Tensor<T>& x) {
  return detail::unary_op(
      "square", x, detail::map_unary(x, detail::fn::Square{}),
      [](const Tensor<T>& in, const Tensor<T>&) { return mul(in, Tensor<T>::scalar(2)); });
}

template <class T>
Tensor<T> pow(const Tensor<T>& x, T exponent) {
  return detail::unary_op("pow", x, detail::map_unary(x, detail::fn::PowScalar<T>{exponent}),
                          [exponent](const Tensor<T>& in, const Tensor<T>&) {
                            if (exponent == T(1)) return ones_like(in);
                            return mul(pow(in, exponent - T(1)), Tensor<T>::scalar(exponent));
                          });
}

// Gradient 1 for low <= x <= high, 0 outside (PyTorch's convention at the bounds).
template <class T>
Tensor<T> clamp(const Tensor<T>& x, T low, T high) {
  if (low > high)
    throw ValueError("clamp: low " + std::to_string(low) + " exceeds high " + std::to_string(high));
  return detail::unary_op("clamp", x, detail::map_unary(x, detail::fn::Clamp<T>{low, high}),
                          [low, high](const Tensor<T>& in, const Tensor<T>&) {
                            return detail::map_unary(in, detail::fn::InRange<T>{low, high});
                          });
}

}  // namespace soda
