// Forward values of softmax / log_softmax / logsumexp (autodiff/ops/softmax.hpp, built on the
// core reduce kernels) against a naive, max-shifted evaluation in long double.
#include "oracle.hpp"

#include <cmath>
#include <limits>

using soda::Shape;
using soda::Tensor;

namespace {

enum class SoftmaxKind { softmax, log_softmax, logsumexp };

// Naive result along `axis` (non-negative) of row-major values `v` of `shape`; logsumexp keeps the
// axis as 1.
std::vector<double> naive(const std::vector<double>& v, const Shape& shape, std::size_t axis,
                          SoftmaxKind kind) {
  const auto n = shape[axis];
  std::int64_t inner = 1;
  for (std::size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  const std::int64_t outer = oracle::count(shape) / std::max<std::int64_t>(n * inner, 1);
  std::vector<double> out(kind == SoftmaxKind::logsumexp ? static_cast<std::size_t>(outer * inner)
                                                         : v.size());
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t i = 0; i < inner; ++i) {
      auto at = [&](std::int64_t k) { return static_cast<std::size_t>((o * n + k) * inner + i); };
      long double m = -INFINITY;
      for (std::int64_t k = 0; k < n; ++k) m = std::max<long double>(m, v[at(k)]);
      long double total = 0;
      for (std::int64_t k = 0; k < n; ++k)
        total += std::exp(static_cast<long double>(v[at(k)]) - m);
      const long double lse = m + std::log(total);
      if (kind == SoftmaxKind::logsumexp) {
        out[static_cast<std::size_t>(o * inner + i)] = static_cast<double>(lse);
        continue;
      }
      for (std::int64_t k = 0; k < n; ++k) {
        const long double ls = v[at(k)] - lse;
        out[at(k)] = static_cast<double>(kind == SoftmaxKind::softmax ? std::exp(ls) : ls);
      }
    }
  }
  return out;
}

template <class T>
void check_all(const Tensor<T>& x, std::int64_t axis, double rtol, double atol) {
  const auto a = static_cast<std::size_t>(axis < 0 ? axis + x.ndim() : axis);
  const auto v = oracle::values(x);
  CAPTURE(axis);
  const auto s = soda::softmax(x, axis);
  CHECK(s.shape() == x.shape());
  oracle::check_close(s, naive(v, x.shape(), a, SoftmaxKind::softmax), rtol, atol);
  const auto ls = soda::log_softmax(x, axis);
  CHECK(ls.shape() == x.shape());
  oracle::check_close(ls, naive(v, x.shape(), a, SoftmaxKind::log_softmax), rtol, atol);
  const auto lse_expected = naive(v, x.shape(), a, SoftmaxKind::logsumexp);
  Shape kept = x.shape(), dropped = x.shape();
  kept[a] = 1;
  dropped.erase(dropped.begin() + static_cast<std::ptrdiff_t>(a));
  const auto k = soda::logsumexp(x, axis, true);
  CHECK(k.shape() == kept);
  oracle::check_close(k, lse_expected, rtol, atol);
  const auto d = soda::logsumexp(x, axis, false);
  CHECK(d.shape() == dropped);
  oracle::check_close(d, lse_expected, rtol, atol);
}

}  // namespace

TEST_SUITE("core/softmax") {
  TEST_CASE("softmax family along the last axis and axis 0 matches the naive evaluation") {
    // Rows of 19: two AVX float batches plus a tail.
    const auto f = oracle::random<float>({5, 19}, 1, nullptr, -5.0, 5.0);
    const auto d = oracle::random<double>({5, 19}, 2, nullptr, -5.0, 5.0);
    for (const std::int64_t axis : {-1, 0, 1, -2}) {
      check_all(f, axis, 1e-5, 1e-6);
      check_all(d, axis, 1e-13, 1e-14);
    }
  }

  TEST_CASE("softmax family is stable for large inputs") {
    // Rows around 1000 (exp would overflow) and around -1000 (exp would underflow to 0).
    std::vector<double> v;
    for (int i = 0; i < 3 * 17; ++i)
      v.push_back((i / 17 == 1 ? -1000.0 : 1000.0) + 0.25 * (i % 17));
    const auto f = oracle::tensor<float>({3, 17}, v);
    const auto d = oracle::tensor<double>({3, 17}, v);
    // x − lse near 1000 loses ~ulp(1000) = 6e-5 in float: hence the absolute tolerance.
    check_all(f, -1, 1e-5, 1e-4);
    check_all(d, -1, 1e-13, 1e-12);
    check_all(d, 0, 1e-13, 1e-12);
    const auto s = soda::softmax(f, -1);
    for (std::int64_t i = 0; i < s.numel(); ++i) CHECK(std::isfinite(s.data()[i]));
    // One dominant entry: probability 1 there, exactly 0 elsewhere after underflow.
    const auto p = soda::softmax(Tensor<double>({3}, {1000.0, 0.0, -1000.0}), 0);
    CHECK(p.data()[0] == 1.0);
    CHECK(p.data()[2] == 0.0);
    CHECK(soda::logsumexp(Tensor<float>({2}, {1000.f, 1000.f})).item() ==
          doctest::Approx(1000.0 + std::log(2.0)).epsilon(1e-6));
  }

  TEST_CASE("softmax family on strided views and a middle axis of a 3-d tensor") {
    const auto base = oracle::random<double>({6, 4, 3}, 3, nullptr, -3.0, 3.0);
    const auto t = soda::permute(base, {2, 0, 1});  // [3, 6, 4], non-contiguous
    for (const std::int64_t axis : {0, 1, 2}) check_all(t, axis, 1e-13, 1e-14);
    check_all(soda::slice(base, 1, 0, 4, 3), 1, 1e-13, 1e-14);  // [6, 2, 3]
    check_all(soda::broadcast_to(oracle::random<float>({1, 7}, 4), {3, 7}), 0, 1e-6,
              1e-7);  // uniform rows
    // Long rows above the parallel grain, in float.
    check_all(oracle::random<float>({3, 40000}, 5, nullptr, -10.0, 10.0), -1, 1e-4, 1e-9);
  }

  TEST_CASE("softmax rows sum to one and -inf entries get probability 0") {
    const float inf = std::numeric_limits<float>::infinity();
    const Tensor<float> x({2, 3}, {0.f, -inf, 1.f, -inf, 2.f, -inf});
    const auto s = soda::softmax(x, -1);
    CHECK(s.at({0, 1}) == 0.0f);
    CHECK(s.at({1, 1}) == 1.0f);
    CHECK(s.at({0, 0}) + s.at({0, 2}) == doctest::Approx(1.0));
    CHECK(soda::log_softmax(x, -1).at({0, 1}) == -inf);
    CHECK(soda::logsumexp(x, -1).at({1}) == doctest::Approx(2.0));
    CHECK_THROWS_AS(soda::softmax(x, 2), soda::ValueError);
  }

}  // TEST_SUITE
