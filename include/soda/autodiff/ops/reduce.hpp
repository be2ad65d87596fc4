// Reductions: sum, mean, max over all axes or a list of axes (keepdim as PyTorch), and sum_to, the
// adjoint of broadcasting. max sends the gradient to the maxima, shared evenly among ties.
#pragma once

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/autodiff/tangent.hpp"
#include "soda/core/kernels/reduce.hpp"
#include "soda/core/shape.hpp"

namespace soda {

namespace detail {

// The output shape with reduced axes kept as 1, to broadcast a reduced value against the input.
inline Shape keepdim_shape(const Shape& shape, const std::vector<std::int64_t>& axes) {
  return reduced_shape(shape, axes, true);
}

}  // namespace detail

template <class T>
Tensor<T> sum(const Tensor<T>& x, std::vector<std::int64_t> axes, bool keepdim) {
  axes = normalize_axes(axes, x.ndim(), "sum");
  if (axes.empty() && x.ndim() == 0) return x;
  const Shape kept = detail::keepdim_shape(x.shape(), axes);
  return record_op<T>(
      "sum", {x}, detail::reduce<detail::SumReduction>(x, axes, keepdim),
      [kept](const OpContext<T>& c, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{broadcast_to(reshape(g, kept), c.inputs[0].shape())};
      },
      [axes, keepdim](const OpContext<T>&, const std::vector<Tensor<T>>& t) {
        return sum(t[0], detail::tangent_axes(axes), keepdim);
      });
}

template <class T>
Tensor<T> mean(const Tensor<T>& x, std::vector<std::int64_t> axes, bool keepdim) {
  axes = normalize_axes(axes, x.ndim(), "mean");
  std::int64_t count = 1;
  for (const auto a : axes) count *= x.shape()[static_cast<std::size_t>(a)];
  if (count == 0) throw ValueError("mean: reducing an empty axis of shape " + to_string(x.shape()));
  return mul(sum(x, axes, keepdim), Tensor<T>::scalar(T(1) / static_cast<T>(count)));
}

template <class T>
Tensor<T> max(const Tensor<T>& x, std::vector<std::int64_t> axes, bool keepdim) {
  axes = normalize_axes(axes, x.ndim(), "max");
  // A 0-d tensor is its own maximum (and an empty list of axes in the rules would mean "all").
  if (axes.empty() && x.ndim() == 0) return x;
  const Shape kept = detail::keepdim_shape(x.shape(), axes);
  auto out = detail::reduce<detail::MaxReduction>(x, axes, keepdim);
  if (!will_record<T>({x})) return out;
  // Share of each element in the derivative: 1/count at the maxima, 0 elsewhere. A constant,
  // so it stays out of any hessian_at trace.
  Tensor<T> share;
  {
    detail::TraceScope<T> untraced(nullptr);
    const auto is_max = equal(x, reshape(out.detach(), kept));
    share = div(is_max, reshape(detail::reduce<detail::SumReduction>(is_max, axes, true), kept));
  }
  return record_op<T>(
      "max", {x}, out,
      [kept, share](const OpContext<T>&, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{mul(reshape(g, kept), share)};
      },
      [axes, keepdim, share](const OpContext<T>&, const std::vector<Tensor<T>>& t) {
        return sum(mul(t[0], share), detail::tangent_axes(axes), keepdim);
      });
}

// Sums `x` down to `shape`, which x's shape broadcasts from: the reverse of broadcast_to.
template <class T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const auto& from = x.shape();
  if (shape.size() > from.size()) {
    throw ShapeError("sum_to: cannot reduce shape " + to_string(from) + " to " + to_string(shape));
  }
  const std::size_t lead = from.size() - shape.size();
  std::vector<std::int64_t> axes;
  for (std::size_t i = 0; i < from.size(); ++i) {
    if (i < lead) {
      axes.push_back(static_cast<std::int64_t>(i));
    } else if (shape[i - lead] == 1 && from[i] != 1) {
      axes.push_back(static_cast<std::int64_t>(i));
    } else if (shape[i - lead] != from[i]) {
      throw ShapeError("sum_to: cannot reduce shape " + to_string(from) + " to " +
                       to_string(shape));
    }
  }
  return reshape(sum(x, axes, true), shape);
}

}  // namespace soda
