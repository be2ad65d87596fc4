// dtype conversion: Tensor<T>::to<U>() makes a contiguous copy with values cast by static_cast.
// The copy is a constant for autodiff (gradients do not cross a dtype change).
#pragma once

#include "soda/core/kernels/elementwise.hpp"

namespace soda {

template <class T>
template <class U>
Tensor<U> Tensor<T>::to() const {
  return detail::convert<U>(*this);
}

}  // namespace soda
