// Seeded random QuantizedResNetPlans for the IntegerResNet tests: a ResNet-8 (one BasicBlock per
// stage, downsample entering stages 2 and 3) or its no-residual variant, mixed bit widths, and
// grids calibrated on a float forward (with the weights fake-quantized) so activations use their
// range with a few values clamped.
#pragma once

#include <soda/core/tensor.hpp>
#include <soda/quant/quantized_resnet_plan.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace integer_resnet_test {

using soda::quant::ActivationGrid;
using soda::quant::QuantizedLayerPlan;
using soda::quant::QuantizedResNetPlan;

struct RandomPlanOptions {
  std::int64_t in_channels = 3, num_classes = 10, height = 16, width = 16;
  std::vector<std::int64_t> widths{8, 16, 32};  // the three stages
  bool residual = true;
  std::vector<int> weight_bits{8, 4, 2};   // cycled over the layers in execution order
  std::vector<int> activation_bits{8, 4};  // cycled over the grids
  int image_bits = 8, output_bits = 8;
  std::uint32_t seed = 1;
};

// Normalized-looking images N(0, 1), [count, channels, height, width].
inline soda::Tensor<float> random_images(std::int64_t count, std::int64_t channels,
                                         std::int64_t height, std::int64_t width,
                                         std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<std::size_t>(count * channels * height * width));
  for (auto& v : values) v = normal(gen);
  return soda::Tensor<float>({count, channels, height, width}, std::move(values));
}

// NCHW activations in double for the calibration forward.
struct FloatActivations {
  std::vector<double> values;
  std::int64_t batch = 0, channels = 0, height = 0, width = 0;
};

// The weights as the integer network sees them: quantized per output channel and dequantized.
inline std::vector<double> fake_quantized_weights(const QuantizedLayerPlan& layer) {
  const std::int64_t per_channel = layer.in_channels * layer.kernel_h * layer.kernel_w;
  const double q_max = (1 << (layer.weight_bits - 1)) - 1;
  std::vector<double> out(layer.weight.size());
  for (std::int64_t o = 0; o < layer.out_channels; ++o) {
    double max_abs = 0;
    for (std::int64_t k = 0; k < per_channel; ++k) {
      max_abs = std::max(max_abs, std::abs(double{layer.weight[o * per_channel + k]}));
    }
    const double scale = max_abs > 0 ? max_abs / q_max : 1;
    for (std::int64_t k = 0; k < per_channel; ++k) {
      const auto i = static_cast<std::size_t>(o * per_channel + k);
      out[i] = std::clamp(std::nearbyint(layer.weight[i] / scale), -q_max, q_max) * scale;
    }
  }
  return out;
}

inline FloatActivations float_conv(const FloatActivations& x, const QuantizedLayerPlan& layer) {
  const std::vector<double> w = fake_quantized_weights(layer);
  FloatActivations y{{},
                     x.batch,
                     layer.out_channels,
                     (x.height + 2 * layer.padding - layer.kernel_h) / layer.stride + 1,
                     (x.width + 2 * layer.padding - layer.kernel_w) / layer.stride + 1};
  y.values.assign(static_cast<std::size_t>(y.batch * y.channels * y.height * y.width), 0);
  for (std::int64_t n = 0; n < y.batch; ++n) {
    for (std::int64_t o = 0; o < y.channels; ++o) {
      for (std::int64_t oy = 0; oy < y.height; ++oy) {
        for (std::int64_t ox = 0; ox < y.width; ++ox) {
          double sum = layer.bias.empty() ? 0 : layer.bias[o];
          for (std::int64_t c = 0; c < x.channels; ++c) {
            for (std::int64_t i = 0; i < layer.kernel_h; ++i) {
              const std::int64_t iy = oy * layer.stride - layer.padding + i;
              if (iy < 0 || iy >= x.height) continue;
              for (std::int64_t j = 0; j < layer.kernel_w; ++j) {
                const std::int64_t ix = ox * layer.stride - layer.padding + j;
                if (ix < 0 || ix >= x.width) continue;
                sum += x.values[((n * x.channels + c) * x.height + iy) * x.width + ix] *
                       w[((o * x.channels + c) * layer.kernel_h + i) * layer.kernel_w + j];
              }
            }
          }
          y.values[((n * y.channels + o) * y.height + oy) * y.width + ox] = sum;
        }
      }
    }
  }
  return y;
}

inline void relu_in_place(FloatActivations& x) {
  for (auto& v : x.values) v = std::max(v, 0.0);
}

// A grid whose largest code sits at 90% of the calibrated max|x|: a few values clamp.
inline ActivationGrid calibrated_grid(const FloatActivations& x, int bits, bool is_unsigned) {
  double max_abs = 0;
  for (double v : x.values) max_abs = std::max(max_abs, std::abs(v));
  const double q_max = is_unsigned ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
  return {static_cast<float>(0.9 * std::max(max_abs, 1e-3) / q_max), bits, is_unsigned};
}

inline QuantizedResNetPlan random_plan(const RandomPlanOptions& options) {
  std::mt19937 gen(options.seed);
  int layer_index = 0, grid_index = 0;
  const auto next_activation_bits = [&] {
    return options.activation_bits[grid_index++ % options.activation_bits.size()];
  };
  const auto make_layer = [&](std::string name, std::int64_t out, std::int64_t in,
                              std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
    QuantizedLayerPlan layer;
    layer.name = std::move(name);
    layer.out_channels = out;
    layer.in_channels = in;
    layer.kernel_h = layer.kernel_w = kernel;
    layer.stride = stride;
    layer.padding = padding;
    layer.weight_bits = options.weight_bits[layer_index++ % options.weight_bits.size()];
    std::normal_distribution<float> weight(0.0f, std::sqrt(2.0f / (kernel * kernel * in)));
    std::normal_distribution<float> bias(0.0f, 0.2f);
    layer.weight.resize(static_cast<std::size_t>(out * in * kernel * kernel));
    for (auto& w : layer.weight) w = weight(gen);
    layer.bias.resize(static_cast<std::size_t>(out));
    for (auto& b : layer.bias) b = bias(gen);
    return layer;
  };

  QuantizedResNetPlan plan;
  plan.in_channels = options.in_channels;
  plan.num_classes = options.num_classes;
  plan.calibration_method = "running_max";
  const soda::Tensor<float> images =
      random_images(16, options.in_channels, options.height, options.width, options.seed + 1000);
  FloatActivations h{std::vector<double>(images.data(), images.data() + images.numel()), 16,
                     options.in_channels, options.height, options.width};
  plan.image = calibrated_grid(h, options.image_bits, false);

  plan.stem = make_layer("conv1", options.widths[0], options.in_channels, 3, 1, 1);
  plan.stem.input = plan.image;
  h = float_conv(h, plan.stem);
  relu_in_place(h);
  plan.stem.output = calibrated_grid(h, next_activation_bits(), true);
  ActivationGrid grid = plan.stem.output;

  std::int64_t channels = options.widths[0];
  for (std::size_t stage = 0; stage < options.widths.size(); ++stage) {
    const std::int64_t width = options.widths[stage], stride = stage > 0 ? 2 : 1;
    const std::string prefix = "layer" + std::to_string(stage + 1) + ".0.";
    soda::quant::QuantizedBlockPlan block;
    block.residual = options.residual;
    block.conv1 = make_layer(prefix + "conv1", width, channels, 3, stride, 1);
    block.conv2 = make_layer(prefix + "conv2", width, width, 3, 1, 1);
    block.conv1.input = grid;
    FloatActivations t = float_conv(h, block.conv1);
    relu_in_place(t);
    block.conv1.output = block.conv2.input = calibrated_grid(t, next_activation_bits(), true);
    FloatActivations out = float_conv(t, block.conv2);
    if (options.residual) {
      if (stride != 1 || channels != width) {
        block.downsample = make_layer(prefix + "downsample", width, channels, 1, stride, 0);
        block.downsample->input = grid;
        const FloatActivations shortcut = float_conv(h, *block.downsample);
        block.downsample->output = calibrated_grid(shortcut, next_activation_bits(), false);
        for (std::size_t i = 0; i < out.values.size(); ++i) out.values[i] += shortcut.values[i];
      } else {
        for (std::size_t i = 0; i < out.values.size(); ++i) out.values[i] += h.values[i];
      }
    }
    relu_in_place(out);
    block.conv2.output = calibrated_grid(out, next_activation_bits(), true);
    grid = block.conv2.output;
    h = std::move(out);
    channels = width;
    plan.blocks.push_back(std::move(block));
  }

  FloatActivations pooled{std::vector<double>(static_cast<std::size_t>(h.batch * channels), 0),
                          h.batch, channels, 1, 1};
  for (std::int64_t n = 0; n < h.batch; ++n) {
    for (std::int64_t c = 0; c < channels; ++c) {
      double sum = 0;
      for (std::int64_t p = 0; p < h.height * h.width; ++p) {
        sum += h.values[(n * channels + c) * h.height * h.width + p];
      }
      pooled.values[n * channels + c] = sum / static_cast<double>(h.height * h.width);
    }
  }
  plan.pooled = calibrated_grid(pooled, next_activation_bits(), true);
  plan.fc = make_layer("fc", options.num_classes, channels, 1, 1, 0);
  plan.fc.input = plan.pooled;
  plan.fc.output = calibrated_grid(float_conv(pooled, plan.fc), options.output_bits, false);
  return plan;
}

}  // namespace integer_resnet_test
