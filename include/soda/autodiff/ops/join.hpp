// concat and stack. The reverse rule slices the gradient back into pieces; the forward rule
// concatenates the tangents (zeros where an input has none) along the same axis.
#pragma once

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/autodiff/ops/views.hpp"
#include "soda/autodiff/tangent.hpp"

namespace soda {

template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& xs, std::int64_t axis) {
  if (xs.empty()) throw ValueError("concat: no tensors given");
  const auto rank = xs[0].ndim();
  const auto a = normalize_axis(axis, rank, "concat");
  Shape shape = xs[0].shape();
  std::vector<std::int64_t> starts{0};
  shape[static_cast<std::size_t>(a)] = 0;
  for (const auto& x : xs) {
    bool ok = x.ndim() == rank;
    for (std::int64_t d = 0; ok && d < rank; ++d) {
      ok = d == a ||
           x.shape()[static_cast<std::size_t>(d)] == xs[0].shape()[static_cast<std::size_t>(d)];
    }
    if (!ok) {
      throw ShapeError("concat: shapes " + to_string(xs[0].shape()) + " and " +
                       to_string(x.shape()) + " do not agree outside axis " + std::to_string(a));
    }
    shape[static_cast<std::size_t>(a)] += x.shape()[static_cast<std::size_t>(a)];
    starts.push_back(shape[static_cast<std::size_t>(a)]);
  }
  auto out = Tensor<T>::empty(shape);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    detail::assign(
        detail::slice_view(out, {a, starts[i], starts[i + 1], 1, starts[i + 1] - starts[i]}),
        xs[i]);
  }
  return record_op<T>(
      "concat", xs, out,
      [a, starts](const OpContext<T>& c, const Tensor<T>& g) {
        std::vector<Tensor<T>> grads(c.inputs.size());
        for (std::size_t i = 0; i < grads.size(); ++i) {
          if (c.needs_grad[i]) grads[i] = slice(g, a, starts[i], starts[i + 1]);
        }
        return grads;
      },
      [a](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto k = detail::tangent_count(t);
        std::vector<Tensor<T>> pieces;
        for (std::size_t i = 0; i < t.size(); ++i) {
          pieces.push_back(
              t[i].defined() ? t[i] : zeros<T>(detail::stacked_shape(k, c.inputs[i].shape())));
        }
        return concat(pieces, a + 1);
      });
}

template <class T>
Tensor<T> stack(const std::vector<Tensor<T>>& xs, std::int64_t axis) {
  if (xs.empty()) throw ValueError("stack: no tensors given");
  const auto a = normalize_axis(axis, xs[0].ndim() + 1, "stack");
  std::vector<Tensor<T>> expanded;
  expanded.reserve(xs.size());
  for (const auto& x : xs) {
    if (x.shape() != xs[0].shape()) {
      throw ShapeError("stack: shapes " + to_string(xs[0].shape()) + " and " +
                       to_string(x.shape()) + " differ");
    }
    expanded.push_back(unsqueeze(x, a));
  }
  return concat(expanded, a);
}

template <class T>
Tensor<T> concat(std::initializer_list<Tensor<T>> xs, std::int64_t axis) {
  return concat(std::vector<Tensor<T>>(xs), axis);
}

template <class T>
Tensor<T> stack(std::initializer_list<Tensor<T>> xs, std::int64_t axis) {
  return stack(std::vector<Tensor<T>>(xs), axis);
}

}  // namespace soda
