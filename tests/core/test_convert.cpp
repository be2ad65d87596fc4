// soda/core/convert.hpp: Tensor<T>::to<U>() makes a contiguous copy with static_cast values.
#include "oracle.hpp"

#include <cstdint>

using soda::Shape;
using soda::Tensor;

TEST_SUITE("core/convert") {
  TEST_CASE("float -> double -> int32 -> int8 casts each value as static_cast does") {
    const std::vector<float> v{1.5f, -2.75f, 100.9f, -0.4f, 0.f, 127.f};
    Tensor<float> f({2, 3}, v);
    const auto d = f.to<double>();
    CHECK(d.shape() == Shape{2, 3});
    for (int i = 0; i < 6; ++i)
      CHECK(d.data()[i] == static_cast<double>(v[static_cast<std::size_t>(i)]));
    const auto i32 = d.to<std::int32_t>();
    oracle::check_equal(i32, {1, -2, 100, 0, 0, 127});  // truncation toward zero
    const auto i8 = i32.to<std::int8_t>();
    oracle::check_equal(i8, {1, -2, 100, 0, 0, 127});
    const auto back = i8.to<float>();
    oracle::check_equal(back, {1, -2, 100, 0, 0, 127});
  }

  TEST_CASE("narrowing integer conversions wrap modulo 2^n") {
    Tensor<std::int32_t> t({4}, {255, 256, -1, 300});
    oracle::check_equal(t.to<std::uint8_t>(), {255, 0, 255, 44});
    oracle::check_equal(t.to<std::int8_t>(), {-1, 0, -1, 44});
    oracle::check_equal(Tensor<std::int64_t>({1}, {std::int64_t{1} << 40}).to<double>(),
                        {1099511627776.0});
  }

  TEST_CASE("to<U>() of a strided view is a contiguous copy in row-major order") {
    std::vector<double> v;
    const auto x = oracle::random<double>({3, 4}, 5, &v);
    const auto t = soda::slice(soda::transpose(x, 0, 1), 0, 0, 4, 2);  // rows 0, 2 of xᵀ: [2, 3]
    const auto f = t.to<float>();
    CHECK(f.shape() == Shape{2, 3});
    CHECK(f.is_contiguous());
    std::vector<double> expected;
    for (int c : {0, 2})
      for (int r = 0; r < 3; ++r)
        expected.push_back(static_cast<float>(v[static_cast<std::size_t>(r * 4 + c)]));
    oracle::check_equal(f, expected);
    const auto b =
        soda::broadcast_to(Tensor<float>({2, 1}, {1.9f, -1.9f}), {2, 3}).to<std::int32_t>();
    oracle::check_equal(b, {1, 1, 1, -1, -1, -1});
  }

  TEST_CASE("to<T>() of the same type is an independent copy without autodiff state") {
    Tensor<float> x({2}, {1, 2});
    x.set_requires_grad(true);
    const auto y = x.to<float>();
    CHECK(y.raw_data() != x.raw_data());
    CHECK_FALSE(y.requires_grad());
    y.at({0}) = 5;
    CHECK(x.at({0}) == 1.0f);
    CHECK(Tensor<double>::scalar(2.5).to<std::int64_t>().item() == 2);
    CHECK(Tensor<float>::empty({0, 2}).to<double>().shape() == Shape{0, 2});
  }

}  // TEST_SUITE
