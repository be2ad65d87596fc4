// IntegerResNet: HAWQ-V3's integer-only inference (Yao et al. 2021) of a CIFAR ResNet compiled from
// a QuantizedResNetPlan. After the image is quantized, only integer multiply, add and shift run:
// dyadic requantization, the per-channel residual addition and an integer global average pool.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/tensor.hpp"
#include "soda/quant/dyadic.hpp"
#include "soda/quant/integer_gemm.hpp"
#include "soda/quant/integer_layer.hpp"
#include "soda/quant/integer_matrix.hpp"
#include "soda/quant/quantize.hpp"
#include "soda/quant/quantized_resnet_plan.hpp"
#include "soda/quant/residual_add.hpp"

namespace soda::quant {

// A BasicBlock in integers. Residual blocks add conv2's int32 accumulators (factors conv2.factors,
// onto conv2.output) to the shortcut (h, or the downsample's output) requantized by
// shortcut_factor = S_shortcut / S_out; the block output clamps to [0, hi] (the ReLU).
struct IntegerBlock {
  IntegerLayer conv1, conv2;
  std::optional<IntegerLayer> downsample;
  bool residual = true;
  DyadicFactor shortcut_factor;  // unused when !residual
};

// Everything an IntegerResNet is assembled from (what compile() computes and the model file
// stores), packed weights aside.
struct IntegerResNetParts {
  std::int64_t in_channels = 3, num_classes = 10;
  std::int64_t image_height = 32, image_width = 32;
  ActivationGrid image{1, 8, false};
  IntegerLayer stem;
  std::vector<IntegerBlock> blocks;
  ActivationGrid pooled;
  DyadicFactor pool_factor;  // S_h / (H·W·S_pooled) over the last stage's H×W pixels
  IntegerLayer fc;
  std::string calibration_method;
};

namespace detail {

inline constexpr const char* integer_resnet_op = "IntegerResNet";

// dyadic_factor(scale), its error naming what the factor is for.
inline DyadicFactor named_dyadic_factor(const std::string& what, double scale) {
  try {
    return dyadic_factor(scale);
  } catch (const ValueError& e) {
    throw ValueError(std::string(integer_resnet_op) + ": " + what + " factor: " + e.what());
  }
}

inline void check_reads(const IntegerLayer& layer, const ActivationGrid& grid,
                        const std::string& producer, std::int64_t channels) {
  const std::string where = std::string(integer_resnet_op) + ": layer '" + layer.name + "'";
  if (!(layer.input == grid)) {
    throw ValueError(where + " reads its input on " + grid_string(layer.input) + " but " +
                     producer + " writes " + grid_string(grid) + "; the grids must be equal");
  }
  if (layer.in_channels != channels) {
    throw ShapeError(where + " takes " + std::to_string(layer.in_channels) + " channels but " +
                     producer + " gives " + std::to_string(channels));
  }
}

inline void check_fits(const IntegerLayer& layer, std::int64_t height, std::int64_t width) {
  if (!layer.fits(height, width)) {
    throw ShapeError(std::string(integer_resnet_op) + ": layer '" + layer.name + "' has a " +
                     std::to_string(layer.kernel_h) + "×" + std::to_string(layer.kernel_w) +
                     " kernel (padding " + std::to_string(layer.padding) + ") that does not fit " +
                     std::to_string(height) + "×" + std::to_string(width) + " inputs");
  }
}

// Checks the parts as a whole: every layer, each input grid and channel count against its
// producer's, the spatial sizes of every block's two paths. Returns the last stage's H×W.
inline std::pair<std::int64_t, std::int64_t> check_integer_resnet(const IntegerResNetParts& p) {
  const std::string op = integer_resnet_op;
  if (p.in_channels < 1 || p.num_classes < 1 || p.image_height < 1 || p.image_width < 1) {
    throw ValueError(op + ": in_channels (" + std::to_string(p.in_channels) + "), num_classes (" +
                     std::to_string(p.num_classes) + ") and the image size (" +
                     std::to_string(p.image_height) + "×" + std::to_string(p.image_width) +
                     ") must be positive");
  }
  check_image_size(op, p.image_height, p.image_width);
  check_at_most(op, "in_channels", p.in_channels, max_layer_channels);
  check_at_most(op, "num_classes", p.num_classes, max_layer_channels);
  check_grid(op + ": image grid", p.image);
  check_grid(op + ": pooled grid", p.pooled);
  std::set<std::string> names;
  const auto check_layer = [&](const IntegerLayer& layer) {
    layer.check(op);
    if (!names.insert(layer.name).second) {
      throw ValueError(op + ": two layers are named '" + layer.name + "'; names must be unique");
    }
  };
  check_layer(p.stem);
  check_reads(p.stem, p.image, "the image", p.in_channels);
  check_fits(p.stem, p.image_height, p.image_width);
  ActivationGrid grid = p.stem.output;
  std::string producer = "layer '" + p.stem.name + "'";
  std::int64_t channels = p.stem.out_channels, height = p.stem.out_height(p.image_height),
               width = p.stem.out_width(p.image_width);
  for (const auto& block : p.blocks) {
    check_layer(block.conv1);
    check_layer(block.conv2);
    check_reads(block.conv1, grid, producer, channels);
    check_fits(block.conv1, height, width);
    check_reads(block.conv2, block.conv1.output, "layer '" + block.conv1.name + "'",
                block.conv1.out_channels);
    const std::int64_t h1 = block.conv1.out_height(height), w1 = block.conv1.out_width(width);
    check_fits(block.conv2, h1, w1);
    const std::int64_t h2 = block.conv2.out_height(h1), w2 = block.conv2.out_width(w1);
    const std::string where = op + ": block ending in '" + block.conv2.name + "'";
    if (!block.residual && block.downsample) {
      throw ValueError(where + " has no residual connection but a downsample '" +
                       block.downsample->name + "'; drop one of them");
    }
    if (block.residual) {
      std::int64_t sc_channels = channels, sc_height = height, sc_width = width;
      if (block.downsample) {
        const IntegerLayer& ds = *block.downsample;
        check_layer(ds);
        check_reads(ds, grid, producer, channels);
        check_fits(ds, height, width);
        sc_channels = ds.out_channels;
        sc_height = ds.out_height(height);
        sc_width = ds.out_width(width);
      }
      if (sc_channels != block.conv2.out_channels || sc_height != h2 || sc_width != w2) {
        throw ShapeError(where + ": the residual path gives " +
                         std::to_string(block.conv2.out_channels) + " channels of " +
                         std::to_string(h2) + "×" + std::to_string(w2) + " but the shortcut " +
                         std::to_string(sc_channels) + " of " + std::to_string(sc_height) + "×" +
                         std::to_string(sc_width) +
                         (block.downsample ? "" : "; a shape change needs a downsample"));
      }
      const DyadicFactor f = block.shortcut_factor;
      if (f.multiplier < (1 << 30) || f.shift < 0 || f.shift >= 63) {
        throw ValueError(where + ": shortcut factor " + std::to_string(f.multiplier) + " / 2^" +
                         std::to_string(f.shift) + " is not dyadic");
      }
    }
    grid = block.conv2.output;
    producer = "layer '" + block.conv2.name + "'";
    channels = block.conv2.out_channels;
    height = h2;
    width = w2;
  }
  check_layer(p.fc);
  check_reads(p.fc, p.pooled, "the pooling", channels);
  if (p.fc.kernel_h != 1 || p.fc.kernel_w != 1 || p.fc.stride != 1 || p.fc.padding != 0) {
    throw ValueError(op + ": the classifier '" + p.fc.name +
                     "' must be a 1×1 convolution with stride 1 and no padding");
  }
  if (p.fc.out_channels != p.num_classes) {
    throw ShapeError(op + ": the classifier '" + p.fc.name + "' has " +
                     std::to_string(p.fc.out_channels) + " outputs for " +
                     std::to_string(p.num_classes) + " classes");
  }
  if (p.pool_factor.multiplier < (1 << 30) || p.pool_factor.shift < 0 ||
      p.pool_factor.shift >= 63) {
    throw ValueError(op + ": the pooling factor is not dyadic");
  }
  return {height, width};
}

}  // namespace detail

class IntegerResNet {
 public:
  // Images go through the network this many at a time (bounds the im2col buffers, not results).
  static constexpr std::int64_t images_per_chunk = 64;

  // Quantizes the plan for images of image_height × image_width pixels: OHWI weights per output
  // channel, int32 biases, every dyadic factor; throws ValueError / ShapeError naming the layer.
  static IntegerResNet compile(const QuantizedResNetPlan& plan, std::int64_t image_height,
                               std::int64_t image_width) {
    const std::string op = detail::integer_resnet_op;
    IntegerResNetParts p;
    p.in_channels = plan.in_channels;
    p.num_classes = plan.num_classes;
    p.image_height = image_height;
    p.image_width = image_width;
    p.image = plan.image;
    p.pooled = plan.pooled;
    p.calibration_method = plan.calibration_method;
    p.stem = quantize_layer(plan.stem, op);
    for (const auto& block : plan.blocks) {
      IntegerBlock b{quantize_layer(block.conv1, op), quantize_layer(block.conv2, op), std::nullopt,
                     block.residual, DyadicFactor{}};
      if (block.downsample) b.downsample = quantize_layer(*block.downsample, op);
      if (block.residual) {
        const float shortcut_scale = b.downsample       ? b.downsample->output.scale
                                     : p.blocks.empty() ? p.stem.output.scale
                                                        : p.blocks.back().conv2.output.scale;
        b.shortcut_factor = detail::named_dyadic_factor(
            "block ending in '" + b.conv2.name + "': shortcut",
            static_cast<double>(shortcut_scale) / static_cast<double>(b.conv2.output.scale));
      }
      p.blocks.push_back(std::move(b));
    }
    p.fc = quantize_layer(plan.fc, op);
    const auto [height, width] = detail::check_integer_resnet(p);
    const float last_scale =
        p.blocks.empty() ? p.stem.output.scale : p.blocks.back().conv2.output.scale;
    p.pool_factor = detail::named_dyadic_factor(
        "pooling",
        static_cast<double>(last_scale) / (static_cast<double>(height * width) * p.pooled.scale));
    return IntegerResNet(std::move(p));
  }

  // Assembles a network from quantized parts (the model file's loader), checking them as compile
  // checks a plan, and packs the weights for this CPU's fastest integer GEMM kernel.
  explicit IntegerResNet(IntegerResNetParts parts) : parts_(std::move(parts)) {
    std::tie(pooled_height_, pooled_width_) = detail::check_integer_resnet(parts_);
    parts_.stem.pack();
    for (auto& block : parts_.blocks) {
      block.conv1.pack();
      block.conv2.pack();
      if (block.downsample) block.downsample->pack();
    }
    parts_.fc.pack();
  }

  // Logit codes [N, num_classes] on output_grid() for normalized images [N, C, H, W].
  IntegerMatrix forward_codes(const Tensor<float>& images) const {
    check_images(images);
    const std::int64_t count = images.shape()[0];
    auto codes = IntegerMatrix::zeros(count, parts_.num_classes, parts_.fc.output.format());
    const Tensor<float> dense =
        images.is_contiguous() ? images : soda::detail::copy_contiguous(images);
    const std::int64_t image_values = parts_.in_channels * parts_.image_height * parts_.image_width;
    for (std::int64_t first = 0; first < count; first += images_per_chunk) {
      const std::int64_t batch = std::min(images_per_chunk, count - first);
      const IntegerMatrix chunk = forward_chunk(dense.data() + first * image_values, batch);
      std::memcpy(codes.bytes.data() + first * codes.row_bytes(), chunk.bytes.data(),
                  chunk.bytes.size());
    }
    return codes;
  }

  // Logits codes·S_out.
  Tensor<float> forward(const Tensor<float>& images) const {
    const IntegerMatrix codes = forward_codes(images);
    auto out = Tensor<float>::empty({codes.rows, codes.cols});
    float* data = out.data();
    for (std::int64_t n = 0; n < codes.rows; ++n) {
      for (std::int64_t k = 0; k < codes.cols; ++k) {
        data[n * codes.cols + k] = static_cast<float>(codes.at(n, k)) * parts_.fc.output.scale;
      }
    }
    return out;
  }

  // The class of each image: the largest code, the lowest index among equal ones.
  std::vector<std::int64_t> predict(const Tensor<float>& images) const {
    const IntegerMatrix codes = forward_codes(images);
    std::vector<std::int64_t> classes(static_cast<std::size_t>(codes.rows));
    for (std::int64_t n = 0; n < codes.rows; ++n) {
      std::int64_t best = 0;
      for (std::int64_t k = 1; k < codes.cols; ++k) {
        if (codes.at(n, k) > codes.at(n, best)) best = k;
      }
      classes[static_cast<std::size_t>(n)] = best;
    }
    return classes;
  }

  const IntegerResNetParts& parts() const { return parts_; }
  std::int64_t in_channels() const { return parts_.in_channels; }
  std::int64_t num_classes() const { return parts_.num_classes; }
  std::int64_t image_height() const { return parts_.image_height; }
  std::int64_t image_width() const { return parts_.image_width; }
  const ActivationGrid& image_grid() const { return parts_.image; }
  const ActivationGrid& pooled_grid() const { return parts_.pooled; }
  const ActivationGrid& output_grid() const { return parts_.fc.output; }
  DyadicFactor pool_factor() const { return parts_.pool_factor; }
  const std::string& calibration_method() const { return parts_.calibration_method; }

  // Every layer in execution order: stem; per block conv1, conv2, downsample; fc.
  std::vector<std::reference_wrapper<const IntegerLayer>> layers() const {
    std::vector<std::reference_wrapper<const IntegerLayer>> out{parts_.stem};
    for (const auto& block : parts_.blocks) {
      out.emplace_back(block.conv1);
      out.emplace_back(block.conv2);
      if (block.downsample) out.emplace_back(*block.downsample);
    }
    out.emplace_back(parts_.fc);
    return out;
  }

  // Σ weights·bits + 32·biases over all layers.
  std::int64_t size_bits() const {
    std::int64_t bits = 0;
    for (const IntegerLayer& layer : layers()) bits += layer.size_bits();
    return bits;
  }

  // The whole network: sizes, grids, the pooling factor and per block and layer to_json(layer).
  // The model file stores exactly this as its description (integer_resnet_file.hpp).
  nlohmann::ordered_json to_json() const {
    nlohmann::ordered_json j;
    j["in_channels"] = parts_.in_channels;
    j["num_classes"] = parts_.num_classes;
    j["image_height"] = parts_.image_height;
    j["image_width"] = parts_.image_width;
    j["calibration_method"] = parts_.calibration_method;
    j["image"] = quant::to_json(parts_.image);
    j["stem"] = quant::to_json(parts_.stem);
    j["blocks"] = nlohmann::ordered_json::array();
    for (const auto& block : parts_.blocks) {
      nlohmann::ordered_json b;
      b["residual"] = block.residual;
      b["shortcut_factor"] =
          block.residual ? quant::to_json(block.shortcut_factor) : nlohmann::ordered_json(nullptr);
      b["conv1"] = quant::to_json(block.conv1);
      b["conv2"] = quant::to_json(block.conv2);
      b["downsample"] =
          block.downsample ? quant::to_json(*block.downsample) : nlohmann::ordered_json(nullptr);
      j["blocks"].push_back(std::move(b));
    }
    j["pooled"] = quant::to_json(parts_.pooled);
    j["pooled_height"] = pooled_height_;
    j["pooled_width"] = pooled_width_;
    j["pool_factor"] = quant::to_json(parts_.pool_factor);
    j["fc"] = quant::to_json(parts_.fc);
    j["size_bits"] = size_bits();
    return j;
  }

  // One line per layer: name, geometry, bit widths, grids and factor ranges.
  std::string describe() const {
    std::ostringstream text;
    text << "IntegerResNet: " << parts_.in_channels << "×" << parts_.image_height << "×"
         << parts_.image_width << " images on " << grid_string(parts_.image) << " → "
         << parts_.num_classes << " classes on " << grid_string(parts_.fc.output) << ", "
         << size_bits() / 8 << " bytes (calibration: " << parts_.calibration_method << ")\n";
    for (const IntegerLayer& layer : layers()) {
      const auto j = quant::to_json(layer);
      text << "  " << layer.name << ": " << layer.in_channels << "→" << layer.out_channels << ", "
           << layer.kernel_h << "×" << layer.kernel_w << " stride " << layer.stride << " pad "
           << layer.padding << ", w" << layer.weight_bits << ", " << grid_string(layer.input)
           << " → " << grid_string(layer.output) << ", M0 " << j["multiplier_range"].dump()
           << ", shift " << j["shift_range"].dump() << "\n";
    }
    text << "  pool: " << pooled_height_ << "×" << pooled_width_ << " → "
         << grid_string(parts_.pooled) << ", M0 " << parts_.pool_factor.multiplier << " shift "
         << parts_.pool_factor.shift << "\n";
    return text.str();
  }

 private:
  void check_images(const Tensor<float>& images) const {
    const Shape expected{-1, parts_.in_channels, parts_.image_height, parts_.image_width};
    const auto& s = images.shape();
    if (s.size() != 4 || s[1] != expected[1] || s[2] != expected[2] || s[3] != expected[3]) {
      throw ShapeError("IntegerResNet::forward: images " + to_string(s) + " are not [N, " +
                       std::to_string(expected[1]) + ", " + std::to_string(expected[2]) + ", " +
                       std::to_string(expected[3]) +
                       "] (the channels and image size it was compiled for)");
    }
  }

  // Codes of `batch` images starting at `pixels` (NCHW floats).
  IntegerMatrix forward_chunk(const float* pixels, std::int64_t batch) const {
    const std::int64_t channels = parts_.in_channels, height = parts_.image_height,
                       width = parts_.image_width;
    std::vector<float> nhwc(static_cast<std::size_t>(batch * channels * height * width));
    for (std::int64_t n = 0; n < batch; ++n) {
      for (std::int64_t c = 0; c < channels; ++c) {
        for (std::int64_t y = 0; y < height; ++y) {
          for (std::int64_t x = 0; x < width; ++x) {
            nhwc[static_cast<std::size_t>(((n * height + y) * width + x) * channels + c)] =
                pixels[((n * channels + c) * height + y) * width + x];
          }
        }
      }
    }
    // The only float step: the image onto its grid.
    IntegerActivations h{
        quantize_activations(nhwc, batch * height * width, channels, parts_.image.scale,
                             parts_.image.bits, parts_.image.is_unsigned),
        height, width};
    h = run_requantized(parts_.stem, h, batch, true);
    for (const auto& block : parts_.blocks) h = run_block(block, h, batch);

    // Global average pooling: int32 sums per channel, the 1/(H·W) folded into pool_factor.
    const std::int64_t pixel_count = h.height * h.width, features = h.values.cols;
    auto pooled = IntegerMatrix::zeros(batch, features, parts_.pooled.format());
    std::vector<std::int32_t> sums(static_cast<std::size_t>(features));
    for (std::int64_t n = 0; n < batch; ++n) {
      std::ranges::fill(sums, 0);
      for (std::int64_t p = n * pixel_count; p < (n + 1) * pixel_count; ++p) {
        for (std::int64_t c = 0; c < features; ++c) sums[c] += h.values.at(p, c);
      }
      for (std::int64_t c = 0; c < features; ++c) {
        pooled.set(n, c,
                   requantize(sums[c], parts_.pool_factor, parts_.pooled.lo(), parts_.pooled.hi()));
      }
    }

    auto codes = IntegerMatrix::zeros(batch, parts_.num_classes, parts_.fc.output.format());
    integer_gemm(pooled, parts_.fc.packed, parts_.fc.bias, Requantization{parts_.fc.factors, false},
                 codes);
    return codes;
  }

  static IntegerActivations run_block(const IntegerBlock& block, const IntegerActivations& h,
                                      std::int64_t batch) {
    const IntegerActivations t = run_requantized(block.conv1, h, batch, true);
    if (!block.residual) return run_requantized(block.conv2, t, batch, true);
    const std::int64_t out_height = block.conv2.out_height(t.height),
                       out_width = block.conv2.out_width(t.width);
    IntegerActivations out{
        IntegerMatrix::zeros(batch * out_height * out_width, block.conv2.out_channels,
                             block.conv2.output.format()),
        out_height, out_width};
    // The residual addition runs in conv2's epilogue, on each finished tile.
    const auto geometry = block.conv2.geometry(batch, t.height, t.width);
    IntegerActivations projected;
    if (block.downsample) projected = run_requantized(*block.downsample, h, batch, false);
    const IntegerMatrix& shortcut = block.downsample ? projected.values : h.values;
    const std::vector<DyadicFactor> shortcut_factors(
        static_cast<std::size_t>(block.conv2.out_channels), block.shortcut_factor);
    integer_conv2d_residual(t.values, block.conv2.packed, block.conv2.bias, geometry,
                            block.conv2.factors, shortcut, shortcut_factors, true, out.values);
    return out;
  }

  IntegerResNetParts parts_;
  std::int64_t pooled_height_ = 0, pooled_width_ = 0;
};

}  // namespace soda::quant
