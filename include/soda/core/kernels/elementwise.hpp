// Element-wise kernels: unary maps, broadcasting binary maps and where(), vectorised with xsimd on
// contiguous or scalar-broadcast rows, scalar elsewhere. Functors take either a scalar or an
// xsimd batch, so one definition serves both paths.
#pragma once

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "soda/core/kernels/strided_loop.hpp"

namespace soda::detail {

template <class V>
inline constexpr bool is_scalar_v = std::is_arithmetic_v<V>;

template <class T>
inline constexpr bool vectorizable_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

template <class T, class Op>
void unary_row(T* out, const T* in, std::int64_t stride, std::int64_t n, const Op& op) {
  std::int64_t i = 0;
  if constexpr (vectorizable_v<T>) {
    using B = xsimd::batch<T>;
    constexpr std::int64_t w = B::size;
    if (stride == 1) {
      for (; i + w <= n; i += w) op(B::load_unaligned(in + i)).store_unaligned(out + i);
    }
  }
  for (; i < n; ++i) out[i] = op(in[i * stride]);
}

template <class T, class Op>
void binary_row(T* out, const T* a, std::int64_t sa, const T* b, std::int64_t sb, std::int64_t n,
                const Op& op) {
  std::int64_t i = 0;
  if constexpr (vectorizable_v<T>) {
    using B = xsimd::batch<T>;
    constexpr std::int64_t w = B::size;
    if (sa == 1 && sb == 1) {
      for (; i + w <= n; i += w) {
        op(B::load_unaligned(a + i), B::load_unaligned(b + i)).store_unaligned(out + i);
      }
    } else if (sa == 1 && sb == 0) {
      const B vb(b[0]);
      for (; i + w <= n; i += w) op(B::load_unaligned(a + i), vb).store_unaligned(out + i);
    } else if (sa == 0 && sb == 1) {
      const B va(a[0]);
      for (; i + w <= n; i += w) op(va, B::load_unaligned(b + i)).store_unaligned(out + i);
    }
  }
  for (; i < n; ++i) out[i] = op(a[i * sa], b[i * sb]);
}

// out = op(x), element-wise, into a new contiguous tensor.
template <class T, class Op>
Tensor<T> map_unary(const Tensor<T>& x, const Op& op) {
  auto out = Tensor<T>::empty(x.shape());
  T* o = out.raw_data();
  const T* in = x.raw_data();
  for_each_row<2>(x.shape(), {out.strides(), x.strides()},
                  [&](const auto& off, const auto& st, std::int64_t n) {
                    unary_row(o + off[0], in + off[1], st[1], n, op);
                  });
  return out;
}

// out = op(a, b) with NumPy broadcasting.
template <class T, class Op>
Tensor<T> map_binary(const Tensor<T>& a, const Tensor<T>& b, const Op& op, const char* name) {
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  auto out = Tensor<T>::empty(shape);
  T* o = out.raw_data();
  const T* pa = a.raw_data();
  const T* pb = b.raw_data();
  for_each_row<3>(shape, {out.strides(), broadcast_strides(a, shape), broadcast_strides(b, shape)},
                  [&](const auto& off, const auto& st, std::int64_t n) {
                    binary_row(o + off[0], pa + off[1], st[1], pb + off[2], st[2], n, op);
                  });
  return out;
}

// out = condition != 0 ? a : b, broadcasting all three.
template <class T>
Tensor<T> map_where(const Tensor<T>& condition, const Tensor<T>& a, const Tensor<T>& b) {
  const Shape shape =
      broadcast_shapes(condition.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  auto out = Tensor<T>::empty(shape);
  T* o = out.raw_data();
  const T* pc = condition.raw_data();
  const T* pa = a.raw_data();
  const T* pb = b.raw_data();
  for_each_row<4>(shape,
                  {out.strides(), broadcast_strides(condition, shape), broadcast_strides(a, shape),
                   broadcast_strides(b, shape)},
                  [&](const auto& off, const auto& st, std::int64_t n) {
                    for (std::int64_t i = 0; i < n; ++i) {
                      o[off[0] + i] = pc[off[1] + i * st[1]] != T(0) ? pa[off[2] + i * st[2]]
                                                                     : pb[off[3] + i * st[3]];
                    }
                  });
  return out;
}

// A contiguous copy of any view (memcpy when it already is contiguous).
template <class T>
Tensor<T> copy_contiguous(const Tensor<T>& x) {
  auto out = Tensor<T>::empty(x.shape());
  if (x.is_contiguous()) {
    std::memcpy(out.raw_data(), x.raw_data(), static_cast<std::size_t>(x.numel()) * sizeof(T));
    return out;
  }
  return map_unary(x, [](auto v) { return v; });
}

// Element-wise dtype conversion (values cast with static_cast; no rounding mode beyond C++'s).
template <class U, class T>
Tensor<U> convert(const Tensor<T>& x) {
  auto out = Tensor<U>::empty(x.shape());
  U* o = out.raw_data();
  const T* in = x.raw_data();
  for_each_row<2>(x.shape(), {out.strides(), x.strides()},
                  [&](const auto& off, const auto& st, std::int64_t n) {
                    for (std::int64_t i = 0; i < n; ++i) {
                      o[off[0] + i] = static_cast<U>(in[off[1] + i * st[1]]);
                    }
                  });
  return out;
}

// Fills a contiguous tensor with one value.
template <class T>
void fill(Tensor<T>& t, T value) {
  T* p = t.data();
  const std::int64_t n = t.numel();
  parallel_for(n, elementwise_grain,
               [&](std::int64_t lo, std::int64_t hi) { std::fill(p + lo, p + hi, value); });
}

}  // namespace soda::detail
