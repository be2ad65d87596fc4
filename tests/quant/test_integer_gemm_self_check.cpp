// Tests of soda/quant/integer_gemm_self_check.hpp: the once-per-process check of each SIMD kernel
// against the oracle, which keeps a kernel CI cannot run from ever giving a wrong sum.
#include <doctest/doctest.h>

#include <soda/quant/integer_gemm.hpp>

namespace {

using soda::quant::IntegerFormat;
using soda::quant::IntegerGemmKernel;
namespace detail = soda::quant::detail;

TEST_CASE("self_check_matrix is fixed, in range, and holds both extremes of the format") {
  for (const auto format :
       {IntegerFormat::uint8, IntegerFormat::int8, IntegerFormat::uint4, IntegerFormat::int4}) {
    const auto m = detail::self_check_matrix(5, 9, format, 3);
    CHECK(m.bytes == detail::self_check_matrix(5, 9, format, 3).bytes);
    CHECK(m.bytes != detail::self_check_matrix(5, 9, format, 4).bytes);
    for (std::int64_t k = 0; k < 9; ++k) {
      CHECK(m.at(0, k) == soda::quant::format_max(format));
      CHECK(m.at(4, k) == soda::quant::format_min(format));
    }
  }
}

TEST_CASE("every kernel this CPU has the instructions for equals the oracle and is supported") {
  for (const auto kernel :
       {IntegerGemmKernel::portable, IntegerGemmKernel::avx2, IntegerGemmKernel::avx512_vnni}) {
    CAPTURE(soda::quant::kernel_name(kernel));
    if (!detail::cpu_has_instructions(kernel)) {
      CHECK_FALSE(soda::quant::integer_gemm_kernel_supported(kernel));
      continue;
    }
    CHECK(detail::kernel_matches_oracle(kernel));
    CHECK(soda::quant::integer_gemm_kernel_supported(kernel));
  }
  CHECK(soda::quant::supported_integer_gemm_kernels().front() == IntegerGemmKernel::portable);
}

}  // namespace
