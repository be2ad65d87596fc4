// softmax, log_softmax and logsumexp along one axis, computed stably (max subtracted) in one pass
// per row. Rules (y = softmax(x), s = exp(log_softmax)):
//   softmax:     gx = y ⊙ (g − Σ g⊙y),     ty = y ⊙ (tx − Σ y⊙tx)
//   log_softmax: gx = g − s ⊙ Σ g,         ty = tx − Σ s⊙tx
//   logsumexp:   gx = g ⊙ exp(x − out),    t  = Σ exp(x − out) ⊙ tx
#pragma once

#include <xsimd/xsimd.hpp>

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/autodiff/tangent.hpp"
#include "soda/core/kernels/reduce.hpp"

namespace soda {

namespace detail {

enum class SoftmaxKind { softmax, log_softmax, logsumexp };

// Applies a per-row kernel along `axis`: moves it last (copying if needed) and back.
template <class T, class RowKernel>
Tensor<T> along_axis(const Tensor<T>& x, std::int64_t axis, std::int64_t out_row_length,
                     RowKernel kernel) {
  const auto rank = x.ndim();
  std::vector<std::int64_t> order;
  for (std::int64_t d = 0; d < rank; ++d) {
    if (d != axis) order.push_back(d);
  }
  order.push_back(axis);
  Shape moved_shape;
  Strides moved_strides;
  for (const auto d : order) {
    moved_shape.push_back(x.shape()[static_cast<std::size_t>(d)]);
    moved_strides.push_back(x.strides()[static_cast<std::size_t>(d)]);
  }
  const auto moved = x.view_with(moved_shape, moved_strides, x.offset());
  const auto source = moved.is_contiguous() ? moved : copy_contiguous(moved);
  const std::int64_t n = moved_shape.back();
  // Counted from the other axes: over an empty axis each row still has a value (logsumexp's −inf).
  const std::int64_t rows = soda::numel(Shape(moved_shape.begin(), moved_shape.end() - 1));
  Shape out_moved = moved_shape;
  out_moved.back() = out_row_length;
  auto out = Tensor<T>::empty(out_moved);
  const T* in = source.raw_data();
  T* o = out.raw_data();
  parallel_for(rows, std::max<std::int64_t>(1, elementwise_grain / std::max<std::int64_t>(n, 1)),
               [&](std::int64_t lo, std::int64_t hi) {
                 for (std::int64_t r = lo; r < hi; ++r)
                   kernel(in + r * n, n, o + r * out_row_length);
               });
  // Move the axis back: the inverse permutation of `order`.
  Shape shape(static_cast<std::size_t>(rank));
  Strides strides(static_cast<std::size_t>(rank));
  for (std::size_t i = 0; i < order.size(); ++i) {
    shape[static_cast<std::size_t>(order[i])] = out_moved[i];
    strides[static_cast<std::size_t>(order[i])] = out.strides()[i];
  }
  const auto result = out.view_with(shape, strides, 0);
  return result.is_contiguous() ? result : copy_contiguous(result);
}

// Row kernel: y = softmax / log_softmax of the row, or its logsumexp (one value).
template <class T>
void softmax_row(SoftmaxKind kind, const T* x, std::int64_t n, T* y) {
  const T m = reduce_contiguous<MaxReduction>(x, n);
  const T shift = std::isinf(m) ? T(0) : m;  // all −inf rows stay −inf / NaN-free where possible
  T total = 0;
  std::int64_t i = 0;
  using B = xsimd::batch<T>;
  constexpr std::int64_t w = B::size;
  if (kind == SoftmaxKind::softmax) {
    for (; i + w <= n; i += w) {
      const B e = xsimd::exp(B::load_unaligned(x + i) - B(shift));
      e.store_unaligned(y + i);
    }
    for (; i < n; ++i) y[i] = std::exp(x[i] - shift);
    total = reduce_contiguous<SumReduction>(y, n);
    const T inv = T(1) / total;
    for (i = 0; i + w <= n; i += w) (B::load_unaligned(y + i) * B(inv)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] *= inv;
    return;
  }
  B acc(T(0));
  for (; i + w <= n; i += w) acc += xsimd::exp(B::load_unaligned(x + i) - B(shift));
  total = xsimd::hadd(acc);
  for (; i < n; ++i) total += std::exp(x[i] - shift);
  const T lse = shift + std::log(total);
  if (kind == SoftmaxKind::logsumexp) {
    y[0] = lse;
    return;
  }
  for (i = 0; i + w <= n; i += w) (B::load_unaligned(x + i) - B(lse)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] = x[i] - lse;
}

}  // namespace detail

template <class T>
Tensor<T> softmax(const Tensor<T>& x, std::int64_t axis) {
  const auto a = normalize_axis(axis, x.ndim(), "softmax");
  auto y = detail::along_axis(x, a, x.shape()[static_cast<std::size_t>(a)],
                              [](const T* in, std::int64_t n, T* out) {
                                detail::softmax_row(detail::SoftmaxKind::softmax, in, n, out);
                              });
  return record_op<T>(
      "softmax", {x}, y,
      [a](const OpContext<T>& c, const Tensor<T>& g) {
        const auto& s = c.output;
        return std::vector<Tensor<T>>{mul(s, sub(g, sum(mul(g, s), {a}, true)))};
      },
      [a](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto& s = c.output;
        return mul(s, sub(t[0], sum(mul(s, t[0]), {a + 1}, true)));
      });
}

template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, std::int64_t axis) {
  const auto a = normalize_axis(axis, x.ndim(), "log_softmax");
  auto y = detail::along_axis(x, a, x.shape()[static_cast<std::size_t>(a)],
                              [](const T* in, std::int64_t n, T* out) {
                                detail::softmax_row(detail::SoftmaxKind::log_softmax, in, n, out);
                              });
  return record_op<T>(
      "log_softmax", {x}, y,
      [a](const OpContext<T>& c, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{sub(g, mul(exp(c.output), sum(g, {a}, true)))};
      },
      [a](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return sub(t[0], sum(mul(exp(c.output), t[0]), {a + 1}, true));
      });
}

template <class T>
Tensor<T> logsumexp(const Tensor<T>& x, std::int64_t axis, bool keepdim) {
  const auto a = normalize_axis(axis, x.ndim(), "logsumexp");
  auto kept_out = detail::along_axis(x, a, 1, [](const T* in, std::int64_t n, T* out) {
    detail::softmax_row(detail::SoftmaxKind::logsumexp, in, n, out);
  });
  const Shape kept = kept_out.shape();
  auto out = keepdim ? kept_out
                     : kept_out.view_with(
                           detail::reduced_shape(x.shape(), {a}, false),
                           contiguous_strides(detail::reduced_shape(x.shape(), {a}, false)), 0);
  return record_op<T>(
      "logsumexp", {x}, out,
      [kept](const OpContext<T>& c, const Tensor<T>& g) {
        const auto probabilities = exp(sub(c.inputs[0], reshape(c.output, kept)));
        return std::vector<Tensor<T>>{mul(reshape(g, kept), probabilities)};
      },
      [a, kept, keepdim](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto probabilities = exp(sub(c.inputs[0], reshape(c.output, kept)));
        return sum(mul(probabilities, t[0]), {a + 1}, keepdim);
      });
}

}  // namespace soda
