// Two small classifiers for quick experiments and tests, as PyTorch nn.Sequential stacks with its
// state-dict names: a multilayer perceptron and a two-convolution CNN.
#pragma once

#include <memory>
#include <vector>

#include "soda/nn/activation.hpp"
#include "soda/nn/conv2d.hpp"
#include "soda/nn/flatten.hpp"
#include "soda/nn/linear.hpp"
#include "soda/nn/pooling.hpp"
#include "soda/nn/sequential.hpp"

namespace soda::models {

// Flatten, then Linear + ReLU per hidden width, then a Linear to the classes.
template <class T = float>
std::shared_ptr<nn::Sequential<T>> mlp(std::int64_t in_features,
                                       const std::vector<std::int64_t>& hidden,
                                       std::int64_t num_classes, Generator& gen) {
  auto net = std::make_shared<nn::Sequential<T>>();
  net->push_back(std::make_shared<nn::Flatten<T>>());
  std::int64_t width = in_features;
  for (const auto h : hidden) {
    net->push_back(std::make_shared<nn::Linear<T>>(width, h, gen));
    net->push_back(std::make_shared<nn::ReLU<T>>());
    width = h;
  }
  net->push_back(std::make_shared<nn::Linear<T>>(width, num_classes, gen));
  return net;
}

// [conv 3×3 → ReLU → max-pool 2] × 2 (32 then 64 channels), then Linear(128) → ReLU → Linear.
// H and W must be divisible by 4.
template <class T = float>
std::shared_ptr<nn::Sequential<T>> small_cnn(std::int64_t in_channels, std::int64_t height,
                                             std::int64_t width, std::int64_t num_classes,
                                             Generator& gen) {
  if (height % 4 != 0 || width % 4 != 0 || height <= 0 || width <= 0) {
    throw ValueError("small_cnn: height and width must be positive multiples of 4, got " +
                     std::to_string(height) + " x " + std::to_string(width));
  }
  auto net = std::make_shared<nn::Sequential<T>>();
  net->push_back(std::make_shared<nn::Conv2d<T>>(in_channels, 32, 3, gen, nn::Conv2dOptions{1, 1}));
  net->push_back(std::make_shared<nn::ReLU<T>>());
  net->push_back(std::make_shared<nn::MaxPool2d<T>>(2));
  net->push_back(std::make_shared<nn::Conv2d<T>>(32, 64, 3, gen, nn::Conv2dOptions{1, 1}));
  net->push_back(std::make_shared<nn::ReLU<T>>());
  net->push_back(std::make_shared<nn::MaxPool2d<T>>(2));
  net->push_back(std::make_shared<nn::Flatten<T>>());
  net->push_back(std::make_shared<nn::Linear<T>>(64 * (height / 4) * (width / 4), 128, gen));
  net->push_back(std::make_shared<nn::ReLU<T>>());
  net->push_back(std::make_shared<nn::Linear<T>>(128, num_classes, gen));
  return net;
}

}  // namespace soda::models
