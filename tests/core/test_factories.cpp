// soda/core/factories.hpp: zeros, ones, full, *_like and arange (random factories are in
// test_generator.cpp).
#include "oracle.hpp"

#include <cstdint>
#include <string>
#include <vector>

using soda::Shape;

TEST_SUITE("core/factories") {
  TEST_CASE("full, zeros and ones fill every element of a contiguous tensor") {
    const auto f = soda::full<float>({3, 5}, 2.5f);
    CHECK(f.shape() == Shape{3, 5});
    CHECK(f.is_contiguous());
    for (int i = 0; i < 15; ++i) CHECK(f.data()[i] == 2.5f);
    const auto z = soda::zeros<double>({4});
    for (int i = 0; i < 4; ++i) CHECK(z.data()[i] == 0.0);
    const auto o = soda::ones<std::int32_t>({2, 2});
    for (int i = 0; i < 4; ++i) CHECK(o.data()[i] == 1);
    const auto i8 = soda::full<std::int8_t>({3}, std::int8_t{-7});
    for (int i = 0; i < 3; ++i) CHECK(i8.data()[i] == -7);
    CHECK(soda::zeros<float>({}).item() == 0.0f);
    CHECK(soda::ones<float>({0, 3}).numel() == 0);
    CHECK(soda::zeros<float>({2, 3}).shape() == Shape{2, 3});
  }

  TEST_CASE("full fills large tensors completely (above the parallel threshold)") {
    const std::int64_t n = (1 << 17) + 3;
    const auto t = soda::full<float>({n}, -1.25f);
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < n; ++i) wrong += t.data()[i] != -1.25f;
    CHECK(wrong == 0);
  }

  TEST_CASE("zeros_like and ones_like copy the shape, not the strides or values") {
    const auto x = soda::transpose(oracle::random<double>({2, 3}, 1), 0, 1);
    const auto z = soda::zeros_like(x);
    CHECK(z.shape() == Shape{3, 2});
    CHECK(z.is_contiguous());
    oracle::check_equal(z, std::vector<double>(6, 0.0));
    oracle::check_equal(soda::ones_like(x), std::vector<double>(6, 1.0));
  }

  TEST_CASE("arange counts from start by step, stopping below stop") {
    oracle::check_equal(soda::arange<float>(5.f), {0, 1, 2, 3, 4});
    oracle::check_equal(soda::arange<float>(2.f, 5.f), {2, 3, 4});
    oracle::check_equal(soda::arange<std::int32_t>(1, 10, 3), {1, 4, 7});
    oracle::check_equal(soda::arange<std::int64_t>(1, 11, 3), {1, 4, 7, 10});
    oracle::check_equal(soda::arange<std::int64_t>(5, 0, -2), {5, 3, 1});
    oracle::check_equal(soda::arange<double>(1.0, -1.0, -0.5), {1.0, 0.5, 0.0, -0.5});
    CHECK(soda::arange<float>(3.f).shape() == Shape{3});
  }

  TEST_CASE("arange with a fractional step computes start + i·step") {
    const auto t = soda::arange<double>(0.0, 1.0, 0.1);
    REQUIRE(t.numel() == 10);
    for (int i = 0; i < 10; ++i) CHECK(t.data()[i] == 0.0 + i * 0.1);
    const auto f = soda::arange<float>(-1.f, 1.f, 0.25f);
    REQUIRE(f.numel() == 8);
    for (int i = 0; i < 8; ++i) CHECK(f.data()[i] == -1.f + static_cast<float>(i) * 0.25f);
  }

  TEST_CASE("arange never yields a value at or past stop, even when the float span rounds up") {
    // In double, (0.3f − 0) / 0.1f = 3.0000000745..., yet 3 · 0.1f == 0.3f in float.
    const auto t = soda::arange<float>(0.f, 0.3f, 0.1f);
    CHECK(t.numel() == 3);
    for (std::int64_t i = 0; i < t.numel(); ++i) CHECK(t.data()[i] < 0.3f);
    const auto d = soda::arange<float>(0.3f, 0.f, -0.1f);
    for (std::int64_t i = 0; i < d.numel(); ++i) CHECK(d.data()[i] > 0.f);
  }

  TEST_CASE("arange over an empty range is empty; a zero step throws") {
    CHECK(soda::arange<float>(0.f).numel() == 0);
    CHECK(soda::arange<float>(3.f, 3.f).numel() == 0);
    CHECK(soda::arange<float>(3.f, 1.f).numel() == 0);
    CHECK(soda::arange<std::int32_t>(1, 5, -1).numel() == 0);
    CHECK(soda::arange<float>(-2.f).numel() == 0);
    CHECK_THROWS_AS(soda::arange<float>(0.f, 1.f, 0.f), soda::ValueError);
    CHECK_THROWS_AS(soda::arange<std::int32_t>(0, 1, 0), soda::ValueError);
  }

  TEST_CASE("zeros, empty, values and views refuse a shape whose count or bytes overflow int64") {
    const std::int64_t big = std::int64_t{1} << 40;
    // Before: 2^80 elements wrapped to 0, and a tensor backed by 0 bytes came back.
    try {
      soda::zeros<float>({big, big});
      FAIL("expected ShapeError");
    } catch (const soda::ShapeError& e) {
      CHECK(std::string(e.what()).find("[1099511627776, 1099511627776]") != std::string::npos);
    }
    CHECK_THROWS_AS(soda::ones<float>({0, big, big}), soda::ShapeError);
    // 2^61 doubles: the count fits, the 2^64 bytes do not.
    CHECK_THROWS_AS(soda::Tensor<double>::empty({std::int64_t{1} << 61}), soda::ShapeError);
    CHECK_THROWS_AS(soda::Tensor<float>({big, big}, std::vector<float>{}), soda::ShapeError);
    // A view of one value as 2^80 elements.
    const auto one = soda::ones<float>({1});
    CHECK_THROWS_AS(one.view_with({big, big}, {0, 0}, 0), soda::ShapeError);
    CHECK_THROWS_AS(soda::broadcast_to(one, {big, big}), soda::ShapeError);
  }

}  // TEST_SUITE
