// Declarations of every differentiable op, so that the rules of one op may use any other
// regardless of header order. Definitions live in the header named after each group.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "soda/autodiff/node.hpp"
#include "soda/core/tensor.hpp"

namespace soda {

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

}  // namespace soda
