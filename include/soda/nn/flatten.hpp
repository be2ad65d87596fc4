// Flatten(start_dim = 1, end_dim = -1): merges axes start_dim..end_dim into one, as
// torch.nn.Flatten (by default [N, C, H, W] -> [N, C·H·W], keeping the batch axis). A view when
// strides allow.
#pragma once

#include <cstdint>
#include <string>

// Op rules call other ops, so a translation unit needs every op's definition: take them all.
#include "soda/autodiff/autodiff.hpp"
#include "soda/nn/module.hpp"

namespace soda::nn {

template <class T = float>
class Flatten : public Module<T> {
 public:
  explicit Flatten(std::int64_t start_dim = 1, std::int64_t end_dim = -1)
      : start_dim_(start_dim), end_dim_(end_dim) {}

  Tensor<T> forward(const Tensor<T>& x) override {
    const auto rank = x.ndim();
    const auto in_range = [rank](std::int64_t axis) { return axis >= -rank && axis < rank; };
    if (!in_range(start_dim_) || !in_range(end_dim_)) {
      throw ValueError("Flatten: start_dim " + std::to_string(start_dim_) + " and end_dim " +
                       std::to_string(end_dim_) + " must be axes of the input, which has shape " +
                       to_string(x.shape()));
    }
    const auto start = start_dim_ < 0 ? start_dim_ + rank : start_dim_;
    const auto end = end_dim_ < 0 ? end_dim_ + rank : end_dim_;
    if (start > end) {
      throw ValueError("Flatten: start_dim " + std::to_string(start_dim_) +
                       " comes after end_dim " + std::to_string(end_dim_) +
                       " for an input of shape " + to_string(x.shape()));
    }
    Shape shape;
    std::int64_t merged = 1;
    for (std::int64_t d = 0; d < rank; ++d) {
      const auto extent = x.shape()[static_cast<std::size_t>(d)];
      if (d < start || d > end) {
        shape.push_back(extent);
      } else {
        merged *= extent;
        if (d == end) shape.push_back(merged);
      }
    }
    return reshape(x, shape);
  }

  std::string type_name() const override { return "Flatten"; }

  std::int64_t start_dim() const { return start_dim_; }
  std::int64_t end_dim() const { return end_dim_; }

 private:
  std::int64_t start_dim_;
  std::int64_t end_dim_;
};

}  // namespace soda::nn
