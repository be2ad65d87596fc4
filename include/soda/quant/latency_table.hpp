// Per-layer latency of the integer-only network, measured with soda's own kernels: the median time
// of integer_conv2d with fused requantization for each layer and (weight, activation) bit pair, the
// latency term of HAWQ-V3's bit allocation (Yao et al. 2021, which measures it on the target).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "soda/core/error.hpp"
#include "soda/quant/dyadic.hpp"
#include "soda/quant/integer_conv2d.hpp"
#include "soda/quant/integer_gemm.hpp"
#include "soda/quant/integer_matrix.hpp"
#include "soda/quant/layer_geometry.hpp"
#include "soda/quant/quantized_resnet_plan.hpp"

namespace soda::quant {

struct LatencyEntry {
  std::string name;  // the layer's module path
  int weight_bits = 8;
  int activation_bits = 8;
  double seconds = 0;            // median over the repetitions, for the table's batch of images
  std::int64_t repetitions = 0;  // timed runs the median was taken over

  bool operator==(const LatencyEntry&) const = default;
};

class LatencyTable {
 public:
  LatencyTable() = default;
  // batch: the images per timed call; kernel: the integer GEMM kernel that ran (for the record).
  LatencyTable(std::int64_t batch, std::string kernel)
      : batch_(batch), kernel_(std::move(kernel)) {}

  // Adds an entry; a second one for the same layer and bits is an error.
  void add(LatencyEntry entry) {
    check_weight_bits("LatencyTable", entry.weight_bits);
    check_activation_bits("LatencyTable", entry.activation_bits);
    if (!(entry.seconds >= 0) || entry.repetitions < 1) {
      throw ValueError("LatencyTable: entry " +
                       describe(entry.name, entry.weight_bits, entry.activation_bits) +
                       " needs seconds >= 0 and at least 1 repetition");
    }
    if (find(entry.name, entry.weight_bits, entry.activation_bits) != nullptr) {
      throw ValueError(
          "LatencyTable: " + describe(entry.name, entry.weight_bits, entry.activation_bits) +
          " is given twice");
    }
    entries_.push_back(std::move(entry));
  }

  // The median seconds of layer name at the given bits.
  double seconds(const std::string& name, int weight_bits, int activation_bits) const {
    const LatencyEntry* entry = find(name, weight_bits, activation_bits);
    if (entry == nullptr) {
      throw ValueError("LatencyTable: no latency for " +
                       describe(name, weight_bits, activation_bits) +
                       "; measure that layer and bit pair with measure_layer_latency");
    }
    return entry->seconds;
  }

  const std::vector<LatencyEntry>& entries() const { return entries_; }
  std::int64_t batch() const { return batch_; }
  const std::string& kernel() const { return kernel_; }

  bool operator==(const LatencyTable&) const = default;

  // Seconds are written with round-trip precision, so a table reads back exactly.
  nlohmann::ordered_json to_json() const {
    auto list = nlohmann::ordered_json::array();
    for (const auto& e : entries_) {
      list.push_back({{"name", e.name},
                      {"weight_bits", e.weight_bits},
                      {"activation_bits", e.activation_bits},
                      {"seconds", e.seconds},
                      {"repetitions", e.repetitions}});
    }
    return nlohmann::ordered_json{{"batch", batch_}, {"kernel", kernel_}, {"entries", list}};
  }

  // where names the source in error messages (a file, or "JSON").
  static LatencyTable from_json(const nlohmann::ordered_json& json,
                                const std::string& where = "JSON") {
    const std::string op = "LatencyTable::from_json (" + where + ")";
    try {
      if (!json.is_object() || !json.contains("entries") || !json.at("entries").is_array() ||
          !json.contains("batch")) {
        throw ValueError(op + ": expected an object with \"batch\" and an \"entries\" array");
      }
      // The batch says what the seconds are the time of; the kernel is only for the record.
      const auto batch = json.at("batch").get<std::int64_t>();
      if (batch < 1)
        throw ValueError(op + ": batch must be at least 1, got " + std::to_string(batch));
      LatencyTable table(batch, json.value("kernel", std::string{}));
      const auto& list = json.at("entries");
      for (std::size_t i = 0; i < list.size(); ++i) {
        const auto& e = list[i];
        try {
          table.add({e.at("name").get<std::string>(), e.at("weight_bits").get<int>(),
                     e.at("activation_bits").get<int>(), e.at("seconds").get<double>(),
                     e.at("repetitions").get<std::int64_t>()});
        } catch (const nlohmann::json::exception& error) {
          throw ValueError(op + ": entry " + std::to_string(i) + ": " + error.what());
        } catch (const ValueError& error) {
          throw ValueError(op + ": entry " + std::to_string(i) + ": " + error.what());
        }
      }
      return table;
    } catch (const nlohmann::json::exception& error) {
      throw ValueError(op + ": " + error.what());
    }
  }

  void save(const std::string& path) const {
    std::ofstream file(path);
    if (!file) throw IoError("LatencyTable::save: cannot write '" + path + "'");
    file << to_json().dump(2) << '\n';
    if (!file.flush()) throw IoError("LatencyTable::save: writing '" + path + "' failed");
  }

  static LatencyTable load(const std::string& path) {
    std::ifstream file(path);
    if (!file) throw IoError("LatencyTable::load: cannot open '" + path + "'");
    nlohmann::ordered_json json;
    try {
      json = nlohmann::ordered_json::parse(file);
    } catch (const nlohmann::json::exception& error) {
      throw IoError("LatencyTable::load: '" + path + "' is not valid JSON: " + error.what());
    }
    try {
      return from_json(json, "'" + path + "'");
    } catch (const ValueError& error) {
      throw IoError(error.what());
    }
  }

 private:
  static std::string describe(const std::string& name, int weight_bits, int activation_bits) {
    return "layer \"" + name + "\" at W" + std::to_string(weight_bits) + "A" +
           std::to_string(activation_bits);
  }

  const LatencyEntry* find(const std::string& name, int weight_bits, int activation_bits) const {
    for (const auto& e : entries_) {
      if (e.name == name && e.weight_bits == weight_bits && e.activation_bits == activation_bits)
        return &e;
    }
    return nullptr;
  }

  std::int64_t batch_ = 1;
  std::string kernel_;
  std::vector<LatencyEntry> entries_;
};

namespace detail {

inline IntegerFormat activation_format(int bits, bool is_signed_input) {
  if (bits == 8) return is_signed_input ? IntegerFormat::int8 : IntegerFormat::uint8;
  return is_signed_input ? IntegerFormat::int4 : IntegerFormat::uint4;
}

inline IntegerMatrix random_integer_matrix(std::int64_t rows, std::int64_t cols,
                                           IntegerFormat format, std::int32_t lo, std::int32_t hi,
                                           std::mt19937_64& gen) {
  std::uniform_int_distribution<std::int32_t> value(lo, hi);
  std::vector<std::int32_t> values(static_cast<std::size_t>(rows * cols));
  for (auto& v : values) v = value(gen);
  return IntegerMatrix::from_values(values, rows, cols, format);
}

inline double median_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace detail

// For every layer and (weight bits, activation bits) pair: seeded random quantized activations
// (NHWC, batch images; unsigned of the activation bits after a ReLU, signed for the first layer,
// which reads the image) and weights (int8 for 8 bits, int4 for 4 and 2, drawn on the symmetric
// grid ±(2^(b−1) − 1)), packed once; then integer_conv2d with bias and fused requantization to the
// unsigned format of the activation bits, timed `repetitions` times after one untimed warm-up
// (which pays the kernels' one-off self-check and first-touch page faults), keeping the median
// (robust to the odd preempted run). Only the times depend on the machine.
inline LatencyTable measure_layer_latency(const std::vector<LayerGeometry>& layers,
                                          const std::vector<std::pair<int, int>>& bit_pairs,
                                          std::int64_t batch, std::int64_t repetitions,
                                          std::uint64_t seed) {
  constexpr const char* op = "measure_layer_latency";
  if (layers.empty()) throw ValueError(std::string(op) + ": no layers to time");
  if (bit_pairs.empty()) throw ValueError(std::string(op) + ": no (weight, activation) bit pairs");
  if (batch < 1 || repetitions < 1) {
    throw ValueError(std::string(op) + ": batch and repetitions must be at least 1 (got " +
                     std::to_string(batch) + " and " + std::to_string(repetitions) + ")");
  }
  for (const auto& [wb, ab] : bit_pairs) {
    check_weight_bits(op, wb);
    check_activation_bits(op, ab);
  }
  const IntegerGemmKernel kernel = best_integer_gemm_kernel();
  LatencyTable table(batch, kernel_name(kernel));
  std::mt19937_64 gen(seed);
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const LayerGeometry& layer = layers[l];
    IntegerConv2dGeometry g;
    g.batch = batch;
    g.height = layer.in_height;
    g.width = layer.in_width;
    g.kernel_h = layer.kernel_h;
    g.kernel_w = layer.kernel_w;
    g.stride_h = g.stride_w = layer.stride;
    g.pad_h = g.pad_w = layer.padding;
    if (g.out_h() != layer.out_height || g.out_w() != layer.out_width) {
      throw ShapeError(std::string(op) + ": layer \"" + layer.name + "\" claims " +
                       std::to_string(layer.out_height) + "×" + std::to_string(layer.out_width) +
                       " outputs; its kernel, stride and padding give " +
                       std::to_string(g.out_h()) + "×" + std::to_string(g.out_w()));
    }
    const std::int64_t k = layer.kernel_h * layer.kernel_w * layer.in_channels;
    for (const auto& [wb, ab] : bit_pairs) {
      const IntegerFormat in_format = detail::activation_format(ab, l == 0);
      const IntegerMatrix x = detail::random_integer_matrix(
          batch * layer.in_height * layer.in_width, layer.in_channels, in_format,
          format_min(in_format), format_max(in_format), gen);
      const std::int32_t q_max = (1 << (wb - 1)) - 1;
      const IntegerFormat w_format = wb == 8 ? IntegerFormat::int8 : IntegerFormat::int4;
      const PackedWeights w = pack_weights(
          detail::random_integer_matrix(layer.out_channels, k, w_format, -q_max, q_max, gen),
          kernel);
      std::uniform_int_distribution<std::int32_t> bias_value(-1024, 1024);
      std::vector<std::int32_t> bias(static_cast<std::size_t>(layer.out_channels));
      for (auto& b : bias) b = bias_value(gen);
      // A factor that keeps typical accumulators inside the output range, so the clamp does not
      // short-cut anything (it is branch-free anyway).
      const std::vector<DyadicFactor> factors(static_cast<std::size_t>(layer.out_channels),
                                              dyadic_factor(1.0 / static_cast<double>(k * 16)));
      const Requantization requantization{factors, true};
      IntegerMatrix out =
          IntegerMatrix::zeros(batch * layer.out_height * layer.out_width, layer.out_channels,
                               detail::activation_format(ab, false));
      integer_conv2d(x, w, bias, g, requantization, out);  // warm-up
      std::vector<double> times;
      for (std::int64_t r = 0; r < repetitions; ++r) {
        const auto start = std::chrono::steady_clock::now();
        integer_conv2d(x, w, bias, g, requantization, out);
        const auto stop = std::chrono::steady_clock::now();
        times.push_back(std::chrono::duration<double>(stop - start).count());
      }
      table.add({layer.name, wb, ab, detail::median_of(std::move(times)), repetitions});
    }
  }
  return table;
}

}  // namespace soda::quant
