// soda/core/kernels/blas.hpp: arguments are validated before BLAS sees them, and BLAS's own
// argument reports (xerbla) become soda::Error instead of a line on stderr and no result.
#include "oracle.hpp"

#include <string>
#include <vector>

namespace {

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string gemm_error(const soda::detail::BlasOperand<double>& a,
                       const soda::detail::BlasOperand<double>& b, double* c, std::int64_t ldc) {
  try {
    soda::detail::checked_serial_gemm(a, b, c, ldc, false);
  } catch (const soda::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_SUITE("core/blas") {
  TEST_CASE("a leading dimension below max(1, stored columns) is refused before BLAS runs") {
    std::vector<double> a(6, 1.0), b(6, 1.0), c(4, -1.0);
    // Row-major 2x3 with ld 0: the stride a broadcast size-1 dimension leaves behind.
    const auto message =
        gemm_error({a.data(), 2, 3, 0, false}, {b.data(), 3, 2, 2, false}, c.data(), 2);
    CHECK(mentions(message, "leading dimension of A is 0"));
    // A transposed operand is stored as cols x rows: its ld must cover `rows`.
    CHECK(mentions(gemm_error({a.data(), 2, 3, 3, false}, {b.data(), 3, 2, 2, true}, c.data(), 2),
                   "leading dimension of B is 2"));
    CHECK(mentions(gemm_error({a.data(), 2, 3, 3, false}, {b.data(), 3, 2, 2, false}, c.data(), 1),
                   "leading dimension of C"));
    for (const double v : c) CHECK(v == -1.0);  // nothing was written
  }

#if defined(SODA_HAVE_CBLAS)
  TEST_CASE("BLAS's argument report (xerbla) is caught, not printed, and becomes an error") {
    std::vector<double> a(4, 1.0), b(4, 1.0), c(4, 0.0);
    soda::detail::blas_argument_report().clear();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1.0, a.data(), 0, b.data(), 2,
                0.0, c.data(), 2);
    const auto report = soda::detail::blas_argument_report();
    CHECK(mentions(report, "DGEMM"));
    CHECK(mentions(report, "parameter number"));
    // An argument only BLAS checks (a negative size) reaches it, and its report is thrown.
    const auto message =
        gemm_error({a.data(), -1, 2, 2, false}, {b.data(), 2, 2, 2, false}, c.data(), 2);
    CHECK(mentions(message, "BLAS refused"));
    CHECK(mentions(message, "DGEMM"));
  }
#endif
}
