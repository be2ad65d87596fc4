// View ops: reshape, permute/transpose, broadcast_to, slice (and the slice_scatter that is its
// reverse rule), squeeze/unsqueeze/flatten, contiguous/clone. Views share storage with their base.
#pragma once

#include <numeric>
#include <optional>

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/autodiff/tangent.hpp"
#include "soda/core/factories.hpp"

namespace soda {

namespace detail {

inline Shape resolve_reshape(const Shape& from, Shape to) {
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < to.size(); ++i) {
    if (to[i] == -1) {
      if (infer >= 0)
        throw ShapeError("reshape: more than one -1 in target shape " + to_string(to));
      infer = static_cast<std::int64_t>(i);
    } else if (to[i] < 0) {
      throw ShapeError("reshape: negative extent in target shape " + to_string(to));
    } else {
      known = detail::multiply_extents(known, to[i], to, "reshape");
    }
  }
  const std::int64_t n = soda::numel(from);
  if (infer >= 0 && known != 0 && n % known == 0) to[static_cast<std::size_t>(infer)] = n / known;
  if (soda::numel(to) != n || (infer >= 0 && known == 0)) {
    throw ShapeError("reshape: cannot reshape " + to_string(from) + " (" + std::to_string(n) +
                     " elements) to " + to_string(to));
  }
  return to;
}

// Strides that let `to` view the same elements as a tensor of shape `from` with `strides`, in
// row-major order, when they exist (PyTorch's rule: every contiguous chunk of the old view must
// map onto whole dimensions of the new one). Unit axes can always be added or removed.
inline std::optional<Strides> view_strides(const Shape& from, const Strides& strides,
                                           const Shape& to) {
  if (from.empty() || soda::numel(from) == 0) return contiguous_strides(to);
  Strides out(to.size(), 0);
  std::int64_t view_d = static_cast<std::int64_t>(to.size()) - 1;
  std::int64_t chunk_base_stride = strides.back(), tensor_numel = 1, view_numel = 1;
  for (std::int64_t d = static_cast<std::int64_t>(from.size()) - 1; d >= 0; --d) {
    const auto ud = static_cast<std::size_t>(d);
    tensor_numel *= from[ud];
    if (d == 0 || (from[ud - 1] != 1 && strides[ud - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 &&
             (view_numel < tensor_numel || to[static_cast<std::size_t>(view_d)] == 1)) {
        out[static_cast<std::size_t>(view_d)] = view_numel * chunk_base_stride;
        view_numel *= to[static_cast<std::size_t>(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[ud - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

// Copies src into the (possibly strided) view dst of the same shape.
template <class T>
void assign(const Tensor<T>& dst, const Tensor<T>& src) {
  T* d = dst.raw_data();
  const T* s = src.raw_data();
  for_each_row<2>(dst.shape(), {dst.strides(), broadcast_strides(src, dst.shape())},
                  [&](const auto& off, const auto& st, std::int64_t n) {
                    for (std::int64_t i = 0; i < n; ++i)
                      d[off[0] + i * st[0]] = s[off[1] + i * st[1]];
                  });
}

struct SliceSpec {
  std::int64_t axis, start, stop, step, length;
};

inline SliceSpec normalize_slice(const Shape& shape, std::int64_t axis, std::int64_t start,
                                 std::int64_t stop, std::int64_t step, const char* op) {
  const auto a = normalize_axis(axis, static_cast<std::int64_t>(shape.size()), op);
  if (step <= 0)
    throw ValueError(std::string(op) + ": step must be positive, got " + std::to_string(step));
  const std::int64_t n = shape[static_cast<std::size_t>(a)];
  auto clip = [n](std::int64_t i) { return std::clamp<std::int64_t>(i < 0 ? i + n : i, 0, n); };
  const std::int64_t lo = clip(start), hi = std::max(clip(stop), clip(start));
  return {a, lo, hi, step, (hi - lo + step - 1) / step};
}

template <class T>
Tensor<T> slice_view(const Tensor<T>& x, const SliceSpec& s) {
  Shape shape = x.shape();
  Strides strides = x.strides();
  const auto a = static_cast<std::size_t>(s.axis);
  const std::int64_t offset = x.offset() + s.start * strides[a];
  shape[a] = s.length;
  strides[a] *= s.step;
  return x.view_with(shape, strides, offset);
}

}  // namespace detail

template <class T>
Tensor<T> reshape(const Tensor<T>& x, Shape shape) {
  shape = detail::resolve_reshape(x.shape(), std::move(shape));
  if (shape == x.shape()) return x;
  const auto strides = detail::view_strides(x.shape(), x.strides(), shape);
  const auto out = strides
                       ? x.view_with(shape, *strides, x.offset())
                       : detail::copy_contiguous(x).view_with(shape, contiguous_strides(shape), 0);
  return record_op<T>(
      "reshape", {x}, out,
      [](const OpContext<T>& c, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{reshape(g, c.inputs[0].shape())};
      },
      [](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return reshape(t[0], detail::stacked_shape(t[0].shape()[0], c.output.shape()));
      });
}

template <class T>
Tensor<T> permute(const Tensor<T>& x, std::vector<std::int64_t> axes) {
  const auto rank = x.ndim();
  if (static_cast<std::int64_t>(axes.size()) != rank) {
    throw ShapeError("permute: " + std::to_string(axes.size()) +
                     " axes given for a tensor of shape " + to_string(x.shape()));
  }
  std::vector<bool> seen(static_cast<std::size_t>(rank), false);
  for (auto& a : axes) {
    a = normalize_axis(a, rank, "permute");
    if (seen[static_cast<std::size_t>(a)])
      throw ShapeError("permute: axis " + std::to_string(a) + " repeated");
    seen[static_cast<std::size_t>(a)] = true;
  }
  bool identity = true;
  for (std::int64_t i = 0; i < rank; ++i)
    identity = identity && axes[static_cast<std::size_t>(i)] == i;
  if (identity) return x;
  Shape shape(static_cast<std::size_t>(rank));
  Strides strides(static_cast<std::size_t>(rank));
  std::vector<std::int64_t> inverse(static_cast<std::size_t>(rank));
  for (std::size_t i = 0; i < axes.size(); ++i) {
    const auto a = static_cast<std::size_t>(axes[i]);
    shape[i] = x.shape()[a];
    strides[i] = x.strides()[a];
    inverse[a] = static_cast<std::int64_t>(i);
  }
  std::vector<std::int64_t> tangent_axes{0};
  for (const auto a : axes) tangent_axes.push_back(a + 1);
  return record_op<T>(
      "permute", {x}, x.view_with(shape, strides, x.offset()),
      [inverse](const OpContext<T>&, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{permute(g, inverse)};
      },
      [tangent_axes](const OpContext<T>&, const std::vector<Tensor<T>>& t) {
        return permute(t[0], tangent_axes);
      });
}

template <class T>
Tensor<T> transpose(const Tensor<T>& x, std::int64_t a, std::int64_t b) {
  std::vector<std::int64_t> axes(static_cast<std::size_t>(x.ndim()));
  std::iota(axes.begin(), axes.end(), 0);
  std::swap(axes[static_cast<std::size_t>(normalize_axis(a, x.ndim(), "transpose"))],
            axes[static_cast<std::size_t>(normalize_axis(b, x.ndim(), "transpose"))]);
  return permute(x, axes);
}

template <class T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const Shape& from = x.shape();
  bool ok = from.size() <= shape.size();
  for (std::size_t i = 0; ok && i < from.size(); ++i) {
    const auto target = shape[shape.size() - from.size() + i];
    ok = from[i] == target || from[i] == 1;
  }
  if (!ok)
    throw ShapeError("broadcast_to: cannot broadcast shape " + to_string(from) + " to " +
                     to_string(shape));
  auto out = x.view_with(shape, detail::broadcast_strides(x, shape), x.offset());
  return record_op<T>(
      "broadcast_to", {x}, out,
      [](const OpContext<T>& c, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{sum_to(g, c.inputs[0].shape())};
      },
      [](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return detail::tangent_to(t[0], c.output.shape());
      });
}

template <class T>
Tensor<T> slice(const Tensor<T>& x, std::int64_t axis, std::int64_t start, std::int64_t stop,
                std::int64_t step) {
  const auto s = detail::normalize_slice(x.shape(), axis, start, stop, step, "slice");
  if (s.start == 0 && s.step == 1 && s.length == x.shape()[static_cast<std::size_t>(s.axis)])
    return x;
  return record_op<T>(
      "slice", {x}, detail::slice_view(x, s),
      [s](const OpContext<T>& c, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{
            slice_scatter(g, c.inputs[0].shape(), s.axis, s.start, s.stop, s.step)};
      },
      [s](const OpContext<T>&, const std::vector<Tensor<T>>& t) {
        return slice(t[0], s.axis + 1, s.start, s.stop, s.step);
      });
}

// A zero tensor of `shape` with `src` written into the slice (axis, start:stop:step).
template <class T>
Tensor<T> slice_scatter(const Tensor<T>& src, const Shape& shape, std::int64_t axis,
                        std::int64_t start, std::int64_t stop, std::int64_t step) {
  const auto s = detail::normalize_slice(shape, axis, start, stop, step, "slice_scatter");
  auto out = zeros<T>(shape);
  const auto target = detail::slice_view(out, s);
  if (target.shape() != src.shape()) {
    throw ShapeError("slice_scatter: source of shape " + to_string(src.shape()) +
                     " does not fill a slice of shape " + to_string(target.shape()));
  }
  detail::assign(target, src);
  return record_op<T>(
      "slice_scatter", {src}, out,
      [s](const OpContext<T>&, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{slice(g, s.axis, s.start, s.stop, s.step)};
      },
      [s](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return slice_scatter(t[0], detail::stacked_shape(t[0].shape()[0], c.output.shape()),
                             s.axis + 1, s.start, s.stop, s.step);
      });
}

template <class T>
Tensor<T> select(const Tensor<T>& x, std::int64_t axis, std::int64_t index) {
  const auto a = normalize_axis(axis, x.ndim(), "select");
  const auto n = x.shape()[static_cast<std::size_t>(a)];
  if (index < -n || index >= n) {
    throw IndexError("select: index " + std::to_string(index) + " is out of bounds for axis " +
                     std::to_string(a) + " of size " + std::to_string(n));
  }
  const auto i = index < 0 ? index + n : index;
  return squeeze(slice(x, a, i, i + 1), a);
}

template <class T>
Tensor<T> unsqueeze(const Tensor<T>& x, std::int64_t axis) {
  const auto a = normalize_axis(axis, x.ndim() + 1, "unsqueeze");
  Shape shape = x.shape();
  shape.insert(shape.begin() + a, 1);
  return reshape(x, shape);
}

template <class T>
Tensor<T> squeeze(const Tensor<T>& x, std::int64_t axis) {
  const auto a = normalize_axis(axis, x.ndim(), "squeeze");
  if (x.shape()[static_cast<std::size_t>(a)] != 1) {
    throw ShapeError("squeeze: axis " + std::to_string(a) + " of shape " + to_string(x.shape()) +
                     " is not 1");
  }
  Shape shape = x.shape();
  shape.erase(shape.begin() + a);
  return reshape(x, shape);
}

// Merges axes start_axis.. into one: [N, C, H, W] -> [N, C*H*W] for start_axis 1.
template <class T>
Tensor<T> flatten(const Tensor<T>& x, std::int64_t start_axis) {
  const auto a = static_cast<std::size_t>(
      normalize_axis(start_axis, std::max<std::int64_t>(x.ndim(), 1), "flatten"));
  Shape shape(x.shape().begin(),
              x.shape().begin() + static_cast<std::ptrdiff_t>(std::min(a, x.shape().size())));
  shape.push_back(-1);
  return reshape(x, shape);
}

namespace detail {
template <class T>
Tensor<T> recorded_copy(const Tensor<T>& x) {
  return record_op<T>(
      "copy", {x}, copy_contiguous(x),
      [](const OpContext<T>&, const Tensor<T>& g) { return std::vector<Tensor<T>>{g}; },
      [](const OpContext<T>&, const std::vector<Tensor<T>>& t) { return t[0]; });
}
}  // namespace detail

template <class T>
Tensor<T> contiguous(const Tensor<T>& x) {
  return x.is_contiguous() ? x : detail::recorded_copy(x);
}

template <class T>
Tensor<T> clone(const Tensor<T>& x) {
  return detail::recorded_copy(x);
}

}  // namespace soda
