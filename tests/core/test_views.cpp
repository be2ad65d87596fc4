// Views over core storage (the public soda::reshape/permute/slice/broadcast_to/... wrap
// Tensor::view_with): metadata, storage sharing, and contiguous() against a naive gather written
// here from each view's definition.
#include "oracle.hpp"

#include <string>

using soda::Shape;
using soda::Strides;
using soda::Tensor;

namespace {

// Base [2, 3, 4] holding 0..23, so a value names its own row-major position.
Tensor<float> iota234() {
  std::vector<double> v(24);
  for (int i = 0; i < 24; ++i) v[static_cast<std::size_t>(i)] = i;
  return oracle::tensor<float>({2, 3, 4}, v);
}

// The view's values read through its strides, and its contiguous() copy, both equal `expected`.
void check_view(const Tensor<float>& view, const std::vector<double>& expected) {
  oracle::check_equal(view, expected);
  const auto c = soda::contiguous(view);
  CHECK(c.is_contiguous());
  CHECK(c.strides() == soda::contiguous_strides(view.shape()));
  REQUIRE(static_cast<std::size_t>(c.numel()) == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    CHECK(c.data()[i] == static_cast<float>(expected[i]));
}

}  // namespace

TEST_SUITE("core/views") {
  TEST_CASE("reshape of a contiguous tensor is a view, with one -1 inferred") {
    const auto x = iota234();
    const auto r = soda::reshape(x, {4, -1});
    CHECK(r.shape() == Shape{4, 6});
    CHECK(r.strides() == Strides{6, 1});
    CHECK(r.raw_data() == x.raw_data());
    r.at({3, 5}) = -1;
    CHECK(x.at({1, 2, 3}) == -1.0f);
    CHECK(soda::reshape(x, {-1}).shape() == Shape{24});
    CHECK(soda::reshape(x, {2, -1, 2}).shape() == Shape{2, 6, 2});
    CHECK(soda::reshape(Tensor<float>({1}, {3}), {}).ndim() == 0);
    CHECK(soda::reshape(Tensor<float>::empty({0, 4}), {-1, 2}).shape() == Shape{0, 2});
  }

  TEST_CASE("reshape rejects impossible targets with ShapeError") {
    const auto x = iota234();
    CHECK_THROWS_AS(soda::reshape(x, {5, -1}), soda::ShapeError);
    CHECK_THROWS_AS(soda::reshape(x, {-1, -1}), soda::ShapeError);
    CHECK_THROWS_AS(soda::reshape(x, {25}), soda::ShapeError);
    CHECK_THROWS_AS(soda::reshape(x, {-2, 12}), soda::ShapeError);
    // Extents whose product overflows int64 (with a -1 to infer, before any count is compared).
    CHECK_THROWS_AS(soda::reshape(x, {std::int64_t{1} << 40, std::int64_t{1} << 40, -1}),
                    soda::ShapeError);
    try {
      soda::reshape(x, {7});
      FAIL("expected ShapeError");
    } catch (const soda::ShapeError& e) {
      CHECK(std::string(e.what()).find("[2, 3, 4]") != std::string::npos);
    }
  }

  TEST_CASE("reshape of a non-contiguous view copies the values in row-major order") {
    const auto x = iota234();
    const auto t = soda::transpose(x, 0, 2);  // [4, 3, 2]
    const auto r = soda::reshape(t, {4, 6});
    CHECK(r.is_contiguous());
    CHECK(r.raw_data() != x.raw_data());
    std::vector<double> expected;
    for (int k = 0; k < 4; ++k)
      for (int j = 0; j < 3; ++j)
        for (int i = 0; i < 2; ++i) expected.push_back(i * 12 + j * 4 + k);
    check_view(r, expected);
    r.at({0, 0}) = 100;  // a copy: the base is untouched
    CHECK(x.at({0, 0, 0}) == 0.0f);
  }

  TEST_CASE("transpose and permute permute shape and strides without copying") {
    const auto x = iota234();
    const auto t = soda::transpose(x, 0, -1);
    CHECK(t.shape() == Shape{4, 3, 2});
    CHECK(t.strides() == Strides{1, 4, 12});
    CHECK(t.raw_data() == x.raw_data());
    const auto p = soda::permute(x, {1, 2, 0});
    CHECK(p.shape() == Shape{3, 4, 2});
    CHECK(p.strides() == Strides{4, 1, 12});
    std::vector<double> expected;
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        for (int i = 0; i < 2; ++i) expected.push_back(i * 12 + j * 4 + k);
    check_view(p, expected);
    CHECK(soda::permute(x, {0, 1, 2}).raw_data() == x.raw_data());
    CHECK(soda::permute(x, {-3, -2, -1}).strides() == x.strides());
    CHECK_THROWS_AS(soda::permute(x, {0, 1}), soda::ShapeError);
    CHECK_THROWS_AS(soda::permute(x, {0, 1, 1}), soda::ShapeError);
    CHECK_THROWS(soda::permute(x, {0, 1, 3}));
  }

  TEST_CASE("slice with negative bounds and a step views every step-th element") {
    const auto x = iota234();
    const auto s = soda::slice(x, -1, -3, 4, 2);  // axis 2, indices {1, 3}
    CHECK(s.shape() == Shape{2, 3, 2});
    CHECK(s.strides() == Strides{12, 4, 2});
    CHECK(s.offset() == 1);
    CHECK(s.raw_data() == x.raw_data() + 1);
    std::vector<double> expected;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k : {1, 3}) expected.push_back(i * 12 + j * 4 + k);
    check_view(s, expected);

    const auto rows = soda::slice(x, 1, 0, -1, 1);  // indices {0, 1}
    CHECK(rows.shape() == Shape{2, 2, 4});
    const auto step3 = soda::slice(x, 1, 0, 3, 2);  // {0, 2}
    CHECK(step3.shape() == Shape{2, 2, 4});
    CHECK(step3.at({1, 1, 3}) == 1 * 12 + 2 * 4 + 3.0f);
    // Bounds clip to the axis; an empty range gives an empty view.
    CHECK(soda::slice(x, 2, -100, 100, 1).shape() == Shape{2, 3, 4});
    CHECK(soda::slice(x, 2, 3, 1, 1).shape() == Shape{2, 3, 0});
    CHECK(soda::slice(x, 2, 1, 4, 5).shape() == Shape{2, 3, 1});
    CHECK_THROWS_AS(soda::slice(x, 0, 0, 2, 0), soda::ValueError);
    CHECK_THROWS_AS(soda::slice(x, 0, 0, 2, -1), soda::ValueError);
    CHECK_THROWS_AS(soda::slice(x, 3, 0, 2, 1), soda::ValueError);

    s.at({0, 0, 0}) = -5;  // a view: writes reach the base
    CHECK(x.at({0, 0, 1}) == -5.0f);
  }

  TEST_CASE("broadcast_to repeats values through stride 0") {
    Tensor<float> col({3, 1}, {1, 2, 3});
    const auto b = soda::broadcast_to(col, {2, 3, 4});
    CHECK(b.shape() == Shape{2, 3, 4});
    CHECK(b.strides() == Strides{0, 1, 0});
    CHECK(b.raw_data() == col.raw_data());
    CHECK_FALSE(b.is_contiguous());
    std::vector<double> expected;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k) expected.push_back(j + 1);
    check_view(b, expected);
    col.at({1, 0}) = 20;
    CHECK(b.at({1, 1, 3}) == 20.0f);

    const auto s = soda::broadcast_to(Tensor<float>::scalar(7), {2, 2});
    CHECK(s.strides() == Strides{0, 0});
    check_view(s, {7, 7, 7, 7});
    CHECK_THROWS_AS(soda::broadcast_to(col, {3, 2, 2}), soda::ShapeError);
    CHECK_THROWS_AS(soda::broadcast_to(col, {1}), soda::ShapeError);
  }

  TEST_CASE("chains of views gather the right values") {
    const auto x = iota234();
    // permute -> slice with step -> broadcast a unit axis
    const auto p = soda::permute(x, {2, 0, 1});  // [4, 2, 3]: p[k,i,j] = x[i,j,k]
    const auto s = soda::slice(p, 0, 3, -5, 1);  // empty (start 3 > stop clipped to 0)
    CHECK(s.numel() == 0);
    const auto s2 = soda::slice(p, 0, 1, 4, 2);                  // k in {1, 3}
    const auto u = soda::unsqueeze(soda::select(s2, 2, -1), 0);  // j = 2 -> [1, 2, 2]
    const auto b = soda::broadcast_to(u, {3, 2, 2});
    std::vector<double> expected;
    for (int r = 0; r < 3; ++r)
      for (int k : {1, 3})
        for (int i = 0; i < 2; ++i) expected.push_back(i * 12 + 2 * 4 + k);
    check_view(b, expected);
  }

  TEST_CASE("select drops an axis and checks its index") {
    const auto x = iota234();
    const auto s = soda::select(x, 1, -1);  // j = 2
    CHECK(s.shape() == Shape{2, 4});
    std::vector<double> expected;
    for (int i = 0; i < 2; ++i)
      for (int k = 0; k < 4; ++k) expected.push_back(i * 12 + 8 + k);
    check_view(s, expected);
    CHECK(soda::select(soda::select(x, 0, 1), 0, 0).shape() == Shape{4});
    CHECK_THROWS_AS(soda::select(x, 1, 3), soda::IndexError);
    CHECK_THROWS_AS(soda::select(x, 1, -4), soda::IndexError);
  }

  TEST_CASE("squeeze and unsqueeze remove and insert unit axes") {
    const auto x = iota234();
    CHECK(soda::unsqueeze(x, 0).shape() == Shape{1, 2, 3, 4});
    CHECK(soda::unsqueeze(x, -1).shape() == Shape{2, 3, 4, 1});
    CHECK(soda::unsqueeze(x, 2).shape() == Shape{2, 3, 1, 4});
    CHECK(soda::unsqueeze(x, 2).raw_data() == x.raw_data());
    const auto u = soda::unsqueeze(x, 1);
    CHECK(soda::squeeze(u, 1).shape() == x.shape());
    CHECK_THROWS_AS(soda::squeeze(x, 0), soda::ShapeError);
    CHECK(soda::unsqueeze(Tensor<float>::scalar(1), 0).shape() == Shape{1});
    // unsqueeze of a strided view keeps its values
    const auto t = soda::transpose(x, 0, 2);
    const auto ut = soda::unsqueeze(t, 1);
    CHECK(ut.shape() == Shape{4, 1, 3, 2});
    oracle::check_equal(ut, oracle::values(t));
  }

  TEST_CASE("flatten merges the axes from start_axis on") {
    const auto x = iota234();
    CHECK(soda::flatten(x).shape() == Shape{24});
    CHECK(soda::flatten(x, 1).shape() == Shape{2, 12});
    CHECK(soda::flatten(x, -1).shape() == Shape{2, 3, 4});
    CHECK(soda::flatten(Tensor<float>::scalar(3)).shape() == Shape{1});
    const auto f = soda::flatten(soda::transpose(x, 0, 1), 1);  // [3, 8]
    std::vector<double> expected;
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i)
        for (int k = 0; k < 4; ++k) expected.push_back(i * 12 + j * 4 + k);
    check_view(f, expected);
  }

  TEST_CASE("contiguous() of a contiguous tensor is the tensor itself; clone always copies") {
    const auto x = iota234();
    CHECK(soda::contiguous(x).raw_data() == x.raw_data());
    const auto c = soda::clone(x);
    CHECK(c.raw_data() != x.raw_data());
    check_view(c, oracle::values(x));
  }

}  // TEST_SUITE
