// Matrix products through Eigen's GEMM (which calls OpenBLAS when built with EIGEN_USE_BLAS).
// Operands may be row- or column-major views, so transposes in backward passes cost no copy;
// batched products fold the batch into rows when the right operand is shared.
#pragma once

#include <Eigen/Core>

#include <algorithm>

#include "soda/core/kernels/elementwise.hpp"

namespace soda::detail {

// A 2-D operand: pointer plus row and column strides (in elements).
template <class T>
struct MatrixView {
  const T* data;
  std::int64_t rows, cols, row_stride, col_stride;

  bool row_major() const {
    return col_stride == 1 && row_stride >= std::max<std::int64_t>(cols, 1);
  }
  bool column_major() const {
    return row_stride == 1 && col_stride >= std::max<std::int64_t>(rows, 1);
  }
};

template <class T, int Order>
using ConstMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Order>, 0,
                            Eigen::OuterStride<>>;

template <class T, class F>
void with_eigen_map(const MatrixView<T>& m, F&& f) {
  if (m.row_major()) {
    f(ConstMap<T, Eigen::RowMajor>(m.data, m.rows, m.cols, Eigen::OuterStride<>(m.row_stride)));
  } else {
    f(ConstMap<T, Eigen::ColMajor>(m.data, m.rows, m.cols, Eigen::OuterStride<>(m.col_stride)));
  }
}

// c (row-major, contiguous, rows x cols) = a * b, or c += a * b when accumulating (GEMM's beta = 1,
// which saves a temporary and an add pass in sums of products). Both operands must be row- or
// column-major.
template <class T>
void gemm(const MatrixView<T>& a, const MatrixView<T>& b, T* c, bool accumulate = false) {
  using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<RowMatrix> out(c, a.rows, b.cols);
  if (a.cols == 0) {
    if (!accumulate) out.setZero();
    return;
  }
  with_eigen_map(a, [&](const auto& ma) {
    with_eigen_map(b, [&](const auto& mb) {
      if (accumulate) {
        out.noalias() += ma * mb;
      } else {
        out.noalias() = ma * mb;
      }
    });
  });
}

}  // namespace soda::detail
