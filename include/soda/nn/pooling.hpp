// Pooling modules MaxPool2d, AvgPool2d and AdaptiveAvgPool2d over the last two axes of
// [N, C, H, W] (or [C, H, W]), as torch.nn; the arithmetic lives in soda::max_pool2d/avg_pool2d.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

// Op rules call other ops, so a translation unit needs every op's definition: take them all.
#include "soda/autodiff/autodiff.hpp"
#include "soda/nn/module.hpp"

namespace soda {
// In soda::detail, not soda::nn::detail: a nested detail would hide soda::detail from the
// unqualified detail:: of every other header in soda::nn.
namespace detail {

// Window arguments are checked when the module is built, so a bad layer fails at construction
// rather than on the first batch. PyTorch's rule: padding at most half the kernel, so that every
// window overlaps the input.
inline void check_pooling_module_window(const std::string& module, Size2d kernel, Size2d stride,
                                        Size2d padding) {
  if (kernel.h <= 0 || kernel.w <= 0) {
    throw ValueError(module + ": kernel " + size2d_string(kernel) + " must be positive");
  }
  if (stride.h <= 0 || stride.w <= 0) {
    throw ValueError(module + ": stride " + size2d_string(stride) + " must be positive");
  }
  if (padding.h < 0 || padding.w < 0 || 2 * padding.h > kernel.h || 2 * padding.w > kernel.w) {
    throw ValueError(module + ": padding " + size2d_string(padding) +
                     " must be non-negative and at most half of kernel " + size2d_string(kernel));
  }
}

// Runs a pooling function on [N, C, H, W], or on [C, H, W] as a batch of one (as PyTorch).
template <class T, class Pool>
Tensor<T> pool_as_batch_or_single(const std::string& module, const Tensor<T>& x, Pool pool) {
  if (x.ndim() == 4) return pool(x);
  if (x.ndim() == 3) return squeeze(pool(unsqueeze(x, 0)), 0);
  throw ShapeError(module + ": expected an input of shape [N, C, H, W] or [C, H, W], got " +
                   to_string(x.shape()));
}

}  // namespace detail
}  // namespace soda

namespace soda::nn {

// What MaxPool2d and AvgPool2d share: the window (stride defaulting to the kernel, as PyTorch),
// its checks, and batched or single-image input.
template <class T>
class WindowPool2d : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override {
    return soda::detail::pool_as_batch_or_single(
        this->type_name(), x, [this](const Tensor<T>& batch) { return pool(batch); });
  }

  Size2d kernel() const { return kernel_; }
  Size2d stride() const { return stride_; }
  Size2d padding() const { return padding_; }

 protected:
  WindowPool2d(const std::string& name, Size2d kernel, std::optional<Size2d> stride, Size2d padding)
      : kernel_(kernel), stride_(stride.value_or(kernel)), padding_(padding) {
    soda::detail::check_pooling_module_window(name, kernel_, stride_, padding_);
  }

  virtual Tensor<T> pool(const Tensor<T>& batch) const = 0;

  Size2d kernel_, stride_, padding_;
};

template <class T = float>
class MaxPool2d : public WindowPool2d<T> {
 public:
  explicit MaxPool2d(Size2d kernel, std::optional<Size2d> stride = {}, Size2d padding = 0)
      : WindowPool2d<T>("MaxPool2d", kernel, stride, padding) {}

  std::string type_name() const override { return "MaxPool2d"; }

 private:
  Tensor<T> pool(const Tensor<T>& batch) const override {
    return max_pool2d(batch, this->kernel_, this->stride_, this->padding_);
  }
};

// Padding counts as zeros in each mean (PyTorch's default count_include_pad=True); windows are
// placed with floor rounding (ceil_mode=False).
template <class T = float>
class AvgPool2d : public WindowPool2d<T> {
 public:
  explicit AvgPool2d(Size2d kernel, std::optional<Size2d> stride = {}, Size2d padding = 0)
      : WindowPool2d<T>("AvgPool2d", kernel, stride, padding) {}

  std::string type_name() const override { return "AvgPool2d"; }

 private:
  Tensor<T> pool(const Tensor<T>& batch) const override {
    return avg_pool2d(batch, this->kernel_, this->stride_, this->padding_);
  }
};

// Averages onto a fixed output grid whatever the input size. Output 1x1 (global average pooling,
// ResNet's head) is a mean over H and W; a grid that divides the input evenly is avg_pool2d with
// kernel = stride = input / output, which is exactly PyTorch's window rule in that case. Uneven
// grids (overlapping windows of varying size) are not supported.
template <class T = float>
class AdaptiveAvgPool2d : public Module<T> {
 public:
  explicit AdaptiveAvgPool2d(Size2d output_size = 1) : output_size_(output_size) {
    if (output_size.h <= 0 || output_size.w <= 0) {
      throw ValueError("AdaptiveAvgPool2d: output size " +
                       soda::detail::size2d_string(output_size) + " must be positive");
    }
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    return soda::detail::pool_as_batch_or_single(type_name(), x, [this](const Tensor<T>& batch) {
      if (output_size_ == Size2d(1)) return mean(batch, {2, 3}, true);
      const auto height = batch.size(2), width = batch.size(3);
      if (height == 0 || width == 0 || height % output_size_.h != 0 ||
          width % output_size_.w != 0) {
        throw ValueError(
            "AdaptiveAvgPool2d: output size " + soda::detail::size2d_string(output_size_) +
            " does not evenly divide the input's spatial size (" + std::to_string(height) + ", " +
            std::to_string(width) + "); only evenly dividing output sizes are supported");
      }
      const Size2d window(height / output_size_.h, width / output_size_.w);
      return avg_pool2d(batch, window, window, 0);
    });
  }

  std::string type_name() const override { return "AdaptiveAvgPool2d"; }

  Size2d output_size() const { return output_size_; }

 private:
  Size2d output_size_;
};

}  // namespace soda::nn
