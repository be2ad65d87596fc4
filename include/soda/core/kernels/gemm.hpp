// Matrix products on strided operands (row- or column-major views, so transposes in backward
// passes cost no copy). soda owns the parallel split: the output is cut into a tile grid that
// depends only on the shapes, and each tile is one serial BLAS call, so results are bit-identical
// whatever the thread count.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "soda/core/kernels/blas.hpp"
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
  // The same matrix with the stride of each extent-1 dimension (never stepped over, so free:
  // broadcasting leaves 0 there) set to the value that makes the view row- or column-major.
  MatrixView normalized() const {
    MatrixView v = *this;
    if (v.rows == 1 && v.cols == 1) {
      v.row_stride = v.col_stride = 1;
    } else if (v.rows == 1) {
      if (v.col_stride == 1)
        v.row_stride = v.cols;
      else
        v.row_stride = 1;
    } else if (v.cols == 1) {
      if (v.row_stride == 1)
        v.col_stride = v.rows;
      else
        v.col_stride = 1;
    }
    return v;
  }
};

// A row- or column-major view as BLAS takes it.
template <class T>
BlasOperand<T> blas_operand(const MatrixView<T>& v) {
  if (v.row_major()) return {v.data, v.rows, v.cols, v.row_stride, false};
  return {v.data, v.rows, v.cols, v.col_stride, true};
}

// Rows [row_begin, row_end) and columns [col_begin, col_end) of an operand.
template <class T>
BlasOperand<T> block_of(const BlasOperand<T>& x, std::int64_t row_begin, std::int64_t row_end,
                        std::int64_t col_begin, std::int64_t col_end) {
  const std::int64_t offset =
      x.transposed ? col_begin * x.leading + row_begin : row_begin * x.leading + col_begin;
  return {x.data + offset, row_end - row_begin, col_end - col_begin, x.leading, x.transposed};
}

// The boundaries of `parts` near-equal pieces of [0, extent), on multiples of 8 (kernel widths).
inline std::vector<std::int64_t> split_points(std::int64_t extent, std::int64_t parts) {
  std::vector<std::int64_t> points{0};
  for (std::int64_t p = 1; p < parts; ++p) points.push_back(extent * p / parts / 8 * 8);
  points.push_back(extent);
  return points;
}

// The output tile grid of an m x n x k product: a function of the shape only, never of the
// thread count. About one tile per 2^19 multiply-adds, rounded down to 1, 2 or 4 tiles, none
// thinner than 32. Measured on 2 threads (AVX-512): 4 large tiles keep OpenBLAS's packing
// amortised (0.94 of its own threaded SGEMM at n = 512…2048; 64 tiles: 0.75), and splitting the
// small per-image products of a convolution keeps their columns in cache (ResNet-20's training
// step 10% faster than one tile per product). K is never split: each output element is summed
// in one serial BLAS call.
struct TileGrid {
  std::vector<std::int64_t> row_points, col_points;
  std::int64_t count() const {
    return static_cast<std::int64_t>((row_points.size() - 1) * (col_points.size() - 1));
  }
};

inline TileGrid tile_grid(std::int64_t m, std::int64_t n, std::int64_t k) {
  constexpr double tile_work = 1 << 19;
  constexpr std::int64_t max_tiles = 4, min_side = 32;
  const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  std::int64_t wanted = 1;
  while (wanted < max_tiles && static_cast<double>(2 * wanted) * tile_work <= work) wanted *= 2;
  std::int64_t row_parts = 1, col_parts = 1;
  while (row_parts * col_parts < wanted) {
    const bool rows_can = m / (2 * row_parts) >= min_side;
    const bool cols_can = n / (2 * col_parts) >= min_side;
    if (rows_can && (!cols_can || m * col_parts >= n * row_parts)) {
      row_parts *= 2;
    } else if (cols_can) {
      col_parts *= 2;
    } else {
      break;
    }
  }
  return {split_points(m, row_parts), split_points(n, col_parts)};
}

// Runs tile(i) for i in [0, count) on soda's threads, with the OpenMP thread count of every
// worker set to 1 so that BLAS (OpenBLAS's OpenMP build, or Eigen) inside runs serially. Inside
// another parallel region the tiles run in order on the calling thread. The first exception a
// tile throws is rethrown here.
template <class Tile>
void run_serial_tiles(std::int64_t count, Tile&& tile) {
  configure_blas_threads();
  std::exception_ptr failure;
  const int threads = omp_in_parallel()
                          ? 0
                          : static_cast<int>(std::min<std::int64_t>(omp_get_max_threads(), count));
  if (threads == 0) {
    for (std::int64_t i = 0; i < count; ++i) tile(i);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    omp_set_num_threads(1);  // this region's tasks only: the caller's setting is untouched
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < count; ++i) {
      try {
        tile(i);
      } catch (...) {
#pragma omp critical(soda_gemm_failure)
        if (!failure) failure = std::current_exception();
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
}

// One serial BLAS call, with BLAS's argument report (if any) thrown as an error.
template <class T>
void checked_serial_gemm(const BlasOperand<T>& a, const BlasOperand<T>& b, T* c, std::int64_t ldc,
                         bool accumulate) {
  check_blas_arguments(a, b, ldc);
  auto& report = blas_argument_report();
  report.clear();
  serial_gemm(a, b, c, ldc, accumulate);
  if (!report.empty()) {
    throw Error("gemm: BLAS refused a [" + std::to_string(a.rows) + " x " + std::to_string(a.cols) +
                "] · [" + std::to_string(b.rows) + " x " + std::to_string(b.cols) + "] product (" +
                report + ") and computed nothing");
  }
}

// A contiguous row-major copy of an operand BLAS cannot read in place (irregular strides).
template <class T>
MatrixView<T> row_major_copy(const MatrixView<T>& v, std::vector<T>& buffer) {
  buffer.resize(static_cast<std::size_t>(v.rows * v.cols));
  for (std::int64_t i = 0; i < v.rows; ++i) {
    for (std::int64_t j = 0; j < v.cols; ++j) {
      buffer[static_cast<std::size_t>(i * v.cols + j)] =
          v.data[i * v.row_stride + j * v.col_stride];
    }
  }
  return {buffer.data(), v.rows, v.cols, std::max<std::int64_t>(v.cols, 1), 1};
}

// c (row-major, contiguous, rows x cols) = a * b, or c += a * b when accumulating (GEMM's beta = 1,
// which saves a temporary and an add pass in sums of products). Operands of any strides: extent-1
// strides are normalised, irregular ones copied once.
template <class T>
void gemm(const MatrixView<T>& a0, const MatrixView<T>& b0, T* c, bool accumulate = false) {
  const auto m = a0.rows, n = b0.cols, k = a0.cols;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) std::fill(c, c + m * n, T(0));
    return;
  }
  std::vector<T> a_copy, b_copy;
  auto readable = [](const MatrixView<T>& v, std::vector<T>& buffer) {
    const auto normal = v.normalized();
    return normal.row_major() || normal.column_major() ? normal : row_major_copy(normal, buffer);
  };
  const auto a = blas_operand(readable(a0, a_copy));
  const auto b = blas_operand(readable(b0, b_copy));
  const auto grid = tile_grid(m, n, k);
  const auto col_tiles = static_cast<std::int64_t>(grid.col_points.size() - 1);
  run_serial_tiles(grid.count(), [&](std::int64_t tile) {
    const auto r = static_cast<std::size_t>(tile / col_tiles);
    const auto s = static_cast<std::size_t>(tile % col_tiles);
    const auto r0 = grid.row_points[r], r1 = grid.row_points[r + 1];
    const auto c0 = grid.col_points[s], c1 = grid.col_points[s + 1];
    checked_serial_gemm(block_of(a, r0, r1, 0, k), block_of(b, 0, k, c0, c1), c + r0 * n + c0, n,
                        accumulate);
  });
}

}  // namespace soda::detail
