// Per-layer quantization sensitivities from a layer curvature report: HAWQ-V1's top eigenvalue per
// parameter λ_max(H_BB)/|B| (Dong et al. 2019) and HAWQ-V2's Ω_b = tr(H_BB)/|B| · ‖Q_b(W) − W‖²
// (Dong et al. 2020), turned into the bit-width candidates of HAWQ-V3's allocation (Yao et al.
// 2021).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "soda/core/error.hpp"
#include "soda/hessian/layer_report.hpp"
#include "soda/nn/module.hpp"
#include "soda/quant/bit_allocation.hpp"
#include "soda/quant/fake_quantize.hpp"
#include "soda/quant/latency_table.hpp"
#include "soda/quant/layer_geometry.hpp"

namespace soda::quant {

// The weight perturbation of quantizing a layer to weight_bits, and HAWQ-V2's sensitivity of it.
struct BitPerturbation {
  int weight_bits = 8;
  double squared_norm = 0;  // ‖Q_b(W) − W‖², summed in double
  double hawq_v2 = 0;       // average_trace · squared_norm
};

struct LayerSensitivity {
  std::string name;  // module path, as in the report: "layer1.0.conv1"
  // The Hessian block's size (the report's parameter count, bias included), the denominator of
  // both average_trace and hawq_v1, so that the two rank layers on the same footing.
  std::int64_t parameter_count = 0;
  std::int64_t weight_count = 0;  // elements of <name>.weight: what gets quantized
  double top_eigenvalue = std::numeric_limits<double>::quiet_NaN();  // from the report
  double average_trace = std::numeric_limits<double>::quiet_NaN();   // from the report
  // The report's trace standard error / parameter_count (NaN from a single probe).
  double average_trace_standard_error = std::numeric_limits<double>::quiet_NaN();
  double hawq_v1 = std::numeric_limits<double>::quiet_NaN();  // top_eigenvalue / parameter_count
  std::vector<BitPerturbation> perturbations;                 // in the order bits were asked for

  // The perturbation for weight_bits; an error naming the layer when it was not computed.
  const BitPerturbation& perturbation(int weight_bits) const {
    for (const auto& p : perturbations) {
      if (p.weight_bits == weight_bits) return p;
    }
    throw ValueError("LayerSensitivity: layer \"" + name + "\" has no perturbation for " +
                     std::to_string(weight_bits) +
                     "-bit weights; pass that width to layer_sensitivities");
  }

  // NaN (a figure the report did not compute) is written as null.
  nlohmann::ordered_json to_json() const {
    auto list = nlohmann::ordered_json::array();
    for (const auto& p : perturbations) {
      list.push_back({{"weight_bits", p.weight_bits},
                      {"squared_norm", p.squared_norm},
                      {"hawq_v2", p.hawq_v2}});
    }
    return nlohmann::ordered_json{{"name", name},
                                  {"parameter_count", parameter_count},
                                  {"weight_count", weight_count},
                                  {"top_eigenvalue", top_eigenvalue},
                                  {"average_trace", average_trace},
                                  {"average_trace_standard_error", average_trace_standard_error},
                                  {"hawq_v1", hawq_v1},
                                  {"perturbations", std::move(list)}};
  }
};

inline nlohmann::ordered_json sensitivities_to_json(const std::vector<LayerSensitivity>& layers) {
  auto list = nlohmann::ordered_json::array();
  for (const auto& layer : layers) list.push_back(layer.to_json());
  return list;
}

// One row per layer and weight width (long format, what a plotting script groups by), numbers
// with 17 significant digits so that they read back exactly, NaN as "nan".
inline std::string sensitivities_to_csv(const std::vector<LayerSensitivity>& layers) {
  std::ostringstream out;
  out.precision(std::numeric_limits<double>::max_digits10);
  out << "layer,parameter_count,weight_count,top_eigenvalue,average_trace,"
         "average_trace_standard_error,hawq_v1,weight_bits,squared_norm,hawq_v2\n";
  for (const auto& layer : layers) {
    // Module names may hold any character but '.': quote the rare one with a comma or quote.
    std::string name = layer.name;
    if (name.find_first_of(",\"\n") != std::string::npos) {
      std::string quoted = "\"";
      for (const char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      name = quoted + "\"";
    }
    for (const auto& p : layer.perturbations) {
      out << name << ',' << layer.parameter_count << ',' << layer.weight_count << ','
          << layer.top_eigenvalue << ',' << layer.average_trace << ','
          << layer.average_trace_standard_error << ',' << layer.hawq_v1 << ',' << p.weight_bits
          << ',' << p.squared_norm << ',' << p.hawq_v2 << '\n';
    }
  }
  return out.str();
}

inline void save_sensitivities_csv(const std::string& path,
                                   const std::vector<LayerSensitivity>& layers) {
  std::ofstream file(path);
  if (!file) throw IoError("save_sensitivities_csv: cannot write '" + path + "'");
  file << sensitivities_to_csv(layers);
  if (!file.flush()) throw IoError("save_sensitivities_csv: writing '" + path + "' failed");
}

// ‖Q_b(W) − W‖² for the spec's per-output-channel symmetric quantizer, the differences taken and
// squared in double so that an 8-bit perturbation of a float weight keeps its digits.
template <class T>
double weight_perturbation_squared_norm(const Tensor<T>& weight, int bits) {
  const Tensor<T> w = soda::contiguous(weight.detach());
  const Tensor<T> q = soda::contiguous(fake_quantize(w, weight_fake_quantizer(w, bits)));
  double sum = 0;
  for (std::int64_t i = 0; i < w.numel(); ++i) {
    const double d = static_cast<double>(q.data()[i]) - static_cast<double>(w.data()[i]);
    sum += d * d;
  }
  return sum;
}

// The sensitivities of every layer of report that owns a quantizable weight: a parameter
// "<layer>.weight" of rank 4 (Conv2d) or 2 (Linear), in the report's order, with a perturbation
// per entry of weight_bits. The Hessian figures are the report's, unchanged.
//
// BatchNorm layers are skipped, and the unfolded weight is the one perturbed: BN is folded into
// the convolution before quantization (w' = c·w per output channel, c = γ/√(σ²+ε)), and the
// per-channel symmetric quantizer commutes with that scaling (the scale follows, S' = |c|·S, and
// round_half_even is odd, so Q(c·w) = c·Q(w)). The folded network with Q(w') thus computes what
// the unfolded one computes with Q(w): Q(w) − w is the perturbation in the coordinates whose
// Hessian the report holds.
inline constexpr int default_sensitivity_weight_bits[] = {8, 4, 2};

template <class T>
std::vector<LayerSensitivity> layer_sensitivities(
    const nn::Module<T>& model, const hessian::LayerReport& report,
    std::span<const int> bits = default_sensitivity_weight_bits) {
  constexpr const char* op = "layer_sensitivities";
  if (bits.empty()) throw ValueError(std::string(op) + ": no weight bit widths asked for");
  for (std::size_t i = 0; i < bits.size(); ++i) {
    check_weight_bits(op, bits[i]);
    for (std::size_t j = 0; j < i; ++j) {
      if (bits[j] == bits[i]) {
        throw ValueError(std::string(op) + ": weight bits " + std::to_string(bits[i]) +
                         " are asked for twice");
      }
    }
  }
  const auto parameters = model.named_parameters();
  const auto find_weight = [&](const std::string& name) -> const Tensor<T>* {
    for (const auto& [parameter_name, tensor] : parameters) {
      if (parameter_name == name) return &tensor;
    }
    return nullptr;
  };
  std::vector<LayerSensitivity> out;
  for (const auto& layer : report.layers) {
    const std::string weight_name = layer.name + ".weight";
    // Only a block that holds the weight has the weight's curvature (a report of a block operator
    // on biases alone has none); anything else holds nothing quantized.
    if (std::find(layer.parameter_names.begin(), layer.parameter_names.end(), weight_name) ==
        layer.parameter_names.end()) {
      continue;
    }
    const Tensor<T>* weight = find_weight(weight_name);
    if (weight == nullptr) {
      throw ValueError(std::string(op) + ": the report's layer \"" + layer.name + "\" lists " +
                       weight_name +
                       ", which the model lacks; was the report made on another model?");
    }
    if (weight->ndim() != 4 && weight->ndim() != 2) continue;  // BatchNorm's γ (rank 1)
    if (layer.parameter_count < weight->numel()) {
      throw ShapeError(std::string(op) + ": the report's layer \"" + layer.name + "\" has " +
                       std::to_string(layer.parameter_count) + " parameters, fewer than the " +
                       std::to_string(weight->numel()) + " of the model's " + weight_name +
                       "; was the report made on another model?");
    }
    LayerSensitivity s;
    s.name = layer.name;
    s.parameter_count = layer.parameter_count;
    s.weight_count = weight->numel();
    s.top_eigenvalue = layer.top_eigenvalue;
    s.average_trace = layer.average_trace;
    s.average_trace_standard_error =
        layer.trace_standard_error / static_cast<double>(layer.parameter_count);
    s.hawq_v1 = layer.top_eigenvalue / static_cast<double>(layer.parameter_count);
    for (const int b : bits) {
      const double squared_norm = weight_perturbation_squared_norm(*weight, b);
      s.perturbations.push_back({b, squared_norm, layer.average_trace * squared_norm});
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Layer indices (into layers), most sensitive first by HAWQ-V1's λ_max/|B|: the order of
// block-wise fine-tuning.
inline std::vector<std::size_t> hawq_v1_order(const std::vector<LayerSensitivity>& layers) {
  std::vector<double> values;
  for (const auto& layer : layers) {
    if (!std::isfinite(layer.hawq_v1)) {
      throw ValueError("hawq_v1_order: layer \"" + layer.name + "\" has HAWQ-V1 sensitivity " +
                       detail::format_number(layer.hawq_v1) +
                       " (was the report made with eigenvalues off?)");
    }
    values.push_back(layer.hawq_v1);
  }
  return fine_tuning_order(values);
}

// The bit allocation's input: one LayerCandidates per layer of geometry (execution order), with a
// candidate per (weight bits, activation bits) pair: sensitivity = the layer's HAWQ-V2 Ω for those
// weight bits (activation bits do not change it: HAWQ-V2 measures weight perturbations only;
// negative estimates within noise of 0 become 0, see below), size and MACs from the geometry,
// latency from the table (0 when none is given).
inline std::vector<LayerCandidates> layer_candidates(
    const std::vector<LayerSensitivity>& sensitivities, const std::vector<LayerGeometry>& geometry,
    const std::vector<std::pair<int, int>>& bit_pairs, const LatencyTable* latency = nullptr) {
  constexpr const char* op = "layer_candidates";
  if (bit_pairs.empty()) throw ValueError(std::string(op) + ": no (weight, activation) bit pairs");
  for (std::size_t i = 0; i < bit_pairs.size(); ++i) {
    check_weight_bits(op, bit_pairs[i].first);
    check_activation_bits(op, bit_pairs[i].second);
    for (std::size_t j = 0; j < i; ++j) {
      if (bit_pairs[j] == bit_pairs[i]) {
        throw ValueError(std::string(op) + ": the pair W" + std::to_string(bit_pairs[i].first) +
                         "A" + std::to_string(bit_pairs[i].second) + " is given twice");
      }
    }
  }
  const auto find_sensitivity = [&](const std::string& name) -> const LayerSensitivity* {
    for (const auto& s : sensitivities) {
      if (s.name == name) return &s;
    }
    return nullptr;
  };
  for (const auto& s : sensitivities) {
    bool found = false;
    for (const auto& g : geometry) found = found || g.name == s.name;
    if (!found) {
      throw ValueError(std::string(op) + ": layer \"" + s.name +
                       "\" has a sensitivity but no geometry (were both made from one model?)");
    }
  }
  std::vector<LayerCandidates> out;
  for (const auto& g : geometry) {
    const LayerSensitivity* s = find_sensitivity(g.name);
    if (s == nullptr) {
      throw ValueError(std::string(op) + ": layer \"" + g.name +
                       "\" has a geometry but no sensitivity (was the report made on all "
                       "parameters of the same model?)");
    }
    if (s->weight_count != g.parameter_count) {
      throw ShapeError(std::string(op) + ": layer \"" + g.name + "\" has " +
                       std::to_string(s->weight_count) + " weights in the sensitivities but " +
                       std::to_string(g.parameter_count) + " in the geometry");
    }
    LayerCandidates layer{g.name, g.parameter_count, g.mac_count, {}};
    for (const auto& [wb, ab] : bit_pairs) {
      const BitPerturbation& perturbation = s->perturbation(wb);
      double sensitivity = perturbation.hawq_v2;
      if (!std::isfinite(sensitivity)) {
        throw ValueError(std::string(op) + ": layer \"" + g.name + "\" has HAWQ-V2 sensitivity " +
                         detail::format_number(sensitivity) + " at " + std::to_string(wb) +
                         " bits (was the report made with traces off?)");
      }
      // The allocation needs Ω >= 0, and at a minimum (which HAWQ assumes) tr(H_BB) >= 0. Shared
      // Hutchinson probes are noisy for small layers, though: an estimate below 0 but within two
      // standard errors of it is noise, and 0 the closest admissible value. One further below
      // means real negative curvature: a model far from a minimum.
      if (sensitivity < 0) {
        const double standard_error = s->average_trace_standard_error * perturbation.squared_norm;
        if (!(sensitivity + 2 * standard_error >= 0)) {
          throw ValueError(std::string(op) + ": layer \"" + g.name + "\" has HAWQ-V2 " +
                           "sensitivity " + detail::format_number(sensitivity) + " at " +
                           std::to_string(wb) + " bits, negative beyond two standard errors " +
                           "(average trace " + detail::format_number(s->average_trace) + " ± " +
                           detail::format_number(s->average_trace_standard_error) +
                           "); the model is far from a minimum: train it first");
        }
        sensitivity = 0;
      }
      layer.candidates.push_back(
          {wb, ab, sensitivity, latency != nullptr ? latency->seconds(g.name, wb, ab) : 0.0});
    }
    out.push_back(std::move(layer));
  }
  return out;
}

}  // namespace soda::quant
