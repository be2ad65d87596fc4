// Matrix products through Eigen's GEMM (which calls OpenBLAS when built with EIGEN_USE_BLAS).
// Operands may be row- or column-major views, so transposes in backward passes cost no copy;
// batched products fold the batch into rows when the right operand is shared.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <type_traits>

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

// c (row-major, contiguous) = a * b, or += when accumulating, computed on the calling thread by
// Eigen's own blocked kernel even when Eigen hands its products to BLAS. For the many small
// products of a convolution (one per image, images spread over threads) this kernel, compiled for
// the host's full vector width, beats a BLAS held to narrower kernels (OPENBLAS_CORETYPE). It is
// reached through Eigen's internal product with a run-time result stride, the one form its BLAS
// binding does not take over. Operands as in gemm().
template <class T>
void gemm_on_this_thread(const MatrixView<T>& a, const MatrixView<T>& b, T* c,
                         bool accumulate = false) {
  using Eigen::Index;
  namespace internal = Eigen::internal;
  const Index m = a.rows, n = b.cols, k = a.cols;
  if (!accumulate) std::fill(c, c + m * n, T(0));
  if (k == 0 || m == 0 || n == 0) return;
  // Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: a row-major operand reads as a column-major
  // transpose with the same stride, and a column-major one as a row-major transpose.
  auto run = [&]<int LhsOrder, int RhsOrder>(std::integral_constant<int, LhsOrder>,
                                             std::integral_constant<int, RhsOrder>) {
    internal::gemm_blocking_space<Eigen::ColMajor, T, T, Eigen::Dynamic, Eigen::Dynamic,
                                  Eigen::Dynamic>
        blocking(n, m, k, 1, true);
    internal::general_matrix_matrix_product<
        Index, T, LhsOrder, false, T, RhsOrder, false, Eigen::ColMajor,
        Eigen::Dynamic>::run(n, m, k, b.data, b.row_major() ? b.row_stride : b.col_stride, a.data,
                             a.row_major() ? a.row_stride : a.col_stride, c, 1, n, T(1), blocking,
                             nullptr);
  };
  using ColMajor = std::integral_constant<int, Eigen::ColMajor>;
  using RowMajor = std::integral_constant<int, Eigen::RowMajor>;
  if (b.row_major()) {
    a.row_major() ? run(ColMajor{}, ColMajor{}) : run(ColMajor{}, RowMajor{});
  } else {
    a.row_major() ? run(RowMajor{}, ColMajor{}) : run(RowMajor{}, RowMajor{});
  }
}

}  // namespace soda::detail
