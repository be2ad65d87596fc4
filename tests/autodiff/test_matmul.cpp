// matmul (autodiff/ops/matmul.hpp): 2-D, batched, broadcast batches on either side, and transposed
// (non-contiguous) operands, which the GEMM reads in place.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "checks.hpp"

using namespace soda_test;

namespace {

const auto product = [](const Params& q) { return soda::matmul(q[0], q[1]); };

// Curved in both operands, so the Hessian has cross terms between them.
const auto product_tanh = [](const Params& q) { return soda::tanh(soda::matmul(q[0], q[1])); };

}  // namespace

TEST_CASE("2-D matmul has exact derivatives in both operands") {
  const Params p{normal({3, 4}, 1), normal({4, 5}, 2)};
  SODA_CHECK_OP(product, p);
  SODA_CHECK_OP(product_tanh, p);
}

TEST_CASE("batched matmul [2,3,4] @ [2,4,5] has exact derivatives") {
  const Params p{normal({2, 3, 4}, 3), normal({2, 4, 5}, 4)};
  SODA_CHECK_OP(product, p);
  SODA_CHECK_OP(product_tanh, p);
}

TEST_CASE("matmul broadcasts a batch against a matrix: [2,3,4] @ [4,5]") {
  const Params p{normal({2, 3, 4}, 5), normal({4, 5}, 6)};
  SODA_CHECK_OP(product, p);
  SODA_CHECK_OP(product_tanh, p);
  CHECK(soda::matmul(p[0], p[1]).shape() == soda::Shape{2, 3, 5});
}

TEST_CASE("matmul broadcasts a matrix against a batch: [3,4] @ [2,4,5]") {
  const Params p{normal({3, 4}, 7), normal({2, 4, 5}, 8)};
  SODA_CHECK_OP(product, p);
  SODA_CHECK_OP(product_tanh, p);
  CHECK(soda::matmul(p[0], p[1]).shape() == soda::Shape{2, 3, 5});
}

TEST_CASE("matmul broadcasts batch dimensions of size one on both sides: [2,1,3,4] @ [3,4,2]") {
  const Params p{normal({2, 1, 3, 4}, 9), normal({3, 4, 2}, 10)};
  SODA_CHECK_OP(product, p);
  SODA_CHECK_OP(product_tanh, p);
  CHECK(soda::matmul(p[0], p[1]).shape() == soda::Shape{2, 3, 3, 2});
}

TEST_CASE("matmul of transposed operands (non-contiguous views) has exact derivatives") {
  // Both parameters are stored transposed: the op reads column-major views.
  const Params p{normal({4, 3}, 11), normal({5, 4}, 12)};
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::matmul(soda::transpose(q[0], 0, 1), soda::transpose(q[1], 0, 1));
      },
      p);
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::tanh(soda::matmul(soda::transpose(q[0], 0, 1), soda::transpose(q[1], 0, 1)));
      },
      p);
  // Parameters that are themselves views: transposed and strided.
  soda::Generator gen(13);
  const auto a = soda::transpose(soda::randn<double>({4, 3}, gen), 0, 1);  // [3, 4], column-major
  const auto b =
      soda::slice(soda::randn<double>({4, 10}, gen), 1, 0, 10, 2);  // [4, 5], strided columns
  REQUIRE_FALSE(a.is_contiguous());
  REQUIRE_FALSE(b.is_contiguous());
  SODA_CHECK_OP(product, {a, b});
  SODA_CHECK_OP(product_tanh, {a, b});
}

TEST_CASE("batched matmul of transposed batches has exact derivatives") {
  const Params p{normal({2, 4, 3}, 14), normal({2, 5, 4}, 15)};
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::matmul(soda::transpose(q[0], -1, -2), soda::transpose(q[1], 1, 2));
      },
      p);
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::tanh(
            soda::matmul(soda::permute(q[0], {0, 2, 1}), soda::transpose(q[1], 1, 2)));
      },
      p);
  // Batch axis not outermost in memory.
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::matmul(soda::permute(q[1], {1, 0, 2}), soda::select(q[0], 1, 0));
      },
      Params{normal({4, 3, 2}, 16), normal({3, 2, 4}, 17)});
}

TEST_CASE("x @ x and xᵀ @ x accumulate both operand roles") {
  const Params p{normal({4, 4}, 18)};
  SODA_CHECK_OP([](const Params& q) { return soda::matmul(q[0], q[0]); }, p);
  SODA_CHECK_OP(
      [](const Params& q) { return soda::tanh(soda::matmul(soda::transpose(q[0], 0, 1), q[0])); },
      p);
}

TEST_CASE("matmul with a constant operand has exact derivatives in the other") {
  const auto w = normal({4, 2}, 19);
  SODA_CHECK_OP([w](const Params& q) { return soda::tanh(soda::matmul(q[0], w)); },
                {normal({2, 3, 4}, 20)});
  SODA_CHECK_OP(
      [w](const Params& q) { return soda::tanh(soda::matmul(soda::transpose(w, 0, 1), q[0])); },
      {normal({4, 3}, 21)});
}

TEST_CASE("a larger batched product takes the folded-rows GEMM path and stays exact") {
  const Params p{normal({3, 17, 12}, 22), normal({12, 9}, 23)};
  SODA_CHECK_OP(product_tanh, p);
}

TEST_CASE("matmul's values match a naive triple loop") {
  const auto a = normal({2, 3, 4}, 24);
  const auto b = normal({4, 5}, 25);
  const auto c = soda::matmul(soda::transpose(soda::transpose(a, 1, 2), 1, 2), b);
  for (std::int64_t n = 0; n < 2; ++n)
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t j = 0; j < 5; ++j) {
        double expected = 0;
        for (std::int64_t k = 0; k < 4; ++k) expected += a.at({n, i, k}) * b.at({k, j});
        CHECK(c.at({n, i, j}) == doctest::Approx(expected).epsilon(1e-13));
      }
}
