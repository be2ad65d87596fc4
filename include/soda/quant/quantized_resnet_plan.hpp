// The description of a quantized CIFAR ResNet that the fake-quantized model, the integer-only
// network and the model file share: BN-folded float layers, their bit widths and every grid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/quant/integer_matrix.hpp"

namespace soda::quant {

// A per-tensor activation grid: x ≈ q·scale with q in the format's range. Unsigned grids (after a
// ReLU) span [0, 2^b − 1]; signed ones the type's range [−2^(b−1), 2^(b−1) − 1], as a dyadic
// requantization clamps (the image, quantized from float, uses the symmetric ±(2^(b−1) − 1)).
struct ActivationGrid {
  float scale = 1;
  int bits = 8;  // 4 or 8
  bool is_unsigned = true;

  IntegerFormat format() const {
    return bits == 8 ? (is_unsigned ? IntegerFormat::uint8 : IntegerFormat::int8)
                     : (is_unsigned ? IntegerFormat::uint4 : IntegerFormat::int4);
  }
  std::int32_t lo() const { return format_min(format()); }
  std::int32_t hi() const { return format_max(format()); }
  bool operator==(const ActivationGrid&) const = default;
};

// One convolution (or the classifier, as a 1×1 convolution over one pixel) with BatchNorm folded
// in: y = conv(x, weight, stride, padding) + bias, its input read on `input` and its result
// requantized onto `output`.
struct QuantizedLayerPlan {
  std::string name;  // the float model's module path: "conv1", "layer1.0.conv2", "fc"
  std::int64_t out_channels = 0, in_channels = 0, kernel_h = 1, kernel_w = 1;
  std::int64_t stride = 1, padding = 0;
  int weight_bits = 8;        // 2, 4 or 8 (2- and 4-bit weights are stored as int4)
  std::vector<float> weight;  // [out, in, kh, kw] row-major (PyTorch's layout)
  std::vector<float> bias;    // [out]
  ActivationGrid input, output;
};

// A BasicBlock: out = relu(conv2(relu(conv1(x))) + shortcut(x)). conv1.output is the inner ReLU's
// grid, conv2.output the block output's (the residual sum's); the downsample's output is signed.
struct QuantizedBlockPlan {
  QuantizedLayerPlan conv1, conv2;
  std::optional<QuantizedLayerPlan> downsample;  // 1×1 strided projection, when shapes change
  bool residual = true;
};

// The whole network, in execution order:
//   q0 = quantize(image) on image (signed, symmetric);
//   h = requantize(conv(q0) + b) on stem.output, ReLU fused;
//   per block: t = requantize(conv1(h) + b1) with ReLU; a = conv2(t) + b2 (int32);
//     s = h, or requantize(downsample(h) + bd) on the downsample's signed grid;
//     h = clamp(requantize(a → conv2.output) + requantize(s → conv2.output), 0, hi);
//   p = requantize(Σ_pixels h → pooled) (the mean, by a dyadic factor 1/(H·W) folded in);
//   logits = requantize(fc(p) + b_fc) on fc.output (signed).
struct QuantizedResNetPlan {
  std::int64_t in_channels = 3, num_classes = 10;
  ActivationGrid image{1, 8, false};
  QuantizedLayerPlan stem;
  std::vector<QuantizedBlockPlan> blocks;
  ActivationGrid pooled;
  QuantizedLayerPlan fc;
  // How activation scales were calibrated ("running_max", "percentile_99.9"), for the record.
  std::string calibration_method;
};

// Weight bit widths the plans allow.
inline void check_weight_bits(const std::string& where, int bits) {
  if (bits != 8 && bits != 4 && bits != 2) {
    throw ValueError(where + ": weight bits must be 2, 4 or 8, got " + std::to_string(bits));
  }
}

inline void check_activation_bits(const std::string& where, int bits) {
  if (bits != 8 && bits != 4) {
    throw ValueError(where + ": activation bits must be 4 or 8, got " + std::to_string(bits));
  }
}

}  // namespace soda::quant
