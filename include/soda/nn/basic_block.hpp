// BasicBlock: the residual unit of CIFAR ResNets (He et al. 2016, Fig. 2 left):
// relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), with PyTorch state-dict names.
#pragma once

#include <memory>
#include <string>

#include "soda/nn/activation.hpp"
#include "soda/nn/batch_norm.hpp"
#include "soda/nn/conv2d.hpp"
#include "soda/nn/sequential.hpp"

namespace soda::nn {

struct BasicBlockOptions {
  std::int64_t stride = 1;  // of conv1 and of the shortcut
  bool batch_norm = true;   // false: the no-BN variant PyHessian studies
  bool residual = true;     // false: a plain two-layer block (no shortcut)
};

// The shortcut, when the shape changes, is a 1×1 strided convolution followed by BatchNorm
// (option B of He et al.), named downsample.0 / downsample.1 as torchvision and PyHessian name it.
template <class T = float>
class BasicBlock : public Module<T> {
 public:
  BasicBlock(std::int64_t in_channels, std::int64_t channels, Generator& gen,
             BasicBlockOptions options = {})
      : options_(options) {
    const Conv2dOptions three_by_three{options.stride, 1, false};
    conv1_ = this->register_module(
        "conv1", std::make_shared<Conv2d<T>>(in_channels, channels, 3, gen, three_by_three));
    if (options.batch_norm)
      bn1_ = this->register_module("bn1", std::make_shared<BatchNorm2d<T>>(channels));
    conv2_ = this->register_module(
        "conv2",
        std::make_shared<Conv2d<T>>(channels, channels, 3, gen, Conv2dOptions{1, 1, false}));
    if (options.batch_norm)
      bn2_ = this->register_module("bn2", std::make_shared<BatchNorm2d<T>>(channels));
    if (options.residual && (options.stride != 1 || in_channels != channels)) {
      downsample_ = this->register_module("downsample", std::make_shared<Sequential<T>>());
      downsample_->push_back(std::make_shared<Conv2d<T>>(in_channels, channels, 1, gen,
                                                         Conv2dOptions{options.stride, 0, false}));
      if (options.batch_norm) downsample_->push_back(std::make_shared<BatchNorm2d<T>>(channels));
    }
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    auto out = conv1_->forward(x);
    if (bn1_) out = bn1_->forward(out);
    out = relu(out);
    out = conv2_->forward(out);
    if (bn2_) out = bn2_->forward(out);
    if (options_.residual) out = add(out, downsample_ ? downsample_->forward(x) : x);
    return relu(out);
  }

  std::string type_name() const override { return "BasicBlock"; }

 private:
  BasicBlockOptions options_;
  std::shared_ptr<Conv2d<T>> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d<T>> bn1_, bn2_;
  std::shared_ptr<Sequential<T>> downsample_;
};

}  // namespace soda::nn
