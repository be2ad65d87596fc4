// CIFAR ResNets of depth 6n+2 (ResNet-20/32/44/56/110; He et al. 2016, Sec. 4.2): a 3×3 stem of
// 16 channels, three stages of n BasicBlocks with 16/32/64 channels (stride 2 entering stages 2 and
// 3), global average pooling and a linear classifier.
//
// The definition is PyHessian's and AdaHessian's (models/resnet.py there), so spectra and
// training curves compare one to one: projection shortcuts (1×1 conv + BN, He et al.'s option B,
// named downsample.*) where the shape changes, convolutions without bias, He-normal initialisation
// of convolutions N(0, 2 / (k·k·out_channels)), BN γ = 1, β = 0, and PyTorch's default Linear.
// State-dict names match theirs: conv1, bn1, layer1.0.conv1, ..., fc. The no-BN and no-residual
// variants are PyHessian's batch_norm_not / residual_not switches.
#pragma once

#include <memory>
#include <string>

#include "soda/nn/basic_block.hpp"
#include "soda/nn/init.hpp"
#include "soda/nn/linear.hpp"

namespace soda::models {

struct ResNetCifarOptions {
  std::int64_t depth = 20;       // 6n + 2
  std::int64_t in_channels = 3;  // 1 for MNIST-like images
  std::int64_t num_classes = 10;
  std::int64_t base_channels = 16;
  bool batch_norm = true;
  bool residual = true;
};

template <class T = float>
class ResNetCifar : public nn::Module<T> {
 public:
  ResNetCifar(const ResNetCifarOptions& options, Generator& gen) : options_(options) {
    if (options.depth < 8 || (options.depth - 2) % 6 != 0) {
      throw ValueError("ResNetCifar: depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got " +
                       std::to_string(options.depth));
    }
    if (options.in_channels <= 0 || options.num_classes <= 0 || options.base_channels <= 0) {
      throw ValueError("ResNetCifar: in_channels, num_classes and base_channels must be positive");
    }
    const std::int64_t blocks = (options.depth - 2) / 6, width = options.base_channels;
    conv1_ = this->register_module(
        "conv1", std::make_shared<nn::Conv2d<T>>(options.in_channels, width, 3, gen,
                                                 nn::Conv2dOptions{1, 1, false}));
    if (options.batch_norm)
      bn1_ = this->register_module("bn1", std::make_shared<nn::BatchNorm2d<T>>(width));
    std::int64_t channels = width;
    for (std::int64_t stage = 0; stage < 3; ++stage) {
      const std::int64_t stage_width = width << stage;
      auto layer = std::make_shared<nn::Sequential<T>>();
      for (std::int64_t b = 0; b < blocks; ++b) {
        const nn::BasicBlockOptions block{b == 0 && stage > 0 ? 2 : 1, options.batch_norm,
                                          options.residual};
        layer->push_back(std::make_shared<nn::BasicBlock<T>>(channels, stage_width, gen, block));
        channels = stage_width;
      }
      stages_.push_back(this->register_module("layer" + std::to_string(stage + 1), layer));
    }
    fc_ = this->register_module(
        "fc", std::make_shared<nn::Linear<T>>(channels, options.num_classes, gen));
    // PyHessian's initialisation, drawn after construction in module order.
    for (const auto& [name, p] : this->named_parameters()) {
      if (p.ndim() == 4) {
        const double fan_out = static_cast<double>(p.size(0) * p.size(2) * p.size(3));
        nn::normal_(p, gen, 0.0, std::sqrt(2.0 / fan_out));
      }
    }
  }

  // x [N, in_channels, H, W] with H, W >= 4 (32×32 CIFAR, 28×28 MNIST) -> logits [N, classes].
  Tensor<T> forward(const Tensor<T>& x) override {
    auto h = conv1_->forward(x);
    if (bn1_) h = bn1_->forward(h);
    h = relu(h);
    for (const auto& stage : stages_) h = stage->forward(h);
    h = mean(h, {2, 3});  // global average pooling: [N, C]
    return fc_->forward(h);
  }

  std::string type_name() const override { return "ResNet-" + std::to_string(options_.depth); }
  const ResNetCifarOptions& options() const { return options_; }

 private:
  ResNetCifarOptions options_;
  std::shared_ptr<nn::Conv2d<T>> conv1_;
  std::shared_ptr<nn::BatchNorm2d<T>> bn1_;
  std::vector<std::shared_ptr<nn::Sequential<T>>> stages_;
  std::shared_ptr<nn::Linear<T>> fc_;
};

template <class T = float>
std::shared_ptr<ResNetCifar<T>> resnet_cifar(std::int64_t depth, Generator& gen,
                                             std::int64_t in_channels = 3,
                                             std::int64_t num_classes = 10) {
  ResNetCifarOptions options;
  options.depth = depth;
  options.in_channels = in_channels;
  options.num_classes = num_classes;
  return std::make_shared<ResNetCifar<T>>(options, gen);
}

}  // namespace soda::models
