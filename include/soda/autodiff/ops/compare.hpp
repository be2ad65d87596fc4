// Comparisons and sign: not differentiable (their derivative is zero almost everywhere), so they
// return constant 0/1 (or −1/0/1) tensors of the operands' type, usable as masks in where().
#pragma once

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/kernels/functors.hpp"

namespace soda {

template <class T>
Tensor<T> greater(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::map_binary(a, b, detail::fn::Greater{}, "greater");
}
template <class T>
Tensor<T> greater_equal(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::map_binary(a, b, detail::fn::GreaterEqual{}, "greater_equal");
}
template <class T>
Tensor<T> less(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::map_binary(a, b, detail::fn::Less{}, "less");
}
template <class T>
Tensor<T> less_equal(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::map_binary(a, b, detail::fn::LessEqual{}, "less_equal");
}
template <class T>
Tensor<T> equal(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::map_binary(a, b, detail::fn::Equal{}, "equal");
}
template <class T>
Tensor<T> sign(const Tensor<T>& x) {
  return detail::map_unary(x, detail::fn::Sign{});
}

template <class T>
Tensor<T> operator>(const Tensor<T>& a, const Tensor<T>& b) {
  return greater(a, b);
}
template <class T>
Tensor<T> operator<(const Tensor<T>& a, const Tensor<T>& b) {
  return less(a, b);
}
template <class T>
Tensor<T> operator>=(const Tensor<T>& a, const Tensor<T>& b) {
  return greater_equal(a, b);
}
template <class T>
Tensor<T> operator<=(const Tensor<T>& a, const Tensor<T>& b) {
  return less_equal(a, b);
}
template <class T, class S>
requires std::is_arithmetic_v<S> Tensor<T>
operator>(const Tensor<T>& a, S s) {
  return greater(a, Tensor<T>::scalar(static_cast<T>(s)));
}
template <class T, class S>
requires std::is_arithmetic_v<S> Tensor<T>
operator<(const Tensor<T>& a, S s) {
  return less(a, Tensor<T>::scalar(static_cast<T>(s)));
}
template <class T, class S>
requires std::is_arithmetic_v<S> Tensor<T>
operator>=(const Tensor<T>& a, S s) {
  return greater_equal(a, Tensor<T>::scalar(static_cast<T>(s)));
}
template <class T, class S>
requires std::is_arithmetic_v<S> Tensor<T>
operator<=(const Tensor<T>& a, S s) {
  return less_equal(a, Tensor<T>::scalar(static_cast<T>(s)));
}

}  // namespace soda
