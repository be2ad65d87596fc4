// A thin layer over OpenMP: parallel loops that fall back to serial below a grain size, so small
// tensors do not pay for waking threads. Work is split by index, so results never depend on
// how many threads run.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace soda {

inline int max_threads() {
  return omp_get_max_threads();
}
inline void set_num_threads(int n) {
  omp_set_num_threads(n);
}

namespace detail {

// Calls body(lo, hi) on disjoint ranges covering [0, n). Runs serially when n < 2 * grain or
// when already inside a parallel region.
template <class Body>
void parallel_for(std::int64_t n, std::int64_t grain, Body&& body) {
  if (n <= 0) return;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads <= 1 || n < 2 * grain) {
    body(std::int64_t{0}, n);
    return;
  }
  const std::int64_t chunks = std::min<std::int64_t>(threads, n / grain);
#pragma omp parallel for schedule(static) num_threads(static_cast <int>(chunks))
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t lo = n * c / chunks;
    const std::int64_t hi = n * (c + 1) / chunks;
    body(lo, hi);
  }
}

}  // namespace detail
}  // namespace soda
