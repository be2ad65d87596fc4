// Parameter initialisers with torch.nn.init's distributions (uniform_, normal_, constant_,
// xavier_*, kaiming_*), drawn from a seeded soda::Generator: same laws as PyTorch, not its stream.
// Kaiming (He et al., 2015): std = gain / √fan; Xavier (Glorot & Bengio, 2010): √(2/(in + out)).
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

#include "soda/core/error.hpp"
#include "soda/core/factories.hpp"
#include "soda/core/generator.hpp"
#include "soda/core/kernels/strided_loop.hpp"
#include "soda/core/tensor.hpp"

namespace soda::nn {

// Which fan Kaiming initialisation preserves: fan_in keeps the forward pass's variance, fan_out
// the backward pass's.
enum class FanMode { fan_in, fan_out };

// The nonlinearities torch.nn.init.calculate_gain knows.
enum class Nonlinearity { linear, conv1d, conv2d, conv3d, sigmoid, tanh, relu, leaky_relu, selu };

// The recommended gain for a nonlinearity (torch.nn.init.calculate_gain): 1 for linear maps and
// sigmoid, 5/3 for tanh, √2 for relu, √(2 / (1 + slope²)) for leaky_relu (slope defaults to 0.01),
// 3/4 for selu.
inline double calculate_gain(Nonlinearity nonlinearity,
                             std::optional<double> negative_slope = std::nullopt) {
  switch (nonlinearity) {
    case Nonlinearity::tanh:
      return 5.0 / 3.0;
    case Nonlinearity::relu:
      return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: {
      const double slope = negative_slope.value_or(0.01);
      return std::sqrt(2.0 / (1.0 + slope * slope));
    }
    case Nonlinearity::selu:
      return 3.0 / 4.0;
    default:
      return 1.0;
  }
}

struct Fans {
  std::int64_t fan_in;
  std::int64_t fan_out;
};

}  // namespace soda::nn

// In soda::detail, not soda::nn::detail: a nested detail would hide soda::detail from the
// unqualified detail:: of every other header in soda::nn.
namespace soda::detail {

// `caller` names the initialiser in the error, so the message points at the user's call.
inline nn::Fans weight_fans(const Shape& shape, const char* caller) {
  if (shape.size() < 2) {
    throw ValueError(std::string(caller) + ": a tensor of shape " + to_string(shape) +
                     " has fewer than 2 dimensions; fans are defined for weights [out, in, ...]");
  }
  std::int64_t receptive_field = 1;
  for (std::size_t i = 2; i < shape.size(); ++i) receptive_field *= shape[i];
  return {shape[1] * receptive_field, shape[0] * receptive_field};
}

inline std::int64_t kaiming_fan(const Shape& shape, nn::FanMode mode, const char* caller) {
  const nn::Fans fans = weight_fans(shape, caller);
  return mode == nn::FanMode::fan_in ? fans.fan_in : fans.fan_out;
}

template <class T>
void check_initialisable(const Tensor<T>& tensor, const char* initialiser) {
  static_assert(std::is_floating_point_v<T>, "initialisers fill float or double tensors");
  // A broadcast view (stride 0) would have several elements share one memory location.
  for (std::size_t i = 0; i < tensor.shape().size(); ++i) {
    if (tensor.strides()[i] == 0 && tensor.shape()[i] > 1) {
      throw ValueError(std::string(initialiser) + ": the tensor of shape " +
                       to_string(tensor.shape()) +
                       " is a broadcast view whose elements share memory; initialise its base");
    }
  }
}

// Writes `values` (contiguous, same shape) into `tensor`, which may be any non-broadcast view.
template <class T>
void copy_values_into(const Tensor<T>& tensor, const Tensor<T>& values) {
  T* out = tensor.raw_data();
  const T* in = values.raw_data();
  for_each_row<2>(tensor.shape(), {tensor.strides(), values.strides()},
                  [&](const auto& offsets, const auto& strides, std::int64_t n) {
                    for (std::int64_t i = 0; i < n; ++i)
                      out[offsets[0] + i * strides[0]] = in[offsets[1] + i * strides[1]];
                  });
}

}  // namespace soda::detail

namespace soda::nn {

// Fans of a weight [out, in, k...] as torch.nn.init._calculate_fan_in_and_fan_out:
// fan_in = in · Πk, fan_out = out · Πk.
inline Fans calculate_fan_in_and_fan_out(const Shape& shape) {
  return detail::weight_fans(shape, "calculate_fan_in_and_fan_out");
}

// Fills `tensor` in place with U(low, high); returns it. Element values follow the tensor's
// logical (row-major) order, so a view and a contiguous tensor of its shape get the same values.
template <class T>
Tensor<T> uniform_(const Tensor<T>& tensor, Generator& gen, double low = 0.0, double high = 1.0) {
  detail::check_initialisable(tensor, "uniform_");
  if (!(low <= high)) {
    throw ValueError("uniform_: low = " + std::to_string(low) +
                     " must not exceed high = " + std::to_string(high));
  }
  detail::copy_values_into(tensor,
                           rand<T>(tensor.shape(), gen, static_cast<T>(low), static_cast<T>(high)));
  return tensor;
}

// Fills `tensor` in place with N(mean, std²); returns it.
template <class T>
Tensor<T> normal_(const Tensor<T>& tensor, Generator& gen, double mean = 0.0, double std = 1.0) {
  detail::check_initialisable(tensor, "normal_");
  if (!(std >= 0.0)) {
    throw ValueError("normal_: the standard deviation must be non-negative, got " +
                     std::to_string(std));
  }
  detail::copy_values_into(
      tensor, randn<T>(tensor.shape(), gen, static_cast<T>(mean), static_cast<T>(std)));
  return tensor;
}

template <class T>
Tensor<T> constant_(const Tensor<T>& tensor, double value) {
  detail::check_initialisable(tensor, "constant_");
  detail::copy_values_into(tensor, full<T>(tensor.shape(), static_cast<T>(value)));
  return tensor;
}

template <class T>
Tensor<T> zeros_(const Tensor<T>& tensor) {
  return constant_(tensor, 0.0);
}

template <class T>
Tensor<T> ones_(const Tensor<T>& tensor) {
  return constant_(tensor, 1.0);
}

// U(−a, a) with a = gain · √(6 / (fan_in + fan_out)).
template <class T>
Tensor<T> xavier_uniform_(const Tensor<T>& tensor, Generator& gen, double gain = 1.0) {
  const Fans fans = detail::weight_fans(tensor.shape(), "xavier_uniform_");
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fans.fan_in + fans.fan_out));
  const double bound = std::sqrt(3.0) * std;
  return uniform_(tensor, gen, -bound, bound);
}

// N(0, std²) with std = gain · √(2 / (fan_in + fan_out)).
template <class T>
Tensor<T> xavier_normal_(const Tensor<T>& tensor, Generator& gen, double gain = 1.0) {
  const Fans fans = detail::weight_fans(tensor.shape(), "xavier_normal_");
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fans.fan_in + fans.fan_out));
  return normal_(tensor, gen, 0.0, std);
}

// U(−bound, bound) with bound = √3 · gain / √fan, gain = calculate_gain(nonlinearity, a): the
// defaults are PyTorch's (a = 0, fan_in, leaky_relu). nn.Linear and nn.Conv2d use a = √5, which
// gives bound = 1/√fan_in.
template <class T>
Tensor<T> kaiming_uniform_(const Tensor<T>& tensor, Generator& gen, double a = 0.0,
                           FanMode mode = FanMode::fan_in,
                           Nonlinearity nonlinearity = Nonlinearity::leaky_relu) {
  // PyTorch leaves zero-element tensors alone (with a warning) rather than divide by a zero fan.
  if (tensor.numel() == 0) return tensor;
  const auto fan =
      static_cast<double>(detail::kaiming_fan(tensor.shape(), mode, "kaiming_uniform_"));
  const double bound = std::sqrt(3.0) * calculate_gain(nonlinearity, a) / std::sqrt(fan);
  return uniform_(tensor, gen, -bound, bound);
}

// PyTorch's keyword form kaiming_uniform_(w, mode=..., nonlinearity=...), with a = 0.
template <class T>
Tensor<T> kaiming_uniform_(const Tensor<T>& tensor, Generator& gen, FanMode mode,
                           Nonlinearity nonlinearity = Nonlinearity::leaky_relu) {
  return kaiming_uniform_(tensor, gen, 0.0, mode, nonlinearity);
}

// N(0, std²) with std = gain / √fan, gain = calculate_gain(nonlinearity, a).
template <class T>
Tensor<T> kaiming_normal_(const Tensor<T>& tensor, Generator& gen, double a = 0.0,
                          FanMode mode = FanMode::fan_in,
                          Nonlinearity nonlinearity = Nonlinearity::leaky_relu) {
  if (tensor.numel() == 0) return tensor;
  const auto fan =
      static_cast<double>(detail::kaiming_fan(tensor.shape(), mode, "kaiming_normal_"));
  return normal_(tensor, gen, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(fan));
}

// PyTorch's keyword form, as torchvision's ResNet calls it:
// kaiming_normal_(w, gen, FanMode::fan_out, Nonlinearity::relu).
template <class T>
Tensor<T> kaiming_normal_(const Tensor<T>& tensor, Generator& gen, FanMode mode,
                          Nonlinearity nonlinearity = Nonlinearity::leaky_relu) {
  return kaiming_normal_(tensor, gen, 0.0, mode, nonlinearity);
}

}  // namespace soda::nn
