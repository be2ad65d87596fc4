// Picking elements: index_select (whole slices by index, e.g. a mini-batch) with index_add as its
// adjoint, and gather (one element per position, e.g. the logit of each label) with scatter_add
// as its adjoint. Each is the other's reverse rule; forward rules apply the same op to tangents.
#pragma once

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/autodiff/ops/views.hpp"
#include "soda/autodiff/tangent.hpp"
#include "soda/core/kernels/functors.hpp"

namespace soda {

namespace detail {

inline void check_indices(const std::vector<std::int64_t>& indices, std::int64_t n,
                          const char* op) {
  for (const auto i : indices) {
    if (i < 0 || i >= n) {
      throw IndexError(std::string(op) + ": index " + std::to_string(i) +
                       " is out of bounds for an axis of size " + std::to_string(n));
    }
  }
}

// Visits every position of `index` (any strides): f(position offset in a contiguous tensor of
// index's shape, source offset with `axis` replaced by the index value, the index value).
template <class Visit>
void for_each_index(const Tensor<std::int64_t>& index, std::int64_t axis,
                    const Strides& other_strides, std::int64_t axis_size, const char* op,
                    Visit visit) {
  const auto& shape = index.shape();
  const auto n = index.numel();
  std::vector<std::int64_t> pos(shape.size(), 0);
  for (std::int64_t linear = 0; linear < n; ++linear) {
    std::int64_t index_offset = 0, other_offset = 0;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      index_offset += pos[d] * index.strides()[d];
      if (static_cast<std::int64_t>(d) != axis) other_offset += pos[d] * other_strides[d];
    }
    const auto value = index.raw_data()[index_offset];
    if (value < 0 || value >= axis_size) {
      throw IndexError(std::string(op) + ": index " + std::to_string(value) +
                       " is out of bounds for an axis of size " + std::to_string(axis_size));
    }
    visit(linear, other_offset + value * other_strides[static_cast<std::size_t>(axis)]);
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++pos[d] < shape[d]) break;
      pos[d] = 0;
    }
  }
}

template <class T>
void check_gather_shapes(const Shape& x, std::int64_t axis, const Tensor<std::int64_t>& index,
                         const char* op) {
  bool ok = index.ndim() == static_cast<std::int64_t>(x.size());
  for (std::size_t d = 0; ok && d < x.size(); ++d) {
    ok = static_cast<std::int64_t>(d) == axis || index.shape()[d] <= x[d];
  }
  if (!ok) {
    throw ShapeError(std::string(op) + ": index of shape " + to_string(index.shape()) +
                     " does not fit a tensor of shape " + to_string(x) + " along axis " +
                     std::to_string(axis));
  }
}

// The index broadcast over the k stacked tangent directions: [k, index...] with stride 0.
inline Tensor<std::int64_t> stacked_index(const Tensor<std::int64_t>& index, std::int64_t k) {
  Strides strides{0};
  strides.insert(strides.end(), index.strides().begin(), index.strides().end());
  return index.view_with(stacked_shape(k, index.shape()), strides, index.offset());
}

}  // namespace detail

template <class T>
Tensor<T> index_select(const Tensor<T>& x, std::int64_t axis,
                       const std::vector<std::int64_t>& indices) {
  const auto a = normalize_axis(axis, x.ndim(), "index_select");
  detail::check_indices(indices, x.shape()[static_cast<std::size_t>(a)], "index_select");
  Shape shape = x.shape();
  shape[static_cast<std::size_t>(a)] = static_cast<std::int64_t>(indices.size());
  auto out = Tensor<T>::empty(shape);
  for (std::size_t j = 0; j < indices.size(); ++j) {
    const auto i = indices[j];
    const auto js = static_cast<std::int64_t>(j);
    detail::assign(detail::slice_view(out, {a, js, js + 1, 1, 1}),
                   detail::slice_view(x, {a, i, i + 1, 1, 1}));
  }
  return record_op<T>(
      "index_select", {x}, out,
      [a, indices](const OpContext<T>& c, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{index_add(g, c.inputs[0].shape(), a, indices)};
      },
      [a, indices](const OpContext<T>&, const std::vector<Tensor<T>>& t) {
        return index_select(t[0], a + 1, indices);
      });
}

// A zero tensor of `shape` with slice j of `src` added into slice indices[j] along `axis`.
template <class T>
Tensor<T> index_add(const Tensor<T>& src, const Shape& shape, std::int64_t axis,
                    const std::vector<std::int64_t>& indices) {
  const auto a = normalize_axis(axis, static_cast<std::int64_t>(shape.size()), "index_add");
  detail::check_indices(indices, shape[static_cast<std::size_t>(a)], "index_add");
  Shape expected = shape;
  expected[static_cast<std::size_t>(a)] = static_cast<std::int64_t>(indices.size());
  if (src.shape() != expected) {
    throw ShapeError("index_add: source of shape " + to_string(src.shape()) + " does not match " +
                     to_string(expected));
  }
  auto out = zeros<T>(shape);
  for (std::size_t j = 0; j < indices.size(); ++j) {
    const auto i = indices[j];
    const auto js = static_cast<std::int64_t>(j);
    const auto target = detail::slice_view(out, {a, i, i + 1, 1, 1});
    const auto piece = detail::slice_view(src, {a, js, js + 1, 1, 1});
    detail::assign(target, detail::map_binary(target, piece, detail::fn::Add{}, "index_add"));
  }
  return record_op<T>(
      "index_add", {src}, out,
      [a, indices](const OpContext<T>&, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{index_select(g, a, indices)};
      },
      [a, indices](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return index_add(t[0], detail::stacked_shape(t[0].shape()[0], c.output.shape()), a + 1,
                         indices);
      });
}

// out[i][j] = x[i][index[i][j]] for axis 1 (PyTorch's torch.gather); out has index's shape.
template <class T>
Tensor<T> gather(const Tensor<T>& x, std::int64_t axis, const Tensor<std::int64_t>& index) {
  const auto a = normalize_axis(axis, x.ndim(), "gather");
  detail::check_gather_shapes<T>(x.shape(), a, index, "gather");
  auto out = Tensor<T>::empty(index.shape());
  const T* in = x.raw_data();
  T* o = out.raw_data();
  detail::for_each_index(
      index, a, x.strides(), x.shape()[static_cast<std::size_t>(a)], "gather",
      [&](std::int64_t position, std::int64_t source) { o[position] = in[source]; });
  return record_op<T>(
      "gather", {x}, out,
      [a, index](const OpContext<T>& c, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{scatter_add(g, c.inputs[0].shape(), a, index)};
      },
      [a, index](const OpContext<T>&, const std::vector<Tensor<T>>& t) {
        return gather(t[0], a + 1, detail::stacked_index(index, t[0].shape()[0]));
      });
}

// A zero tensor of `shape` with src[i][j] added at [i][index[i][j]] for axis 1.
template <class T>
Tensor<T> scatter_add(const Tensor<T>& src, const Shape& shape, std::int64_t axis,
                      const Tensor<std::int64_t>& index) {
  const auto a = normalize_axis(axis, static_cast<std::int64_t>(shape.size()), "scatter_add");
  detail::check_gather_shapes<T>(shape, a, index, "scatter_add");
  if (src.shape() != index.shape()) {
    throw ShapeError("scatter_add: source of shape " + to_string(src.shape()) +
                     " and index of shape " + to_string(index.shape()) + " differ");
  }
  auto out = zeros<T>(shape);
  const auto source = src.is_contiguous() ? src : detail::copy_contiguous(src);
  const T* s = source.raw_data();
  T* o = out.raw_data();
  detail::for_each_index(
      index, a, out.strides(), shape[static_cast<std::size_t>(a)], "scatter_add",
      [&](std::int64_t position, std::int64_t target) { o[target] += s[position]; });
  return record_op<T>(
      "scatter_add", {src}, out,
      [a, index](const OpContext<T>&, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{gather(g, a, index)};
      },
      [a, index](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto k = t[0].shape()[0];
        return scatter_add(t[0], detail::stacked_shape(k, c.output.shape()), a + 1,
                           detail::stacked_index(index, k));
      });
}

}  // namespace soda
