// soda/core/kernels/gemm.hpp directly and through soda::matmul: odd sizes, row- and column-major
// operands, padded and irregular strides, batches with broadcasting, and empty inner dimensions,
// against a naive triple loop in long double.
#include "oracle.hpp"

#include <cmath>
#include <cstdint>

using soda::Shape;
using soda::Tensor;

namespace {

// Naive [.., m, n] product of broadcast batches, plus Σ|a||b| per entry as the error scale.
struct Reference {
  Shape shape;
  std::vector<double> value, scale;
};

Reference naive_matmul(const std::vector<double>& a, const Shape& as, const std::vector<double>& b,
                       const Shape& bs) {
  const auto m = as[as.size() - 2], k = as.back(), n = bs.back();
  const Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  const std::size_t rank = std::max(ab.size(), bb.size());
  Shape batch(rank, 1);
  for (std::size_t i = 0; i < rank; ++i) {
    const auto da = i + ab.size() >= rank ? ab[i + ab.size() - rank] : 1;
    const auto db = i + bb.size() >= rank ? bb[i + bb.size() - rank] : 1;
    batch[i] = da == 1 ? db : da;
  }
  Reference r;
  r.shape = batch;
  r.shape.push_back(m);
  r.shape.push_back(n);
  for (std::int64_t p = 0; p < oracle::count(batch); ++p) {
    auto index = oracle::unravel(p, batch);
    auto a_at = [&](std::int64_t i, std::int64_t j) {
      auto idx = index;
      idx.push_back(i);
      idx.push_back(j);
      return oracle::broadcast_at(a, as, idx);
    };
    auto b_at = [&](std::int64_t i, std::int64_t j) {
      auto idx = index;
      idx.push_back(i);
      idx.push_back(j);
      return oracle::broadcast_at(b, bs, idx);
    };
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        long double s = 0, sa = 0;
        for (std::int64_t q = 0; q < k; ++q) {
          s += static_cast<long double>(a_at(i, q)) * b_at(q, j);
          sa += std::abs(static_cast<long double>(a_at(i, q)) * b_at(q, j));
        }
        r.value.push_back(static_cast<double>(s));
        r.scale.push_back(static_cast<double>(sa));
      }
    }
  }
  return r;
}

// |c − ref| <= tol · Σ|a||b| (+ a denormal-sized floor) for every entry.
template <class T>
void check_product(const Tensor<T>& c, const Reference& r, double tol) {
  REQUIRE(c.shape() == r.shape);
  const auto got = oracle::values(c);
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - r.value[i]) > tol * r.scale[i] + 1e-300) {
      INFO("entry " << i << ": got " << got[i] << ", expected " << r.value[i]);
      CHECK(false);
      return;
    }
  }
}

template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-13;
}

template <class T>
void check_matmul(const Tensor<T>& a, const Tensor<T>& b) {
  CAPTURE(soda::to_string(a.shape()));
  CAPTURE(soda::to_string(b.shape()));
  check_product(soda::matmul(a, b),
                naive_matmul(oracle::values(a), a.shape(), oracle::values(b), b.shape()),
                tolerance<T>());
}

}  // namespace

TEST_SUITE("core/gemm") {
  TEST_CASE("gemm multiplies row- and column-major views with padded leading strides") {
    using soda::detail::MatrixView;
    // a: 5x7 inside a 5x9 row-major buffer; b: 7x3 stored column-major with leading stride 8.
    const auto abuf = oracle::uniform(5 * 9, 1);
    const auto bbuf = oracle::uniform(3 * 8, 2);
    const MatrixView<double> a{abuf.data(), 5, 7, 9, 1};
    const MatrixView<double> b{bbuf.data(), 7, 3, 1, 8};
    CHECK(a.row_major());
    CHECK(b.column_major());
    std::vector<double> c(15, -1.0);
    soda::detail::gemm(a, b, c.data());
    for (int i = 0; i < 5; ++i)
      for (int j = 0; j < 3; ++j) {
        long double s = 0;
        for (int q = 0; q < 7; ++q)
          s += static_cast<long double>(abuf[static_cast<std::size_t>(i * 9 + q)]) *
               bbuf[static_cast<std::size_t>(j * 8 + q)];
        CHECK(c[static_cast<std::size_t>(i * 3 + j)] ==
              doctest::Approx(static_cast<double>(s)).epsilon(1e-13));
      }
    // An empty inner dimension gives zeros, whatever the output held.
    soda::detail::gemm(MatrixView<double>{abuf.data(), 5, 0, 0, 1},
                       MatrixView<double>{bbuf.data(), 0, 3, 3, 1}, c.data());
    for (const double v : c) CHECK(v == 0.0);
  }

  TEST_CASE("MatrixView classifies layouts, including degenerate single rows and columns") {
    using soda::detail::MatrixView;
    const double* p = nullptr;
    CHECK(MatrixView<double>{p, 3, 4, 4, 1}.row_major());
    CHECK_FALSE(MatrixView<double>{p, 3, 4, 4, 1}.column_major());
    CHECK(MatrixView<double>{p, 3, 4, 1, 3}.column_major());
    CHECK_FALSE(MatrixView<double>{p, 3, 4, 2, 1}.row_major());  // overlapping rows
    CHECK_FALSE(MatrixView<double>{p, 3, 4, 0, 1}.row_major());  // broadcast rows
    CHECK_FALSE(MatrixView<double>{p, 3, 4, 8, 2}.row_major());  // strided columns
    CHECK_FALSE(MatrixView<double>{p, 3, 4, 8, 2}.column_major());
    CHECK(MatrixView<double>{p, 1, 4, 1, 1}.column_major());
  }

  TEST_CASE("gemm reads size-1 dimensions with any stride, 0 included, at sizes that reach BLAS") {
    using soda::detail::MatrixView;
    // Broadcasting gives extent-1 dimensions a stride of 0; BLAS rejects a leading dimension of 0
    // (OpenBLAS then returned without computing: the README's H·v was wrong by a factor of 22).
    for (const std::int64_t m : {1, 2, 37})
      for (const std::int64_t k : {1, 2, 37})
        for (const std::int64_t n : {1, 2, 37}) {
          const auto abuf = oracle::uniform(static_cast<std::size_t>(m * k), 80);
          const auto bbuf = oracle::uniform(static_cast<std::size_t>(k * n), 81);
          for (const std::int64_t free_stride : {0, 1, 5}) {
            CAPTURE(m);
            CAPTURE(k);
            CAPTURE(n);
            CAPTURE(free_stride);
            // Row-major a and column-major b, with the strides of their size-1 dims set freely.
            const MatrixView<double> a{abuf.data(), m, k, m == 1 ? free_stride : k,
                                       k == 1 ? free_stride : 1};
            const MatrixView<double> b{bbuf.data(), k, n, k == 1 ? free_stride : 1,
                                       n == 1 ? free_stride : k};
            std::vector<double> c(static_cast<std::size_t>(m * n), -7.0);
            soda::detail::gemm(a, b, c.data());
            for (std::int64_t i = 0; i < m; ++i)
              for (std::int64_t j = 0; j < n; ++j) {
                long double s = 0;
                for (std::int64_t q = 0; q < k; ++q)
                  s += static_cast<long double>(abuf[static_cast<std::size_t>(i * k + q)]) *
                       bbuf[static_cast<std::size_t>(j * k + q)];
                REQUIRE(c[static_cast<std::size_t>(i * n + j)] ==
                        doctest::Approx(static_cast<double>(s)).epsilon(1e-13));
              }
          }
        }
  }

  TEST_CASE("batched matmul with a size-1 row or column in every operand (stride-0 views)") {
    for (const std::int64_t m : {1, 40})
      for (const std::int64_t k : {1, 30})
        for (const std::int64_t n : {1, 50}) {
          check_matmul(oracle::random<double>({2, m, k}, 90),
                       oracle::random<double>({2, k, n}, 91));
          check_matmul(oracle::random<double>({2, 1, m, k}, 92),
                       oracle::random<double>({3, k, n}, 93));
          check_matmul(oracle::random<float>({m, k}, 94), oracle::random<float>({3, k, n}, 95));
        }
  }

  TEST_CASE("the tile grid covers the output, depends on the shape alone and never splits K") {
    for (const std::int64_t m : {1, 63, 128, 129, 1000, 4096})
      for (const std::int64_t n : {1, 64, 200, 3000})
        for (const std::int64_t k : {1, 300, 5000}) {
          const auto grid = soda::detail::tile_grid(m, n, k);
          for (const auto& [points, extent] :
               {std::pair{grid.row_points, m}, std::pair{grid.col_points, n}}) {
            REQUIRE(points.front() == 0);
            REQUIRE(points.back() == extent);
            for (std::size_t i = 1; i < points.size(); ++i) {
              CHECK(points[i] > points[i - 1]);
              if (points.size() > 2) CHECK(points[i] - points[i - 1] >= 24);  // 32, rounded to 8
            }
          }
          CHECK(grid.count() >= 1);
          CHECK(grid.count() <= 4);
        }
    CHECK(soda::detail::tile_grid(2048, 2048, 2048).count() == 4);
    CHECK(soda::detail::tile_grid(16, 16, 16).count() == 1);
  }

  TEST_CASE("gemm and batched matmul give bit-identical results at 1, 2 and 3 threads") {
    using soda::detail::MatrixView;
    const int saved = soda::max_threads();
    const auto a = oracle::random<float>({700, 300}, 70);
    const auto b = oracle::random<float>({300, 900}, 71);
    const auto c0 = oracle::random<float>({700, 900}, 72);
    const auto ad = oracle::random<double>({6, 130, 70}, 73);
    const auto bd = oracle::random<double>({6, 70, 1}, 74);
    std::vector<std::vector<float>> products;
    std::vector<Tensor<double>> batched;
    for (const int threads : {1, 2, 3}) {
      soda::set_num_threads(threads);
      // c = c0 + a·b with a read column-major: both layouts, accumulation and a 4-tile grid.
      const auto at = soda::contiguous(soda::transpose(a, 0, 1));
      std::vector<float> c(c0.data(), c0.data() + c0.numel());
      soda::detail::gemm(MatrixView<float>{at.data(), 700, 300, 1, 700},
                         MatrixView<float>{b.data(), 300, 900, 900, 1}, c.data(), true);
      products.push_back(c);
      batched.push_back(soda::matmul(ad, bd));
    }
    soda::set_num_threads(saved);
    for (std::size_t t = 1; t < products.size(); ++t) {
      CAPTURE(t);
      CHECK(products[t] == products[0]);
      CHECK(soda::max_abs_difference(batched[t], batched[0]) == 0);
    }
  }

  TEST_CASE("matmul of every shape with m, k, n in {1, 3, 17, 64, 129}") {
    std::uint64_t seed = 10;
    for (const std::int64_t m : {1, 3, 17, 64, 129})
      for (const std::int64_t k : {1, 3, 17, 64, 129})
        for (const std::int64_t n : {1, 3, 17, 64, 129}) {
          seed += 4;
          check_matmul(oracle::random<double>({m, k}, seed),
                       oracle::random<double>({k, n}, seed + 1));
          if ((m + k + n) % 3 == 0)
            check_matmul(oracle::random<float>({m, k}, seed + 2),
                         oracle::random<float>({k, n}, seed + 3));
        }
  }

  TEST_CASE("matmul reads transposed (column-major) operands in place") {
    for (const auto& [m, k, n] : std::vector<std::array<std::int64_t, 3>>{
             {1, 1, 1}, {3, 17, 5}, {64, 3, 129}, {17, 129, 1}}) {
      const auto at = soda::transpose(oracle::random<double>({k, m}, 20), 0, 1);
      const auto bt = soda::transpose(oracle::random<double>({n, k}, 21), 0, 1);
      const auto a = oracle::random<double>({m, k}, 22);
      const auto b = oracle::random<double>({k, n}, 23);
      check_matmul(at, b);
      check_matmul(a, bt);
      check_matmul(at, bt);
      check_matmul(soda::transpose(oracle::random<float>({k, m}, 24), 0, 1),
                   soda::transpose(oracle::random<float>({n, k}, 25), 0, 1));
    }
  }

  TEST_CASE("matmul copies operands with irregular strides and reads padded ones in place") {
    const auto big = oracle::random<double>({20, 30}, 30);
    check_matmul(soda::slice(soda::slice(big, 0, 0, 20, 2), 1, 1, 30, 3),
                 oracle::random<double>({10, 7}, 31));  // strided both ways
    check_matmul(soda::slice(big, 1, 3, 20, 1),
                 oracle::random<double>({17, 4}, 32));  // padded rows
    check_matmul(oracle::random<double>({4, 20}, 33), soda::slice(big, 1, 0, 11, 1));
    check_matmul(soda::broadcast_to(oracle::random<double>({1, 6}, 34), {5, 6}),
                 oracle::random<double>({6, 3}, 35));
    check_matmul(oracle::random<double>({5, 6}, 36),
                 soda::broadcast_to(oracle::random<double>({6, 1}, 37), {6, 4}));
  }

  TEST_CASE("batched matmul broadcasts batch dimensions") {
    check_matmul(oracle::random<double>({2, 1, 3, 5}, 40), oracle::random<double>({3, 5, 4}, 41));
    check_matmul(oracle::random<double>({3, 5}, 42), oracle::random<double>({4, 5, 2}, 43));
    check_matmul(oracle::random<double>({4, 3, 5}, 44),
                 oracle::random<double>({5, 2}, 45));  // folded into one GEMM
    check_matmul(oracle::random<double>({4, 1, 5}, 46),
                 oracle::random<double>({5, 7}, 47));  // m = 1
    check_matmul(oracle::random<double>({4, 3, 1}, 48),
                 oracle::random<double>({1, 7}, 49));  // k = 1
    check_matmul(soda::permute(oracle::random<double>({3, 4, 5}, 50), {1, 0, 2}),
                 oracle::random<double>({5, 2}, 51));
    check_matmul(soda::broadcast_to(oracle::random<double>({3, 5}, 52), {4, 3, 5}),
                 oracle::random<double>({5, 2}, 53));
    check_matmul(soda::transpose(oracle::random<double>({2, 6, 3}, 54), 1, 2),
                 soda::transpose(oracle::random<double>({2, 4, 6}, 55), 1, 2));
    check_matmul(oracle::random<float>({2, 3, 65, 33}, 56), oracle::random<float>({3, 33, 17}, 57));
    // Large enough per product to run the batch serially with a threaded GEMM.
    check_matmul(oracle::random<double>({3, 129, 64}, 58), oracle::random<double>({3, 64, 64}, 59));
    check_matmul(oracle::random<float>({2, 130, 70}, 60),
                 soda::transpose(oracle::random<float>({90, 70}, 61), 0, 1));
  }

  TEST_CASE(
      "matmul with an empty inner dimension gives zeros; empty outer dimensions give empty "
      "results") {
    const auto z = soda::matmul(Tensor<float>::empty({3, 0}), Tensor<float>::empty({0, 4}));
    CHECK(z.shape() == Shape{3, 4});
    oracle::check_equal(z, std::vector<double>(12, 0.0));
    const auto zb = soda::matmul(Tensor<double>::empty({2, 3, 0}), Tensor<double>::empty({0, 5}));
    oracle::check_equal(zb, std::vector<double>(30, 0.0));
    CHECK(soda::matmul(Tensor<float>::empty({0, 3}), oracle::random<float>({3, 4}, 62)).shape() ==
          Shape{0, 4});
    CHECK(soda::matmul(oracle::random<float>({2, 3}, 63), Tensor<float>::empty({3, 0})).shape() ==
          Shape{2, 0});
    CHECK(
        soda::matmul(Tensor<float>::empty({0, 2, 3}), oracle::random<float>({3, 4}, 64)).shape() ==
        Shape{0, 2, 4});
  }

  TEST_CASE("integer matmul is exact") {
    const auto a = oracle::tensor<std::int32_t>({4, 6}, oracle::uniform(24, 70, -50, 50));
    const auto b = oracle::tensor<std::int32_t>({6, 3}, oracle::uniform(18, 71, -50, 50));
    const auto r = naive_matmul(oracle::values(a), a.shape(), oracle::values(b), b.shape());
    oracle::check_equal(soda::matmul(a, b), r.value);
  }

  TEST_CASE("matmul rejects low ranks and mismatched shapes with ShapeError naming both") {
    CHECK_THROWS_AS(soda::matmul(Tensor<float>::empty({3}), Tensor<float>::empty({3, 2})),
                    soda::ShapeError);
    CHECK_THROWS_AS(soda::matmul(Tensor<float>::empty({2, 3}), Tensor<float>::empty({3})),
                    soda::ShapeError);
    try {
      soda::matmul(Tensor<float>::empty({2, 3}), Tensor<float>::empty({4, 5}));
      FAIL("expected ShapeError");
    } catch (const soda::ShapeError& e) {
      const std::string msg = e.what();
      CHECK(msg.find("[2, 3]") != std::string::npos);
      CHECK(msg.find("[4, 5]") != std::string::npos);
    }
    CHECK_THROWS_AS(soda::matmul(Tensor<float>::empty({2, 2, 3}), Tensor<float>::empty({3, 3, 4})),
                    soda::ShapeError);
  }

}  // TEST_SUITE
