// Mixed-precision bit allocation: which weight/activation bit width each layer gets. HAWQ-V1's
// fine-tuning order (top eigenvalue / parameters), HAWQ-V2's exact Pareto frontier of total size
// against total sensitivity Σ tr(H)/n·‖Q(W)−W‖², and HAWQ-V3's integer program solved with GLPK.
#pragma once

#include <glpk.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "soda/core/error.hpp"

namespace soda::quant {

// One way to quantize a layer. The sensitivity (HAWQ-V2: tr(H)/parameters · ‖Q(W)−W‖²) and the
// latency (from a measured table; 0 when unknown) are computed elsewhere.
struct BitWidthCandidate {
  int weight_bits = 8;      // 2, 4 or 8
  int activation_bits = 8;  // 4 or 8
  double sensitivity = 0;
  double latency_seconds = 0;
};

struct LayerCandidates {
  std::string name;
  std::int64_t parameter_count = 0;
  std::int64_t mac_count = 0;  // multiply-accumulates of one forward pass
  std::vector<BitWidthCandidate> candidates;

  std::int64_t size_bits(std::size_t candidate) const {
    return parameter_count * candidates.at(candidate).weight_bits;
  }
  // Bit operations: MACs · weight bits · activation bits.
  std::int64_t bops(std::size_t candidate) const {
    const auto& chosen = candidates.at(candidate);
    return mac_count * chosen.weight_bits * chosen.activation_bits;
  }
};

// Limits that no configuration meets. A ValueError, so callers that treat every bad argument
// alike need not know it, and callers that retry with looser limits can catch it alone.
class InfeasibleLimitsError : public ValueError {
 public:
  using ValueError::ValueError;
};

namespace detail {

inline std::string format_number(double value) {
  std::ostringstream out;
  out.precision(std::numeric_limits<double>::max_digits10);
  out << value;
  return out.str();
}

inline std::string layer_label(const std::vector<LayerCandidates>& layers, std::size_t index) {
  return "layer " + std::to_string(index) + " (\"" + layers[index].name + "\")";
}

// Rejects what would make a total meaningless or overflow int64: it is cheaper to refuse a model
// above 2^62 bits than to carry overflow checks through every sum.
inline void check_layers(const char* op, const std::vector<LayerCandidates>& layers) {
  if (layers.empty()) throw ValueError(std::string(op) + ": no layers to allocate bits to");
  constexpr std::int64_t total_limit = std::int64_t{1} << 62;
  std::int64_t largest_size = 0;
  std::int64_t largest_bops = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const LayerCandidates& layer = layers[i];
    const std::string where = std::string(op) + ": " + layer_label(layers, i);
    if (layer.parameter_count <= 0) {
      throw ValueError(where + " has parameter count " + std::to_string(layer.parameter_count) +
                       " (must be positive)");
    }
    if (layer.mac_count < 0) {
      throw ValueError(where + " has MAC count " + std::to_string(layer.mac_count) +
                       " (must be at least 0)");
    }
    // 8 · 8 is the largest bits product a candidate can have.
    if (layer.parameter_count > (total_limit - largest_size) / 8 ||
        layer.mac_count > (total_limit - largest_bops) / 64) {
      throw ValueError(where + ": total size or BOPS of the model would exceed 2^62");
    }
    largest_size += layer.parameter_count * 8;
    largest_bops += layer.mac_count * 64;
    if (layer.candidates.empty()) throw ValueError(where + " has no bit-width candidates");
    for (std::size_t c = 0; c < layer.candidates.size(); ++c) {
      const BitWidthCandidate& candidate = layer.candidates[c];
      const std::string which = where + ", candidate " + std::to_string(c);
      if (candidate.weight_bits != 2 && candidate.weight_bits != 4 && candidate.weight_bits != 8) {
        throw ValueError(which + ": weight bits must be 2, 4 or 8, got " +
                         std::to_string(candidate.weight_bits));
      }
      if (candidate.activation_bits != 4 && candidate.activation_bits != 8) {
        throw ValueError(which + ": activation bits must be 4 or 8, got " +
                         std::to_string(candidate.activation_bits));
      }
      if (!std::isfinite(candidate.sensitivity) || candidate.sensitivity < 0) {
        throw ValueError(which + ": sensitivity must be finite and at least 0, got " +
                         format_number(candidate.sensitivity));
      }
      if (!std::isfinite(candidate.latency_seconds) || candidate.latency_seconds < 0) {
        throw ValueError(which + ": latency must be finite and at least 0 seconds, got " +
                         format_number(candidate.latency_seconds));
      }
      for (std::size_t earlier = 0; earlier < c; ++earlier) {
        if (layer.candidates[earlier].weight_bits == candidate.weight_bits &&
            layer.candidates[earlier].activation_bits == candidate.activation_bits) {
          throw ValueError(which + " repeats candidate " + std::to_string(earlier) + " (W" +
                           std::to_string(candidate.weight_bits) + "A" +
                           std::to_string(candidate.activation_bits) + ")");
        }
      }
    }
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// HAWQ-V1: the order of block-wise fine-tuning
// ---------------------------------------------------------------------------------------------

// Layer indices, most sensitive first (HAWQ-V1: top Hessian eigenvalue / parameter count); equal
// sensitivities keep index order, so the order never depends on the sort's implementation.
inline std::vector<std::size_t> fine_tuning_order(std::span<const double> sensitivities) {
  for (std::size_t i = 0; i < sensitivities.size(); ++i) {
    if (!std::isfinite(sensitivities[i])) {
      throw ValueError("fine_tuning_order: sensitivity of layer " + std::to_string(i) +
                       " is not finite (" + detail::format_number(sensitivities[i]) + ")");
    }
  }
  std::vector<std::size_t> order(sensitivities.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return sensitivities[a] > sensitivities[b];
  });
  return order;
}

// ---------------------------------------------------------------------------------------------
// HAWQ-V2: the Pareto frontier of total size against total sensitivity
// ---------------------------------------------------------------------------------------------

struct ParetoPoint {
  std::int64_t size_bits = 0;
  double sensitivity = 0;
  std::vector<std::size_t> choices;  // candidate index per layer
};

// Every configuration that no other beats in both total size and total sensitivity, sorted by
// size ascending with sensitivity strictly descending. Layers are merged one at a time, keeping
// only the non-dominated partial configurations: that is exact, because if partial A is dominated
// by partial B, A plus any choice for the remaining layers is dominated by B plus the same choice.
// Configurations with equal size and sensitivity appear once (the first in candidate order), and
// sensitivities are summed layer 0 first, so a caller's own sums in that order agree exactly.
inline std::vector<ParetoPoint> pareto_frontier(const std::vector<LayerCandidates>& layers) {
  detail::check_layers("pareto_frontier", layers);
  std::vector<ParetoPoint> frontier{ParetoPoint{}};
  for (const LayerCandidates& layer : layers) {
    std::vector<ParetoPoint> extended;
    extended.reserve(frontier.size() * layer.candidates.size());
    for (const ParetoPoint& point : frontier) {
      for (std::size_t c = 0; c < layer.candidates.size(); ++c) {
        ParetoPoint next{point.size_bits + layer.size_bits(c),
                         point.sensitivity + layer.candidates[c].sensitivity, point.choices};
        next.choices.push_back(c);
        extended.push_back(std::move(next));
      }
    }
    // After sorting by (size, sensitivity), a point is dominated iff some earlier point has a
    // sensitivity at or below its own: a sweep keeps the strict new minima.
    std::stable_sort(extended.begin(), extended.end(),
                     [](const ParetoPoint& a, const ParetoPoint& b) {
                       if (a.size_bits != b.size_bits) return a.size_bits < b.size_bits;
                       return a.sensitivity < b.sensitivity;
                     });
    frontier.clear();
    for (ParetoPoint& point : extended) {
      if (frontier.empty() || point.sensitivity < frontier.back().sensitivity) {
        frontier.push_back(std::move(point));
      }
    }
  }
  return frontier;
}

// The least sensitive point of a frontier (as pareto_frontier returns it) whose size is at most
// budget_bits: on a monotone frontier, the largest point within the budget.
inline ParetoPoint choose_at_size_budget(std::span<const ParetoPoint> frontier,
                                         double budget_bits) {
  if (frontier.empty()) throw ValueError("choose_at_size_budget: the frontier is empty");
  if (std::isnan(budget_bits)) throw ValueError("choose_at_size_budget: the budget is NaN");
  const ParetoPoint* best = nullptr;
  for (const ParetoPoint& point : frontier) {
    if (static_cast<double>(point.size_bits) <= budget_bits &&
        (best == nullptr || point.sensitivity < best->sensitivity)) {
      best = &point;
    }
  }
  if (best == nullptr) {
    const auto smallest = std::min_element(
        frontier.begin(), frontier.end(),
        [](const ParetoPoint& a, const ParetoPoint& b) { return a.size_bits < b.size_bits; });
    throw InfeasibleLimitsError("choose_at_size_budget: no configuration fits in " +
                                detail::format_number(budget_bits) + " bits; the smallest needs " +
                                std::to_string(smallest->size_bits) + " bits");
  }
  return *best;
}

// ---------------------------------------------------------------------------------------------
// HAWQ-V3: the integer linear program
// ---------------------------------------------------------------------------------------------

// Upper limits on the chosen configuration's totals; an absent limit does not constrain.
struct AllocationLimits {
  std::optional<double> size_bits;
  std::optional<double> bops;
  std::optional<double> latency_seconds;
};

struct LayerBitWidth {
  std::string name;
  std::size_t candidate = 0;
  int weight_bits = 0;
  int activation_bits = 0;
};

struct BitAllocation {
  std::vector<LayerBitWidth> layers;
  std::int64_t size_bits = 0;
  std::int64_t bops = 0;
  double latency_seconds = 0;
  double sensitivity = 0;
  std::int64_t solver_runs = 0;  // GLPK solves, more than 1 when a rounded answer was cut off

  std::vector<std::size_t> choices() const {
    std::vector<std::size_t> out;
    for (const auto& layer : layers) out.push_back(layer.candidate);
    return out;
  }

  nlohmann::ordered_json to_json() const {
    auto list = nlohmann::ordered_json::array();
    for (const auto& layer : layers) {
      list.push_back({{"name", layer.name},
                      {"candidate", layer.candidate},
                      {"weight_bits", layer.weight_bits},
                      {"activation_bits", layer.activation_bits}});
    }
    return nlohmann::ordered_json{{"size_bits", size_bits},
                                  {"bops", bops},
                                  {"latency_seconds", latency_seconds},
                                  {"sensitivity", sensitivity},
                                  {"solver_runs", solver_runs},
                                  {"layers", std::move(list)}};
  }
};

// The totals of one configuration, summed layer 0 first.
inline BitAllocation describe_allocation(const std::vector<LayerCandidates>& layers,
                                         std::span<const std::size_t> choices) {
  if (choices.size() != layers.size()) {
    throw ShapeError("describe_allocation: " + std::to_string(choices.size()) + " choices for " +
                     std::to_string(layers.size()) + " layers");
  }
  BitAllocation out;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::size_t c = choices[i];
    if (c >= layers[i].candidates.size()) {
      throw IndexError("describe_allocation: candidate " + std::to_string(c) + " of " +
                       detail::layer_label(layers, i) + ", which has " +
                       std::to_string(layers[i].candidates.size()));
    }
    const BitWidthCandidate& chosen = layers[i].candidates[c];
    out.layers.push_back({layers[i].name, c, chosen.weight_bits, chosen.activation_bits});
    out.size_bits += layers[i].size_bits(c);
    out.bops += layers[i].bops(c);
    out.latency_seconds += chosen.latency_seconds;
    out.sensitivity += chosen.sensitivity;
  }
  return out;
}

namespace detail {

struct GlpkProblemDeleter {
  void operator()(glp_prob* problem) const { glp_delete_prob(problem); }
};
using GlpkProblem = std::unique_ptr<glp_prob, GlpkProblemDeleter>;

// GLPK's terminal output is a per-thread global: silence it for one solve and restore the
// caller's setting afterwards, whether the solve returns or throws.
class GlpkSilence {
 public:
  GlpkSilence() : previous_(glp_term_out(GLP_OFF)) {}
  ~GlpkSilence() { glp_term_out(previous_); }
  GlpkSilence(const GlpkSilence&) = delete;
  GlpkSilence& operator=(const GlpkSilence&) = delete;

 private:
  int previous_;
};

struct LimitedTotal {
  const char* name;
  const char* unit;
  double limit;
  double smallest;                     // Σ over layers of the smallest candidate value
  std::vector<double> values;          // per column, column order
  std::vector<double> layer_smallest;  // per layer
};

inline std::string describe_limits(const std::vector<LimitedTotal>& totals) {
  std::string out;
  for (const auto& total : totals) {
    if (!out.empty()) out += ", ";
    out += std::string(total.name) + " <= " + format_number(total.limit) + " " + total.unit +
           " (smallest achievable " + format_number(total.smallest) + ")";
  }
  return out;
}

}  // namespace detail

// Minimises Σ sensitivity over binary x[i][c] with Σ_c x[i][c] = 1 per layer, subject to the
// given limits on total size, BOPS and latency (HAWQ-V3's integer program), with GLPK's
// branch-and-cut. GLPK checks constraints to a tolerance, so its answer is rounded to one
// candidate per layer and its totals recomputed; should they exceed a limit, that configuration
// is cut off (Σ of its chosen x ≤ layers − 1) and the program solved again.
inline BitAllocation optimal_bit_allocation(const std::vector<LayerCandidates>& layers,
                                            const AllocationLimits& limits = {}) {
  constexpr const char* op = "optimal_bit_allocation";
  detail::check_layers(op, layers);

  std::vector<std::pair<std::size_t, std::size_t>> columns;  // (layer, candidate)
  for (std::size_t i = 0; i < layers.size(); ++i) {
    for (std::size_t c = 0; c < layers[i].candidates.size(); ++c) columns.emplace_back(i, c);
  }
  std::vector<detail::LimitedTotal> totals;
  const auto add_total = [&](const char* name, const char* unit, const std::optional<double>& limit,
                             auto value_of) {
    if (limit && std::isnan(*limit)) {
      throw ValueError(std::string(op) + ": the " + name + " limit is NaN");
    }
    // An infinite limit constrains nothing (and would scale its row by 1/∞).
    if (!limit || *limit == std::numeric_limits<double>::infinity()) return;
    detail::LimitedTotal total{name, unit, *limit, 0, {}, {}};
    for (const auto& [i, c] : columns) total.values.push_back(value_of(i, c));
    for (std::size_t i = 0; i < layers.size(); ++i) {
      double smallest = std::numeric_limits<double>::infinity();
      for (std::size_t c = 0; c < layers[i].candidates.size(); ++c) {
        smallest = std::min(smallest, value_of(i, c));
      }
      total.layer_smallest.push_back(smallest);
      total.smallest += smallest;
    }
    totals.push_back(std::move(total));
  };
  add_total("size", "bits", limits.size_bits, [&](std::size_t i, std::size_t c) {
    return static_cast<double>(layers[i].size_bits(c));
  });
  add_total("BOPS", "bit operations", limits.bops,
            [&](std::size_t i, std::size_t c) { return static_cast<double>(layers[i].bops(c)); });
  add_total("latency", "seconds", limits.latency_seconds,
            [&](std::size_t i, std::size_t c) { return layers[i].candidates[c].latency_seconds; });
  const auto infeasible = [&](const std::string& why) {
    return InfeasibleLimitsError(std::string(op) + ": " + why + ": " +
                                 detail::describe_limits(totals));
  };
  for (const auto& total : totals) {
    if (total.smallest > total.limit) throw infeasible("a limit is below its smallest total");
  }

  const detail::GlpkSilence silence;
  const detail::GlpkProblem problem(glp_create_prob());
  glp_prob* lp = problem.get();
  glp_set_obj_dir(lp, GLP_MIN);
  const int column_count = static_cast<int>(columns.size());
  glp_add_cols(lp, column_count);
  // Sensitivities span many decades across models; dividing by the largest keeps GLPK's relative
  // tolerances meaningful. The reported sensitivity is recomputed unscaled.
  double largest_sensitivity = 0;
  for (const auto& layer : layers) {
    for (const auto& candidate : layer.candidates) {
      largest_sensitivity = std::max(largest_sensitivity, candidate.sensitivity);
    }
  }
  const double objective_scale = largest_sensitivity > 0 ? 1 / largest_sensitivity : 1;
  for (int j = 1; j <= column_count; ++j) {
    const auto [i, c] = columns[j - 1];
    glp_set_col_kind(lp, j, GLP_BV);
    glp_set_obj_coef(lp, j, layers[i].candidates[c].sensitivity * objective_scale);
  }

  // GLPK's arrays are 1-based: index 0 is unused.
  std::vector<int> row_of{0};
  std::vector<int> column_of{0};
  std::vector<double> coefficient{0};
  glp_add_rows(lp, static_cast<int>(layers.size()));
  for (int j = 1; j <= column_count; ++j) {
    const int row = static_cast<int>(columns[j - 1].first) + 1;
    row_of.push_back(row);
    column_of.push_back(j);
    coefficient.push_back(1);
  }
  for (std::size_t i = 0; i < layers.size(); ++i) {
    glp_set_row_bnds(lp, static_cast<int>(i) + 1, GLP_FX, 1, 1);
  }
  for (const auto& total : totals) {
    // As one candidate per layer is chosen, the row can count each layer's excess over its
    // smallest candidate against the slack left above the smallest total. That drops the common
    // part of large layers' values, which otherwise dwarfs small layers' differences and makes
    // GLPK's simplex cycle (seen with 10^9 and 1 parameters under a limit 1 bit below a total).
    // Scaling to at most 1 makes GLPK's tolerances relative to the limit.
    std::vector<double> excess;
    for (const auto& [i, c] : columns) {
      excess.push_back(total.values[excess.size()] - total.layer_smallest[i]);
    }
    const double slack = total.limit - total.smallest;
    const double largest = std::max(slack, *std::max_element(excess.begin(), excess.end()));
    const double scale = largest > 0 ? 1 / largest : 1;
    const int row = glp_add_rows(lp, 1);
    glp_set_row_bnds(lp, row, GLP_UP, 0, slack * scale);
    for (int j = 1; j <= column_count; ++j) {
      if (excess[j - 1] == 0) continue;
      row_of.push_back(row);
      column_of.push_back(j);
      coefficient.push_back(excess[j - 1] * scale);
    }
  }
  glp_load_matrix(lp, static_cast<int>(coefficient.size()) - 1, row_of.data(), column_of.data(),
                  coefficient.data());

  glp_iocp parameters;
  glp_init_iocp(&parameters);
  parameters.presolve = GLP_ON;
  parameters.msg_lev = GLP_MSG_OFF;
  // Each cut-off removes one configuration; more than a handful means GLPK's tolerances are far
  // too loose for these numbers, and the caller should hear about it rather than wait.
  constexpr std::int64_t max_solver_runs = 64;
  for (std::int64_t run = 1; run <= max_solver_runs; ++run) {
    const int code = glp_intopt(lp, &parameters);
    if (code == GLP_ENOPFS || (code == 0 && glp_mip_status(lp) == GLP_NOFEAS)) {
      throw infeasible("no configuration meets all limits together");
    }
    if (code != 0 || glp_mip_status(lp) != GLP_OPT) {
      throw Error(std::string(op) + ": GLPK's glp_intopt failed (return code " +
                  std::to_string(code) + ", status " + std::to_string(glp_mip_status(lp)) + ")");
    }
    std::vector<std::size_t> choices(layers.size(), 0);
    std::vector<double> largest_value(layers.size(), -1);
    for (int j = 1; j <= column_count; ++j) {
      const auto [i, c] = columns[j - 1];
      const double value = glp_mip_col_val(lp, j);
      if (value > largest_value[i]) {
        largest_value[i] = value;
        choices[i] = c;
      }
    }
    BitAllocation allocation = describe_allocation(layers, choices);
    allocation.solver_runs = run;
    const auto over = [](const std::optional<double>& limit, double value) {
      return limit && value > *limit;
    };
    if (!over(limits.size_bits, static_cast<double>(allocation.size_bits)) &&
        !over(limits.bops, static_cast<double>(allocation.bops)) &&
        !over(limits.latency_seconds, allocation.latency_seconds)) {
      return allocation;
    }
    const int row = glp_add_rows(lp, 1);
    glp_set_row_bnds(lp, row, GLP_UP, 0, static_cast<double>(layers.size()) - 1);
    std::vector<int> cut_columns{0};
    std::vector<double> cut_coefficients{0};
    for (int j = 1; j <= column_count; ++j) {
      const auto [i, c] = columns[j - 1];
      if (choices[i] != c) continue;
      cut_columns.push_back(j);
      cut_coefficients.push_back(1);
    }
    glp_set_mat_row(lp, row, static_cast<int>(cut_columns.size()) - 1, cut_columns.data(),
                    cut_coefficients.data());
  }
  throw Error(std::string(op) + ": GLPK's answers exceeded the limits " +
              std::to_string(max_solver_runs) +
              " times after rounding: " + detail::describe_limits(totals));
}

}  // namespace soda::quant
