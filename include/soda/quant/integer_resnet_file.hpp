// The IntegerResNet model file: a safetensors file (io/safetensors.hpp, written atomically) holding
// every integer the network runs on, so that a loaded network gives bit-identical codes.
//
// Tensors, for each layer L (its float module path: "conv1", "layer2.0.downsample", "fc"):
//   L.weight        I8 [out, K] for 8-bit weights, or U8 [out, ceil(K/2)] for 4- and 2-bit ones
//                   (int4 nibbles as the spec stores them: element 2i low, 2i+1 high, zero pad);
//                   K = kh·kw·in in OHWI order
//   L.weight_scale  F32 [out]  S_w[n]
//   L.bias          I32 [out]  q_b[n] at S_w[n]·S_in
//   L.multiplier    I32 [out]  M0[n] of S_w[n]·S_in / S_out
//   L.shift         I32 [out]  c[n]
// Metadata (__metadata__, strings): "format" = "soda.integer_resnet", "format_version" = "1" and
// "soda.integer_resnet" = IntegerResNet::to_json() as JSON text: image size and grid, channels,
// classes, the calibration method, per block residual and shortcut_factor {multiplier, shift},
// per layer geometry, weight_bits, weight_format and input/output grids {scale, bits,
// is_unsigned}, the pooled grid and pool_factor. Scalar factors live there as exact integers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/tensor.hpp"
#include "soda/io/safetensors.hpp"
#include "soda/io/tensor_file.hpp"
#include "soda/quant/integer_layer.hpp"
#include "soda/quant/integer_resnet.hpp"

namespace soda::quant {

inline constexpr const char* integer_resnet_file_format = "soda.integer_resnet";
inline constexpr const char* integer_resnet_file_version = "1";

namespace detail {

inline void add_layer_tensors(TensorFile& file, const IntegerLayer& layer) {
  const std::int64_t out = layer.out_channels;
  if (layer.weights.format == IntegerFormat::int8) {
    std::vector<std::int8_t> values(layer.weights.bytes.size());
    std::memcpy(values.data(), layer.weights.bytes.data(), values.size());
    file.tensors.emplace_back(layer.name + ".weight",
                              Tensor<std::int8_t>({out, layer.weights.cols}, std::move(values)));
  } else {
    file.tensors.emplace_back(
        layer.name + ".weight",
        Tensor<std::uint8_t>({out, layer.weights.row_bytes()}, layer.weights.bytes));
  }
  std::vector<std::int32_t> multipliers, shifts;
  for (const auto& f : layer.factors) {
    multipliers.push_back(f.multiplier);
    shifts.push_back(f.shift);
  }
  file.tensors.emplace_back(layer.name + ".weight_scale",
                            Tensor<float>({out}, layer.weight_scales));
  file.tensors.emplace_back(layer.name + ".bias", Tensor<std::int32_t>({out}, layer.bias));
  file.tensors.emplace_back(layer.name + ".multiplier",
                            Tensor<std::int32_t>({out}, std::move(multipliers)));
  file.tensors.emplace_back(layer.name + ".shift", Tensor<std::int32_t>({out}, std::move(shifts)));
}

// Reads one file's parts; every problem becomes an IoError naming the file.
class IntegerResNetReader {
 public:
  IntegerResNetReader(std::filesystem::path path, TensorFile file)
      : path_(std::move(path)), file_(std::move(file)) {}

  IntegerResNet read() {
    IntegerResNetParts parts = read_parts();
    for (const auto& [name, tensor] : file_.tensors) {
      if (!used_.contains(name)) fail("tensor '" + name + "' belongs to no layer of the network");
    }
    try {
      return IntegerResNet(std::move(parts));
    } catch (const Error& e) {
      fail(std::string("inconsistent network: ") + e.what());
    }
  }

 private:
  using Json = nlohmann::ordered_json;

  [[noreturn]] void fail(const std::string& problem) const {
    throw IoError("load_integer_resnet: '" + path_.string() + "': " + problem);
  }

  IntegerResNetParts read_parts() {
    const auto format = file_.metadata.find("format");
    const auto description = file_.metadata.find(integer_resnet_file_format);
    if (format == file_.metadata.end() || format->second != integer_resnet_file_format ||
        description == file_.metadata.end()) {
      fail(
          "not an IntegerResNet model file (its metadata lacks format = 'soda.integer_resnet' "
          "and the network description); write one with save_integer_resnet");
    }
    const auto version = file_.metadata.find("format_version");
    if (version == file_.metadata.end() || version->second != integer_resnet_file_version) {
      fail("format_version '" +
           (version == file_.metadata.end() ? std::string("(none)") : version->second) +
           "' is not the version " + integer_resnet_file_version + " this soda reads");
    }
    try {
      const Json j = Json::parse(description->second);
      IntegerResNetParts p;
      p.in_channels = integer<std::int64_t>(j, "in_channels");
      p.num_classes = integer<std::int64_t>(j, "num_classes");
      p.image_height = integer<std::int64_t>(j, "image_height");
      p.image_width = integer<std::int64_t>(j, "image_width");
      try {
        check_image_size("the network", p.image_height, p.image_width);
        check_at_most("the network", "in_channels", p.in_channels, max_layer_channels);
        check_at_most("the network", "num_classes", p.num_classes, max_layer_channels);
      } catch (const Error& e) {
        fail(e.what());
      }
      p.calibration_method = j.at("calibration_method").get<std::string>();
      p.image = read_grid(j.at("image"));
      p.stem = read_layer(j.at("stem"));
      for (const auto& b : j.at("blocks")) {
        IntegerBlock block;
        block.residual = b.at("residual").get<bool>();
        if (block.residual) block.shortcut_factor = read_factor(b.at("shortcut_factor"));
        block.conv1 = read_layer(b.at("conv1"));
        block.conv2 = read_layer(b.at("conv2"));
        if (!b.at("downsample").is_null()) block.downsample = read_layer(b.at("downsample"));
        p.blocks.push_back(std::move(block));
      }
      p.pooled = read_grid(j.at("pooled"));
      p.pool_factor = read_factor(j.at("pool_factor"));
      p.fc = read_layer(j.at("fc"));
      return p;
    } catch (const Json::exception& e) {
      fail(std::string("the network description in the metadata is malformed: ") + e.what());
    }
  }

  // The integer j[key], refused unless it is one and fits T (nlohmann's get would truncate 8.5 or
  // wrap 2^32 + 8 to 8 without a word, and casting 1e300 to an integer is undefined).
  template <class T>
  T integer(const Json& j, const char* key) const {
    const Json& value = j.at(key);
    if (value.is_number_unsigned()) {
      const auto v = value.get<std::uint64_t>();
      if (v <= static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(v);
    } else if (value.is_number_integer()) {
      const auto v = value.get<std::int64_t>();
      if (v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max()) {
        return static_cast<T>(v);
      }
    }
    fail(std::string("the network description's \"") + key + "\" is " + excerpt(value) +
         ", not an integer in [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
         std::to_string(std::numeric_limits<T>::max()) + "]");
  }

  // A value for a message: arrays and objects by their type only (printing one recurses once per
  // level of nesting, which a hostile file could make deep).
  static std::string excerpt(const Json& value) {
    return value.is_structured() ? std::string("an ") + value.type_name() : value.dump();
  }

  ActivationGrid read_grid(const Json& j) const {
    const Json& scale = j.at("scale");
    if (!scale.is_number() ||
        !(std::abs(scale.get<double>()) <= std::numeric_limits<float>::max())) {
      fail("the network description's grid scale is " + excerpt(scale) +
           ", not a number in float's range");
    }
    return {static_cast<float>(scale.get<double>()), integer<int>(j, "bits"),
            j.at("is_unsigned").get<bool>()};
  }

  DyadicFactor read_factor(const Json& j) const {
    return {integer<std::int32_t>(j, "multiplier"), integer<int>(j, "shift")};
  }

  template <class T>
  std::vector<T> tensor(const std::string& name, const Shape& shape) {
    const AnyTensor* found = file_.find(name);
    if (found == nullptr) fail("missing tensor '" + name + "'");
    const auto* typed = std::get_if<Tensor<T>>(found);
    if (typed == nullptr) {
      fail("tensor '" + name + "' is " + std::string(soda::detail::dtype_name_of(*found)) +
           ", expected " + std::string(dtype_name<T>()));
    }
    if (typed->shape() != shape) {
      fail("tensor '" + name + "' has shape " + to_string(typed->shape()) + ", expected " +
           to_string(shape));
    }
    used_.insert(name);
    const T* data = typed->data();
    return std::vector<T>(data, data + typed->numel());
  }

  IntegerLayer read_layer(const Json& j) {
    IntegerLayer layer;
    layer.name = j.at("name").get<std::string>();
    layer.out_channels = integer<std::int64_t>(j, "out_channels");
    layer.in_channels = integer<std::int64_t>(j, "in_channels");
    layer.kernel_h = integer<std::int64_t>(j, "kernel_h");
    layer.kernel_w = integer<std::int64_t>(j, "kernel_w");
    layer.stride = integer<std::int64_t>(j, "stride");
    layer.padding = integer<std::int64_t>(j, "padding");
    layer.weight_bits = integer<int>(j, "weight_bits");
    layer.input = read_grid(j.at("input"));
    layer.output = read_grid(j.at("output"));
    const std::string where = "layer '" + layer.name + "'";
    try {
      check_layer_geometry(where, layer.out_channels, layer.in_channels, layer.kernel_h,
                           layer.kernel_w, layer.stride, layer.padding);
      check_weight_bits(where, layer.weight_bits);
    } catch (const Error& e) {
      fail(e.what());
    }
    const IntegerFormat format = weight_format(layer.weight_bits);
    if (j.at("weight_format").get<std::string>() != format_name(format)) {
      fail(where + " records weight_format '" + j.at("weight_format").get<std::string>() +
           "' for " + std::to_string(layer.weight_bits) + "-bit weights, expected '" +
           format_name(format) + "'");
    }
    const std::int64_t out = layer.out_channels, k = layer.reduction();
    const std::string& name = layer.name;
    layer.weights = IntegerMatrix{out, k, format, {}};
    if (format == IntegerFormat::int8) {
      const auto values = tensor<std::int8_t>(name + ".weight", {out, k});
      layer.weights.bytes.resize(values.size());
      std::memcpy(layer.weights.bytes.data(), values.data(), values.size());
    } else {
      layer.weights.bytes = tensor<std::uint8_t>(name + ".weight", {out, row_bytes(format, k)});
    }
    layer.weight_scales = tensor<float>(name + ".weight_scale", {out});
    layer.bias = tensor<std::int32_t>(name + ".bias", {out});
    const auto multipliers = tensor<std::int32_t>(name + ".multiplier", {out});
    const auto shifts = tensor<std::int32_t>(name + ".shift", {out});
    for (std::int64_t n = 0; n < out; ++n) layer.factors.push_back({multipliers[n], shifts[n]});
    return layer;
  }

  std::filesystem::path path_;
  TensorFile file_;
  std::set<std::string> used_;
};

}  // namespace detail

// Writes the network to path (temporary file, fsync, rename: complete or not at all).
inline void save_integer_resnet(const std::filesystem::path& path, const IntegerResNet& network) {
  TensorFile file;
  for (const IntegerLayer& layer : network.layers()) detail::add_layer_tensors(file, layer);
  file.metadata["format"] = integer_resnet_file_format;
  file.metadata["format_version"] = integer_resnet_file_version;
  file.metadata[integer_resnet_file_format] = network.to_json().dump();
  save_safetensors(path, file);
}

// Reads a network written by save_integer_resnet and packs its weights for this CPU; its
// forward_codes equal the saved network's bit for bit. A missing, truncated or corrupt file, a
// missing tensor or shapes that disagree throw IoError naming the file and the problem.
inline IntegerResNet load_integer_resnet(const std::filesystem::path& path) {
  return detail::IntegerResNetReader(path, load_safetensors(path)).read();
}

}  // namespace soda::quant
