// soda/core/tensor.hpp (and storage.hpp): construction, metadata, shared storage, element access
// and the errors a user meets first.
#include "oracle.hpp"

#include <cstdint>
#include <string>

using soda::Shape;
using soda::Tensor;

namespace {

template <class T>
bool aligned64(const Tensor<T>& t) {
  return reinterpret_cast<std::uintptr_t>(t.raw_data()) % 64 == 0;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_SUITE("core/tensor") {
  TEST_CASE("a tensor built from values holds them in row-major order") {
    Tensor<float> t({2, 3}, {1, 2, 3, 4, 5, 6});
    CHECK(t.defined());
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.strides() == soda::Strides{3, 1});
    CHECK(t.ndim() == 2);
    CHECK(t.numel() == 6);
    CHECK(t.size(0) == 2);
    CHECK(t.size(-1) == 3);
    CHECK(t.offset() == 0);
    CHECK(t.is_contiguous());
    CHECK(t.at({0, 0}) == 1.0f);
    CHECK(t.at({0, 2}) == 3.0f);
    CHECK(t.at({1, 0}) == 4.0f);
    CHECK(t.at({1, 2}) == 6.0f);
    for (int i = 0; i < 6; ++i) CHECK(t.data()[i] == static_cast<float>(i + 1));
    CHECK_THROWS_AS(t.size(2), soda::ValueError);
    CHECK_THROWS_AS(t.size(-3), soda::ValueError);
  }

  TEST_CASE("a value count that does not match the shape throws ShapeError naming both") {
    try {
      Tensor<float>({2, 3}, {1, 2, 3, 4, 5});
      FAIL("expected ShapeError");
    } catch (const soda::ShapeError& e) {
      const std::string msg = e.what();
      CHECK(contains(msg, "[2, 3]"));
      CHECK(contains(msg, "6"));
      CHECK(contains(msg, "5"));
    }
    CHECK_THROWS_AS(Tensor<double>({}, {}), soda::ShapeError);
    CHECK_THROWS_AS(Tensor<float>({2, -1}, {}), soda::ShapeError);
    CHECK_THROWS_AS(Tensor<float>::empty({-2}), soda::ShapeError);
  }

  TEST_CASE("scalars and empty tensors have consistent metadata") {
    const auto s = Tensor<double>::scalar(2.5);
    CHECK(s.ndim() == 0);
    CHECK(s.numel() == 1);
    CHECK(s.shape().empty());
    CHECK(s.item() == 2.5);
    CHECK(s.at({}) == 2.5);
    CHECK_THROWS_AS(s.size(0), soda::ValueError);

    const auto e = Tensor<float>::empty({3, 0});
    CHECK(e.numel() == 0);
    CHECK(e.is_contiguous());
    CHECK(Tensor<float>({0}, {}).numel() == 0);
  }

  TEST_CASE("fresh storage is 64-byte aligned for every dtype and size") {
    for (std::int64_t n : {0, 1, 3, 7, 15, 16, 17, 63, 64, 65, 1000, 4097}) {
      CHECK(aligned64(Tensor<float>::empty({n})));
      CHECK(aligned64(Tensor<double>::empty({n})));
      CHECK(aligned64(Tensor<std::int8_t>::empty({n})));
      CHECK(aligned64(Tensor<std::uint8_t>::empty({n})));
      CHECK(aligned64(Tensor<std::int32_t>::empty({n})));
      CHECK(aligned64(Tensor<std::int64_t>::empty({n, 1})));
      CHECK(aligned64(soda::zeros<float>({n, 3})));
    }
    CHECK(aligned64(Tensor<float>({3}, {1, 2, 3})));
    CHECK(aligned64(Tensor<float>::scalar(1)));
    const auto a = oracle::random<float>({5, 7}, 1);
    CHECK(aligned64(soda::add(a, a)));
    CHECK(aligned64(soda::exp(a)));
    CHECK(aligned64(soda::sum(a, {1})));
    CHECK(aligned64(soda::matmul(a, soda::transpose(a, 0, 1))));
    CHECK(aligned64(soda::contiguous(soda::transpose(a, 0, 1))));
  }

  TEST_CASE("copies of a tensor share storage") {
    Tensor<float> a({3}, {1, 2, 3});
    Tensor<float> b = a;  // NOLINT(performance-unnecessary-copy-initialization)
    b.at({1}) = 20;
    CHECK(a.at({1}) == 20.0f);
    CHECK(a.raw_data() == b.raw_data());
  }

  TEST_CASE("a view shares storage: writes through it are visible in the base") {
    Tensor<float> base({2, 3}, {0, 1, 2, 3, 4, 5});
    const auto col = base.view_with({2}, {3}, 1);  // column 1
    CHECK(col.at({0}) == 1.0f);
    CHECK(col.at({1}) == 4.0f);
    col.at({1}) = 40;
    CHECK(base.at({1, 1}) == 40.0f);
    base.at({0, 1}) = 10;
    CHECK(col.at({0}) == 10.0f);

    const auto r = soda::reshape(base, {3, 2});
    r.at({2, 1}) = 50;
    CHECK(base.at({1, 2}) == 50.0f);
    const auto t = soda::transpose(base, 0, 1);
    t.at({0, 1}) = 30;
    CHECK(base.at({1, 0}) == 30.0f);
  }

  TEST_CASE("at() accepts negative indices and rejects out-of-bounds ones with IndexError") {
    Tensor<std::int32_t> t({2, 3}, {0, 1, 2, 3, 4, 5});
    CHECK(t.at({-1, -1}) == 5);
    CHECK(t.at({-2, 0}) == 0);
    CHECK_THROWS_AS(t.at({2, 0}), soda::IndexError);
    CHECK_THROWS_AS(t.at({0, 3}), soda::IndexError);
    CHECK_THROWS_AS(t.at({-3, 0}), soda::IndexError);
    CHECK_THROWS_AS(t.at({0}), soda::IndexError);        // too few indices
    CHECK_THROWS_AS(t.at({0, 0, 0}), soda::IndexError);  // too many
    try {
      t.at({0, 7});
      FAIL("expected IndexError");
    } catch (const soda::IndexError& e) {
      CHECK(contains(e.what(), "axis 1"));
      CHECK(contains(e.what(), "size 3"));
    }
  }

  TEST_CASE("item() reads a one-element tensor and throws ValueError otherwise") {
    CHECK(Tensor<float>({1, 1}, {7}).item() == 7.0f);
    try {
      (void)Tensor<float>({2}, {1, 2}).item();
      FAIL("expected ValueError");
    } catch (const soda::ValueError& e) {
      CHECK(contains(e.what(), "[2]"));
    }
    CHECK_THROWS_AS((void)Tensor<float>::empty({0}).item(), soda::ValueError);
  }

  TEST_CASE("is_contiguous ignores strides of unit axes and data() refuses strided views") {
    Tensor<float> base({2, 3}, {0, 1, 2, 3, 4, 5});
    CHECK(base.view_with({1, 3}, {99, 1}, 3).is_contiguous());
    CHECK_FALSE(base.view_with({3, 2}, {1, 3}, 0).is_contiguous());
    CHECK_FALSE(base.view_with({2, 2}, {3, 1}, 0).is_contiguous());
    CHECK_FALSE(base.view_with({2, 3}, {0, 1}, 0).is_contiguous());

    const auto t = soda::transpose(base, 0, 1);
    try {
      (void)t.data();
      FAIL("expected ValueError");
    } catch (const soda::ValueError& e) {
      CHECK(contains(e.what(), "contiguous()"));
    }
    CHECK(t.raw_data() == base.raw_data());
    // A contiguous row of a larger tensor starts at its offset.
    const auto row = soda::select(base, 0, 1);
    CHECK(row.is_contiguous());
    CHECK(row.data() == base.data() + 3);
  }

  TEST_CASE("detach shares data but drops requires_grad") {
    Tensor<double> x({3}, {1, 2, 3});
    x.set_requires_grad(true);
    CHECK(x.requires_grad());
    const auto d = x.detach();
    CHECK_FALSE(d.requires_grad());
    CHECK(d.is_leaf());
    CHECK_FALSE(d.has_tangent());
    CHECK(d.raw_data() == x.raw_data());
    d.at({0}) = 10;
    CHECK(x.at({0}) == 10.0);
    CHECK(x.requires_grad());
  }

  TEST_CASE("set_requires_grad works on floating tensors and throws on integer ones") {
    Tensor<float> f({2}, {1, 2});
    CHECK(f.set_requires_grad(true).requires_grad());
    CHECK_FALSE(f.set_requires_grad(false).requires_grad());
    Tensor<std::int32_t> i({2}, {1, 2});
    try {
      i.set_requires_grad(true);
      FAIL("expected ValueError");
    } catch (const soda::ValueError& e) {
      CHECK(contains(e.what(), "int32"));
    }
    CHECK_THROWS_AS(Tensor<std::int64_t>({1}, {1}).set_requires_grad(true), soda::ValueError);
    CHECK_THROWS_AS(Tensor<std::uint8_t>({1}, {1}).set_requires_grad(true), soda::ValueError);
    CHECK_NOTHROW(i.set_requires_grad(false));  // turning it off is harmless
  }

  TEST_CASE("an undefined tensor reports itself and throws ValueError on use") {
    Tensor<float> u;
    CHECK_FALSE(u.defined());
    CHECK_FALSE(u.requires_grad());
    CHECK_FALSE(u.has_tangent());
    CHECK_THROWS_AS((void)u.shape(), soda::ValueError);
    CHECK_THROWS_AS((void)u.numel(), soda::ValueError);
    CHECK_THROWS_AS((void)u.raw_data(), soda::ValueError);
    CHECK_THROWS_AS((void)u.item(), soda::ValueError);
    CHECK_THROWS_AS((void)u.detach(), soda::ValueError);
    CHECK_THROWS_AS(u.set_requires_grad(true), soda::ValueError);
    try {
      (void)u.strides();
      FAIL("expected ValueError");
    } catch (const soda::ValueError& e) {
      CHECK(contains(e.what(), "undefined"));
    }
    CHECK_THROWS_AS(soda::add(u, u), soda::ValueError);
  }

  TEST_CASE("gradient and tangent slots start empty") {
    Tensor<float> x({2}, {1, 2});
    CHECK(x.is_leaf());
    CHECK_FALSE(x.grad().defined());
    CHECK_FALSE(x.tangent().defined());
    CHECK_NOTHROW(x.zero_grad());
  }

}  // TEST_SUITE
