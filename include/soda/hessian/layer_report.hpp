// The per-layer curvature report HAWQ (Dong et al. 2019) and HAWQ-V2 (2020) rank layers by: for
// every parameterised layer B, the top eigenvalue of the diagonal block H_BB (power iteration, as
// PyHessian) and tr(H_BB) (Hutchinson), with HAWQ-V2's average trace tr(H_BB) / |B|.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/generator.hpp"
#include "soda/hessian/estimator.hpp"
#include "soda/hessian/hessian_operator.hpp"
#include "soda/hessian/parameter_vector.hpp"

namespace soda::hessian {

// A layer: the parameters of one module, named by the module's path (the parameter name up to its
// last '.': "layer1.0.conv1.weight" belongs to "layer1.0.conv1"; a name without a '.' is a layer
// of its own). Layers come in the order of their first parameter, each with its parameters'
// indices in the given order.
inline std::vector<std::pair<std::string, std::vector<std::size_t>>> layer_groups(
    const std::vector<std::string>& parameter_names) {
  std::vector<std::pair<std::string, std::vector<std::size_t>>> groups;
  for (std::size_t i = 0; i < parameter_names.size(); ++i) {
    const auto& name = parameter_names[i];
    const auto dot = name.rfind('.');
    const std::string layer = dot == std::string::npos ? name : name.substr(0, dot);
    const auto found = std::find_if(groups.begin(), groups.end(),
                                    [&](const auto& group) { return group.first == layer; });
    if (found == groups.end()) {
      groups.push_back({layer, {i}});
    } else {
      found->second.push_back(i);
    }
  }
  return groups;
}

struct LayerReportOptions {
  // Power iteration per layer: PyHessian's rule, stop once
  // |λ - previous λ| / (|previous λ| + 1e-6) < eigen_tolerance (0 runs all max_iterations).
  std::int64_t max_iterations = 100;
  double eigen_tolerance = 1e-3;
  // Hutchinson probes: stop once every layer's running mean moved by less than trace_tolerance
  // relative (0 draws all max_trace_samples).
  std::int64_t max_trace_samples = 100;
  double trace_tolerance = 1e-3;
  // Vectors pushed through one apply_many call: memory grows with the stack. It changes no
  // start vector, probe or stopping decision, but a stacked replay may round differently in the
  // last bits (a convolution folds the stack into one GEMM of another shape), so reports for
  // different max_stack agree to rounding, not bit for bit.
  std::int64_t max_stack = 4;
  std::uint64_t seed = 0;
  bool eigenvalues = true;
  bool traces = true;
  ProgressCallback progress{};
};

// One layer's curvature; a figure that was not asked for (eigenvalues or traces off) is NaN.
struct LayerCurvature {
  std::string name;
  std::vector<std::string> parameter_names;
  std::vector<std::size_t> parameter_indices;  // positions in the operator's parameters
  std::int64_t parameter_count = 0;
  // The eigenvalue of H_BB of largest magnitude (signed), and the products it took.
  double top_eigenvalue = std::numeric_limits<double>::quiet_NaN();
  std::int64_t eigen_iterations = 0;
  bool eigen_converged = false;
  // tr(H_BB) and its standard error (sample standard deviation / sqrt(samples)).
  double trace = std::numeric_limits<double>::quiet_NaN();
  double trace_standard_error = std::numeric_limits<double>::quiet_NaN();
  // trace / parameter_count: HAWQ-V2's sensitivity, comparable across layers of different sizes.
  double average_trace = std::numeric_limits<double>::quiet_NaN();
};

struct LayerReport {
  std::vector<LayerCurvature> layers;
  // tr(H) of the whole model from the same probes (zᵀHz), with its standard error.
  double model_trace = std::numeric_limits<double>::quiet_NaN();
  double model_trace_standard_error = std::numeric_limits<double>::quiet_NaN();
  // Full-size H·v products: a stack of k vectors counts k.
  std::int64_t hvp_count = 0;
  std::int64_t trace_samples = 0;
  bool traces_converged = false;  // stopped by trace_tolerance before max_trace_samples

  // NaN figures (not computed, or a standard error of a single sample) are written as null.
  nlohmann::ordered_json to_json() const {
    auto list = nlohmann::ordered_json::array();
    for (const auto& layer : layers) {
      list.push_back({{"name", layer.name},
                      {"parameters", layer.parameter_names},
                      {"parameter_count", layer.parameter_count},
                      {"top_eigenvalue", layer.top_eigenvalue},
                      {"eigen_iterations", layer.eigen_iterations},
                      {"eigen_converged", layer.eigen_converged},
                      {"trace", layer.trace},
                      {"trace_standard_error", layer.trace_standard_error},
                      {"average_trace", layer.average_trace}});
    }
    return nlohmann::ordered_json{{"model_trace", model_trace},
                                  {"model_trace_standard_error", model_trace_standard_error},
                                  {"hvp_count", hvp_count},
                                  {"trace_samples", trace_samples},
                                  {"traces_converged", traces_converged},
                                  {"layers", std::move(list)}};
  }

  // A header and one row per layer; numbers with 17 significant digits (they read back exactly),
  // NaN as "nan".
  std::string to_csv() const {
    std::ostringstream out;
    out.precision(std::numeric_limits<double>::max_digits10);
    out << "layer,parameter_count,top_eigenvalue,eigen_iterations,eigen_converged,trace,"
           "trace_standard_error,average_trace\n";
    for (const auto& layer : layers) {
      out << csv_field(layer.name) << ',' << layer.parameter_count << ',' << layer.top_eigenvalue
          << ',' << layer.eigen_iterations << ',' << (layer.eigen_converged ? "true" : "false")
          << ',' << layer.trace << ',' << layer.trace_standard_error << ',' << layer.average_trace
          << '\n';
    }
    return out.str();
  }

 private:
  // Module names may hold any character but '.', so quote the rare one with a comma or quote.
  static std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\n") == std::string::npos) return text;
    std::string quoted = "\"";
    for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
  }
};

namespace detail {

inline void check_layer_report_options(const LayerReportOptions& options) {
  const auto at_least_one = [](std::int64_t value, const char* name) {
    if (value < 1) {
      throw ValueError(std::string("layer_report: ") + name + " must be at least 1 (got " +
                       std::to_string(value) + ")");
    }
  };
  at_least_one(options.max_iterations, "max_iterations");
  at_least_one(options.max_trace_samples, "max_trace_samples");
  at_least_one(options.max_stack, "max_stack");
  const auto tolerance = [](double value, const char* name) {
    if (!std::isfinite(value) || value < 0) {
      std::ostringstream text;
      text << "layer_report: " << name << " must be finite and >= 0 (got " << value
           << "; 0 runs to the maximum)";
      throw ValueError(text.str());
    }
  };
  tolerance(options.eigen_tolerance, "eigen_tolerance");
  tolerance(options.trace_tolerance, "trace_tolerance");
}

// PyHessian's stopping rule on a running estimate.
inline bool settled_after(double current, double previous, double tolerance) {
  return settled(current - previous, previous, tolerance);
}

template <class T>
ParameterVector<T> block_of(const ParameterVector<T>& full,
                            const std::vector<std::size_t>& indices) {
  ParameterVector<T> out;
  for (const auto i : indices) out.push_back(full[i]);
  return out;
}

// Mean and standard error (sample standard deviation / sqrt(n); NaN below two samples).
inline std::pair<double, double> mean_and_standard_error(const std::vector<double>& samples) {
  const auto n = static_cast<double>(samples.size());
  double sum = 0;
  for (const double x : samples) sum += x;
  const double mean = sum / n;
  if (samples.size() < 2) return {mean, std::numeric_limits<double>::quiet_NaN()};
  double squares = 0;
  for (const double x : samples) squares += (x - mean) * (x - mean);
  return {mean, std::sqrt(squares / (n - 1) / n)};
}

// Each layer's power iteration starts from its own counter range of Generator(seed): layer i
// draws at block offset (i + 1)·2⁴⁰ (the trace probes use the range from 0). Its start thus
// depends on the seed and its index only, not on the other layers or on max_stack.
inline constexpr std::uint64_t layer_stream_stride = std::uint64_t{1} << 40;

// Block power iteration on every H_BB at once. Each round the still-running layers' vectors are
// zero-padded to full vectors and pushed through apply_many (at most max_stack per call); a
// layer reads its block of the product, so H·pad(v_B) restricted to B is H_BB·v_B.
template <SymmetricOperator Op>
void layer_top_eigenvalues(const Op& op, LayerReport& report_out,
                           const LayerReportOptions& options) {
  using T = scalar_of<Op>;
  const std::vector<Shape> shapes(op.shapes().begin(), op.shapes().end());
  auto& layers = report_out.layers;
  std::vector<ParameterVector<T>> vectors(layers.size());
  std::vector<double> previous(layers.size(), 0.0);
  std::vector<std::size_t> running;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    Generator gen(options.seed);
    gen.set_offset((static_cast<std::uint64_t>(l) + 1) * layer_stream_stride);
    std::vector<Shape> block_shapes;
    for (const auto i : layers[l].parameter_indices) block_shapes.push_back(shapes[i]);
    vectors[l] = gaussian_vector<T>(block_shapes, gen);
    normalize(vectors[l]);
    layers[l].eigen_iterations = 0;
    running.push_back(l);
  }
  const auto stack = static_cast<std::size_t>(options.max_stack);
  std::int64_t round = 0;
  while (!running.empty()) {
    ++round;
    for (std::size_t start = 0; start < running.size(); start += stack) {
      const std::size_t end = std::min(running.size(), start + stack);
      std::vector<ParameterVector<T>> padded;
      for (std::size_t j = start; j < end; ++j) {
        auto full = zeros_like<T>(shapes);
        const auto& indices = layers[running[j]].parameter_indices;
        for (std::size_t k = 0; k < indices.size(); ++k) full[indices[k]] = vectors[running[j]][k];
        padded.push_back(std::move(full));
      }
      const auto products = op.apply_many(padded);
      report_out.hvp_count += static_cast<std::int64_t>(padded.size());
      for (std::size_t j = start; j < end; ++j) {
        auto& layer = layers[running[j]];
        auto& v = vectors[running[j]];
        // The operator's results belong to the caller (SymmetricOperator), so normalised in place.
        auto hv = block_of(products[j - start], layer.parameter_indices);
        const double eigenvalue = dot(hv, v);
        normalize(hv);
        v = std::move(hv);
        ++layer.eigen_iterations;
        layer.eigen_converged =
            layer.eigen_iterations >= 2 &&
            settled_after(eigenvalue, previous[running[j]], options.eigen_tolerance);
        previous[running[j]] = eigenvalue;
        layer.top_eigenvalue = eigenvalue;
      }
    }
    std::vector<std::size_t> still;
    for (const auto l : running) {
      if (!layers[l].eigen_converged && layers[l].eigen_iterations < options.max_iterations) {
        still.push_back(l);
      }
    }
    running = std::move(still);
    double largest = 0;  // the progress line shows the sharpest layer so far
    for (const auto& layer : layers) {
      if (std::abs(layer.top_eigenvalue) > std::abs(largest)) largest = layer.top_eigenvalue;
    }
    report(options.progress,
           {"layer eigenvalues", round, options.max_iterations, report_out.hvp_count, largest});
  }
}

// Hutchinson with shared probes: one full Rademacher z gives z_Bᵀ(Hz)_B for every layer B, an
// unbiased estimate of tr(H_BB) (E[z_i z_j] = 0 for i ≠ j, so the off-diagonal blocks average
// out), all for the cost of one H·v. The trade-off: each layer's sample also carries
// Σ_{i∈B, j∉B} z_i H_ij z_j, whose variance ‖H_{B,rest}‖_F² adds to the 2·Σ_{i≠j∈B} H_ij² of
// probing H_BB alone, where a probe per layer would cost one product per layer and sample; with
// tens of layers sharing wins by far (most curvature sits in the diagonal blocks). Probes are
// drawn as hutchinson_trace draws them (full vectors one after another from Generator(seed)), so
// model_trace matches it for the same seed.
template <SymmetricOperator Op>
void layer_traces(const Op& op, LayerReport& report_out, const LayerReportOptions& options) {
  using T = scalar_of<Op>;
  const std::vector<Shape> shapes(op.shapes().begin(), op.shapes().end());
  auto& layers = report_out.layers;
  std::vector<std::vector<double>> samples(layers.size());
  std::vector<double> sums(layers.size(), 0.0), previous(layers.size(), 0.0);
  std::vector<double> model_samples;
  double model_sum = 0;
  Generator gen(options.seed);
  std::int64_t done = 0;
  bool converged = false;
  while (done < options.max_trace_samples && !converged) {
    const auto k = std::min(options.max_stack, options.max_trace_samples - done);
    std::vector<ParameterVector<T>> probes;
    for (std::int64_t j = 0; j < k; ++j) probes.push_back(rademacher_vector<T>(shapes, gen));
    const auto products = op.apply_many(probes);
    report_out.hvp_count += k;
    // The rule is checked probe by probe, so max_stack changes no sample (a stack's products
    // past the stopping probe are counted but not used).
    for (std::size_t j = 0; j < probes.size() && !converged; ++j) {
      ++done;
      bool all_settled = done >= 2;
      for (std::size_t l = 0; l < layers.size(); ++l) {
        const auto& indices = layers[l].parameter_indices;
        const double sample = dot(block_of(probes[j], indices), block_of(products[j], indices));
        samples[l].push_back(sample);
        sums[l] += sample;
        const double mean = sums[l] / static_cast<double>(done);
        all_settled = all_settled && settled_after(mean, previous[l], options.trace_tolerance);
        previous[l] = mean;
      }
      model_samples.push_back(dot(probes[j], products[j]));
      model_sum += model_samples.back();
      converged = all_settled;
      report(options.progress, {"layer traces", done, options.max_trace_samples,
                                report_out.hvp_count, model_sum / static_cast<double>(done)});
    }
  }
  for (std::size_t l = 0; l < layers.size(); ++l) {
    std::tie(layers[l].trace, layers[l].trace_standard_error) = mean_and_standard_error(samples[l]);
    layers[l].average_trace = layers[l].trace / static_cast<double>(layers[l].parameter_count);
  }
  std::tie(report_out.model_trace, report_out.model_trace_standard_error) =
      mean_and_standard_error(model_samples);
  report_out.trace_samples = done;
  report_out.traces_converged = converged;
}

}  // namespace detail

// The report for any symmetric operator whose parameters are named by parameter_names (one name
// per tensor of op.shapes(), grouped into layers by layer_groups).
template <SymmetricOperator Op>
LayerReport layer_report(const Op& op, const std::vector<std::string>& parameter_names,
                         const LayerReportOptions& options = {}) {
  detail::check_layer_report_options(options);
  const auto& shapes = op.shapes();
  if (parameter_names.size() != shapes.size()) {
    throw ValueError("layer_report: " + std::to_string(parameter_names.size()) +
                     " parameter names for an operator on " + std::to_string(shapes.size()) +
                     " parameter tensors");
  }
  if (shapes.empty()) throw ValueError("layer_report: the operator has no parameters");
  LayerReport result;
  for (auto& [name, indices] : layer_groups(parameter_names)) {
    LayerCurvature layer;
    layer.name = name;
    for (const auto i : indices) {
      layer.parameter_names.push_back(parameter_names[i]);
      layer.parameter_count += numel(shapes[i]);
    }
    layer.parameter_indices = std::move(indices);
    result.layers.push_back(std::move(layer));
  }
  if (options.eigenvalues) detail::layer_top_eigenvalues(op, result, options);
  if (options.traces) detail::layer_traces(op, result, options);
  return result;
}

// The report for every layer of a HessianOperator's model (build it on all parameters: a layer
// report of a block operator covers that block's layers only).
template <class T>
LayerReport layer_report(const HessianOperator<T>& op, const LayerReportOptions& options = {}) {
  return layer_report(op, op.parameter_names(), options);
}

}  // namespace soda::hessian
