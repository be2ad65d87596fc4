// Declarations of every differentiable op, so that the rules of one op may use any other
// regardless of header order. Definitions live in the header named after each group.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <vector>

#include "soda/autodiff/node.hpp"
#include "soda/core/tensor.hpp"

namespace soda {

// A height/width pair for windows (kernel, stride, padding); a single number means both.
struct Size2d {
  std::int64_t h = 0, w = 0;
  Size2d(std::int64_t both) : h(both), w(both) {}  // NOLINT: implicit, as PyTorch's int-or-tuple
  Size2d(std::int64_t height, std::int64_t width) : h(height), w(width) {}
  bool operator==(const Size2d&) const = default;
};

// views.hpp
template <class T>
Tensor<T> reshape(const Tensor<T>& x, Shape shape);
template <class T>
Tensor<T> permute(const Tensor<T>& x, std::vector<std::int64_t> axes);
template <class T>
Tensor<T> transpose(const Tensor<T>& x, std::int64_t a, std::int64_t b);
template <class T>
Tensor<T> broadcast_to(const Tensor<T>& x, const Shape& shape);
template <class T>
Tensor<T> slice(const Tensor<T>& x, std::int64_t axis, std::int64_t start, std::int64_t stop,
                std::int64_t step = 1);
template <class T>
Tensor<T> slice_scatter(const Tensor<T>& src, const Shape& shape, std::int64_t axis,
                        std::int64_t start, std::int64_t stop, std::int64_t step = 1);
template <class T>
Tensor<T> select(const Tensor<T>& x, std::int64_t axis, std::int64_t index);
template <class T>
Tensor<T> unsqueeze(const Tensor<T>& x, std::int64_t axis);
template <class T>
Tensor<T> squeeze(const Tensor<T>& x, std::int64_t axis);
template <class T>
Tensor<T> flatten(const Tensor<T>& x, std::int64_t start_axis = 0);
template <class T>
Tensor<T> contiguous(const Tensor<T>& x);
template <class T>
Tensor<T> clone(const Tensor<T>& x);

// join.hpp
template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& xs, std::int64_t axis = 0);
template <class T>
Tensor<T> stack(const std::vector<Tensor<T>>& xs, std::int64_t axis = 0);
// Braced lists, concat({a, b}, 1): T cannot be deduced from a braced list for the vector overloads.
template <class T>
Tensor<T> concat(std::initializer_list<Tensor<T>> xs, std::int64_t axis = 0);
template <class T>
Tensor<T> stack(std::initializer_list<Tensor<T>> xs, std::int64_t axis = 0);

// indexing.hpp
template <class T>
Tensor<T> index_select(const Tensor<T>& x, std::int64_t axis,
                       const std::vector<std::int64_t>& indices);
template <class T>
Tensor<T> index_add(const Tensor<T>& src, const Shape& shape, std::int64_t axis,
                    const std::vector<std::int64_t>& indices);
template <class T>
Tensor<T> gather(const Tensor<T>& x, std::int64_t axis, const Tensor<std::int64_t>& index);
template <class T>
Tensor<T> scatter_add(const Tensor<T>& src, const Shape& shape, std::int64_t axis,
                      const Tensor<std::int64_t>& index);

// arithmetic.hpp
template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> neg(const Tensor<T>& x);
template <class T>
Tensor<T> maximum(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> minimum(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> where(const Tensor<T>& condition, const Tensor<T>& a, const Tensor<T>& b);

// compare.hpp (not differentiable: 0/1 masks of the operands' type)
template <class T>
Tensor<T> greater(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> greater_equal(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> less(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> less_equal(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> equal(const Tensor<T>& a, const Tensor<T>& b);
template <class T>
Tensor<T> sign(const Tensor<T>& x);

// unary.hpp
template <class T>
Tensor<T> exp(const Tensor<T>& x);
template <class T>
Tensor<T> log(const Tensor<T>& x);
template <class T>
Tensor<T> sqrt(const Tensor<T>& x);
template <class T>
Tensor<T> tanh(const Tensor<T>& x);
template <class T>
Tensor<T> sigmoid(const Tensor<T>& x);
template <class T>
Tensor<T> relu(const Tensor<T>& x);
template <class T>
Tensor<T> abs(const Tensor<T>& x);
template <class T>
Tensor<T> square(const Tensor<T>& x);
template <class T>
Tensor<T> pow(const Tensor<T>& x, T exponent);
template <class T>
Tensor<T> clamp(const Tensor<T>& x, T low, T high);

// reduce.hpp
template <class T>
Tensor<T> sum(const Tensor<T>& x, std::vector<std::int64_t> axes = {}, bool keepdim = false);
template <class T>
Tensor<T> mean(const Tensor<T>& x, std::vector<std::int64_t> axes = {}, bool keepdim = false);
template <class T>
Tensor<T> max(const Tensor<T>& x, std::vector<std::int64_t> axes = {}, bool keepdim = false);
template <class T>
Tensor<T> sum_to(const Tensor<T>& x, const Shape& shape);

// softmax.hpp
template <class T>
Tensor<T> softmax(const Tensor<T>& x, std::int64_t axis = -1);
template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, std::int64_t axis = -1);
template <class T>
Tensor<T> logsumexp(const Tensor<T>& x, std::int64_t axis = -1, bool keepdim = false);

// matmul.hpp
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b);

// convolution.hpp: x [N, C, H, W], weight [O, C, kh, kw] -> [N, O, Ho, Wo] (cross-correlation,
// as torch.nn.functional.conv2d without bias), and its two adjoints, each differentiable.
template <class T>
Tensor<T> conv2d(const Tensor<T>& x, const Tensor<T>& weight, Size2d stride = 1,
                 Size2d padding = 0);
// The gradient of conv2d with respect to x, given the output gradient g [N, O, Ho, Wo].
template <class T>
Tensor<T> conv2d_input_grad(const Tensor<T>& g, const Tensor<T>& weight, const Shape& input_shape,
                            Size2d stride, Size2d padding);
// The gradient of conv2d with respect to weight, given x and the output gradient g.
template <class T>
Tensor<T> conv2d_weight_grad(const Tensor<T>& x, const Tensor<T>& g, const Shape& weight_shape,
                             Size2d stride, Size2d padding);

// normalization.hpp: x [N, C, ...] normalised per channel by its batch mean and biased variance
// over every axis but 1 (BatchNorm's x̂), and the per-channel 1/√(σ² + eps) as [1, C, 1, ...].
template <class T>
Tensor<T> normalize_channels(const Tensor<T>& x, double eps);
template <class T>
Tensor<T> channel_inverse_std(const Tensor<T>& x, double eps);

// pooling.hpp: windows over the last two axes of [N, C, H, W]; stride defaults to the kernel.
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, Size2d kernel, std::optional<Size2d> stride = {},
                     Size2d padding = 0);
// Padding counts as zeros in the mean (PyTorch's count_include_pad=True).
template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, Size2d kernel, std::optional<Size2d> stride = {},
                     Size2d padding = 0);
// The adjoint of avg_pool2d: spreads g [N, C, Ho, Wo] back over input_shape.
template <class T>
Tensor<T> avg_pool2d_input_grad(const Tensor<T>& g, const Shape& input_shape, Size2d kernel,
                                Size2d stride, Size2d padding);

}  // namespace soda
