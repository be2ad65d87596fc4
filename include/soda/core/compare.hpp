// allclose as NumPy defines it: |a − b| <= atol + rtol·|b| everywhere (with broadcasting), and
// max_abs_difference for test messages.
#pragma once

#include <cmath>

#include "soda/core/kernels/elementwise.hpp"

namespace soda {

template <class T>
double max_abs_difference(const Tensor<T>& a, const Tensor<T>& b) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "max_abs_difference");
  double worst = 0;
  const T* pa = a.raw_data();
  const T* pb = b.raw_data();
  detail::for_each_row<2>(
      shape, {detail::broadcast_strides(a, shape), detail::broadcast_strides(b, shape)},
      [&](const auto& off, const auto& st, std::int64_t n) {
        double row_worst = 0;  // NaN once any |a − b| is NaN
        for (std::int64_t i = 0; i < n; ++i) {
          const double x = static_cast<double>(pa[off[0] + i * st[0]]);
          const double y = static_cast<double>(pb[off[1] + i * st[1]]);
          const double d = x == y ? 0.0 : std::abs(x - y);  // equal infinities differ by 0
          if (!(d <= row_worst) && !std::isnan(row_worst)) row_worst = d;
        }
    // Rows may run on several threads: merge under a lock.
#pragma omp critical(soda_max_abs_difference)
        if (!(row_worst <= worst) && !std::isnan(worst)) worst = row_worst;
      });
  return worst;
}

template <class T>
bool allclose(const Tensor<T>& a, const Tensor<T>& b, double rtol = 1e-5, double atol = 1e-8) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "allclose");
  bool close = true;
  const T* pa = a.raw_data();
  const T* pb = b.raw_data();
  // Serial: the flag is shared, and allclose is for tests, not hot paths.
  std::vector<std::int64_t> index(shape.size(), 0);
  const std::int64_t n = soda::numel(shape);
  const auto sa = detail::broadcast_strides(a, shape), sb = detail::broadcast_strides(b, shape);
  for (std::int64_t linear = 0; linear < n && close; ++linear) {
    std::int64_t oa = 0, ob = 0;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      oa += index[d] * sa[d];
      ob += index[d] * sb[d];
    }
    const double x = static_cast<double>(pa[oa]), y = static_cast<double>(pb[ob]);
    // Infinities are close only to themselves (as NumPy): inf <= atol + rtol·inf would say
    // otherwise.
    close = x == y ||
            (std::isfinite(x) && std::isfinite(y) && std::abs(x - y) <= atol + rtol * std::abs(y));
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return close;
}

}  // namespace soda
