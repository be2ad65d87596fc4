// soda/core/kernels/elementwise.hpp + functors.hpp through the public ops (constant tensors, so
// nothing is recorded): every broadcasting pattern, strided and broadcast inputs, SIMD tails,
// tensors above the parallel threshold, transcendental accuracy and integer dtypes.
#include "oracle.hpp"

#include <cmath>
#include <functional>
#include <limits>

using soda::Shape;
using soda::Tensor;

namespace {

Shape naive_broadcast(const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank, 1);
  for (std::size_t i = 0; i < rank; ++i) {
    const auto da = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const auto db = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// op(a, b) equals f applied element by element (in T) to the broadcast operands, exactly.
template <class T, class Op, class F>
void check_binary(const Tensor<T>& a, const Tensor<T>& b, Op op, F f) {
  const auto out = op(a, b);
  const Shape shape = naive_broadcast(a.shape(), b.shape());
  REQUIRE(out.shape() == shape);
  CHECK(out.is_contiguous());
  const auto va = oracle::values(a), vb = oracle::values(b);
  std::vector<double> expected;
  for (std::int64_t i = 0; i < oracle::count(shape); ++i) {
    const auto index = oracle::unravel(i, shape);
    expected.push_back(
        static_cast<double>(f(static_cast<T>(oracle::broadcast_at(va, a.shape(), index)),
                              static_cast<T>(oracle::broadcast_at(vb, b.shape(), index)))));
  }
  oracle::check_equal(out, expected);
}

template <class T>
void check_all_arithmetic(const Tensor<T>& a, const Tensor<T>& b) {
  check_binary(
      a, b, [](const auto& x, const auto& y) { return soda::add(x, y); },
      [](T x, T y) { return T(x + y); });
  check_binary(
      a, b, [](const auto& x, const auto& y) { return soda::sub(x, y); },
      [](T x, T y) { return T(x - y); });
  check_binary(
      a, b, [](const auto& x, const auto& y) { return soda::mul(x, y); },
      [](T x, T y) { return T(x * y); });
  check_binary(
      a, b, [](const auto& x, const auto& y) { return soda::maximum(x, y); },
      [](T x, T y) { return x >= y ? x : y; });
  check_binary(
      a, b, [](const auto& x, const auto& y) { return soda::minimum(x, y); },
      [](T x, T y) { return x <= y ? x : y; });
  check_binary(
      a, b, [](const auto& x, const auto& y) { return soda::greater(x, y); },
      [](T x, T y) { return T(x > y); });
  check_binary(
      a, b, [](const auto& x, const auto& y) { return soda::less_equal(x, y); },
      [](T x, T y) { return T(x <= y); });
  check_binary(
      a, b, [](const auto& x, const auto& y) { return soda::equal(x, y); },
      [](T x, T y) { return T(x == y); });
}

// Unary op vs a double-precision reference, within rel (and atol near zero).
template <class T, class Op>
void check_unary(const Tensor<T>& x, Op op, const std::function<double(double)>& ref, double rel,
                 double atol = 0) {
  const auto out = op(x);
  CHECK(out.shape() == x.shape());
  std::vector<double> expected;
  for (const double v : oracle::values(x)) expected.push_back(ref(v));
  oracle::check_close(out, expected, rel, atol);
}

}  // namespace

TEST_SUITE("core/elementwise") {
  TEST_CASE("binary ops broadcast [4,1] with [3], scalars, and [2,1,3] with [1,4,1]") {
    check_all_arithmetic(oracle::random<float>({4, 1}, 1), oracle::random<float>({3}, 2));
    check_all_arithmetic(oracle::random<float>({3}, 3), oracle::random<float>({4, 1}, 4));
    check_all_arithmetic(Tensor<float>::scalar(0.25f), oracle::random<float>({2, 5}, 5));
    check_all_arithmetic(oracle::random<float>({2, 5}, 6), Tensor<float>::scalar(-0.5f));
    check_all_arithmetic(oracle::random<double>({2, 1, 3}, 7),
                         oracle::random<double>({1, 4, 1}, 8));
    check_all_arithmetic(oracle::random<double>({5, 1, 17}, 9), oracle::random<double>({3, 1}, 10));
    check_all_arithmetic(Tensor<float>::scalar(2.f), Tensor<float>::scalar(3.f));
    // Equal values exercise the tie conventions of maximum/minimum/equal.
    check_all_arithmetic(Tensor<float>({4}, {1, 2, 3, 4}), Tensor<float>({4}, {1, 0, 3, 5}));
  }

  TEST_CASE("division matches IEEE division element by element") {
    const auto a = oracle::random<float>({3, 19}, 11);
    const auto b = oracle::random<float>({19}, 12, nullptr, 0.5, 2.0);
    check_binary(
        a, b, [](const auto& x, const auto& y) { return soda::div(x, y); },
        [](float x, float y) { return x / y; });
    check_binary(
        b, a, [](const auto& x, const auto& y) { return soda::div(x, y); },
        [](float x, float y) { return x / y; });
  }

  TEST_CASE("binary ops read transposed, strided-slice and broadcast views correctly") {
    const auto base = oracle::random<float>({6, 10}, 13);
    const auto t = soda::transpose(base, 0, 1);  // [10, 6]
    const auto s =
        soda::slice(oracle::random<float>({10, 13}, 14), 1, 1, 13, 2);  // [10, 6], stride 2
    const auto bc = soda::broadcast_to(oracle::random<float>({10, 1}, 15), {10, 6});
    const auto row = soda::broadcast_to(oracle::random<float>({6}, 16), {10, 6});
    check_all_arithmetic(t, s);
    check_all_arithmetic(s, bc);
    check_all_arithmetic(bc, row);
    check_all_arithmetic(t, oracle::random<float>({6}, 17));
    check_all_arithmetic(soda::slice(t, 0, 9, 0, 1),
                         oracle::random<float>({6}, 32));  // [0, 6] result
  }

  TEST_CASE("binary ops above the parallel threshold agree with a naive loop") {
    const auto a = oracle::random<float>({300, 1001}, 18);
    const auto b = oracle::random<float>({1001}, 19);
    check_binary(
        a, b, [](const auto& x, const auto& y) { return soda::add(x, y); },
        [](float x, float y) { return x + y; });
    check_binary(
        soda::transpose(oracle::random<float>({513, 260}, 20), 0, 1),
        oracle::random<float>({260, 513}, 21),
        [](const auto& x, const auto& y) { return soda::mul(x, y); },
        [](float x, float y) { return x * y; });
    const auto big = oracle::random<float>({(1 << 17) + 5}, 22);
    check_binary(
        big, big, [](const auto& x, const auto& y) { return soda::sub(x, y); },
        [](float x, float y) { return x - y; });
    check_unary(
        big, [](const auto& x) { return soda::exp(x); }, [](double v) { return std::exp(v); },
        1e-6);
  }

  TEST_CASE("incompatible shapes throw ShapeError naming the op") {
    try {
      soda::mul(Tensor<float>::empty({2, 3}), Tensor<float>::empty({4}));
      FAIL("expected ShapeError");
    } catch (const soda::ShapeError& e) {
      CHECK(std::string(e.what()).rfind("mul:", 0) == 0);
    }
  }

  TEST_CASE("exp, log, tanh, sigmoid and sqrt in float agree with <cmath> to ~1e-6 relative") {
    // 1003 elements: SIMD body plus a scalar tail; the transposed copy takes the scalar path.
    const auto x = oracle::random<float>({17, 59}, 23, nullptr, -20.0, 20.0);
    const auto pos = oracle::random<float>({17, 59}, 24, nullptr, 1e-3, 1e3);
    for (const auto& in : {x, soda::transpose(x, 0, 1)}) {
      check_unary(
          in, [](const auto& v) { return soda::exp(v); }, [](double v) { return std::exp(v); },
          1e-6);
      check_unary(
          in, [](const auto& v) { return soda::tanh(v); }, [](double v) { return std::tanh(v); },
          1e-6, 1e-7);
      check_unary(
          in, [](const auto& v) { return soda::sigmoid(v); },
          [](double v) { return 1 / (1 + std::exp(-v)); }, 1e-6, 1e-12);
    }
    for (const auto& in : {pos, soda::transpose(pos, 0, 1)}) {
      check_unary(
          in, [](const auto& v) { return soda::log(v); }, [](double v) { return std::log(v); },
          1e-6, 1e-7);
      check_unary(
          in, [](const auto& v) { return soda::sqrt(v); }, [](double v) { return std::sqrt(v); },
          1e-7);
    }
    const auto small = oracle::random<float>({64}, 25, nullptr, -1e-3, 1e-3);
    check_unary(
        small, [](const auto& v) { return soda::tanh(v); }, [](double v) { return std::tanh(v); },
        2e-7, 1e-12);
  }

  TEST_CASE("transcendentals in double agree with <cmath> to ~1e-14 relative") {
    const auto x = oracle::random<double>({1001}, 26, nullptr, -30.0, 30.0);
    const auto pos = oracle::random<double>({1001}, 27, nullptr, 1e-6, 1e6);
    check_unary(
        x, [](const auto& v) { return soda::exp(v); }, [](double v) { return std::exp(v); }, 1e-14);
    check_unary(
        x, [](const auto& v) { return soda::tanh(v); }, [](double v) { return std::tanh(v); },
        1e-14, 1e-300);
    check_unary(
        x, [](const auto& v) { return soda::sigmoid(v); },
        [](double v) { return 1 / (1 + std::exp(-v)); }, 1e-14);
    check_unary(
        pos, [](const auto& v) { return soda::log(v); }, [](double v) { return std::log(v); },
        1e-14, 1e-15);
    check_unary(
        pos, [](const auto& v) { return soda::sqrt(v); }, [](double v) { return std::sqrt(v); },
        1e-15);
  }

  TEST_CASE("transcendentals take IEEE limits at the edges, in SIMD and scalar lanes alike") {
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // Each edge value sits at position j (inside the SIMD body) and at 64 + j: with 71 elements
    // that is the scalar tail for 8- and 16-lane batches alike.
    auto edges = [&](const std::vector<float>& e) {
      std::vector<float> v(71, 1.0f);
      for (std::size_t j = 0; j < e.size(); ++j) v[j] = v[64 + j] = e[j];
      return Tensor<float>({71}, v);
    };
    auto check_edges = [&](const Tensor<float>& out, const std::vector<float>& expected) {
      for (std::size_t j = 0; j < expected.size(); ++j) {
        for (const std::size_t at : {j, 64 + j}) {
          CAPTURE(at);
          const float got = out.data()[at];
          if (std::isnan(expected[j])) {
            CHECK(std::isnan(got));
          } else if (std::isinf(expected[j])) {
            CHECK(got == expected[j]);
          } else {  // a SIMD lane may flush a subnormal result to 0
            CHECK(std::abs(got - expected[j]) <= 1e-6f * std::abs(expected[j]) + 1e-38f);
          }
        }
      }
    };
    const auto x = edges({-inf, inf, 0.f, -100.f, 100.f, -1e-30f, 89.f});
    check_edges(soda::exp(x), {0.f, inf, 1.f, std::exp(-100.f), inf, 1.f, inf});
    // sigmoid(−100) is 3.7e-44 (subnormal): 1 / (1 + exp(100)) overflows to exactly 0 in float.
    check_edges(soda::sigmoid(x), {0.f, 1.f, 0.5f, 0.f, 1.f, 0.5f, 1.f});
    check_edges(soda::tanh(x), {-1.f, 1.f, 0.f, -1.f, 1.f, -1e-30f, 1.f});
    const auto p = edges({0.f, 1.f, inf, 4.f, -1.f, nan, 0.25f});
    check_edges(soda::log(p), {-inf, 0.f, inf, std::log(4.f), nan, nan, std::log(0.25f)});
    check_edges(soda::sqrt(p), {0.f, 1.f, inf, 2.f, nan, nan, 0.5f});
  }

  TEST_CASE("piecewise unary ops are exact: neg, abs, relu, sign, square, pow, clamp") {
    std::vector<double> v;
    auto x = oracle::random<float>({3, 11}, 28, &v, -3.0, 3.0);
    x.at({0, 0}) = 0.f;
    v[0] = 0.0;
    auto exact = [&](auto op, auto f) {
      std::vector<double> expected;
      for (const double d : v) expected.push_back(static_cast<double>(f(static_cast<float>(d))));
      oracle::check_equal(op(x), expected);
      oracle::check_equal(
          op(soda::transpose(x, 0, 1)),
          oracle::values(soda::transpose(oracle::tensor<float>({3, 11}, expected), 0, 1)));
    };
    exact([](const auto& t) { return soda::neg(t); }, [](float f) { return -f; });
    exact([](const auto& t) { return soda::abs(t); }, [](float f) { return std::fabs(f); });
    exact([](const auto& t) { return soda::relu(t); }, [](float f) { return f > 0 ? f : 0.f; });
    exact([](const auto& t) { return soda::sign(t); },
          [](float f) { return f > 0 ? 1.f : (f < 0 ? -1.f : 0.f); });
    exact([](const auto& t) { return soda::square(t); }, [](float f) { return f * f; });
    exact([](const auto& t) { return soda::pow(t, 2.f); }, [](float f) { return f * f; });
    exact([](const auto& t) { return soda::pow(t, 1.f); }, [](float f) { return f; });
    exact([](const auto& t) { return soda::clamp(t, -1.f, 0.5f); },
          [](float f) { return std::min(std::max(f, -1.f), 0.5f); });
    CHECK_THROWS_AS(soda::clamp(x, 1.f, 0.f), soda::ValueError);
    const auto p3 = soda::pow(soda::abs(x), 3.f);
    std::vector<double> expected;
    for (const double d : v) expected.push_back(std::pow(std::fabs(static_cast<float>(d)), 3.0));
    oracle::check_close(p3, expected, 1e-6, 1e-30);
  }

  TEST_CASE("maximum and minimum propagate NaN from either operand") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // 35 elements: SIMD body and scalar tail; NaN alternates between the operands.
    std::vector<float> a(35, 1.f), b(35, 2.f);
    for (std::size_t i = 0; i < 35; i += 3) (i % 2 == 0 ? a : b)[i] = nan;
    const Tensor<float> ta({35}, a), tb({35}, b);
    for (const auto& out : {soda::maximum(ta, tb), soda::maximum(tb, ta), soda::minimum(ta, tb),
                            soda::minimum(tb, ta)}) {
      for (std::size_t i = 0; i < 35; ++i) {
        CAPTURE(i);
        CHECK(std::isnan(out.data()[i]) == (i % 3 == 0));
      }
    }
  }

  TEST_CASE("where selects from broadcast operands by a nonzero condition") {
    const Tensor<float> cond({3, 1}, {1, 0, -2});
    const auto a = oracle::random<float>({4}, 29);
    const auto b = oracle::random<float>({3, 4}, 30);
    const auto out =
        soda::where(cond, a, soda::transpose(soda::contiguous(soda::transpose(b, 0, 1)), 0, 1));
    REQUIRE(out.shape() == Shape{3, 4});
    const auto va = oracle::values(a), vb = oracle::values(b);
    std::vector<double> expected;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j)
        expected.push_back(i != 1 ? va[static_cast<std::size_t>(j)]
                                  : vb[static_cast<std::size_t>(i * 4 + j)]);
    oracle::check_equal(out, expected);
    CHECK_THROWS_AS(soda::where(Tensor<float>::empty({2}), a, b), soda::ShapeError);
  }

  TEST_CASE("integer tensors add, subtract, multiply and divide with C++ semantics") {
    const Tensor<std::int32_t> a({2, 3}, {1, -7, 100000, 3, 0, -2});
    const Tensor<std::int32_t> b({3}, {5, 2, -3});
    check_all_arithmetic(a, b);
    check_binary(
        a, b, [](const auto& x, const auto& y) { return soda::div(x, y); },
        [](std::int32_t x, std::int32_t y) { return x / y; });
    const Tensor<std::int64_t> big({2}, {std::int64_t{1} << 40, -(std::int64_t{1} << 41)});
    oracle::check_equal(soda::add(big, big), {2199023255552.0, -4398046511104.0});
    const Tensor<std::uint8_t> u({3}, {200, 100, 7});
    oracle::check_equal(soda::add(u, u), {144, 200, 14});  // wraps modulo 256
    const auto large =
        oracle::tensor<std::int32_t>({300, 300}, oracle::uniform(90000, 31, -1000, 1000));
    check_binary(
        large, soda::transpose(large, 0, 1),
        [](const auto& x, const auto& y) { return soda::mul(x, y); },
        [](std::int32_t x, std::int32_t y) { return x * y; });
    check_unary(
        a, [](const auto& v) { return soda::neg(v); }, [](double v) { return -v; }, 0);
    check_unary(
        a, [](const auto& v) { return soda::abs(v); }, [](double v) { return std::fabs(v); }, 0);
  }

  TEST_CASE("scalar operators promote the scalar to a 0-d tensor on either side") {
    const Tensor<float> x({3}, {1, 2, 4});
    oracle::check_equal(x + 1, {2, 3, 5});
    oracle::check_equal(1.5 - x, {0.5, -0.5, -2.5});
    oracle::check_equal(x * 2.f, {2, 4, 8});
    oracle::check_equal(8 / x, {8, 4, 2});
    oracle::check_equal(x / 2, {0.5, 1, 2});
    oracle::check_equal(-x, {-1, -2, -4});
    oracle::check_equal(x - x * x, {0, -2, -12});
  }

}  // TEST_SUITE
