// Independent oracles for the core tests: naive strided reads written from the definition of a
// view (offset + Σ index·stride), seeded input data from <random>, and tolerance checks. Nothing
// here calls a soda kernel, so a kernel's answer is never compared with itself.
#pragma once

#include <doctest/doctest.h>

#include <soda/soda.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace oracle {

// Row-major multi-index of linear position `linear` in `shape`.
inline std::vector<std::int64_t> unravel(std::int64_t linear, const soda::Shape& shape) {
  std::vector<std::int64_t> index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = linear % shape[d];
    linear /= shape[d];
  }
  return index;
}

inline std::int64_t count(const soda::Shape& shape) {
  std::int64_t n = 1;
  for (const auto d : shape) n *= d;
  return n;
}

// The values of any view in row-major order, read straight from storage through its strides.
template <class T>
std::vector<double> values(const soda::Tensor<T>& t) {
  const std::int64_t n = count(t.shape());
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto index = unravel(i, t.shape());
    std::int64_t offset = 0;
    for (std::size_t d = 0; d < index.size(); ++d) offset += index[d] * t.strides()[d];
    out.push_back(static_cast<double>(t.raw_data()[offset]));
  }
  return out;
}

// Value of row-major `values` (of `shape`) at `index` broadcast from `target` (NumPy rules).
inline double broadcast_at(const std::vector<double>& values, const soda::Shape& shape,
                           const std::vector<std::int64_t>& target_index) {
  const std::size_t lead = target_index.size() - shape.size();
  std::int64_t linear = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const auto i = shape[d] == 1 ? 0 : target_index[lead + d];
    linear = linear * shape[d] + i;
  }
  return values[static_cast<std::size_t>(linear)];
}

// Uniform values in [low, high) from a fixed-seed std::mt19937_64.
inline std::vector<double> uniform(std::int64_t n, std::uint64_t seed, double low = -1.0,
                                   double high = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<double> out(static_cast<std::size_t>(n));
  for (auto& v : out) v = dist(rng);
  return out;
}

template <class T>
soda::Tensor<T> tensor(const soda::Shape& shape, const std::vector<double>& v) {
  std::vector<T> cast(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) cast[i] = static_cast<T>(v[i]);
  return soda::Tensor<T>(shape, cast);
}

// A tensor of `shape` with seeded uniform values, and those values as doubles (after rounding to
// T).
template <class T>
soda::Tensor<T> random(const soda::Shape& shape, std::uint64_t seed,
                       std::vector<double>* rounded = nullptr, double low = -1.0,
                       double high = 1.0) {
  auto v = uniform(count(shape), seed, low, high);
  for (auto& x : v) x = static_cast<double>(static_cast<T>(x));
  if (rounded != nullptr) *rounded = v;
  return tensor<T>(shape, v);
}

// Checks every element against `expected` with |a − e| <= atol + rtol·|e|; reports the first miss.
template <class T>
void check_close(const soda::Tensor<T>& actual, const std::vector<double>& expected, double rtol,
                 double atol = 0.0) {
  const auto got = values(actual);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool ok = std::abs(got[i] - expected[i]) <= atol + rtol * std::abs(expected[i]) ||
                    (std::isinf(expected[i]) && got[i] == expected[i]);
    if (!ok) {
      INFO("element " << i << ": got " << got[i] << ", expected " << expected[i]);
      CHECK(ok);
      return;
    }
  }
}

template <class T>
void check_equal(const soda::Tensor<T>& actual, const std::vector<double>& expected) {
  check_close(actual, expected, 0.0, 0.0);
}

// Restores the OpenMP thread count when a test that changes it ends.
class ThreadCountGuard {
 public:
  ThreadCountGuard() : saved_(soda::max_threads()) {}
  ~ThreadCountGuard() { soda::set_num_threads(saved_); }
  ThreadCountGuard(const ThreadCountGuard&) = delete;
  ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

 private:
  int saved_;
};

}  // namespace oracle
