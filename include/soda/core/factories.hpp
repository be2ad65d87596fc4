// Tensor factories: zeros, ones, full, arange, and seeded random draws (rand, randn, rademacher)
// whose values depend only on the generator's seed and counter, not on the thread count.
#pragma once

#include <cmath>

#include "soda/core/generator.hpp"
#include "soda/core/kernels/elementwise.hpp"

namespace soda {

template <class T = float>
Tensor<T> full(const Shape& shape, T value) {
  auto t = Tensor<T>::empty(shape);
  detail::fill(t, value);
  return t;
}

template <class T = float>
Tensor<T> zeros(const Shape& shape) {
  return full<T>(shape, T(0));
}

template <class T = float>
Tensor<T> ones(const Shape& shape) {
  return full<T>(shape, T(1));
}

template <class T>
Tensor<T> zeros_like(const Tensor<T>& x) {
  return zeros<T>(x.shape());
}

template <class T>
Tensor<T> ones_like(const Tensor<T>& x) {
  return ones<T>(x.shape());
}

// start, start + step, ... below stop (1-D).
template <class T = float>
Tensor<T> arange(T start, T stop, T step = T(1)) {
  if (step == T(0)) throw ValueError("arange: step must be non-zero");
  const double span =
      (static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step);
  auto n = static_cast<std::int64_t>(std::max(0.0, std::ceil(span)));
  const auto value = [&](std::int64_t i) {
    return static_cast<T>(start + static_cast<T>(i) * step);
  };
  // The span in double can round past the count in T (0.3f / 0.1f > 3, yet 3 · 0.1f == 0.3f):
  // drop trailing values that are not strictly before stop.
  while (n > 0 && (step > T(0) ? !(value(n - 1) < stop) : !(value(n - 1) > stop))) --n;
  auto t = Tensor<T>::empty({n});
  for (std::int64_t i = 0; i < n; ++i) t.data()[i] = value(i);
  return t;
}

template <class T = float>
Tensor<T> arange(T stop) {
  return arange<T>(T(0), stop, T(1));
}

namespace detail {

template <class T, class Draw>
Tensor<T> random_fill(const Shape& shape, Generator& gen, Draw draw) {
  auto t = Tensor<T>::empty(shape);
  const std::int64_t n = t.numel();
  const std::uint64_t first = gen.reserve(static_cast<std::uint64_t>((n + 1) / 2));
  T* p = t.data();
  parallel_for(n, 1 << 13, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i)
      p[i] = static_cast<T>(draw(first, static_cast<std::uint64_t>(i)));
  });
  return t;
}

}  // namespace detail

// Uniform on [low, high).
template <class T = float>
Tensor<T> rand(const Shape& shape, Generator& gen, T low = T(0), T high = T(1)) {
  return detail::random_fill<T>(shape, gen, [&](std::uint64_t first, std::uint64_t i) {
    const double v =
        static_cast<double>(low) +
        (static_cast<double>(high) - static_cast<double>(low)) * detail::uniform_at(gen, first, i);
    // Rounding (in the sum, or to a float T) can land on high itself: keep the interval half-open.
    if constexpr (std::is_floating_point_v<T>) {
      if (!(static_cast<T>(v) < high) && low < high)
        return static_cast<double>(std::nextafter(high, low));
    }
    return v;
  });
}

// Normal with the given mean and standard deviation.
template <class T = float>
Tensor<T> randn(const Shape& shape, Generator& gen, T mean = T(0), T stddev = T(1)) {
  return detail::random_fill<T>(shape, gen, [&](std::uint64_t first, std::uint64_t i) {
    return static_cast<double>(mean) +
           static_cast<double>(stddev) * detail::normal_at(gen, first, i);
  });
}

// Rademacher: +1 or -1 with equal probability (Hutchinson's probe vectors).
template <class T = float>
Tensor<T> rademacher(const Shape& shape, Generator& gen) {
  return detail::random_fill<T>(shape, gen, [&](std::uint64_t first, std::uint64_t i) {
    return detail::uniform_at(gen, first, i) < 0.5 ? -1.0 : 1.0;
  });
}

// Integers uniform on [low, high).
template <class T = std::int64_t>
Tensor<T> randint(const Shape& shape, Generator& gen, std::int64_t low, std::int64_t high) {
  if (high <= low)
    throw ValueError("randint: empty range [" + std::to_string(low) + ", " + std::to_string(high) +
                     ")");
  const auto span = static_cast<double>(high - low);
  return detail::random_fill<T>(shape, gen, [&](std::uint64_t first, std::uint64_t i) {
    const auto k = static_cast<std::int64_t>(detail::uniform_at(gen, first, i) * span);
    return static_cast<double>(low + std::min<std::int64_t>(k, high - low - 1));
  });
}

}  // namespace soda
