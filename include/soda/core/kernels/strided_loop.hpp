// The iteration engine under every element-wise kernel: walks N operands over one index space in
// rows (the innermost, coalesced dimension), handing each row to a kernel that vectorises it.
// Broadcast operands have stride 0; rows are split across threads by index, never by timing.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "soda/core/parallel.hpp"
#include "soda/core/shape.hpp"
#include "soda/core/tensor.hpp"

namespace soda::detail {

// Elements per thread below which a loop stays serial.
inline constexpr std::int64_t elementwise_grain = 1 << 15;

// Strides of `t` viewed as broadcast to `target` (0 on broadcast axes, right-aligned).
template <class T>
Strides broadcast_strides(const Tensor<T>& t, const Shape& target) {
  Strides out(target.size(), 0);
  const std::size_t lead = target.size() - t.shape().size();
  for (std::size_t i = 0; i < t.shape().size(); ++i) {
    out[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  }
  return out;
}

template <std::size_t N>
struct LoopPlan {
  Shape shape;  // coalesced, at least one dimension
  std::array<Strides, N> strides;
};

// Drops unit dimensions and merges neighbours that are contiguous for every operand, so that
// rows are as long as possible.
template <std::size_t N>
LoopPlan<N> coalesce(const Shape& shape, const std::array<Strides, N>& strides) {
  LoopPlan<N> plan;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !plan.shape.empty();
    for (std::size_t k = 0; k < N && merge; ++k) {
      merge = plan.strides[k].back() == strides[k][d] * shape[d];
    }
    if (merge) {
      plan.shape.back() *= shape[d];
      for (std::size_t k = 0; k < N; ++k) plan.strides[k].back() = strides[k][d];
    } else {
      plan.shape.push_back(shape[d]);
      for (std::size_t k = 0; k < N; ++k) plan.strides[k].push_back(strides[k][d]);
    }
  }
  if (plan.shape.empty()) {
    plan.shape.push_back(1);
    for (std::size_t k = 0; k < N; ++k) plan.strides[k].push_back(0);
  }
  return plan;
}

// Calls row(offsets, inner_strides, length) for every row of the index space `shape`, where
// offsets[k] is operand k's element offset of the row's first element.
template <std::size_t N, class Row>
void for_each_row(const Shape& shape, const std::array<Strides, N>& strides, Row&& row) {
  if (soda::numel(shape) == 0) return;
  const LoopPlan<N> plan = coalesce<N>(shape, strides);
  const std::size_t rank = plan.shape.size();
  const std::int64_t inner = plan.shape.back();
  std::array<std::int64_t, N> inner_strides;
  for (std::size_t k = 0; k < N; ++k) inner_strides[k] = plan.strides[k].back();
  const std::int64_t rows = soda::numel(plan.shape) / inner;
  const std::int64_t grain = std::max<std::int64_t>(1, elementwise_grain / inner);

  parallel_for(rows, grain, [&](std::int64_t lo, std::int64_t hi) {
    // Multi-index of row `lo` over the outer dimensions, then an odometer.
    std::vector<std::int64_t> index(rank, 0);
    std::array<std::int64_t, N> offsets{};
    std::int64_t rest = lo;
    for (std::size_t d = rank - 1; d-- > 0;) {
      index[d] = rest % plan.shape[d];
      rest /= plan.shape[d];
      for (std::size_t k = 0; k < N; ++k) offsets[k] += index[d] * plan.strides[k][d];
    }
    for (std::int64_t r = lo; r < hi; ++r) {
      row(offsets, inner_strides, inner);
      for (std::size_t d = rank - 1; d-- > 0;) {
        ++index[d];
        for (std::size_t k = 0; k < N; ++k) offsets[k] += plan.strides[k][d];
        if (index[d] < plan.shape[d]) break;
        for (std::size_t k = 0; k < N; ++k) offsets[k] -= index[d] * plan.strides[k][d];
        index[d] = 0;
      }
    }
  });
}

}  // namespace soda::detail
