// One layer of integer-only inference (HAWQ-V3, Yao et al. 2021): a BN-folded convolution, or the
// classifier as a 1×1 one, with OHWI weights quantized per output channel, its int32 bias at
// S_w[n]·S_in and the dyadic factors S_w[n]·S_in / S_out onto its output grid.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/quant/dyadic.hpp"
#include "soda/quant/integer_conv2d.hpp"
#include "soda/quant/integer_gemm.hpp"
#include "soda/quant/integer_matrix.hpp"
#include "soda/quant/quantize.hpp"
#include "soda/quant/quantized_resnet_plan.hpp"

namespace soda::quant {

// 8-bit weights are int8; 4- and 2-bit ones are stored as int4.
constexpr IntegerFormat weight_format(int weight_bits) {
  return weight_bits == 8 ? IntegerFormat::int8 : IntegerFormat::int4;
}

// "uint8 × 0.0123" (for messages and describe()).
inline std::string grid_string(const ActivationGrid& grid) {
  std::ostringstream text;
  text.precision(9);
  text << (grid.is_unsigned ? "uint" : "int") << grid.bits << " × " << grid.scale;
  return text.str();
}

// Bounds on a layer's geometry, far above any real network's yet low enough that every product
// the integer kernels form (out·kh·kw·in weights, padded input sizes, output positions) fits in
// int64: a corrupt model file or plan is refused instead of wrapping.
inline constexpr std::int64_t max_layer_channels = std::int64_t{1} << 20;
inline constexpr std::int64_t max_layer_extent = std::int64_t{1} << 16;  // kernel, stride, padding
inline constexpr std::int64_t max_layer_weights = std::int64_t{1} << 32;
inline constexpr std::int64_t max_image_side = std::int64_t{1} << 16;

// Activations in NHWC between layers: [batch·height·width, channels].
struct IntegerActivations {
  IntegerMatrix values;
  std::int64_t height = 0, width = 0;
};

struct IntegerLayer {
  std::string name;  // the float model's module path
  std::int64_t out_channels = 0, in_channels = 0, kernel_h = 1, kernel_w = 1;
  std::int64_t stride = 1, padding = 0;
  int weight_bits = 8;
  ActivationGrid input, output;
  IntegerMatrix weights;              // [out, kh·kw·in], OHWI; weight_format(weight_bits)
  std::vector<float> weight_scales;   // S_w[n]
  std::vector<std::int32_t> bias;     // q_b[n] at S_w[n]·S_in
  std::vector<DyadicFactor> factors;  // S_w[n]·S_in / S_out
  PackedWeights packed;               // pack_weights(weights), filled by pack()

  std::int64_t reduction() const { return kernel_h * kernel_w * in_channels; }
  std::int64_t out_height(std::int64_t height) const {
    return (height + 2 * padding - kernel_h) / stride + 1;
  }
  std::int64_t out_width(std::int64_t width) const {
    return (width + 2 * padding - kernel_w) / stride + 1;
  }
  bool fits(std::int64_t height, std::int64_t width) const {
    return kernel_h <= height + 2 * padding && kernel_w <= width + 2 * padding;
  }
  IntegerConv2dGeometry geometry(std::int64_t batch, std::int64_t height,
                                 std::int64_t width) const {
    return {batch, height, width, kernel_h, kernel_w, stride, stride, padding, padding};
  }
  // Σ weights·bits + 32·biases.
  std::int64_t size_bits() const {
    return out_channels * reduction() * weight_bits + 32 * out_channels;
  }
  void pack() { packed = pack_weights(weights); }

  // Throws ValueError / ShapeError naming the layer unless every field agrees with the others.
  void check(const std::string& op) const;
};

namespace detail {

inline void check_grid(const std::string& where, const ActivationGrid& grid) {
  check_activation_bits(where, grid.bits);
  if (!(grid.scale > 0) || !std::isfinite(grid.scale)) {
    throw ValueError(where + ": scale must be positive and finite, got " +
                     std::to_string(grid.scale));
  }
}

inline void check_at_most(const std::string& where, const char* what, std::int64_t value,
                          std::int64_t most) {
  if (value > most) {
    throw ValueError(where + ": " + what + " " + std::to_string(value) + " is too large (at most " +
                     std::to_string(most) + "); is the plan or model file corrupt?");
  }
}

inline void check_layer_geometry(const std::string& where, std::int64_t out_channels,
                                 std::int64_t in_channels, std::int64_t kernel_h,
                                 std::int64_t kernel_w, std::int64_t stride, std::int64_t padding) {
  if (out_channels < 1 || in_channels < 1 || kernel_h < 1 || kernel_w < 1 || stride < 1 ||
      padding < 0) {
    throw ValueError(where + ": bad geometry: " + std::to_string(out_channels) + " ← " +
                     std::to_string(in_channels) + " channels, kernel " + std::to_string(kernel_h) +
                     "×" + std::to_string(kernel_w) + ", stride " + std::to_string(stride) +
                     ", padding " + std::to_string(padding) +
                     " (channels, kernel and stride must be positive, padding non-negative)");
  }
  check_at_most(where, "out_channels", out_channels, max_layer_channels);
  check_at_most(where, "in_channels", in_channels, max_layer_channels);
  check_at_most(where, "kernel_h", kernel_h, max_layer_extent);
  check_at_most(where, "kernel_w", kernel_w, max_layer_extent);
  check_at_most(where, "stride", stride, max_layer_extent);
  check_at_most(where, "padding", padding, max_layer_extent);
  // Each factor is bounded above, so kh·kw·in fits; out · that is compared by division.
  const std::int64_t reduction = kernel_h * kernel_w * in_channels;
  if (reduction > max_layer_weights / out_channels) {
    throw ValueError(where + ": " + std::to_string(out_channels) + " × " +
                     std::to_string(kernel_h) + "×" + std::to_string(kernel_w) + "×" +
                     std::to_string(in_channels) + " weights are too many (at most " +
                     std::to_string(max_layer_weights) + "); is the plan or model file corrupt?");
  }
}

// An image size the layers can take: positive and at most max_image_side on each side.
inline void check_image_size(const std::string& where, std::int64_t height, std::int64_t width) {
  if (height < 1 || width < 1) {
    throw ValueError(where + ": image size " + std::to_string(height) + "×" +
                     std::to_string(width) + " must be positive");
  }
  check_at_most(where, "image height", height, max_image_side);
  check_at_most(where, "image width", width, max_image_side);
}

template <class T>
void check_per_channel(const std::string& where, const char* what, const std::vector<T>& values,
                       std::int64_t channels) {
  if (static_cast<std::int64_t>(values.size()) != channels) {
    throw ShapeError(where + ": " + std::to_string(values.size()) + " " + what + " for " +
                     std::to_string(channels) + " output channels");
  }
}

}  // namespace detail

inline void IntegerLayer::check(const std::string& op) const {
  const std::string where = op + ": layer '" + name + "'";
  if (name.empty()) throw ValueError(op + ": a layer has an empty name");
  detail::check_layer_geometry(where, out_channels, in_channels, kernel_h, kernel_w, stride,
                               padding);
  check_weight_bits(where, weight_bits);
  detail::check_grid(where + " input", input);
  detail::check_grid(where + " output", output);
  if (weights.rows != out_channels || weights.cols != reduction() ||
      weights.format != weight_format(weight_bits)) {
    throw ShapeError(where + ": weights " + weights.shape_string() + " are not " +
                     format_name(weight_format(weight_bits)) + " [" + std::to_string(out_channels) +
                     ", " + std::to_string(reduction()) + "] for " + std::to_string(weight_bits) +
                     "-bit weights [out, kh·kw·in]");
  }
  weights.check(where.c_str(), "weights");
  const std::int32_t q_max = (1 << (weight_bits - 1)) - 1;
  for (std::int64_t n = 0; n < weights.rows; ++n) {
    for (std::int64_t k = 0; k < weights.cols; ++k) {
      const std::int32_t q = weights.at(n, k);
      if (q < -q_max || q > q_max) {
        throw ValueError(where + ": weight " + std::to_string(q) + " at [" + std::to_string(n) +
                         ", " + std::to_string(k) + "] is outside the symmetric " +
                         std::to_string(weight_bits) + "-bit grid ±" + std::to_string(q_max));
      }
    }
  }
  detail::check_per_channel(where, "weight scales", weight_scales, out_channels);
  detail::check_per_channel(where, "biases", bias, out_channels);
  detail::check_per_channel(where, "requantization factors", factors, out_channels);
  for (std::size_t n = 0; n < weight_scales.size(); ++n) {
    if (!(weight_scales[n] > 0) || !std::isfinite(weight_scales[n])) {
      throw ValueError(where + ": weight scale " + std::to_string(weight_scales[n]) +
                       " of channel " + std::to_string(n) + " is not positive and finite");
    }
  }
  for (std::size_t n = 0; n < factors.size(); ++n) {
    if (factors[n].multiplier < (1 << 30) || factors[n].shift < 0 || factors[n].shift >= 63) {
      throw ValueError(where + ": factor " + std::to_string(factors[n].multiplier) + " / 2^" +
                       std::to_string(factors[n].shift) + " of channel " + std::to_string(n) +
                       " is not dyadic (M0 in [2^30, 2^31), 0 <= c < 63)");
    }
  }
}

// Quantizes a plan's layer: weights permuted from [out, in, kh, kw] to OHWI and quantized per
// output channel, the bias at S_w[n]·S_in (an empty bias is zero), factors onto layer.output.
inline IntegerLayer quantize_layer(const QuantizedLayerPlan& plan, const std::string& op) {
  const std::string where = op + ": layer '" + plan.name + "'";
  detail::check_layer_geometry(where, plan.out_channels, plan.in_channels, plan.kernel_h,
                               plan.kernel_w, plan.stride, plan.padding);
  check_weight_bits(where, plan.weight_bits);
  detail::check_grid(where + " input", plan.input);
  detail::check_grid(where + " output", plan.output);
  const std::int64_t out = plan.out_channels, in = plan.in_channels, kh = plan.kernel_h,
                     kw = plan.kernel_w, k = kh * kw * in;
  if (static_cast<std::int64_t>(plan.weight.size()) != out * k) {
    throw ShapeError(where + ": " + std::to_string(plan.weight.size()) +
                     " weights do not fill [out, in, kh, kw] = [" + std::to_string(out) + ", " +
                     std::to_string(in) + ", " + std::to_string(kh) + ", " + std::to_string(kw) +
                     "]");
  }
  if (!plan.bias.empty() && static_cast<std::int64_t>(plan.bias.size()) != out) {
    throw ShapeError(where + ": " + std::to_string(plan.bias.size()) + " biases for " +
                     std::to_string(out) + " output channels");
  }
  std::vector<float> ohwi(plan.weight.size());
  for (std::int64_t o = 0; o < out; ++o) {
    for (std::int64_t c = 0; c < in; ++c) {
      for (std::int64_t i = 0; i < kh; ++i) {
        for (std::int64_t j = 0; j < kw; ++j) {
          ohwi[static_cast<std::size_t>(o * k + (i * kw + j) * in + c)] =
              plan.weight[static_cast<std::size_t>(((o * in + c) * kh + i) * kw + j)];
        }
      }
    }
  }
  IntegerLayer layer;
  layer.name = plan.name;
  layer.out_channels = out;
  layer.in_channels = in;
  layer.kernel_h = kh;
  layer.kernel_w = kw;
  layer.stride = plan.stride;
  layer.padding = plan.padding;
  layer.weight_bits = plan.weight_bits;
  layer.input = plan.input;
  layer.output = plan.output;
  try {
    auto quantized = quantize_weights(ohwi, out, k, plan.weight_bits);
    layer.weights = std::move(quantized.values);
    layer.weight_scales = std::move(quantized.scales);
    const std::vector<float> bias =
        plan.bias.empty() ? std::vector<float>(static_cast<std::size_t>(out), 0.0f) : plan.bias;
    layer.bias = quantize_bias(bias, layer.weight_scales, plan.input.scale);
    layer.factors =
        requantization_factors(layer.weight_scales, plan.input.scale, plan.output.scale);
  } catch (const ShapeError& e) {
    throw ShapeError(where + ": " + e.what());
  } catch (const ValueError& e) {
    throw ValueError(where + ": " + e.what());
  }
  return layer;
}

// The layer on x, requantized onto its output grid (lo = 0 when relu).
inline IntegerActivations run_requantized(const IntegerLayer& layer, const IntegerActivations& x,
                                          std::int64_t batch, bool relu) {
  IntegerActivations y{
      IntegerMatrix::zeros(batch * layer.out_height(x.height) * layer.out_width(x.width),
                           layer.out_channels, layer.output.format()),
      layer.out_height(x.height), layer.out_width(x.width)};
  integer_conv2d(x.values, layer.packed, layer.bias, layer.geometry(batch, x.height, x.width),
                 Requantization{layer.factors, relu}, y.values);
  return y;
}

inline nlohmann::ordered_json to_json(const ActivationGrid& grid) {
  return {{"scale", grid.scale}, {"bits", grid.bits}, {"is_unsigned", grid.is_unsigned}};
}

inline nlohmann::ordered_json to_json(const DyadicFactor& factor) {
  return {{"multiplier", factor.multiplier}, {"shift", factor.shift}};
}

// The layer's geometry, bit widths and grids, and the ranges of its scales and factors.
inline nlohmann::ordered_json to_json(const IntegerLayer& layer) {
  nlohmann::ordered_json j;
  j["name"] = layer.name;
  j["out_channels"] = layer.out_channels;
  j["in_channels"] = layer.in_channels;
  j["kernel_h"] = layer.kernel_h;
  j["kernel_w"] = layer.kernel_w;
  j["stride"] = layer.stride;
  j["padding"] = layer.padding;
  j["weight_bits"] = layer.weight_bits;
  j["weight_format"] = format_name(layer.weights.format);
  j["input"] = to_json(layer.input);
  j["output"] = to_json(layer.output);
  if (!layer.factors.empty()) {
    const auto [scale_lo, scale_hi] = std::ranges::minmax(layer.weight_scales);
    const auto [m_lo, m_hi] =
        std::ranges::minmax(layer.factors, {}, [](const DyadicFactor& f) { return f.multiplier; });
    const auto [c_lo, c_hi] =
        std::ranges::minmax(layer.factors, {}, [](const DyadicFactor& f) { return f.shift; });
    j["weight_scale_range"] = {scale_lo, scale_hi};
    j["multiplier_range"] = {m_lo.multiplier, m_hi.multiplier};
    j["shift_range"] = {c_lo.shift, c_hi.shift};
  }
  j["size_bits"] = layer.size_bits();
  return j;
}

}  // namespace soda::quant
