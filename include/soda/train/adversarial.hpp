// Adversarial inputs for adversarial training (ABSA) and robustness checks: FGSM (Goodfellow et
// al., 2015), x' = clip(x + ε·sign(∇ₓ L(x, y))), and PGD (Madry et al., 2018), that step repeated
// with projection back onto the L∞ ball of radius ε around x. ∇ₓ comes from soda's own autodiff.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "soda/autodiff/functional.hpp"
#include "soda/core/error.hpp"
#include "soda/core/factories.hpp"
#include "soda/core/generator.hpp"
#include "soda/core/tensor.hpp"
#include "soda/nn/loss.hpp"
#include "soda/nn/mode_guard.hpp"
#include "soda/nn/module.hpp"

namespace soda::train {

// Where the inputs live, per channel (dimension 1): the bounds an adversarial input is clipped to
// and the size of one pixel unit. Images normalised as (pixel − mean) / stddev span
// [−mean/stddev, (1 − mean)/stddev] and move by 1/stddev per pixel unit. Empty: unbounded, 1.
struct InputSpace {
  std::vector<double> lower{}, upper{}, unit{};

  static InputSpace normalized_pixels(const std::vector<float>& mean,
                                      const std::vector<float>& stddev) {
    if (mean.size() != stddev.size()) {
      throw ValueError("InputSpace::normalized_pixels: " + std::to_string(mean.size()) +
                       " means but " + std::to_string(stddev.size()) + " standard deviations");
    }
    InputSpace space;
    for (std::size_t c = 0; c < mean.size(); ++c) {
      space.lower.push_back(-double{mean[c]} / stddev[c]);
      space.upper.push_back((1.0 - mean[c]) / stddev[c]);
      space.unit.push_back(1.0 / stddev[c]);
    }
    return space;
  }
};

struct AttackOptions {
  double epsilon = 0.01;      // the L∞ radius in pixel units (a fraction of the 0..1 range)
  std::int64_t steps = 1;     // 1: FGSM; more: PGD
  double step_size = 0;       // PGD's step in pixel units; 0: 2.5·ε / steps (Madry et al.)
  bool random_start = false;  // PGD: start from a uniform draw in the ball
  // The passes run in train mode (BatchNorm on the batch's statistics, as the training step that
  // uses the result) or eval mode; running statistics are left as they were either way.
  bool train_mode = true;
};

namespace detail {

inline void check_attack(const AttackOptions& options, const InputSpace& space,
                         std::int64_t channels, const std::string& name) {
  if (!(options.epsilon >= 0) || !std::isfinite(options.epsilon)) {
    throw ValueError(name + ": epsilon = " + std::to_string(options.epsilon) +
                     " must be finite and >= 0");
  }
  if (options.steps < 1) {
    throw ValueError(name + ": steps = " + std::to_string(options.steps) + " must be >= 1");
  }
  if (!(options.step_size >= 0) || !std::isfinite(options.step_size)) {
    throw ValueError(name + ": step_size = " + std::to_string(options.step_size) +
                     " must be finite and >= 0");
  }
  for (const auto* values : {&space.lower, &space.upper, &space.unit}) {
    if (!values->empty() && static_cast<std::int64_t>(values->size()) != channels) {
      throw ValueError(name + ": the input space has " + std::to_string(values->size()) +
                       " values per bound, but the inputs have " + std::to_string(channels) +
                       " channels (dimension 1)");
    }
  }
}

// The channel (dimension 1) of each flat element of a contiguous tensor of this shape.
inline std::int64_t channel_stride(const Shape& shape) {
  std::int64_t stride = 1;
  for (std::size_t d = 2; d < shape.size(); ++d) stride *= shape[d];
  return stride;
}

inline double channel_value(const std::vector<double>& values, std::int64_t c, double fallback) {
  return values.empty() ? fallback : values[static_cast<std::size_t>(c)];
}

}  // namespace detail

// ∇ₓ of the batch's mean cross-entropy, with the loss; the model's parameters are not changed and
// nothing is accumulated in their grad().
template <class T>
std::pair<Tensor<T>, double> input_gradient(nn::Module<T>& model, const Tensor<T>& inputs,
                                            const Tensor<std::int64_t>& labels) {
  auto [loss, grads] = value_and_grad(
      [&](const std::vector<Tensor<T>>& x) { return nn::cross_entropy(model(x[0]), labels); },
      std::vector<Tensor<T>>{inputs});
  return {soda::detail::copy_contiguous(grads[0]), static_cast<double>(loss.item())};
}

// PGD with `options.steps` steps (FGSM for one step without a random start): each step moves
// every input element by the step size times the sign of its gradient (0 where the gradient is
// 0), then projects onto the ε-ball around the clean input and the input space's bounds.
template <class T>
Tensor<T> adversarial_inputs(nn::Module<T>& model, const Tensor<T>& inputs,
                             const Tensor<std::int64_t>& labels, const AttackOptions& options,
                             const InputSpace& space = {}, std::uint64_t seed = 0) {
  const std::string name = options.steps == 1 && !options.random_start ? "fgsm" : "pgd";
  if (inputs.ndim() < 2) {
    throw ShapeError(name + ": inputs of shape " + to_string(inputs.shape()) +
                     " have no channel dimension; expected [batch, channels, ...]");
  }
  detail::check_attack(options, space, inputs.size(1), name);
  const auto clean = soda::detail::copy_contiguous(inputs.detach());
  const auto n = clean.numel();
  const auto channels = inputs.size(1);
  const auto stride = detail::channel_stride(clean.shape());
  const double step_units =
      options.step_size > 0
          ? options.step_size
          : (options.steps == 1 ? options.epsilon : 2.5 * options.epsilon / options.steps);
  const double inf = std::numeric_limits<double>::infinity();
  // Per channel: the box [low, high] that is both in the ε-ball and in bounds, and the step.
  std::vector<double> radius(channels), step(channels), low_bound(channels), high_bound(channels);
  for (std::int64_t c = 0; c < channels; ++c) {
    const double unit = detail::channel_value(space.unit, c, 1.0);
    radius[c] = options.epsilon * unit;
    step[c] = step_units * unit;
    low_bound[c] = detail::channel_value(space.lower, c, -inf);
    high_bound[c] = detail::channel_value(space.upper, c, inf);
  }
  const auto project = [&](std::int64_t i, double value) {
    const auto c = (i / stride) % channels;
    const double x = static_cast<double>(clean.data()[i]);
    value = std::clamp(value, x - radius[c], x + radius[c]);
    return static_cast<T>(std::clamp(value, low_bound[c], high_bound[c]));
  };

  auto adversarial = soda::detail::copy_contiguous(clean);
  if (options.random_start) {
    Generator gen(seed);
    const auto noise = rand<T>(clean.shape(), gen, T(-1), T(1));
    for (std::int64_t i = 0; i < n; ++i) {
      const auto c = (i / stride) % channels;
      adversarial.data()[i] =
          project(i, static_cast<double>(clean.data()[i]) + radius[c] * noise.data()[i]);
    }
  }
  nn::ModeGuard<T> mode(model, options.train_mode);
  for (std::int64_t s = 0; s < options.steps; ++s) {
    const auto gradient = input_gradient(model, adversarial, labels).first;
    T* x = adversarial.data();
    const T* g = gradient.data();
    for (std::int64_t i = 0; i < n; ++i) {
      const auto c = (i / stride) % channels;
      const double sign = g[i] > T(0) ? 1.0 : (g[i] < T(0) ? -1.0 : 0.0);
      x[i] = project(i, static_cast<double>(x[i]) + step[c] * sign);
    }
  }
  return adversarial;
}

// FGSM: one signed-gradient step of ε from the clean input, clipped to the input space.
template <class T>
Tensor<T> fgsm(nn::Module<T>& model, const Tensor<T>& inputs, const Tensor<std::int64_t>& labels,
               double epsilon, const InputSpace& space = {}, bool train_mode = true) {
  return adversarial_inputs(model, inputs, labels,
                            AttackOptions{.epsilon = epsilon, .train_mode = train_mode}, space);
}

}  // namespace soda::train
