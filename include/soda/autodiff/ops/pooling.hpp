// Pooling over the last two axes of [N, C, H, W], as PyTorch's max_pool2d and avg_pool2d (with
// count_include_pad) define it: output size floor((H + 2p - k) / s) + 1, padding at most k / 2.
// max_pool2d takes each window's first maximum; its rules send g to, and read t at, those
// positions. avg_pool2d and its adjoint avg_pool2d_input_grad are each other's reverse rule.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/autodiff/tangent.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/parallel.hpp"

namespace soda {

namespace detail {

inline std::string size2d_string(Size2d s) {
  return "(" + std::to_string(s.h) + ", " + std::to_string(s.w) + ")";
}

// Where the windows of one pooling call fall on a plane of height x width.
struct Pool2dGeometry {
  std::int64_t height = 0, width = 0;
  std::int64_t out_height = 0, out_width = 0;
  Size2d kernel{1}, stride{1}, padding{0};

  std::int64_t plane() const { return height * width; }
  std::int64_t out_plane() const { return out_height * out_width; }
  // Kernel 2, stride 2, no padding: the most common pooling, given a loop of its own.
  bool two_by_two() const {
    return kernel == Size2d{2} && stride == Size2d{2} && padding == Size2d{0};
  }
};

// Checks a pooling call on an input of `shape` as PyTorch does, and places its windows.
inline Pool2dGeometry pool2d_geometry(const char* op, const Shape& shape, Size2d kernel,
                                      Size2d stride, Size2d padding) {
  if (shape.size() != 4) {
    throw ShapeError(std::string(op) + ": expects an input of rank 4 [N, C, H, W], got shape " +
                     to_string(shape));
  }
  if (kernel.h <= 0 || kernel.w <= 0) {
    throw ValueError(std::string(op) + ": kernel " + size2d_string(kernel) +
                     " must be positive (input of shape " + to_string(shape) + ")");
  }
  if (stride.h <= 0 || stride.w <= 0) {
    throw ValueError(std::string(op) + ": stride " + size2d_string(stride) +
                     " must be positive (input of shape " + to_string(shape) + ")");
  }
  // PyTorch's limit: beyond half the kernel, a window could lie wholly in the padding.
  if (padding.h < 0 || padding.w < 0 || padding.h > kernel.h / 2 || padding.w > kernel.w / 2) {
    throw ValueError(std::string(op) + ": padding " + size2d_string(padding) +
                     " must be between 0 and half the kernel " + size2d_string(kernel) +
                     " (input of shape " + to_string(shape) + ")");
  }
  const std::int64_t height = shape[2], width = shape[3];
  if (height < 1 || width < 1 || height + 2 * padding.h < kernel.h ||
      width + 2 * padding.w < kernel.w) {
    throw ShapeError(std::string(op) + ": input of shape " + to_string(shape) +
                     " is too small for kernel " + size2d_string(kernel) + " with padding " +
                     size2d_string(padding) + ": the output would be empty");
  }
  return {height,
          width,
          (height + 2 * padding.h - kernel.h) / stride.h + 1,
          (width + 2 * padding.w - kernel.w) / stride.w + 1,
          kernel,
          stride,
          padding};
}

// The input rows (or columns) [begin, end) under output row `o`, clipped to the plane.
struct WindowSpan {
  std::int64_t begin, end;
};

inline WindowSpan window_span(std::int64_t o, std::int64_t kernel, std::int64_t stride,
                              std::int64_t padding, std::int64_t extent) {
  const std::int64_t start = o * stride - padding;
  return {std::max<std::int64_t>(start, 0), std::min(start + kernel, extent)};
}

// Planes per parallel chunk: enough for about 32K element visits, so small tensors stay serial.
inline std::int64_t plane_grain(std::int64_t work_per_plane) {
  return std::max<std::int64_t>(
      1, (std::int64_t{1} << 15) / std::max<std::int64_t>(work_per_plane, 1));
}

// Calls body(p) for each of `planes` planes, in parallel once there is enough work; every plane
// is written by one thread only, so results do not depend on the thread count.
template <class Body>
void for_each_plane(std::int64_t planes, std::int64_t work_per_plane, Body body) {
  parallel_for(planes, plane_grain(work_per_plane), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t p = lo; p < hi; ++p) body(p);
  });
}

template <class T>
Tensor<T> contiguous_or_copy(const Tensor<T>& x) {
  return x.is_contiguous() ? x : copy_contiguous(x);
}

// Whether a window spans whole rows of the plane (global pooling, or a kernel as wide as the
// plane): its in-plane part is then one run of consecutive positions, long enough to vectorize.
inline bool spans_whole_rows(WindowSpan cols, std::int64_t width) {
  return cols.begin == 0 && cols.end == width;
}

// Sum of, and addition to, one run of n consecutive values, in vector lanes (so summed in a
// fixed order for a given build, whatever the thread count). Kept for long runs: on a 3-wide
// window the vector set-up costs more than it saves.
template <class T>
T sum_of_run(const T* x, std::int64_t n) {
  T total = 0;
#pragma omp simd reduction(+ : total)
  for (std::int64_t i = 0; i < n; ++i) total += x[i];
  return total;
}

template <class T>
void add_to_run(T* x, std::int64_t n, T value) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) x[i] += value;
}

// One plane of max_pool2d as PyTorch's CPU kernel defines it, with the flat position
// (h * width + w) of each maximum in `argmax`: start from -inf at the window's first in-plane
// position and take each in-plane value v, in row-major order, when v > best or v is NaN. So
// ties keep the first maximum, a NaN wins (the last one), and an all -inf window points at its
// first element. Used as is for planes holding a NaN and for large windows, where after the
// first few values a new maximum is rare and the branch predicts well.
template <class T>
void max_pool2d_plane_scan(const T* in, T* out, std::int64_t* argmax, const Pool2dGeometry& g) {
  for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
    const auto rows = window_span(oh, g.kernel.h, g.stride.h, g.padding.h, g.height);
    for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
      const auto cols = window_span(ow, g.kernel.w, g.stride.w, g.padding.w, g.width);
      T best_value = -std::numeric_limits<T>::infinity();
      std::int64_t best = rows.begin * g.width + cols.begin;
      for (std::int64_t h = rows.begin; h < rows.end; ++h) {
        for (std::int64_t w = cols.begin; w < cols.end; ++w) {
          const T v = in[h * g.width + w];
          if (v > best_value || std::isnan(v)) {
            best_value = v;
            best = h * g.width + w;
          }
        }
      }
      out[oh * g.out_width + ow] = best_value;
      argmax[oh * g.out_width + ow] = best;
    }
  }
}

// Small windows without NaNs: the same rule in two passes free of data-dependent branches
// (which random data mispredicts at every other comparison, making the scan several times
// slower): the window's maximum, then the first position holding it, as a min over positions.
template <class T>
void max_pool2d_plane_branch_free(const T* in, T* out, std::int64_t* argmax,
                                  const Pool2dGeometry& g) {
  const std::int64_t width = g.width;
  constexpr std::int64_t nowhere = std::int64_t{1} << 62;  // past any position
  for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
    const auto rows = window_span(oh, g.kernel.h, g.stride.h, g.padding.h, g.height);
    for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
      const auto cols = window_span(ow, g.kernel.w, g.stride.w, g.padding.w, width);
      T largest = -std::numeric_limits<T>::infinity();
      for (std::int64_t h = rows.begin; h < rows.end; ++h) {
        for (std::int64_t w = cols.begin; w < cols.end; ++w) {
          largest = std::max(largest, in[h * width + w]);
        }
      }
      std::int64_t found = nowhere;
      for (std::int64_t h = rows.begin; h < rows.end; ++h) {
        for (std::int64_t w = cols.begin; w < cols.end; ++w) {
          // Arithmetic, not `equal ? position : nowhere`, which compilers make a branch.
          const std::int64_t missed = in[h * width + w] != largest;
          found = std::min(found, h * width + w + missed * nowhere);
        }
      }
      out[oh * g.out_width + ow] = in[found];  // the first of equal zeros, -0 or +0
      argmax[oh * g.out_width + ow] = found;
    }
  }
}

// Kernel 2, stride 2, no padding, without NaNs: the four values of each window written out.
template <class T>
void max_pool2d_plane_two_by_two(const T* in, T* out, std::int64_t* argmax,
                                 const Pool2dGeometry& g) {
  const std::int64_t width = g.width;
  for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
    for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
      const std::int64_t corner = 2 * oh * width + 2 * ow;
      const T a = in[corner], b = in[corner + 1], c = in[corner + width],
              d = in[corner + width + 1];
      const T largest = std::max(std::max(a, b), std::max(c, d));
      // The first of a, b, c, d equal to the maximum, by arithmetic rather than branches.
      const std::int64_t offset =
          (a != largest) * (1 + (b != largest) * (width - 1 + (c != largest)));
      out[oh * g.out_width + ow] = in[corner + offset];  // the first of equal zeros, -0 or +0
      argmax[oh * g.out_width + ow] = corner + offset;
    }
  }
}

// One plane of max_pool2d (see max_pool2d_plane_scan for the rule).
template <class T>
void max_pool2d_plane(const T* in, T* out, std::int64_t* argmax, const Pool2dGeometry& g) {
  if (g.kernel.h * g.kernel.w > 16) {
    max_pool2d_plane_scan(in, out, argmax, g);
    return;
  }
  bool has_nan = false;
#pragma omp simd reduction(| : has_nan)
  for (std::int64_t i = 0; i < g.plane(); ++i) has_nan = has_nan | (in[i] != in[i]);
  if (has_nan) {
    max_pool2d_plane_scan(in, out, argmax, g);
  } else if (g.two_by_two()) {
    max_pool2d_plane_two_by_two(in, out, argmax, g);
  } else {
    max_pool2d_plane_branch_free(in, out, argmax, g);
  }
}

// One plane of avg_pool2d: each window's sum over its in-plane part, divided by the full area.
template <class T>
void avg_pool2d_plane(const T* in, T* out, const Pool2dGeometry& g) {
  const T area = static_cast<T>(g.kernel.h * g.kernel.w);
  if (g.two_by_two()) {
    for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
      const T* top = in + 2 * oh * g.width;
      const T* bottom = top + g.width;
      T* row = out + oh * g.out_width;
      for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
        row[ow] = (top[2 * ow] + top[2 * ow + 1] + bottom[2 * ow] + bottom[2 * ow + 1]) / area;
      }
    }
    return;
  }
  for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
    const auto rows = window_span(oh, g.kernel.h, g.stride.h, g.padding.h, g.height);
    for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
      const auto cols = window_span(ow, g.kernel.w, g.stride.w, g.padding.w, g.width);
      T total = 0;
      if (spans_whole_rows(cols, g.width)) {
        total = sum_of_run(in + rows.begin * g.width, (rows.end - rows.begin) * g.width);
      } else {
        for (std::int64_t h = rows.begin; h < rows.end; ++h) {
          const T* row = in + h * g.width;
          for (std::int64_t w = cols.begin; w < cols.end; ++w) total += row[w];
        }
      }
      out[oh * g.out_width + ow] = total / area;
    }
  }
}

// One plane of avg_pool2d_input_grad: the adjoint of avg_pool2d_plane.
template <class T>
void avg_pool2d_input_grad_plane(const T* grad, T* out, const Pool2dGeometry& g) {
  const T area = static_cast<T>(g.kernel.h * g.kernel.w);
  if (g.two_by_two()) {  // every input under at most one window: written once, not accumulated
    std::fill(out + 2 * g.out_height * g.width, out + g.plane(), T(0));  // odd height
    for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
      T* top = out + 2 * oh * g.width;
      T* bottom = top + g.width;
      const T* shares = grad + oh * g.out_width;
      for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
        const T share = shares[ow] / area;
        top[2 * ow] = top[2 * ow + 1] = bottom[2 * ow] = bottom[2 * ow + 1] = share;
      }
      if (g.width % 2 != 0) top[g.width - 1] = bottom[g.width - 1] = T(0);
    }
    return;
  }
  std::fill(out, out + g.plane(), T(0));
  for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
    const auto rows = window_span(oh, g.kernel.h, g.stride.h, g.padding.h, g.height);
    for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
      const auto cols = window_span(ow, g.kernel.w, g.stride.w, g.padding.w, g.width);
      const T share = grad[oh * g.out_width + ow] / area;
      if (spans_whole_rows(cols, g.width)) {
        add_to_run(out + rows.begin * g.width, (rows.end - rows.begin) * g.width, share);
      } else {
        for (std::int64_t h = rows.begin; h < rows.end; ++h) {
          T* row = out + h * g.width;
          for (std::int64_t w = cols.begin; w < cols.end; ++w) row[w] += share;
        }
      }
    }
  }
}

// avg_pool2d on every plane of x (any leading axes: [N, C, H, W] or a tangent [k, N, C, H, W]).
template <class T>
Tensor<T> avg_pool2d_kernel(const Tensor<T>& x, const Pool2dGeometry& g, Shape out_shape) {
  const auto in = contiguous_or_copy(x);
  auto out = Tensor<T>::empty(std::move(out_shape));
  const T* source = in.raw_data();
  T* target = out.raw_data();
  for_each_plane(out.numel() / g.out_plane(), g.plane(), [&](std::int64_t p) {
    avg_pool2d_plane(source + p * g.plane(), target + p * g.out_plane(), g);
  });
  return out;
}

template <class T>
Tensor<T> avg_pool2d_input_grad_kernel(const Tensor<T>& grad, const Pool2dGeometry& g,
                                       Shape out_shape) {
  const auto in = contiguous_or_copy(grad);
  auto out = Tensor<T>::empty(std::move(out_shape));
  const T* source = in.raw_data();
  T* target = out.raw_data();
  for_each_plane(out.numel() / g.plane(), g.plane(), [&](std::int64_t p) {
    avg_pool2d_input_grad_plane(source + p * g.out_plane(), target + p * g.plane(), g);
  });
  return out;
}

// out[p, i] = x[p, positions[p mod P, i]] for flat planes of x of size `plane`, where P is the
// number of position planes: a tangent's k stacked directions all read the primal's positions.
template <class T>
Tensor<T> gather_in_planes_kernel(const Tensor<T>& x, std::int64_t plane,
                                  const Tensor<std::int64_t>& positions, Shape out_shape) {
  auto out = Tensor<T>::empty(std::move(out_shape));
  const std::int64_t position_plane = positions.shape()[2] * positions.shape()[3];
  const std::int64_t position_planes = positions.numel() / position_plane;
  const std::int64_t planes = out.numel() / position_plane;
  if (planes == 0) return out;
  const auto in = contiguous_or_copy(x);
  const T* source = in.raw_data();
  const std::int64_t* where = positions.raw_data();
  T* target = out.raw_data();
  for_each_plane(planes, position_plane, [&](std::int64_t p) {
    const T* from = source + p * plane;
    const std::int64_t* at = where + (p % position_planes) * position_plane;
    T* to = target + p * position_plane;
    for (std::int64_t i = 0; i < position_plane; ++i) to[i] = from[at[i]];
  });
  return out;
}

// The adjoint of gather_in_planes_kernel: a zero tensor of out_shape (planes of size `plane`)
// with src[p, i] added at positions[p mod P, i]. A plane may receive one position many times
// (overlapping windows), so each plane is summed by one thread, in order.
template <class T>
Tensor<T> scatter_add_in_planes_kernel(const Tensor<T>& src, std::int64_t plane,
                                       const Tensor<std::int64_t>& positions, Shape out_shape) {
  auto out = Tensor<T>::empty(std::move(out_shape));
  const std::int64_t position_plane = positions.shape()[2] * positions.shape()[3];
  const std::int64_t position_planes = positions.numel() / position_plane;
  const std::int64_t planes = out.numel() / plane;
  if (planes == 0) return out;
  const auto in = contiguous_or_copy(src);
  const T* source = in.raw_data();
  const std::int64_t* where = positions.raw_data();
  T* target = out.raw_data();
  for_each_plane(planes, plane, [&](std::int64_t p) {
    const T* from = source + p * position_plane;
    const std::int64_t* at = where + (p % position_planes) * position_plane;
    T* to = target + p * plane;
    std::fill(to, to + plane, T(0));
    for (std::int64_t i = 0; i < position_plane; ++i) to[at[i]] += from[i];
  });
  return out;
}

// max_pool2d's reverse rule and its adjoint, as a pair of differentiable ops. They index each
// (n, c) plane directly, in parallel over planes, rather than going through the general
// gather/scatter_add on [N, C, H*W], whose serial loop recomputes a multi-index per element:
// the same maths, but the pooling backward and every tangent pass run at memory speed.
template <class T>
Tensor<T> scatter_add_in_planes(const Tensor<T>& src, const Tensor<std::int64_t>& positions,
                                const Shape& shape);

// out[n, c, i, j] = x[n, c] (flattened) at positions[n, c, i, j].
template <class T>
Tensor<T> gather_in_planes(const Tensor<T>& x, const Tensor<std::int64_t>& positions) {
  const std::int64_t plane = x.shape()[2] * x.shape()[3];
  return record_op<T>(
      "gather_in_planes", {x}, gather_in_planes_kernel(x, plane, positions, positions.shape()),
      [positions](const OpContext<T>& c, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{scatter_add_in_planes(g, positions, c.inputs[0].shape())};
      },
      [plane, positions](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return gather_in_planes_kernel(t[0], plane, positions,
                                       stacked_shape(t[0].shape()[0], c.output.shape()));
      });
}

// A zero tensor of `shape` [N, C, H, W] with src[n, c, i, j] added at positions[n, c, i, j] of
// plane (n, c) (flattened).
template <class T>
Tensor<T> scatter_add_in_planes(const Tensor<T>& src, const Tensor<std::int64_t>& positions,
                                const Shape& shape) {
  const std::int64_t plane = shape[2] * shape[3];
  return record_op<T>(
      "scatter_add_in_planes", {src}, scatter_add_in_planes_kernel(src, plane, positions, shape),
      [positions](const OpContext<T>&, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{gather_in_planes(g, positions)};
      },
      [plane, positions](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return scatter_add_in_planes_kernel(t[0], plane, positions,
                                            stacked_shape(t[0].shape()[0], c.output.shape()));
      });
}

}  // namespace detail

template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, Size2d kernel, std::optional<Size2d> stride,
                     Size2d padding) {
  const auto g =
      detail::pool2d_geometry("max_pool2d", x.shape(), kernel, stride.value_or(kernel), padding);
  const Shape out_shape{x.shape()[0], x.shape()[1], g.out_height, g.out_width};
  auto out = Tensor<T>::empty(out_shape);
  // The rules need the positions of the maxima; inference keeps only one plane's worth.
  const bool differentiated = will_record<T>({x});
  Tensor<std::int64_t> argmax =
      differentiated ? Tensor<std::int64_t>::empty(out_shape) : Tensor<std::int64_t>{};
  const auto in = detail::contiguous_or_copy(x);
  const T* source = in.raw_data();
  T* target = out.raw_data();
  const std::int64_t out_plane = g.out_plane();
  detail::parallel_for(
      out.numel() / out_plane, detail::plane_grain(out_plane * g.kernel.h * g.kernel.w),
      [&](std::int64_t lo, std::int64_t hi) {
        std::vector<std::int64_t> scratch(differentiated ? 0 : out_plane);
        for (std::int64_t p = lo; p < hi; ++p) {
          detail::max_pool2d_plane(
              source + p * g.plane(), target + p * out_plane,
              differentiated ? argmax.raw_data() + p * out_plane : scratch.data(), g);
        }
      });
  if (!differentiated) return out;
  return record_op<T>(
      "max_pool2d", {x}, out,
      [argmax](const OpContext<T>& c, const Tensor<T>& grad) {
        return std::vector<Tensor<T>>{
            detail::scatter_add_in_planes(grad, argmax, c.inputs[0].shape())};
      },
      [argmax, plane = g.plane()](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return detail::gather_in_planes_kernel(
            t[0], plane, argmax, detail::stacked_shape(t[0].shape()[0], c.output.shape()));
      });
}

template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, Size2d kernel, std::optional<Size2d> stride,
                     Size2d padding) {
  const auto g =
      detail::pool2d_geometry("avg_pool2d", x.shape(), kernel, stride.value_or(kernel), padding);
  return record_op<T>(
      "avg_pool2d", {x},
      detail::avg_pool2d_kernel(x, g, {x.shape()[0], x.shape()[1], g.out_height, g.out_width}),
      [g](const OpContext<T>& c, const Tensor<T>& grad) {
        return std::vector<Tensor<T>>{
            avg_pool2d_input_grad(grad, c.inputs[0].shape(), g.kernel, g.stride, g.padding)};
      },
      [g](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return detail::avg_pool2d_kernel(t[0], g,
                                         detail::stacked_shape(t[0].shape()[0], c.output.shape()));
      });
}

template <class T>
Tensor<T> avg_pool2d_input_grad(const Tensor<T>& g, const Shape& input_shape, Size2d kernel,
                                Size2d stride, Size2d padding) {
  const auto geometry =
      detail::pool2d_geometry("avg_pool2d_input_grad", input_shape, kernel, stride, padding);
  const Shape expected{input_shape[0], input_shape[1], geometry.out_height, geometry.out_width};
  if (g.shape() != expected) {
    throw ShapeError("avg_pool2d_input_grad: gradient of shape " + to_string(g.shape()) +
                     " does not match avg_pool2d's output " + to_string(expected) +
                     " for an input of shape " + to_string(input_shape) + " with kernel " +
                     detail::size2d_string(kernel) + ", stride " + detail::size2d_string(stride) +
                     " and padding " + detail::size2d_string(padding));
  }
  return record_op<T>(
      "avg_pool2d_input_grad", {g}, detail::avg_pool2d_input_grad_kernel(g, geometry, input_shape),
      [geometry](const OpContext<T>&, const Tensor<T>& grad) {
        return std::vector<Tensor<T>>{
            avg_pool2d(grad, geometry.kernel, geometry.stride, geometry.padding)};
      },
      [geometry](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return detail::avg_pool2d_input_grad_kernel(
            t[0], geometry, detail::stacked_shape(t[0].shape()[0], c.output.shape()));
      });
}

}  // namespace soda
