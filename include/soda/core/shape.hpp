// Shapes and strides: row-major strides, broadcasting (NumPy rules) and axis normalisation.
// A Shape is a plain vector of extents; a scalar (0-d) tensor has the empty shape.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "soda/core/error.hpp"

namespace soda {

using Shape = std::vector<std::int64_t>;
using Strides = std::vector<std::int64_t>;

inline std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace detail {

// The one place where extents are multiplied: every element count, stride and byte size of a
// shape goes through here, so that a product past int64 is an error, never a wrapped value.
inline std::int64_t multiply_extents(std::int64_t a, std::int64_t b, const Shape& shape,
                                     const char* op) {
  std::int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    throw ShapeError(std::string(op) + ": shape " + to_string(shape) +
                     " is too large: its element count or byte size overflows int64");
  }
  return product;
}

}  // namespace detail

inline std::int64_t numel(const Shape& shape) {
  std::int64_t n = 1;
  for (const auto d : shape) n = detail::multiply_extents(n, d, shape, "numel");
  return n;
}

inline Strides contiguous_strides(const Shape& shape) {
  Strides strides(shape.size());
  std::int64_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride = detail::multiply_extents(stride, shape[i], shape, "contiguous_strides");
  }
  return strides;
}

// Every tensor's shape passes here (Tensor::empty, views): extents must be non-negative, and the
// extents (a zero counted as one, so that every contiguous stride fits as well) times
// element_bytes must fit in int64. Checked before any arithmetic on the shape.
inline void check_shape_valid(const Shape& shape, const char* op, std::int64_t element_bytes = 1) {
  std::int64_t span = element_bytes;
  for (const auto d : shape) {
    if (d < 0) throw ShapeError(std::string(op) + ": negative extent in shape " + to_string(shape));
    span = detail::multiply_extents(span, std::max<std::int64_t>(d, 1), shape, op);
  }
}

// NumPy broadcasting of two shapes; names the op and both shapes when they do not agree.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const std::int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      throw ShapeError(std::string(op) + ": shapes " + to_string(a) + " and " + to_string(b) +
                       " cannot be broadcast (axis " + std::to_string(i) + ": " +
                       std::to_string(da) + " vs " + std::to_string(db) + ")");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Maps a possibly negative axis into [0, rank).
inline std::int64_t normalize_axis(std::int64_t axis, std::int64_t rank, const char* op) {
  if (axis < -rank || axis >= rank || rank == 0) {
    throw ValueError(std::string(op) + ": axis " + std::to_string(axis) +
                     " is out of range for a tensor of rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

// Sorted, unique, non-negative axes; an empty list means every axis.
inline std::vector<std::int64_t> normalize_axes(const std::vector<std::int64_t>& axes,
                                                std::int64_t rank, const char* op) {
  std::vector<std::int64_t> out;
  if (axes.empty()) {
    for (std::int64_t i = 0; i < rank; ++i) out.push_back(i);
    return out;
  }
  std::vector<bool> seen(static_cast<std::size_t>(rank), false);
  for (const auto a : axes) {
    const auto n = normalize_axis(a, rank, op);
    if (seen[static_cast<std::size_t>(n)]) {
      throw ValueError(std::string(op) + ": axis " + std::to_string(a) + " given twice");
    }
    seen[static_cast<std::size_t>(n)] = true;
  }
  for (std::int64_t i = 0; i < rank; ++i) {
    if (seen[static_cast<std::size_t>(i)]) out.push_back(i);
  }
  return out;
}

}  // namespace soda
