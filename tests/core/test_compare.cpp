// soda/core/compare.hpp: allclose (NumPy's |a − b| <= atol + rtol·|b|) and max_abs_difference.
#include "oracle.hpp"

#include <cmath>
#include <limits>

using soda::Tensor;

TEST_SUITE("core/compare") {
  TEST_CASE("allclose uses atol + rtol·|b|, measured against the second argument") {
    const Tensor<double> a({1}, {1.0}), b({1}, {1.1}), big_a({1}, {100.0}), big_b({1}, {101.0});
    CHECK(soda::allclose(a, a));
    CHECK_FALSE(soda::allclose(a, b));
    CHECK(soda::allclose(a, b, 0.0, 0.1 + 1e-12));
    CHECK_FALSE(soda::allclose(a, b, 0.0, 0.09));
    CHECK(soda::allclose(big_a, big_b, 0.01, 0.0));  // 1 <= 0.01·101
    CHECK(soda::allclose(big_b, big_a, 0.01, 0.0));  // 1 <= 0.01·100
    const Tensor<double> x({1}, {1.0}), y({1}, {1.0 / 1.1});
    // |x − y| = 0.0909...: within 0.1·|x| = 0.1, but not within 0.0909·|y| = 0.0826...
    CHECK(soda::allclose(y, x, 0.1, 0.0));
    CHECK_FALSE(soda::allclose(x, y, 0.0909, 0.0));
    CHECK(soda::allclose(Tensor<float>({2}, {0, 1e-9f}),
                         Tensor<float>({2}, {0, 0})));  // default atol
  }

  TEST_CASE("allclose broadcasts its operands and rejects incompatible shapes") {
    const Tensor<float> m({2, 3}, {1, 2, 3, 1, 2, 3});
    const Tensor<float> row({3}, {1, 2, 3});
    CHECK(soda::allclose(m, row));
    CHECK(soda::allclose(row, m));
    CHECK(soda::allclose(Tensor<float>({2, 2}, {5, 5, 5, 5}), Tensor<float>::scalar(5)));
    CHECK_FALSE(soda::allclose(m, Tensor<float>({3}, {1, 2, 4})));
    CHECK_THROWS_AS(soda::allclose(m, Tensor<float>({2}, {1, 2})), soda::ShapeError);
    // Strided views are compared element by element.
    CHECK(soda::allclose(soda::transpose(m, 0, 1),
                         soda::broadcast_to(Tensor<float>({3, 1}, {1, 2, 3}), {3, 2})));
  }

  TEST_CASE("NaN is never close, not even to NaN; equal infinities are") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    CHECK_FALSE(soda::allclose(Tensor<float>({2}, {1, nan}), Tensor<float>({2}, {1, nan})));
    CHECK_FALSE(soda::allclose(Tensor<float>({1}, {nan}), Tensor<float>({1}, {0})));
    CHECK_FALSE(soda::allclose(Tensor<float>({1}, {0}), Tensor<float>({1}, {nan})));
    CHECK_FALSE(soda::allclose(Tensor<float>({1}, {inf}), Tensor<float>({1}, {-inf})));
    CHECK_FALSE(soda::allclose(Tensor<float>({1}, {1}), Tensor<float>({1}, {inf})));
    CHECK(soda::allclose(Tensor<float>({2}, {inf, -inf}),
                         Tensor<float>({2}, {inf, -inf})));  // as NumPy
    CHECK(soda::max_abs_difference(Tensor<float>({1}, {inf}), Tensor<float>({1}, {inf})) == 0.0);
  }

  TEST_CASE("allclose of empty tensors is true") {
    CHECK(soda::allclose(Tensor<float>::empty({0, 3}), Tensor<float>::empty({0, 3})));
  }

  TEST_CASE("max_abs_difference is the largest |a − b| over the broadcast shape") {
    const Tensor<double> a({2, 3}, {1, 2, 3, 4, 5, 6});
    const Tensor<double> b({3}, {1, 2, 3});
    CHECK(soda::max_abs_difference(a, b) == 3.0);
    CHECK(soda::max_abs_difference(b, a) == 3.0);
    CHECK(soda::max_abs_difference(a, a) == 0.0);
    CHECK(soda::max_abs_difference(Tensor<std::int32_t>({2}, {-5, 7}),
                                   Tensor<std::int32_t>({2}, {5, 7})) == 10.0);
    CHECK(soda::max_abs_difference(soda::transpose(a, 0, 1), soda::transpose(a, 0, 1)) == 0.0);
    CHECK_THROWS_AS(soda::max_abs_difference(a, Tensor<double>({2}, {1, 2})), soda::ShapeError);
    CHECK(soda::max_abs_difference(Tensor<float>::empty({0}), Tensor<float>::empty({0})) == 0.0);
  }

  TEST_CASE("max_abs_difference reports NaN wherever it occurs") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(std::isnan(soda::max_abs_difference(Tensor<double>({3}, {nan, 0, 5}),
                                              Tensor<double>({3}, {0, 0, 0}))));
    CHECK(std::isnan(soda::max_abs_difference(Tensor<double>({3}, {0, 5, nan}),
                                              Tensor<double>({3}, {0, 0, 0}))));
    CHECK(std::isnan(soda::max_abs_difference(Tensor<double>({3}, {0, nan, 9}),
                                              Tensor<double>({3}, {0, 0, 0}))));
  }

  TEST_CASE("max_abs_difference is exact on large tensors whose rows are split across threads") {
    oracle::ThreadCountGuard guard;
    soda::set_num_threads(std::max(4, soda::max_threads()));
    // [1024, 1024] against a broadcast row: 1024 rows, enough for the row loop to go parallel.
    const std::int64_t n = 1024;
    std::vector<double> va(static_cast<std::size_t>(n * n), 0.0);
    for (std::int64_t r = 0; r < n; ++r)
      va[static_cast<std::size_t>(r * n + r % 7)] = static_cast<double>(r);
    const auto a = oracle::tensor<double>({n, n}, va);
    const auto b = soda::zeros<double>({n});
    for (int rep = 0; rep < 50; ++rep)
      CHECK(soda::max_abs_difference(a, b) == static_cast<double>(n - 1));
    a.data()[3 * n + 5] = std::numeric_limits<double>::quiet_NaN();
    for (int rep = 0; rep < 10; ++rep) CHECK(std::isnan(soda::max_abs_difference(a, b)));
  }

}  // TEST_SUITE
