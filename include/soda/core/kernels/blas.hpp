// The one place soda calls BLAS: a serial single- or double-precision GEMM on row-major output,
// with its arguments validated first and BLAS's own argument reports (xerbla) turned into errors.
// Without OpenBLAS (SODA_USE_BLAS=OFF) Eigen's GEMM runs instead, under the same contract.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <type_traits>

#include "soda/core/error.hpp"

#if defined(SODA_HAVE_CBLAS)
#include <cblas.h>
#endif

namespace soda::detail {

// The last argument report of the reference BLAS error handler (xerbla) on this thread, or empty.
// OpenBLAS reports an illegal argument by calling xerbla and returning without computing; the
// handler below records it so the caller can throw instead of going on with garbage.
inline std::string& blas_argument_report() {
  thread_local std::string report;
  return report;
}

}  // namespace soda::detail

#if defined(SODA_HAVE_CBLAS)
// Replaces OpenBLAS's xerbla (which only prints to stderr) by symbol interposition: a definition in
// the program takes precedence over the shared library's. The signature is Eigen's declaration in
// Eigen/src/misc/blas.h. `used` keeps it in every translation unit that includes this header.
extern "C" inline __attribute__((used)) int xerbla_(const char* routine, int* parameter,
                                                    int routine_length) {
  std::string name(routine, static_cast<std::size_t>(std::max(routine_length, 0)));
  while (!name.empty() && name.back() == ' ') name.pop_back();
  soda::detail::blas_argument_report() =
      name + " rejected its parameter number " + std::to_string(*parameter);
  return 0;
}
#endif

namespace soda::detail {

// A strided matrix operand as BLAS takes it: row-major with leading dimension `leading`, or its
// transpose. rows x cols is the matrix the product sees (after the transpose).
template <class T>
struct BlasOperand {
  const T* data;
  std::int64_t rows, cols, leading;
  bool transposed;  // stored row-major as cols x rows
};

inline void check_leading_dimension(const char* name, std::int64_t leading, std::int64_t minimum) {
  if (leading < std::max<std::int64_t>(1, minimum)) {
    throw Error("gemm: leading dimension of " + std::string(name) + " is " +
                std::to_string(leading) + ", below max(1, " + std::to_string(minimum) +
                ") (an internal stride error: please report it)");
  }
}

// BLAS's contract, checked before any call: row-major ld >= max(1, columns as stored).
template <class T>
void check_blas_arguments(const BlasOperand<T>& a, const BlasOperand<T>& b, std::int64_t ldc) {
  if (a.cols != b.rows) {
    throw Error("gemm: inner dimensions " + std::to_string(a.cols) + " and " +
                std::to_string(b.rows) + " differ (an internal error: please report it)");
  }
#if defined(SODA_HAVE_CBLAS)
  const std::int64_t largest = std::max({a.rows, a.cols, b.cols, a.leading, b.leading, ldc});
  if (largest > std::numeric_limits<blasint>::max()) {
    throw ShapeError("gemm: a [" + std::to_string(a.rows) + " x " + std::to_string(a.cols) +
                     "] · [" + std::to_string(b.rows) + " x " + std::to_string(b.cols) +
                     "] product has a dimension or stride above BLAS's integer range");
  }
#endif
  check_leading_dimension("A", a.leading, a.transposed ? a.rows : a.cols);
  check_leading_dimension("B", b.leading, b.transposed ? b.rows : b.cols);
  check_leading_dimension("C", ldc, b.cols);
}

// On one thread: c (row-major, leading dimension ldc) = a·b, or += when accumulating. Callers run
// it where BLAS and Eigen see one OpenMP thread, so its result depends only on the shapes.
template <class T>
void serial_gemm(const BlasOperand<T>& a, const BlasOperand<T>& b, T* c, std::int64_t ldc,
                 bool accumulate) {
  const auto m = a.rows, n = b.cols, k = a.cols;
#if defined(SODA_HAVE_CBLAS)
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    const auto ta = a.transposed ? CblasTrans : CblasNoTrans;
    const auto tb = b.transposed ? CblasTrans : CblasNoTrans;
    const auto beta = accumulate ? T(1) : T(0);
    const auto i = [](std::int64_t v) { return static_cast<blasint>(v); };
    if constexpr (std::is_same_v<T, float>) {
      cblas_sgemm(CblasRowMajor, ta, tb, i(m), i(n), i(k), 1.0f, a.data, i(a.leading), b.data,
                  i(b.leading), beta, c, i(ldc));
    } else {
      cblas_dgemm(CblasRowMajor, ta, tb, i(m), i(n), i(k), 1.0, a.data, i(a.leading), b.data,
                  i(b.leading), beta, c, i(ldc));
    }
    return;
  }
#endif
  using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  using RowMap = Eigen::Map<const RowMatrix, 0, Stride>;
  Eigen::Map<RowMatrix, 0, Stride> out(c, m, n, Stride(ldc));
  auto with_map = [](const BlasOperand<T>& x, auto&& f) {
    if (x.transposed) {
      f(RowMap(x.data, x.cols, x.rows, Stride(x.leading)).transpose());
    } else {
      f(RowMap(x.data, x.rows, x.cols, Stride(x.leading)));
    }
  };
  with_map(a, [&](const auto& ma) {
    with_map(b, [&](const auto& mb) {
      if (accumulate) {
        out.noalias() += ma * mb;
      } else {
        out.noalias() = ma * mb;
      }
    });
  });
}

// OpenBLAS's pthread build keeps its own thread pool, which would run inside soda's threads and
// make results depend on OPENBLAS_NUM_THREADS: soda owns the parallel split, so it is set to one.
inline void configure_blas_threads() {
#if defined(SODA_HAVE_CBLAS) && defined(OPENBLAS_VERSION)
  static std::once_flag once;
  std::call_once(once, [] {
    constexpr int pthread_build = 1;
    if (openblas_get_parallel() == pthread_build) openblas_set_num_threads(1);
  });
#endif
}

}  // namespace soda::detail
