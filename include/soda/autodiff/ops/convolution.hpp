// conv2d (cross-correlation, as torch.nn.functional.conv2d without bias) and its two adjoints,
// conv2d_input_grad and conv2d_weight_grad, as three differentiable ops. The three are bilinear and
// each one's reverse rule is written with the other two, so gradients of gradients (H·v) stay
// inside this family. Kernels: im2col + one GEMM per image, images spread over threads.
#pragma once

#include <string>

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/autodiff/tangent.hpp"
#include "soda/core/kernels/gemm.hpp"
#include "soda/core/kernels/im2col.hpp"
#include "soda/core/parallel.hpp"

namespace soda {

namespace detail {

inline std::string size2d_text(Size2d s) {
  return "(" + std::to_string(s.h) + ", " + std::to_string(s.w) + ")";
}

// Validates a convolution of an input of shape `input` with a weight of shape `weight` and
// returns its geometry; `op` names the caller in messages.
inline ConvGeometry conv_geometry(const char* op, const Shape& input, const Shape& weight,
                                  Size2d stride, Size2d padding) {
  if (input.size() != 4 || weight.size() != 4) {
    throw ShapeError(std::string(op) +
                     ": expects input [N, C, H, W] and weight [O, C, kh, kw], got " +
                     to_string(input) + " and " + to_string(weight));
  }
  if (input[1] != weight[1]) {
    throw ShapeError(std::string(op) + ": input " + to_string(input) + " has " +
                     std::to_string(input[1]) + " channels but weight " + to_string(weight) +
                     " expects " + std::to_string(weight[1]));
  }
  if (stride.h < 1 || stride.w < 1 || padding.h < 0 || padding.w < 0) {
    throw ValueError(std::string(op) + ": stride " + size2d_text(stride) +
                     " must be >= 1 and padding " + size2d_text(padding) + " >= 0");
  }
  if (weight[2] < 1 || weight[3] < 1) {
    throw ShapeError(std::string(op) + ": weight " + to_string(weight) + " has an empty kernel");
  }
  ConvGeometry g{input[1], input[2],  input[3],  weight[2], weight[3], stride.h,
                 stride.w, padding.h, padding.w, 0,         0};
  const std::int64_t span_h = g.height + 2 * g.pad_h - g.kernel_h;
  const std::int64_t span_w = g.width + 2 * g.pad_w - g.kernel_w;
  if (span_h < 0 || span_w < 0) {
    throw ShapeError(std::string(op) + ": kernel " + size2d_text({weight[2], weight[3]}) +
                     " is larger than the padded input " +
                     size2d_text({g.height + 2 * g.pad_h, g.width + 2 * g.pad_w}) + " of input " +
                     to_string(input));
  }
  g.out_h = span_h / g.stride_h + 1;
  g.out_w = span_w / g.stride_w + 1;
  return g;
}

inline Shape conv_output_shape(const Shape& input, const Shape& weight, const ConvGeometry& g) {
  return {input[0], weight[0], g.out_h, g.out_w};
}

template <class T>
Tensor<T> contiguous_or_self(const Tensor<T>& x) {
  return x.is_contiguous() ? x : copy_contiguous(x);
}

// The column matrix of image n: x itself for pointwise windows, else im2col into `buffer`.
template <class T>
const T* image_columns(const T* image, const ConvGeometry& g, Tensor<T>& buffer) {
  if (g.is_pointwise()) return image;
  if (!buffer.defined()) buffer = Tensor<T>::empty({g.col_rows(), g.col_cols()});
  im2col(image, g, buffer.raw_data());
  return buffer.raw_data();
}

// y[n] = W [O, C·kh·kw] · col(x[n]).
template <class T>
Tensor<T> conv2d_kernel(const Tensor<T>& x0, const Tensor<T>& w0, Size2d stride, Size2d padding) {
  const auto g = conv_geometry("conv2d", x0.shape(), w0.shape(), stride, padding);
  const auto x = contiguous_or_self(x0), w = contiguous_or_self(w0);
  const std::int64_t images = x.size(0), out_channels = w.size(0);
  auto out = Tensor<T>::empty(conv_output_shape(x.shape(), w.shape(), g));
  const std::int64_t image_size = g.channels * g.height * g.width;
  const std::int64_t out_size = out_channels * g.col_cols();
  const MatrixView<T> weights{w.raw_data(), out_channels, g.col_rows(), g.col_rows(), 1};
  parallel_for(images, 1, [&](std::int64_t lo, std::int64_t hi) {
    Tensor<T> buffer;
    for (std::int64_t n = lo; n < hi; ++n) {
      const T* columns = image_columns(x.raw_data() + n * image_size, g, buffer);
      gemm(weights, MatrixView<T>{columns, g.col_rows(), g.col_cols(), g.col_cols(), 1},
           out.raw_data() + n * out_size);
    }
  });
  return out;
}

// gx[n] = col2im(Wᵀ · g[n]).
template <class T>
Tensor<T> conv2d_input_grad_kernel(const Tensor<T>& grad0, const Tensor<T>& w0,
                                   const Shape& input_shape, Size2d stride, Size2d padding) {
  const auto g = conv_geometry("conv2d_input_grad", input_shape, w0.shape(), stride, padding);
  const Shape expected = conv_output_shape(input_shape, w0.shape(), g);
  if (grad0.shape() != expected) {
    throw ShapeError("conv2d_input_grad: gradient " + to_string(grad0.shape()) +
                     " does not match the output shape " + to_string(expected) + " of input " +
                     to_string(input_shape) + " and weight " + to_string(w0.shape()));
  }
  const auto grad = contiguous_or_self(grad0), w = contiguous_or_self(w0);
  const std::int64_t images = input_shape[0], out_channels = w.size(0);
  auto out = g.is_pointwise() ? Tensor<T>::empty(input_shape) : zeros<T>(input_shape);
  const std::int64_t image_size = g.channels * g.height * g.width;
  const std::int64_t grad_size = out_channels * g.col_cols();
  // Wᵀ as a column-major view of W: no copy.
  const MatrixView<T> weights_t{w.raw_data(), g.col_rows(), out_channels, 1, g.col_rows()};
  parallel_for(images, 1, [&](std::int64_t lo, std::int64_t hi) {
    Tensor<T> buffer;
    for (std::int64_t n = lo; n < hi; ++n) {
      const MatrixView<T> grad_n{grad.raw_data() + n * grad_size, out_channels, g.col_cols(),
                                 g.col_cols(), 1};
      T* image = out.raw_data() + n * image_size;
      if (g.is_pointwise()) {
        gemm(weights_t, grad_n, image);
        continue;
      }
      if (!buffer.defined()) buffer = Tensor<T>::empty({g.col_rows(), g.col_cols()});
      gemm(weights_t, grad_n, buffer.raw_data());
      col2im(buffer.raw_data(), g, image);
    }
  });
  return out;
}

// gw = Σ_n g[n] · col(x[n])ᵀ. Images are summed in fixed groups and the group sums added in order,
// so the result does not depend on the thread count.
template <class T>
Tensor<T> conv2d_weight_grad_kernel(const Tensor<T>& x0, const Tensor<T>& grad0,
                                    const Shape& weight_shape, Size2d stride, Size2d padding) {
  const auto g = conv_geometry("conv2d_weight_grad", x0.shape(), weight_shape, stride, padding);
  const Shape expected = conv_output_shape(x0.shape(), weight_shape, g);
  if (grad0.shape() != expected) {
    throw ShapeError("conv2d_weight_grad: gradient " + to_string(grad0.shape()) +
                     " does not match the output shape " + to_string(expected) + " of input " +
                     to_string(x0.shape()) + " and weight " + to_string(weight_shape));
  }
  const auto x = contiguous_or_self(x0), grad = contiguous_or_self(grad0);
  const std::int64_t images = x.size(0), out_channels = weight_shape[0];
  const std::int64_t image_size = g.channels * g.height * g.width;
  const std::int64_t grad_size = out_channels * g.col_cols();
  const std::int64_t weight_size = out_channels * g.col_rows();
  constexpr std::int64_t group_size = 4;
  const std::int64_t groups = std::max<std::int64_t>(1, (images + group_size - 1) / group_size);
  auto partial = Tensor<T>::empty({groups, weight_size});
  parallel_for(groups, 1, [&](std::int64_t lo, std::int64_t hi) {
    Tensor<T> buffer;
    for (std::int64_t group = lo; group < hi; ++group) {
      T* sum = partial.raw_data() + group * weight_size;
      if (images == 0) std::fill(sum, sum + weight_size, T(0));
      const std::int64_t first = group * group_size;
      for (std::int64_t n = first; n < std::min(images, first + group_size); ++n) {
        const T* columns = image_columns(x.raw_data() + n * image_size, g, buffer);
        // col(x[n])ᵀ as a column-major view: no copy.
        gemm(MatrixView<T>{grad.raw_data() + n * grad_size, out_channels, g.col_cols(),
                           g.col_cols(), 1},
             MatrixView<T>{columns, g.col_cols(), g.col_rows(), 1, g.col_cols()}, sum, n > first);
      }
    }
  });
  if (groups == 1) return partial.view_with(weight_shape, contiguous_strides(weight_shape), 0);
  auto out = Tensor<T>::empty(weight_shape);
  T* target = out.raw_data();
  const T* source = partial.raw_data();
  parallel_for(weight_size, 4096, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      T total = source[i];
      for (std::int64_t group = 1; group < groups; ++group)
        total += source[group * weight_size + i];
      target[i] = total;
    }
  });
  return out;
}

// Tangent planes fold their k directions into a convolution's batch or channel axis, so each
// forward rule is one call of a kernel above. [k, N, C, H, W] -> [N, k·C, H, W]:
template <class T>
Tensor<T> fold_into_channels(const Tensor<T>& t) {
  const Shape& s = t.shape();
  return reshape(contiguous(permute(t, {1, 0, 2, 3, 4})), {s[1], s[0] * s[2], s[3], s[4]});
}

// [N, k·C, H, W] (k given) -> [k, N, C, H, W] as a view.
template <class T>
Tensor<T> unfold_from_channels(const Tensor<T>& x, std::int64_t k) {
  const Shape& s = x.shape();
  return permute(reshape(x, {s[0], k, s[1] / k, s[2], s[3]}), {1, 0, 2, 3, 4});
}

// [k, N, ...] -> [k·N, ...] and back: the batch axis absorbs the directions.
template <class T>
Tensor<T> fold_into_batch(const Tensor<T>& t) {
  Shape s(t.shape().begin() + 1, t.shape().end());
  s[0] *= t.size(0);
  return reshape(t, s);
}

template <class T>
Tensor<T> unfold_from_batch(const Tensor<T>& x, std::int64_t k) {
  Shape s{k, x.size(0) / k};
  s.insert(s.end(), x.shape().begin() + 1, x.shape().end());
  return reshape(x, s);
}

// The sum of two optional tangent planes (at least one defined).
template <class T>
Tensor<T> sum_of_tangents(const Tensor<T>& a, const Tensor<T>& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return add(a, b);
}

}  // namespace detail

template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, Size2d stride, Size2d padding) {
  return record_op<T>(
      "conv2d", {x, weight}, detail::conv2d_kernel(x, weight, stride, padding),
      [stride, padding](const OpContext<T>& c, const Tensor<T>& g) {
        const auto& [input, w] = std::tie(c.inputs[0], c.inputs[1]);
        return std::vector<Tensor<T>>{
            c.needs_grad[0] ? conv2d_input_grad(g, w, input.shape(), stride, padding) : Tensor<T>{},
            c.needs_grad[1] ? conv2d_weight_grad(input, g, w.shape(), stride, padding)
                            : Tensor<T>{}};
      },
      [stride, padding](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto& [input, w] = std::tie(c.inputs[0], c.inputs[1]);
        const std::int64_t k = detail::tangent_count(t);
        Tensor<T> from_input, from_weight;
        if (t[0].defined()) {  // conv(tx, w): directions ride in the batch axis
          from_input = detail::unfold_from_batch(
              detail::conv2d_kernel(detail::fold_into_batch(t[0]), w, stride, padding), k);
        }
        if (t[1].defined()) {  // conv(x, tw): directions ride in the output-channel axis
          from_weight = detail::unfold_from_channels(
              detail::conv2d_kernel(input, detail::fold_into_batch(t[1]), stride, padding), k);
        }
        return detail::sum_of_tangents(from_input, from_weight);
      });
}

template <class T>
Tensor<T> conv2d_input_grad(const Tensor<T>& g, const Tensor<T>& weight, const Shape& input_shape,
                            Size2d stride, Size2d padding) {
  return record_op<T>(
      "conv2d_input_grad", {g, weight},
      detail::conv2d_input_grad_kernel(g, weight, input_shape, stride, padding),
      // <input_grad(g, w), y> = <g, conv2d(y, w)>, and conv2d(y, w) is bilinear in (y, w).
      [stride, padding](const OpContext<T>& c, const Tensor<T>& gy) {
        const auto& [grad, w] = std::tie(c.inputs[0], c.inputs[1]);
        return std::vector<Tensor<T>>{
            c.needs_grad[0] ? conv2d(gy, w, stride, padding) : Tensor<T>{},
            c.needs_grad[1] ? conv2d_weight_grad(gy, grad, w.shape(), stride, padding)
                            : Tensor<T>{}};
      },
      [stride, padding, input_shape](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto& [grad, w] = std::tie(c.inputs[0], c.inputs[1]);
        const std::int64_t k = detail::tangent_count(t);
        Tensor<T> from_grad, from_weight;
        if (t[0].defined()) {
          Shape folded_input = input_shape;
          folded_input[0] *= k;
          from_grad = detail::unfold_from_batch(
              detail::conv2d_input_grad_kernel(detail::fold_into_batch(t[0]), w, folded_input,
                                               stride, padding),
              k);
        }
        if (t[1].defined()) {  // tw [k, O, C, kh, kw] -> a weight [O, k·C, kh, kw]
          Shape folded_input = input_shape;
          folded_input[1] *= k;
          from_weight = detail::unfold_from_channels(
              detail::conv2d_input_grad_kernel(grad, detail::fold_into_channels(t[1]), folded_input,
                                               stride, padding),
              k);
        }
        return detail::sum_of_tangents(from_grad, from_weight);
      });
}

template <class T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& x, const Tensor<T>& g, const Shape& weight_shape,
                             Size2d stride, Size2d padding) {
  return record_op<T>(
      "conv2d_weight_grad", {x, g},
      detail::conv2d_weight_grad_kernel(x, g, weight_shape, stride, padding),
      // <weight_grad(x, g), G> = <g, conv2d(x, G)>.
      [stride, padding](const OpContext<T>& c, const Tensor<T>& gw) {
        const auto& [input, grad] = std::tie(c.inputs[0], c.inputs[1]);
        return std::vector<Tensor<T>>{
            c.needs_grad[0] ? conv2d_input_grad(grad, gw, input.shape(), stride, padding)
                            : Tensor<T>{},
            c.needs_grad[1] ? conv2d(input, gw, stride, padding) : Tensor<T>{}};
      },
      [stride, padding, weight_shape](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto& [input, grad] = std::tie(c.inputs[0], c.inputs[1]);
        const std::int64_t k = detail::tangent_count(t);
        Tensor<T> from_input, from_grad;
        if (t[0].defined()) {  // tx as an input of k·C channels -> a weight [O, k·C, kh, kw]
          Shape folded_weight = weight_shape;
          folded_weight[1] *= k;
          const auto w = detail::conv2d_weight_grad_kernel(detail::fold_into_channels(t[0]), grad,
                                                           folded_weight, stride, padding);
          const Shape& s = weight_shape;
          from_input = permute(reshape(w, {s[0], k, s[1], s[2], s[3]}), {1, 0, 2, 3, 4});
        }
        if (t[1].defined()) {  // tg as a gradient of k·O channels -> a weight [k·O, C, kh, kw]
          Shape folded_weight = weight_shape;
          folded_weight[0] *= k;
          from_grad = detail::unfold_from_batch(
              detail::conv2d_weight_grad_kernel(input, detail::fold_into_channels(t[1]),
                                                folded_weight, stride, padding),
              k);
        }
        return detail::sum_of_tangents(from_input, from_grad);
      });
}

}  // namespace soda
