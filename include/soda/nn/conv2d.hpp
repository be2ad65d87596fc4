// Conv2d: y = conv2d(x, W, stride, padding) + b per output channel (torch.nn.Conv2d, groups = 1,
// dilation = 1), W [O, C, kh, kw]; PyTorch's default initialisation W, b ~ U(±1/√(C·kh·kw)).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

// The whole op set: an op's rules may call ops defined in other headers.
#include "soda/autodiff/autodiff.hpp"
#include "soda/core/generator.hpp"
#include "soda/nn/init.hpp"
#include "soda/nn/module.hpp"

namespace soda::nn {

// Conv2d's settings beyond the channel counts and kernel size, with PyTorch's defaults:
// Conv2d<float>(3, 64, 7, gen, {.stride = 2, .padding = 3, .bias = false}).
struct Conv2dOptions {
  Size2d stride = 1;
  Size2d padding = 0;
  bool bias = true;
};

template <class T = float>
class Conv2d : public Module<T> {
 public:
  // Parameters are drawn from `gen` in PyTorch's order: weight, then bias. The options come by
  // reference: GCC 12 at -O2 -march=native (AVX-512) miscompiles this struct when it is built in
  // a by-value stack argument (padding got stride's value; see vespa-engine/vespa#25786).
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2d kernel_size, Generator& gen,
         const Conv2dOptions& options = {})
      : in_channels_(in_channels),
        out_channels_(out_channels),
        kernel_size_(kernel_size),
        options_(options) {
    if (in_channels <= 0 || out_channels <= 0 || kernel_size.h <= 0 || kernel_size.w <= 0 ||
        options.stride.h <= 0 || options.stride.w <= 0 || options.padding.h < 0 ||
        options.padding.w < 0) {
      throw ValueError(signature() +
                       ": channels, kernel size and stride must be positive, padding non-negative");
    }
    weight_ = this->register_parameter(
        "weight", Tensor<T>::empty({out_channels, in_channels, kernel_size.h, kernel_size.w}));
    kaiming_uniform_(weight_, gen, std::sqrt(5.0));
    weight_.set_requires_grad(true);
    if (options.bias) {
      const double fan_in = static_cast<double>(in_channels * kernel_size.h * kernel_size.w);
      const double bound = 1.0 / std::sqrt(fan_in);
      bias_ = this->register_parameter("bias", Tensor<T>::empty({out_channels}));
      uniform_(bias_, gen, -bound, bound);
      bias_.set_requires_grad(true);
    }
  }

  // torch.nn.Conv2d's positional order, with the generator last.
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, Size2d kernel_size, Size2d stride,
         Size2d padding, bool bias, Generator& gen)
      : Conv2d(in_channels, out_channels, kernel_size, gen, Conv2dOptions{stride, padding, bias}) {}

  // x [N, C, H, W] -> [N, O, Ho, Wo]; an unbatched x [C, H, W] gives [O, Ho, Wo], as PyTorch.
  Tensor<T> forward(const Tensor<T>& x) override {
    check_input(x);
    const Tensor<T> batch = x.ndim() == 3 ? unsqueeze(x, 0) : x;
    Tensor<T> y = conv2d(batch, weight_, options_.stride, options_.padding);
    // [O, 1, 1] broadcasts over [N, O, Ho, Wo] as a stride-0 view, without a copy.
    if (bias_.defined()) y = add(y, reshape(bias_, {out_channels_, 1, 1}));
    return x.ndim() == 3 ? squeeze(y, 0) : y;
  }

  std::string type_name() const override { return "Conv2d"; }

  // PyTorch's repr, used in error messages.
  std::string signature() const {
    auto pair = [](Size2d s) {
      return "(" + std::to_string(s.h) + ", " + std::to_string(s.w) + ")";
    };
    return "Conv2d(" + std::to_string(in_channels_) + ", " + std::to_string(out_channels_) +
           ", kernel_size=" + pair(kernel_size_) + ", stride=" + pair(options_.stride) +
           ", padding=" + pair(options_.padding) + (options_.bias ? "" : ", bias=false") + ")";
  }

  const Tensor<T>& weight() const { return weight_; }
  // Undefined when the layer was built without a bias.
  const Tensor<T>& bias() const { return bias_; }
  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  Size2d kernel_size() const { return kernel_size_; }
  Size2d stride() const { return options_.stride; }
  Size2d padding() const { return options_.padding; }

 private:
  void check_input(const Tensor<T>& x) const {
    const auto rank = x.ndim();
    const auto describe = [&] {
      return signature() + ": input of shape " + to_string(x.shape()) + " and weight of shape " +
             to_string(weight_.shape());
    };
    if (rank != 3 && rank != 4) {
      throw ShapeError(describe() + ": expected an input [N, " + std::to_string(in_channels_) +
                       ", H, W] (or [" + std::to_string(in_channels_) + ", H, W] unbatched)");
    }
    const std::int64_t channels = x.shape()[static_cast<std::size_t>(rank - 3)];
    if (channels != in_channels_) {
      throw ShapeError(describe() + ": the input has " + std::to_string(channels) +
                       " channels, the layer expects " + std::to_string(in_channels_));
    }
    const std::int64_t height = x.shape()[static_cast<std::size_t>(rank - 2)];
    const std::int64_t width = x.shape()[static_cast<std::size_t>(rank - 1)];
    if (height + 2 * options_.padding.h < kernel_size_.h ||
        width + 2 * options_.padding.w < kernel_size_.w) {
      throw ShapeError(
          describe() + ": the padded input (" + std::to_string(height + 2 * options_.padding.h) +
          " x " + std::to_string(width + 2 * options_.padding.w) + ") is smaller than the kernel");
    }
  }

  std::int64_t in_channels_;
  std::int64_t out_channels_;
  Size2d kernel_size_;
  Conv2dOptions options_;
  Tensor<T> weight_;
  Tensor<T> bias_;
};

}  // namespace soda::nn
