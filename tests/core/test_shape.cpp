// soda/core/shape.hpp: numel, strides, broadcasting and axis normalisation.
#include <doctest/doctest.h>

#include <soda/soda.hpp>

#include <string>

using soda::Shape;

TEST_SUITE("core/shape") {
  TEST_CASE("numel multiplies extents; the empty shape is a scalar with one element") {
    CHECK(soda::numel(Shape{}) == 1);
    CHECK(soda::numel(Shape{7}) == 7);
    CHECK(soda::numel(Shape{2, 3, 4}) == 24);
    CHECK(soda::numel(Shape{2, 0, 4}) == 0);
  }

  TEST_CASE("to_string prints a shape as a bracketed list") {
    CHECK(soda::to_string(Shape{}) == "[]");
    CHECK(soda::to_string(Shape{5}) == "[5]");
    CHECK(soda::to_string(Shape{2, 3, 4}) == "[2, 3, 4]");
  }

  TEST_CASE("contiguous_strides are row-major element strides") {
    CHECK(soda::contiguous_strides(Shape{}) == soda::Strides{});
    CHECK(soda::contiguous_strides(Shape{5}) == soda::Strides{1});
    CHECK(soda::contiguous_strides(Shape{2, 3, 4}) == soda::Strides{12, 4, 1});
    CHECK(soda::contiguous_strides(Shape{3, 1, 2}) == soda::Strides{2, 2, 1});
  }

  TEST_CASE("check_shape_valid rejects negative extents and names the op") {
    CHECK_NOTHROW(soda::check_shape_valid(Shape{0, 3}, "op"));
    try {
      soda::check_shape_valid(Shape{2, -1}, "myop");
      FAIL("expected ShapeError");
    } catch (const soda::ShapeError& e) {
      const std::string msg = e.what();
      CHECK(msg.find("myop") != std::string::npos);
      CHECK(msg.find("[2, -1]") != std::string::npos);
    }
  }

  TEST_CASE(
      "a size past int64 is a ShapeError naming the op and the shape, never a wrapped count") {
    const std::int64_t big = std::int64_t{1} << 40;
    CHECK_THROWS_AS(soda::numel(Shape{big, big}), soda::ShapeError);  // 2^80 wraps to 0
    CHECK_THROWS_AS(soda::contiguous_strides(Shape{4, big, big}), soda::ShapeError);
    // A zero extent makes the count 0, but the strides in front of it would still wrap.
    CHECK_THROWS_AS(soda::check_shape_valid(Shape{big, big, 0}, "op"), soda::ShapeError);
    CHECK_THROWS_AS(soda::check_shape_valid(Shape{0, big, big}, "op"), soda::ShapeError);
    // 2^62 elements fit in int64; 2^62 four-byte elements do not.
    const std::int64_t half = std::int64_t{1} << 31;
    CHECK_NOTHROW(soda::check_shape_valid(Shape{half, half}, "op", 1));
    try {
      soda::check_shape_valid(Shape{half, half}, "myop", 4);
      FAIL("expected ShapeError");
    } catch (const soda::ShapeError& e) {
      const std::string msg = e.what();
      CHECK(msg.find("myop") != std::string::npos);
      CHECK(msg.find("[2147483648, 2147483648]") != std::string::npos);
    }
    // The largest counts still count: 3037000499² = 9223372030926249001 < 2^63 - 1.
    CHECK(soda::numel(Shape{3037000499, 3037000499}) == 9223372030926249001);
    CHECK(soda::numel(Shape{INT64_MAX}) == INT64_MAX);
    CHECK(soda::contiguous_strides(Shape{3037000499, 3037000499}) == soda::Strides{3037000499, 1});
  }

  TEST_CASE("broadcast_shapes follows NumPy rules") {
    CHECK(soda::broadcast_shapes({4, 1}, {3}, "t") == Shape{4, 3});
    CHECK(soda::broadcast_shapes({}, {2, 3}, "t") == Shape{2, 3});
    CHECK(soda::broadcast_shapes({2, 3}, {}, "t") == Shape{2, 3});
    CHECK(soda::broadcast_shapes({2, 1, 3}, {1, 4, 1}, "t") == Shape{2, 4, 3});
    CHECK(soda::broadcast_shapes({5, 1, 1}, {1, 1}, "t") == Shape{5, 1, 1});
    CHECK(soda::broadcast_shapes({0, 1}, {1, 3}, "t") == Shape{0, 3});
    CHECK(soda::broadcast_shapes({1}, {0}, "t") == Shape{0});
  }

  TEST_CASE("broadcast_shapes error names the op, both shapes and the clashing axis") {
    try {
      soda::broadcast_shapes({2, 3}, {4, 3}, "add");
      FAIL("expected ShapeError");
    } catch (const soda::ShapeError& e) {
      const std::string msg = e.what();
      CHECK(msg.find("add") != std::string::npos);
      CHECK(msg.find("[2, 3]") != std::string::npos);
      CHECK(msg.find("[4, 3]") != std::string::npos);
      CHECK(msg.find("2 vs 4") != std::string::npos);
    }
    CHECK_THROWS_AS(soda::broadcast_shapes({3}, {4}, "x"), soda::ShapeError);
    CHECK_THROWS_AS(soda::broadcast_shapes({2, 0}, {2, 3}, "x"), soda::ShapeError);
  }

  TEST_CASE("normalize_axis maps negative axes and rejects out-of-range ones") {
    CHECK(soda::normalize_axis(0, 3, "t") == 0);
    CHECK(soda::normalize_axis(2, 3, "t") == 2);
    CHECK(soda::normalize_axis(-1, 3, "t") == 2);
    CHECK(soda::normalize_axis(-3, 3, "t") == 0);
    CHECK_THROWS_AS(soda::normalize_axis(3, 3, "t"), soda::ValueError);
    CHECK_THROWS_AS(soda::normalize_axis(-4, 3, "t"), soda::ValueError);
    // A scalar has no axes at all.
    CHECK_THROWS_AS(soda::normalize_axis(0, 0, "t"), soda::ValueError);
    CHECK_THROWS_AS(soda::normalize_axis(-1, 0, "t"), soda::ValueError);
    try {
      soda::normalize_axis(5, 2, "softmax");
      FAIL("expected ValueError");
    } catch (const soda::ValueError& e) {
      const std::string msg = e.what();
      CHECK(msg.find("softmax") != std::string::npos);
      CHECK(msg.find("axis 5") != std::string::npos);
      CHECK(msg.find("rank 2") != std::string::npos);
    }
  }

  TEST_CASE(
      "normalize_axes sorts, deduplicates by error, and expands the empty list to every axis") {
    using Axes = std::vector<std::int64_t>;
    CHECK(soda::normalize_axes({}, 3, "t") == Axes{0, 1, 2});
    CHECK(soda::normalize_axes({}, 0, "t") == Axes{});
    CHECK(soda::normalize_axes({2, 0}, 3, "t") == Axes{0, 2});
    CHECK(soda::normalize_axes({-1, 1}, 3, "t") == Axes{1, 2});
    CHECK_THROWS_AS(soda::normalize_axes({1, -2}, 3, "t"), soda::ValueError);  // same axis twice
    CHECK_THROWS_AS(soda::normalize_axes({0, 0}, 3, "t"), soda::ValueError);
    CHECK_THROWS_AS(soda::normalize_axes({3}, 3, "t"), soda::ValueError);
  }

}  // TEST_SUITE
