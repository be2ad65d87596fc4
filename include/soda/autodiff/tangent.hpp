// Helpers for forward rules. A tangent plane has shape [k, shape...]: k directions pushed at
// once (k = 1 for a plain JVP/HVP, k > 1 for apply_many), so every rule works on stacked tangents.
#pragma once

#include "soda/autodiff/ops/declarations.hpp"

namespace soda::detail {

// The number of stacked directions k of the first defined tangent.
template <class T>
std::int64_t tangent_count(const std::vector<Tensor<T>>& tangents) {
  for (const auto& t : tangents) {
    if (t.defined()) return t.shape()[0];
  }
  throw Error("tangent_count: no tangent is defined (internal error)");
}

// [k, s...] -> [k, 1, ..., 1, s...] with `rank` dimensions after k, so that the tangent
// broadcasts against primal values of rank `rank` (right-aligned).
template <class T>
Tensor<T> lift_tangent(const Tensor<T>& t, std::size_t rank) {
  const Shape& s = t.shape();
  if (s.size() - 1 >= rank) return t;
  Shape lifted{s[0]};
  lifted.insert(lifted.end(), rank - (s.size() - 1), 1);
  lifted.insert(lifted.end(), s.begin() + 1, s.end());
  return reshape(t, lifted);
}

// Lifts and broadcasts a tangent to exactly [k, shape...] (a stride-0 view where it expands).
template <class T>
Tensor<T> tangent_to(const Tensor<T>& t, const Shape& shape) {
  Shape full{t.shape()[0]};
  full.insert(full.end(), shape.begin(), shape.end());
  const auto lifted = lift_tangent(t, shape.size());
  return lifted.shape() == full ? lifted : broadcast_to(lifted, full);
}

// The shape [k, shape...].
inline Shape stacked_shape(std::int64_t k, const Shape& shape) {
  Shape full{k};
  full.insert(full.end(), shape.begin(), shape.end());
  return full;
}

// Axis of a primal tensor as seen in its tangent plane.
inline std::int64_t tangent_axis(std::int64_t axis) {
  return axis + 1;
}

inline std::vector<std::int64_t> tangent_axes(std::vector<std::int64_t> axes) {
  for (auto& a : axes) a += 1;
  return axes;
}

}  // namespace soda::detail
