// soda/core/parallel.hpp: parallel_for covers [0, n) with disjoint ranges, stays serial for small
// n and inside parallel regions, and splits work by index only.
#include "oracle.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <utility>
#include <vector>

namespace {

using Range = std::pair<std::int64_t, std::int64_t>;

std::vector<Range> ranges_of(std::int64_t n, std::int64_t grain) {
  std::vector<Range> ranges;
  std::mutex m;
  soda::detail::parallel_for(n, grain, [&](std::int64_t lo, std::int64_t hi) {
    const std::lock_guard<std::mutex> lock(m);
    ranges.emplace_back(lo, hi);
  });
  std::sort(ranges.begin(), ranges.end());
  return ranges;
}

}  // namespace

TEST_SUITE("core/parallel") {
  TEST_CASE("set_num_threads changes max_threads") {
    oracle::ThreadCountGuard guard;
    soda::set_num_threads(3);
    CHECK(soda::max_threads() == 3);
    soda::set_num_threads(1);
    CHECK(soda::max_threads() == 1);
  }

  TEST_CASE("parallel_for covers [0, n) exactly once with disjoint, non-empty ranges") {
    oracle::ThreadCountGuard guard;
    for (const int threads : {1, 2, 3, 8}) {
      soda::set_num_threads(threads);
      for (const std::int64_t n : {1, 2, 7, 100, 1000, 4097, 100003}) {
        for (const std::int64_t grain : {1, 3, 64, 5000}) {
          const auto ranges = ranges_of(n, grain);
          REQUIRE(!ranges.empty());
          CHECK(ranges.front().first == 0);
          CHECK(ranges.back().second == n);
          for (std::size_t i = 0; i < ranges.size(); ++i) {
            CHECK(ranges[i].first < ranges[i].second);
            if (i + 1 < ranges.size()) CHECK(ranges[i].second == ranges[i + 1].first);
          }
          // Never more chunks than threads, and no chunk smaller than the grain when split.
          CHECK(static_cast<int>(ranges.size()) <= threads);
          if (ranges.size() > 1) {
            for (const auto& [lo, hi] : ranges) CHECK(hi - lo >= grain);
          }
        }
      }
    }
  }

  TEST_CASE("parallel_for runs serially below two grains and does nothing for n <= 0") {
    oracle::ThreadCountGuard guard;
    soda::set_num_threads(4);
    CHECK(ranges_of(0, 1).empty());
    CHECK(ranges_of(-5, 1).empty());
    CHECK(ranges_of(99, 50) == std::vector<Range>{{0, 99}});
    CHECK(ranges_of(100, 50).size() == 2);
    soda::set_num_threads(1);
    CHECK(ranges_of(1 << 20, 1) == std::vector<Range>{{0, 1 << 20}});
  }

  TEST_CASE("the split depends only on n, grain and the thread count") {
    oracle::ThreadCountGuard guard;
    soda::set_num_threads(4);
    const auto ranges = ranges_of(1000, 10);
    CHECK(ranges == std::vector<Range>{{0, 250}, {250, 500}, {500, 750}, {750, 1000}});
    CHECK(ranges_of(1000, 10) == ranges);
    CHECK(ranges_of(1000, 300) == std::vector<Range>{{0, 333}, {333, 666}, {666, 1000}});
  }

  TEST_CASE("parallel_for inside a parallel region runs the whole range on the calling thread") {
    oracle::ThreadCountGuard guard;
    soda::set_num_threads(2);
    std::atomic<int> nested_calls{0}, full_ranges{0};
#pragma omp parallel num_threads(2)
    {
      soda::detail::parallel_for(1000, 1, [&](std::int64_t lo, std::int64_t hi) {
        ++nested_calls;
        if (lo == 0 && hi == 1000) ++full_ranges;
      });
    }
    CHECK(nested_calls.load() == full_ranges.load());
    CHECK(nested_calls.load() >= 1);
  }

}  // TEST_SUITE
