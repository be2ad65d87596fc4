// Reductions (sum, max) over any set of axes. Rows are reduced with xsimd in fixed-size chunks
// whose partial results are combined in index order, so sums are bitwise reproducible for any
// thread count. Reducing leading axes of a contiguous tensor accumulates rows in place instead.
#pragma once

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <limits>
#include <vector>

#include "soda/core/kernels/elementwise.hpp"

namespace soda::detail {

struct SumReduction {
  template <class T>
  static constexpr T identity() {
    return T(0);
  }
  template <class V>
  static V combine(V a, V b) {
    return a + b;
  }
  template <class T>
  static T horizontal(xsimd::batch<T> v) {
    return xsimd::hadd(v);
  }
};

struct MaxReduction {
  template <class T>
  static constexpr T identity() {
    if constexpr (std::numeric_limits<T>::has_infinity)
      return -std::numeric_limits<T>::infinity();
    else
      return std::numeric_limits<T>::lowest();
  }
  // NaN propagates from either side (as NumPy's max), wherever it sits in the row. (xsimd's
  // batch != is an ordered compare, false for NaN: hence isnan.)
  template <class V>
  static V combine(V a, V b) {
    if constexpr (std::is_arithmetic_v<V>)
      return a >= b || a != a ? a : b;
    else
      return xsimd::select(a >= b || xsimd::isnan(a), a, b);
  }
  template <class T>
  static T horizontal(xsimd::batch<T> v) {
    alignas(64) T lanes[xsimd::batch<T>::size] = {};
    v.store_aligned(lanes);
    T m = lanes[0];
    for (const T x : lanes) m = combine(m, x);
    return m;
  }
};

// Reduces n contiguous values.
template <class R, class T>
T reduce_contiguous(const T* p, std::int64_t n) {
  T result = R::template identity<T>();
  std::int64_t i = 0;
  if constexpr (vectorizable_v<T>) {
    using B = xsimd::batch<T>;
    constexpr std::int64_t w = B::size;
    if (n >= 4 * w) {
      B acc0(result), acc1(result), acc2(result), acc3(result);
      for (; i + 4 * w <= n; i += 4 * w) {
        acc0 = R::combine(acc0, B::load_unaligned(p + i));
        acc1 = R::combine(acc1, B::load_unaligned(p + i + w));
        acc2 = R::combine(acc2, B::load_unaligned(p + i + 2 * w));
        acc3 = R::combine(acc3, B::load_unaligned(p + i + 3 * w));
      }
      result =
          R::template horizontal<T>(R::combine(R::combine(acc0, acc1), R::combine(acc2, acc3)));
    }
  }
  for (; i < n; ++i) result = R::combine(result, p[i]);
  return result;
}

inline constexpr std::int64_t reduction_chunk = 1 << 14;

// out[p] = reduce(x[p * r : (p + 1) * r]) for a contiguous [rows, r] block.
template <class R, class T>
void reduce_rows(const T* x, std::int64_t rows, std::int64_t r, T* out) {
  const std::int64_t chunks =
      std::max<std::int64_t>(1, (r + reduction_chunk - 1) / reduction_chunk);
  if (chunks == 1) {
    parallel_for(rows, std::max<std::int64_t>(1, elementwise_grain / std::max<std::int64_t>(r, 1)),
                 [&](std::int64_t lo, std::int64_t hi) {
                   for (std::int64_t p = lo; p < hi; ++p)
                     out[p] = reduce_contiguous<R>(x + p * r, r);
                 });
    return;
  }
  std::vector<T> partial(static_cast<std::size_t>(rows * chunks));
  parallel_for(rows * chunks, 2, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t task = lo; task < hi; ++task) {
      const std::int64_t p = task / chunks, c = task % chunks;
      const std::int64_t begin = c * reduction_chunk;
      const std::int64_t len = std::min(reduction_chunk, r - begin);
      partial[static_cast<std::size_t>(task)] = reduce_contiguous<R>(x + p * r + begin, len);
    }
  });
  for (std::int64_t p = 0; p < rows; ++p) {
    T acc = R::template identity<T>();
    for (std::int64_t c = 0; c < chunks; ++c)
      acc = R::combine(acc, partial[static_cast<std::size_t>(p * chunks + c)]);
    out[p] = acc;
  }
}

// out[j] = reduce_i x[i * cols + j] for a contiguous [rows, cols] block (reducing leading axes).
template <class R, class T>
void reduce_columns(const T* x, std::int64_t rows, std::int64_t cols, T* out) {
  parallel_for(cols, 1024, [&](std::int64_t lo, std::int64_t hi) {
    std::fill(out + lo, out + hi, R::template identity<T>());
    for (std::int64_t i = 0; i < rows; ++i) {
      const T* row = x + i * cols;
      std::int64_t j = lo;
      if constexpr (vectorizable_v<T>) {
        using B = xsimd::batch<T>;
        constexpr std::int64_t w = B::size;
        for (; j + w <= hi; j += w) {
          R::combine(B::load_unaligned(out + j), B::load_unaligned(row + j))
              .store_unaligned(out + j);
        }
      }
      for (; j < hi; ++j) out[j] = R::combine(out[j], row[j]);
    }
  });
}

// Shape after reducing `axes` (sorted, unique): 1 on reduced axes with keepdim, dropped otherwise.
inline Shape reduced_shape(const Shape& shape, const std::vector<std::int64_t>& axes,
                           bool keepdim) {
  Shape out;
  std::size_t next = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const bool reduced = next < axes.size() && axes[next] == static_cast<std::int64_t>(d);
    if (reduced) ++next;
    if (!reduced)
      out.push_back(shape[d]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

// Reduces `x` over `axes` (normalised: sorted, unique, non-empty means those axes).
// When the reduced axes form one block of a contiguous tensor (unit axes ignored), x is read in
// place as [outer, reduced, inner]; otherwise the reduced axes are moved last in a copy.
template <class R, class T>
Tensor<T> reduce(const Tensor<T>& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  const Shape& shape = x.shape();
  std::vector<bool> is_reduced(shape.size(), false);
  for (const auto a : axes) is_reduced[static_cast<std::size_t>(a)] = true;
  auto out = Tensor<T>::empty(reduced_shape(shape, axes, keepdim));
  T* o = out.raw_data();
  std::int64_t kept_count = 1, reduced_count = 1;
  for (std::size_t d = 0; d < shape.size(); ++d)
    (is_reduced[d] ? reduced_count : kept_count) *= shape[d];
  if (reduced_count == 0 && !std::is_same_v<R, SumReduction>) {
    throw ValueError("max: cannot reduce over an empty axis of shape " + to_string(shape));
  }
  if (kept_count == 0) return out;
  // Sizes of the [outer, reduced, inner] blocks, or -1 when reduced axes are not one block.
  std::int64_t outer = 1, inner = 1;
  int phase = 0;  // 0: before the reduced block, 1: inside it, 2: after it
  for (std::size_t d = 0; d < shape.size() && phase >= 0; ++d) {
    if (shape[d] == 1) continue;
    if (is_reduced[d]) {
      if (phase == 2)
        phase = -1;
      else
        phase = 1;
    } else if (phase == 0) {
      outer *= shape[d];
    } else {
      phase = 2;
      inner *= shape[d];
    }
  }
  if (phase >= 0 && x.is_contiguous()) {
    const T* in = x.raw_data();
    if (inner == 1) {
      reduce_rows<R>(in, outer, reduced_count, o);
    } else {
      for (std::int64_t p = 0; p < outer; ++p)
        reduce_columns<R>(in + p * reduced_count * inner, reduced_count, inner, o + p * inner);
    }
    return out;
  }
  if (x.is_contiguous()) {
    // Reduced axes at both ends ([N, C, H, W] over {0, 2, 3}, BatchNorm's statistics): reduce the
    // trailing block in place first, then the rest of the smaller result, instead of copying x
    // into a transposed layout. Sums and maxima are associative, so only the rounding order moves.
    std::size_t trailing = shape.size();
    while (trailing > 0 && (is_reduced[trailing - 1] || shape[trailing - 1] == 1)) --trailing;
    const Shape head(shape.begin(), shape.begin() + static_cast<std::ptrdiff_t>(trailing));
    std::vector<std::int64_t> rest;
    for (const auto a : axes) {
      if (static_cast<std::size_t>(a) < trailing) rest.push_back(a);
    }
    if (trailing < shape.size() && !rest.empty()) {
      auto partial = Tensor<T>::empty(head);
      const std::int64_t rows = numel(head);
      reduce_rows<R>(x.raw_data(), rows, x.numel() / rows, partial.raw_data());
      const auto result = reduce<R>(partial, rest, false);
      std::copy(result.raw_data(), result.raw_data() + result.numel(), o);
      return out;
    }
  }
  Shape permuted_shape;
  Strides permuted_strides;
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (is_reduced[d] != (pass == 1)) continue;
      permuted_shape.push_back(shape[d]);
      permuted_strides.push_back(x.strides()[d]);
    }
  }
  const auto permuted = x.view_with(permuted_shape, permuted_strides, x.offset());
  const auto source = permuted.is_contiguous() ? permuted : copy_contiguous(permuted);
  reduce_rows<R>(source.raw_data(), kept_count, reduced_count, o);
  return out;
}

}  // namespace soda::detail
