// The hawq example's bit allocation: HAWQ-V2's Pareto frontier and HAWQ-V3's integer program over
// the measured sensitivities and latencies, turned into the bit configurations to fine-tune.
#pragma once

#include <nlohmann/json.hpp>
#include <soda/soda.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace hawq {

using BitPairs = std::vector<std::pair<int, int>>;  // (weight bits, activation bits)

// "8:8,4:8,2:8" -> {(8, 8), (4, 8), (2, 8)}.
inline BitPairs parse_bit_pairs(const std::string& text) {
  BitPairs pairs;
  std::stringstream list(text);
  std::string item;
  while (std::getline(list, item, ',')) {
    const auto colon = item.find(':');
    if (colon == std::string::npos) {
      throw soda::ValueError("bit pairs: '" + item + "' is not weight:activation (e.g. 4:8)");
    }
    pairs.emplace_back(std::stoi(item.substr(0, colon)), std::stoi(item.substr(colon + 1)));
    soda::quant::check_weight_bits("bit pairs", pairs.back().first);
    soda::quant::check_activation_bits("bit pairs", pairs.back().second);
  }
  if (pairs.empty()) throw soda::ValueError("bit pairs: the list is empty");
  return pairs;
}

inline std::int64_t total_size_bits(const std::vector<soda::quant::LayerCandidates>& layers,
                                    int weight_bits) {
  std::int64_t bits = 0;
  for (const auto& layer : layers) bits += layer.parameter_count * weight_bits;
  return bits;
}

// The configuration an allocation chose, layer by layer.
inline soda::quant::BitConfiguration configuration_of(
    const soda::quant::BitAllocation& allocation) {
  soda::quant::BitConfiguration bits;
  for (const auto& layer : allocation.layers) {
    bits.set(layer.name, {layer.weight_bits, layer.activation_bits});
  }
  return bits;
}

// A uniform configuration's totals over the same layers (its sensitivity from the candidates
// with those bits, when present).
inline soda::quant::BitAllocation uniform_allocation(
    const std::vector<soda::quant::LayerCandidates>& layers, int weight_bits, int activation_bits) {
  soda::quant::BitAllocation out;
  for (const auto& layer : layers) {
    out.size_bits += layer.parameter_count * weight_bits;
    out.bops += layer.mac_count * weight_bits * activation_bits;
    soda::quant::LayerBitWidth chosen{layer.name, 0, weight_bits, activation_bits};
    for (std::size_t c = 0; c < layer.candidates.size(); ++c) {
      const auto& candidate = layer.candidates[c];
      if (candidate.weight_bits == weight_bits && candidate.activation_bits == activation_bits) {
        chosen.candidate = c;
        out.sensitivity += candidate.sensitivity;
        out.latency_seconds += candidate.latency_seconds;
      }
    }
    out.layers.push_back(chosen);
  }
  return out;
}

// The frontier as CSV (size in bits and in MB, total sensitivity), for the plot.
inline std::string frontier_csv(const std::vector<soda::quant::ParetoPoint>& frontier) {
  std::ostringstream out;
  out.precision(10);
  out << "size_bits,size_megabytes,sensitivity\n";
  for (const auto& point : frontier) {
    out << point.size_bits << ',' << static_cast<double>(point.size_bits) / 8e6 << ','
        << point.sensitivity << '\n';
  }
  return out.str();
}

inline nlohmann::ordered_json frontier_json(const std::vector<soda::quant::ParetoPoint>& frontier) {
  auto points = nlohmann::ordered_json::array();
  for (const auto& point : frontier) {
    points.push_back({{"size_bits", point.size_bits}, {"sensitivity", point.sensitivity}});
  }
  return points;
}

}  // namespace hawq
