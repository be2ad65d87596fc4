// What the examples share about optimizers: building one by name as the official AdaHessian
// training script sets each up, and the learning rate the AdaHessian paper's CIFAR runs use.
#pragma once

#include <memory>
#include <soda/soda.hpp>
#include <string>
#include <vector>

namespace examples {

// The optimizer as the official AdaHessian training script (image_classification/main.py) sets
// up each: SGD with momentum and L2 weight decay, Adam with L2 weight decay, and AdamW and
// AdaHessian with decoupled weight decay, given there as weight_decay / lr so that the decay per
// step at the initial rate equals the L2 strength asked for.
struct OptimizerChoice {
  std::string name;
  double lr = 0, momentum = 0, weight_decay = 0, hessian_power = 1;
  bool nesterov = false;
  std::int64_t hessian_samples = 1, update_each = 1;
  std::uint64_t seed = 0;
};

inline std::unique_ptr<soda::optim::Optimizer<float>> make_optimizer(
    const OptimizerChoice& c, const std::vector<soda::Tensor<float>>& params) {
  using namespace soda::optim;
  if (c.name == "sgd") {
    return std::make_unique<SGD<float>>(params, SgdOptions{.lr = c.lr,
                                                           .momentum = c.momentum,
                                                           .weight_decay = c.weight_decay,
                                                           .nesterov = c.nesterov});
  }
  if (c.name == "adam") {
    return std::make_unique<Adam<float>>(params,
                                         AdamOptions{.lr = c.lr, .weight_decay = c.weight_decay});
  }
  const double decoupled = c.lr > 0 ? c.weight_decay / c.lr : 0.0;
  if (c.name == "adamw") {
    return std::make_unique<AdamW<float>>(params,
                                          AdamWOptions{.lr = c.lr, .weight_decay = decoupled});
  }
  return std::make_unique<AdaHessian<float>>(params,
                                             AdaHessianOptions{.lr = c.lr,
                                                               .weight_decay = decoupled,
                                                               .hessian_power = c.hessian_power,
                                                               .samples = c.hessian_samples,
                                                               .update_each = c.update_each,
                                                               .seed = c.seed});
}

// The learning rates the AdaHessian paper's CIFAR ResNet runs use per optimizer.
inline double default_learning_rate(const std::string& optimizer) {
  if (optimizer == "adam") return 1e-3;
  if (optimizer == "adamw") return 0.01;
  if (optimizer == "adahessian") return 0.15;
  return 0.1;
}

}  // namespace examples
