// Matrix product of tensors of rank >= 2 with broadcast batch dimensions (as torch.matmul):
// [..., m, k] @ [..., k, n] -> [..., m, n]. Rules: ga = g bᵀ, gb = aᵀ g (summed over broadcast
// batches); t = ta b + a tb. Transposes are views; the GEMM reads them without copying.
#pragma once

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/autodiff/tangent.hpp"
#include "soda/core/kernels/gemm.hpp"

namespace soda {

namespace detail {

template <class T>
MatrixView<T> matrix_at(const Tensor<T>& x, std::int64_t offset) {
  const auto r = x.ndim();
  return {x.raw_data() + offset, x.shape()[static_cast<std::size_t>(r - 2)],
          x.shape()[static_cast<std::size_t>(r - 1)], x.strides()[static_cast<std::size_t>(r - 2)],
          x.strides()[static_cast<std::size_t>(r - 1)]};
}

// True when x's batch dimensions and rows form one evenly strided run of rows (so a batch of
// products with a shared right operand is one tall GEMM).
template <class T>
bool rows_fold(const Tensor<T>& x) {
  const auto& s = x.shape();
  const auto& st = x.strides();
  if (st.back() != 1) return false;
  std::int64_t expected = st[st.size() - 2];
  for (std::size_t d = s.size() - 1; d-- > 0;) {
    if (s[d] != 1 && st[d] != expected) return false;
    expected *= s[d];
  }
  return true;
}

// The shape of a0 @ b0, checking that the operands agree.
template <class T>
Shape matmul_shape(const Tensor<T>& a0, const Tensor<T>& b0) {
  if (a0.ndim() < 2 || b0.ndim() < 2) {
    throw ShapeError("matmul: expects tensors of rank >= 2, got shapes " + to_string(a0.shape()) +
                     " and " + to_string(b0.shape()));
  }
  const auto m = a0.size(-2), k = a0.size(-1), n = b0.size(-1);
  if (b0.size(-2) != k) {
    throw ShapeError("matmul: shapes " + to_string(a0.shape()) + " and " + to_string(b0.shape()) +
                     " do not agree (" + std::to_string(k) + " != " + std::to_string(b0.size(-2)) +
                     ")");
  }
  const Shape a_batch(a0.shape().begin(), a0.shape().end() - 2);
  const Shape b_batch(b0.shape().begin(), b0.shape().end() - 2);
  Shape batch;
  try {
    batch = broadcast_shapes(a_batch, b_batch, "matmul");
  } catch (const ShapeError&) {
    throw ShapeError("matmul: the batch dimensions of " + to_string(a0.shape()) + " and " +
                     to_string(b0.shape()) + " cannot be broadcast (" + to_string(a_batch) +
                     " vs " + to_string(b_batch) + ")");
  }
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  return out_shape;
}

// out = a0 @ b0, or out += a0 @ b0 when accumulating; out is contiguous of matmul_shape(a0, b0).
template <class T>
void matmul_into(const Tensor<T>& a0, const Tensor<T>& b0, Tensor<T>& out, bool accumulate) {
  if (out.numel() == 0) return;
  const auto m = a0.size(-2), k = a0.size(-1), n = b0.size(-1);
  const Shape a_batch(a0.shape().begin(), a0.shape().end() - 2);
  const Shape b_batch(b0.shape().begin(), b0.shape().end() - 2);
  const Shape batch(out.shape().begin(), out.shape().end() - 2);
  // Operands the GEMM cannot read in place (odd strides, broadcast rows) are copied once.
  auto usable = [](const Tensor<T>& x) {
    const auto v = matrix_at(x, 0);
    return v.row_major() || v.column_major() ? x : copy_contiguous(x);
  };
  const auto a = usable(a0);
  const auto b = usable(b0);
  const std::int64_t batches = soda::numel(batch);
  if (b_batch.empty() && a_batch == batch && rows_fold(a)) {
    const auto v = matrix_at(a, 0);
    gemm(MatrixView<T>{v.data, batches * m, k, v.row_stride, 1}, matrix_at(b, 0), out.raw_data(),
         accumulate);
    return;
  }
  Shape a_full = batch, b_full = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  const auto a_strides = broadcast_strides(a, a_full);
  const auto b_strides = broadcast_strides(b, b_full);
  const auto batch_strides = contiguous_strides(batch);
  auto offset_of = [&](std::int64_t index, const Strides& strides) {
    std::int64_t offset = 0;
    for (std::size_t d = 0; d < batch.size(); ++d) {
      offset += (index / batch_strides[d]) % batch[d] * strides[d];
    }
    return offset;
  };
  auto run = [&](std::int64_t i) {
    gemm(MatrixView<T>{a.raw_data() + offset_of(i, a_strides), m, k, a_strides[batch.size()],
                       a_strides[batch.size() + 1]},
         MatrixView<T>{b.raw_data() + offset_of(i, b_strides), k, n, b_strides[batch.size()],
                       b_strides[batch.size() + 1]},
         out.raw_data() + i * m * n, accumulate);
  };
  // Small products run side by side; large ones use the GEMM's own threads.
  if (m * n * k < (1 << 18)) {
    parallel_for(batches, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) run(i);
    });
  } else {
    for (std::int64_t i = 0; i < batches; ++i) run(i);
  }
}

template <class T>
Tensor<T> matmul_kernel(const Tensor<T>& a, const Tensor<T>& b) {
  auto out = Tensor<T>::empty(matmul_shape(a, b));
  matmul_into(a, b, out, false);
  return out;
}

}  // namespace detail

template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  return record_op<T>(
      "matmul", {a, b}, detail::matmul_kernel(a, b),
      [](const OpContext<T>& c, const Tensor<T>& g) {
        const auto& [x, y] = std::tie(c.inputs[0], c.inputs[1]);
        return std::vector<Tensor<T>>{
            c.needs_grad[0] ? sum_to(matmul(g, transpose(y, -1, -2)), x.shape()) : Tensor<T>{},
            c.needs_grad[1] ? sum_to(matmul(transpose(x, -1, -2), g), y.shape()) : Tensor<T>{}};
      },
      [](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto rank = c.output.shape().size();
        if (t[0].defined() && t[1].defined()) {
          const auto ta = detail::lift_tangent(t[0], rank), tb = detail::lift_tangent(t[1], rank);
          auto result = detail::matmul_kernel(ta, c.inputs[1]);
          if (detail::matmul_shape(c.inputs[0], tb) == result.shape()) {
            detail::matmul_into(c.inputs[0], tb, result, true);  // ta·b + a·tb in one buffer
          } else {
            result = add(result, matmul(c.inputs[0], tb));
          }
          return detail::tangent_to(result, c.output.shape());
        }
        const auto result = t[0].defined() ? matmul(detail::lift_tangent(t[0], rank), c.inputs[1])
                                           : matmul(c.inputs[0], detail::lift_tangent(t[1], rank));
        return detail::tangent_to(result, c.output.shape());
      });
}

}  // namespace soda
