// The geometry of every quantizable layer of a CIFAR ResNet (channels, kernel, stride, padding and
// the image sizes it sees), with its weight count and multiply-accumulates: the size and BOPS terms
// of HAWQ-V3's bit allocation (Yao et al. 2021), MACs = C_out·C_in·kh·kw·H_out·W_out per image.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/models/resnet_cifar.hpp"
#include "soda/nn/basic_block.hpp"
#include "soda/nn/conv2d.hpp"
#include "soda/nn/linear.hpp"
#include "soda/nn/module.hpp"
#include "soda/nn/sequential.hpp"

namespace soda::quant {

// One convolution, or the classifier as a 1×1 convolution over one pixel (what it is in the
// integer-only network, after global average pooling).
struct LayerGeometry {
  std::string name;  // the module path, as state_dict and LayerReport name it: "layer2.0.conv1"
  std::int64_t in_channels = 0, out_channels = 0;
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride = 1, padding = 0;
  std::int64_t in_height = 1, in_width = 1, out_height = 1, out_width = 1;
  std::int64_t parameter_count = 0;  // weights only: what gets quantized (biases stay int32)
  std::int64_t mac_count = 0;        // multiply-accumulates for one image

  bool operator==(const LayerGeometry&) const = default;
};

namespace detail {

// Image sizes between layers: each layer's input size and the size the walk continues with.
struct SpatialSize {
  std::int64_t height = 0, width = 0;
};

template <class T>
LayerGeometry conv_geometry(const std::string& name, const nn::Conv2d<T>& conv, SpatialSize in) {
  const auto stride = conv.stride(), padding = conv.padding();
  // LayerGeometry (and the integer plan) carry one stride and one padding; every CIFAR ResNet
  // layer is square, so a rectangular one means a model this walk was not written for.
  if (stride.h != stride.w || padding.h != padding.w) {
    throw ValueError("resnet_layer_geometry: layer \"" + name + "\" (" + conv.signature() +
                     ") has a rectangular stride or padding; only square ones are described");
  }
  const auto kernel = conv.kernel_size();
  if (in.height + 2 * padding.h < kernel.h || in.width + 2 * padding.w < kernel.w) {
    throw ValueError("resnet_layer_geometry: layer \"" + name + "\" (" + conv.signature() +
                     ") receives " + std::to_string(in.height) + "×" + std::to_string(in.width) +
                     " images, smaller than its kernel even when padded; use larger images");
  }
  LayerGeometry g;
  g.name = name;
  g.in_channels = conv.in_channels();
  g.out_channels = conv.out_channels();
  g.kernel_h = kernel.h;
  g.kernel_w = kernel.w;
  g.stride = stride.h;
  g.padding = padding.h;
  g.in_height = in.height;
  g.in_width = in.width;
  g.out_height = (in.height + 2 * padding.h - kernel.h) / stride.h + 1;
  g.out_width = (in.width + 2 * padding.w - kernel.w) / stride.w + 1;
  g.parameter_count = g.out_channels * g.in_channels * g.kernel_h * g.kernel_w;
  g.mac_count = g.parameter_count * g.out_height * g.out_width;
  return g;
}

template <class T>
LayerGeometry linear_geometry(const std::string& name, const nn::Linear<T>& linear) {
  LayerGeometry g;
  g.name = name;
  g.in_channels = linear.in_features();
  g.out_channels = linear.out_features();
  g.parameter_count = g.out_channels * g.in_channels;
  g.mac_count = g.parameter_count;
  return g;
}

template <class T>
std::shared_ptr<nn::Conv2d<T>> as_conv(const std::string& name,
                                       const std::shared_ptr<nn::Module<T>>& module) {
  auto conv = std::dynamic_pointer_cast<nn::Conv2d<T>>(module);
  if (!conv) {
    throw ValueError("resnet_layer_geometry: module \"" + name + "\" is a " + module->type_name() +
                     ", expected a Conv2d");
  }
  return conv;
}

inline void check_channels(const std::string& name, std::int64_t expected, std::int64_t got) {
  if (expected != got) {
    throw ShapeError("resnet_layer_geometry: layer \"" + name + "\" expects " +
                     std::to_string(got) + " input channels but receives " +
                     std::to_string(expected));
  }
}

// A BasicBlock: conv1 and the projection shortcut read the block's input, conv2 reads conv1's
// output; the block's output has conv2's size (which the shortcut must match).
template <class T>
void append_block_geometry(const std::string& prefix, const nn::Module<T>& block, SpatialSize& size,
                           std::int64_t& channels, std::vector<LayerGeometry>& out) {
  const SpatialSize block_in = size;
  const std::int64_t block_channels = channels;
  std::optional<LayerGeometry> conv1, conv2, shortcut;
  for (const auto& [name, child] : block.children()) {
    const std::string path = prefix + name;
    if (name == "conv1") {
      conv1 = conv_geometry(path, *as_conv(path, child), block_in);
      check_channels(path, block_channels, conv1->in_channels);
      out.push_back(*conv1);
    } else if (name == "conv2") {
      if (!conv1) throw ValueError("resnet_layer_geometry: \"" + path + "\" comes before conv1");
      conv2 = conv_geometry(path, *as_conv(path, child), {conv1->out_height, conv1->out_width});
      check_channels(path, conv1->out_channels, conv2->in_channels);
      out.push_back(*conv2);
    } else if (name == "downsample") {
      for (const auto& [index, part] : child->children()) {
        auto conv = std::dynamic_pointer_cast<nn::Conv2d<T>>(part);
        if (!conv) continue;  // its BatchNorm, folded into the convolution
        shortcut = conv_geometry(path + "." + index, *conv, block_in);
        check_channels(shortcut->name, block_channels, shortcut->in_channels);
        out.push_back(*shortcut);
      }
    }
  }
  if (!conv2) throw ValueError("resnet_layer_geometry: block \"" + prefix + "\" has no conv2");
  if (shortcut &&
      (shortcut->out_height != conv2->out_height || shortcut->out_width != conv2->out_width ||
       shortcut->out_channels != conv2->out_channels)) {
    throw ShapeError("resnet_layer_geometry: in block \"" + prefix + "\" the shortcut gives " +
                     std::to_string(shortcut->out_height) + "×" +
                     std::to_string(shortcut->out_width) + " images and conv2 " +
                     std::to_string(conv2->out_height) + "×" + std::to_string(conv2->out_width));
  }
  size = {conv2->out_height, conv2->out_width};
  channels = conv2->out_channels;
}

}  // namespace detail

// Every quantizable layer of model on height × width images, in execution order: conv1, then per
// block conv1, conv2 and downsample.0 (when present), then fc. BatchNorm layers are left out: they
// are folded into the convolution before it.
template <class T>
std::vector<LayerGeometry> resnet_layer_geometry(const models::ResNetCifar<T>& model,
                                                 std::int64_t height, std::int64_t width) {
  if (height < 1 || width < 1) {
    throw ValueError("resnet_layer_geometry: images must be at least 1×1, got " +
                     std::to_string(height) + "×" + std::to_string(width));
  }
  std::vector<LayerGeometry> out;
  detail::SpatialSize size{height, width};
  std::int64_t channels = model.options().in_channels;
  for (const auto& [name, child] : model.children()) {
    if (auto conv = std::dynamic_pointer_cast<nn::Conv2d<T>>(child)) {
      out.push_back(detail::conv_geometry(name, *conv, size));
      detail::check_channels(name, channels, out.back().in_channels);
      size = {out.back().out_height, out.back().out_width};
      channels = out.back().out_channels;
    } else if (auto linear = std::dynamic_pointer_cast<nn::Linear<T>>(child)) {
      detail::check_channels(name, channels, linear->in_features());
      out.push_back(detail::linear_geometry(name, *linear));
    } else if (std::dynamic_pointer_cast<nn::Sequential<T>>(child)) {
      for (const auto& [index, block] : child->children()) {
        detail::append_block_geometry(name + "." + index + ".", *block, size, channels, out);
      }
    }
    // Anything else (bn1) holds no quantized weight.
  }
  return out;
}

}  // namespace soda::quant
