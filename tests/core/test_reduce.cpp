// soda/core/kernels/reduce.hpp through soda::sum / max / mean: every subset of axes, strided
// inputs, keepdim, accuracy and thread-count reproducibility of large sums, and the edge cases
// (-inf, ties, empty axes).
#include "oracle.hpp"

#include <cmath>
#include <cstring>
#include <limits>

using soda::Shape;
using soda::Tensor;
using Axes = std::vector<std::int64_t>;

namespace {

enum class Kind { sum, max };

// Naive reduction of `x` over the axes flagged in `mask` (bit d = axis d), in double.
std::vector<double> naive_reduce(const std::vector<double>& v, const Shape& shape, unsigned mask,
                                 Kind kind, Shape* out_shape) {
  Shape out;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (!(mask >> d & 1u)) out.push_back(shape[d]);
  }
  const double init = kind == Kind::sum ? 0.0 : -std::numeric_limits<double>::infinity();
  std::vector<double> acc(static_cast<std::size_t>(oracle::count(out)), init);
  for (std::int64_t i = 0; i < oracle::count(shape); ++i) {
    const auto index = oracle::unravel(i, shape);
    std::int64_t o = 0;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (!(mask >> d & 1u)) o = o * shape[d] + index[d];
    }
    auto& a = acc[static_cast<std::size_t>(o)];
    const double x = v[static_cast<std::size_t>(i)];
    a = kind == Kind::sum ? a + x : std::max(a, x);
  }
  *out_shape = out;
  return acc;
}

Shape keep_shape(const Shape& shape, unsigned mask) {
  Shape out = shape;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (mask >> d & 1u) out[d] = 1;
  }
  return out;
}

// sum and max of `x` over every subset of its axes, with and without keepdim.
template <class T>
void check_every_subset(const Tensor<T>& x, double rtol) {
  const auto v = oracle::values(x);
  const unsigned all = (1u << x.ndim()) - 1;
  for (unsigned mask = 0; mask <= all; ++mask) {
    Axes axes;
    for (std::int64_t d = 0; d < x.ndim(); ++d) {
      if (mask >> d & 1u) axes.push_back(d - (d % 2 == 1 ? x.ndim() : 0));  // mix in negative axes
    }
    // The empty list means every axis.
    const unsigned effective = mask == 0 ? all : mask;
    for (const bool keepdim : {false, true}) {
      CAPTURE(mask);
      CAPTURE(keepdim);
      Shape shape;
      const auto sums = naive_reduce(v, x.shape(), effective, Kind::sum, &shape);
      const auto maxes = naive_reduce(v, x.shape(), effective, Kind::max, &shape);
      const Shape expected_shape = keepdim ? keep_shape(x.shape(), effective) : shape;
      const auto s = soda::sum(x, axes, keepdim);
      const auto m = soda::max(x, axes, keepdim);
      CHECK(s.shape() == expected_shape);
      CHECK(m.shape() == expected_shape);
      oracle::check_close(s, sums, rtol, rtol);
      oracle::check_equal(m, maxes);
    }
  }
}

template <class T>
bool bitwise_equal(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0;
}

}  // namespace

TEST_SUITE("core/reduce") {
  TEST_CASE("sum and max over every subset of axes of a contiguous [3,4,5] tensor") {
    check_every_subset(oracle::random<float>({3, 4, 5}, 1), 1e-5);
    check_every_subset(oracle::random<double>({3, 4, 5}, 2), 1e-14);
  }

  TEST_CASE("sum and max over every subset of axes of strided [3,4,5] views") {
    // Transposed, sliced with a step, broadcast, and permuted-then-sliced.
    check_every_subset(soda::transpose(oracle::random<float>({5, 4, 3}, 3), 0, 2), 1e-5);
    check_every_subset(soda::slice(oracle::random<float>({3, 4, 10}, 4), 2, 1, 10, 2), 1e-5);
    check_every_subset(soda::broadcast_to(oracle::random<double>({3, 1, 5}, 5), {3, 4, 5}), 1e-14);
    check_every_subset(
        soda::slice(soda::permute(oracle::random<double>({4, 7, 3}, 6), {2, 0, 1}), 2, -5, 7, 1),
        1e-14);
    check_every_subset(soda::slice(oracle::random<float>({3, 4, 5, 2}, 7), 3, 1, 2, 1),
                       1e-5);  // [3,4,5,1]
  }

  TEST_CASE("integer sums and maxima are exact") {
    const auto x = oracle::tensor<std::int32_t>({3, 4, 5}, oracle::uniform(60, 8, -1000, 1000));
    check_every_subset(x, 0);
    check_every_subset(soda::transpose(x, 0, 2), 0);
  }

  TEST_CASE("a million-element float sum is close to a double-accumulated sum") {
    std::vector<double> v;
    const auto x = oracle::random<float>({1000000}, 9, &v, 0.0, 1.0);
    double ref = 0;
    for (const double d : v) ref += d;
    const float s = soda::sum(x).item();
    CHECK(std::abs(s - ref) <= 1e-5 * std::abs(ref));
    // Along the last axis of [1000, 1000] and along the leading one.
    const auto m = soda::reshape(x, {1000, 1000});
    std::vector<double> rows(1000, 0.0), cols(1000, 0.0);
    for (std::size_t i = 0; i < 1000; ++i)
      for (std::size_t j = 0; j < 1000; ++j) {
        rows[i] += v[i * 1000 + j];
        cols[j] += v[i * 1000 + j];
      }
    oracle::check_close(soda::sum(m, {1}), rows, 1e-5);
    oracle::check_close(soda::sum(m, {0}), cols, 1e-5);
  }

  TEST_CASE("sums are bitwise identical for 1, 2 and 4 threads") {
    oracle::ThreadCountGuard guard;
    const auto x = oracle::random<float>({1000000}, 10);
    const auto wide = oracle::random<float>({3, 70001}, 11);   // rows longer than one chunk
    const auto tall = oracle::random<float>({2000, 300}, 12);  // leading-axis (column) path
    const auto strided = soda::transpose(tall, 0, 1);          // copied, then row path
    auto run = [&](int threads) {
      soda::set_num_threads(threads);
      return std::vector<Tensor<float>>{
          soda::sum(x),         soda::sum(wide, {1}),    soda::sum(tall, {0}),
          soda::sum(tall, {1}), soda::sum(strided, {0}), soda::max(x)};
    };
    const auto one = run(1), two = run(2), four = run(4);
    for (std::size_t k = 0; k < one.size(); ++k) {
      CAPTURE(k);
      CHECK(bitwise_equal(one[k], two[k]));
      CHECK(bitwise_equal(one[k], four[k]));
    }
    std::vector<double> ref(3, 0.0);
    const auto vw = oracle::values(wide);
    for (std::size_t i = 0; i < vw.size(); ++i) ref[i / 70001] += vw[i];
    oracle::check_close(one[1], ref, 1e-5, 1e-3);
  }

  TEST_CASE("max handles -inf, ties and single elements") {
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(soda::max(Tensor<float>({3}, {-inf, -inf, -inf})).item() == -inf);
    CHECK(soda::max(Tensor<float>({4}, {-inf, -3, -inf, -7})).item() == -3.0f);
    CHECK(soda::max(Tensor<float>({3}, {1, inf, 2})).item() == inf);
    CHECK(soda::max(Tensor<float>({1}, {-5})).item() == -5.0f);
    oracle::check_equal(soda::max(Tensor<float>({2, 3}, {2, 2, 1, -1, -1, -1}), {1}), {2, -1});
    // Long rows go through the SIMD path; put the maximum in a lane and in the tail.
    std::vector<double> v(67, -1e30);
    v[37] = 5;
    v[66] = 5;
    CHECK(soda::max(oracle::tensor<float>({67}, v)).item() == 5.0f);
    v[66] = 6;
    CHECK(soda::max(oracle::tensor<float>({67}, v)).item() == 6.0f);
    CHECK(soda::max(Tensor<std::int32_t>({3}, {std::numeric_limits<std::int32_t>::min(), -5, -9}))
              .item() == -5);
  }

  TEST_CASE("max propagates NaN from any position, as NumPy does") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (const std::int64_t n : {5, 70, 300}) {
      for (const std::int64_t pos : {std::int64_t{0}, std::int64_t{1}, n / 2, n - 1}) {
        CAPTURE(n);
        CAPTURE(pos);
        std::vector<double> v(static_cast<std::size_t>(n), 1.0);
        v[static_cast<std::size_t>(pos)] = nan;
        CHECK(std::isnan(soda::max(oracle::tensor<float>({n}, v)).item()));
        CHECK(std::isnan(soda::max(oracle::tensor<double>({n}, v)).item()));
        // The same NaN reduced down a column (the leading-axis path) and across a strided view.
        const auto col = oracle::tensor<float>({n, 1}, v);
        CHECK(std::isnan(soda::max(soda::broadcast_to(col, {n, 20}), {0}).data()[7]));
        CHECK(std::isnan(
            soda::max(soda::transpose(soda::broadcast_to(col, {n, 3}), 0, 1), {1}).data()[2]));
      }
    }
  }

  TEST_CASE("sum over an empty axis is 0; max over an empty axis throws ValueError") {
    const auto e = Tensor<float>::empty({3, 0});
    oracle::check_equal(soda::sum(e, {1}), {0, 0, 0});
    CHECK(soda::sum(e, {0}).shape() == Shape{0});
    CHECK(soda::sum(e).item() == 0.0f);
    oracle::check_equal(soda::sum(Tensor<double>::empty({0, 4}), {0}), {0, 0, 0, 0});
    oracle::check_equal(soda::sum(Tensor<double>::empty({0, 4}), {0}, true), {0, 0, 0, 0});
    CHECK_THROWS_AS(soda::max(e, {1}), soda::ValueError);
    CHECK_THROWS_AS(soda::max(e), soda::ValueError);
    CHECK_THROWS_AS(soda::max(Tensor<double>::empty({0, 4}), {0}), soda::ValueError);
    CHECK(soda::max(e, {0}).shape() == Shape{0});  // nothing is reduced over an empty set of rows
    CHECK_THROWS_AS(soda::mean(e, {1}), soda::ValueError);
  }

  TEST_CASE("reductions of a scalar, bad axes and mean") {
    CHECK(soda::sum(Tensor<float>::scalar(4)).item() == 4.0f);
    CHECK(soda::max(Tensor<float>::scalar(4)).item() == 4.0f);
    const auto x = oracle::random<double>({4, 6}, 13);
    CHECK_THROWS_AS(soda::sum(x, {2}), soda::ValueError);
    CHECK_THROWS_AS(soda::sum(x, {0, -2}), soda::ValueError);
    const auto v = oracle::values(x);
    std::vector<double> means(6, 0.0);
    for (std::size_t i = 0; i < v.size(); ++i) means[i % 6] += v[i] / 4;
    oracle::check_close(soda::mean(x, {0}), means, 1e-14, 1e-15);
    CHECK(soda::mean(x, {0}, true).shape() == Shape{1, 6});
  }

}  // TEST_SUITE
