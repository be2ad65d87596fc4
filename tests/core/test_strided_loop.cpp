// soda/core/kernels/strided_loop.hpp: broadcast strides, dimension coalescing, and for_each_row
// visiting every element of every operand exactly once (checked against naive offsets).
#include "oracle.hpp"

#include <mutex>
#include <set>
#include <tuple>

using soda::Shape;
using soda::Strides;
using soda::Tensor;

namespace {

// Every (offset_0, offset_1) pair for_each_row visits, in any order.
std::multiset<std::pair<std::int64_t, std::int64_t>> visited(const Shape& shape, const Strides& s0,
                                                             const Strides& s1) {
  std::multiset<std::pair<std::int64_t, std::int64_t>> out;
  std::mutex m;
  soda::detail::for_each_row<2>(shape, {s0, s1},
                                [&](const auto& off, const auto& st, std::int64_t n) {
                                  const std::lock_guard<std::mutex> lock(m);
                                  for (std::int64_t i = 0; i < n; ++i)
                                    out.emplace(off[0] + i * st[0], off[1] + i * st[1]);
                                });
  return out;
}

// The same pairs from the definition: Σ index·stride over every multi-index.
std::multiset<std::pair<std::int64_t, std::int64_t>> naive(const Shape& shape, const Strides& s0,
                                                           const Strides& s1) {
  std::multiset<std::pair<std::int64_t, std::int64_t>> out;
  const auto n = oracle::count(shape);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto index = oracle::unravel(i, shape);
    std::int64_t a = 0, b = 0;
    for (std::size_t d = 0; d < index.size(); ++d) {
      a += index[d] * s0[d];
      b += index[d] * s1[d];
    }
    out.emplace(a, b);
  }
  return out;
}

}  // namespace

TEST_SUITE("core/strided_loop") {
  TEST_CASE("broadcast_strides right-aligns and zeroes unit and missing axes") {
    const auto t = Tensor<float>::empty({3, 1});
    CHECK(soda::detail::broadcast_strides(t, {2, 3, 4}) == Strides{0, 1, 0});
    CHECK(soda::detail::broadcast_strides(t, {3, 1}) == Strides{1, 0});
    CHECK(soda::detail::broadcast_strides(Tensor<float>::scalar(1), {2, 2}) == Strides{0, 0});
    const auto v = soda::transpose(Tensor<float>::empty({4, 5}), 0, 1);
    CHECK(soda::detail::broadcast_strides(v, {2, 5, 4}) == Strides{0, 1, 5});
  }

  TEST_CASE("coalesce merges axes contiguous in every operand and drops unit axes") {
    using soda::detail::coalesce;
    auto p = coalesce<2>({2, 3, 4}, {Strides{12, 4, 1}, Strides{12, 4, 1}});
    CHECK(p.shape == Shape{24});
    CHECK(p.strides[0] == Strides{1});
    p = coalesce<2>({2, 3, 4}, {Strides{12, 4, 1}, Strides{0, 4, 1}});  // broadcast leading axis
    CHECK(p.shape == Shape{2, 12});
    CHECK(p.strides[1] == Strides{0, 1});
    p = coalesce<2>({2, 1, 3}, {Strides{3, 3, 1}, Strides{1, 7, 2}});
    CHECK(p.shape == Shape{2, 3});
    CHECK(p.strides[1] == Strides{1, 2});
    p = coalesce<2>({}, {Strides{}, Strides{}});
    CHECK(p.shape == Shape{1});
    p = coalesce<2>({1, 1}, {Strides{1, 1}, Strides{5, 9}});
    CHECK(p.shape == Shape{1});
    const auto q = coalesce<1>({3, 4}, {Strides{1, 3}});  // column-major: nothing merges
    CHECK(q.shape == Shape{3, 4});
  }

  TEST_CASE("for_each_row visits each element once with the naive offsets") {
    struct Case {
      Shape shape;
      Strides a, b;
    };
    const std::vector<Case> cases{
        {{2, 3, 4}, {12, 4, 1}, {12, 4, 1}},  // both contiguous
        {{2, 3, 4}, {12, 4, 1}, {1, 2, 6}},   // one column-major
        {{4, 5}, {5, 1}, {0, 1}},             // broadcast row
        {{4, 5}, {5, 1}, {1, 0}},             // broadcast column
        {{3, 1, 5}, {5, 5, 1}, {10, 99, 2}},  // unit axis with a junk stride, step 2
        {{2, 2, 2, 2}, {8, 4, 2, 1}, {1, 2, 4, 8}},
        {{}, {}, {}},                       // scalar: one visit
        {{3, 0, 2}, {0, 2, 1}, {0, 2, 1}},  // empty: no visits
        {{7}, {1}, {0}},
    };
    for (const auto& c : cases) {
      CAPTURE(soda::to_string(c.shape));
      CHECK(visited(c.shape, c.a, c.b) == naive(c.shape, c.a, c.b));
    }
  }

  TEST_CASE("for_each_row over many rows splits across threads without losing or repeating one") {
    oracle::ThreadCountGuard guard;
    soda::set_num_threads(std::max(2, soda::max_threads()));
    const Shape shape{300, 7,
                      50};  // 2100 rows of 50 after coalescing the leading axes of operand 0
    const Strides a = soda::contiguous_strides(shape);
    const Strides b{1, 300, 2100};  // fully transposed
    CHECK(visited(shape, a, b) == naive(shape, a, b));
    const Shape wide{2, 1 << 16};
    CHECK(visited(wide, soda::contiguous_strides(wide), {0, 1}) ==
          naive(wide, soda::contiguous_strides(wide), {0, 1}));
  }

}  // TEST_SUITE
