// Stochastic estimates of tr(H) from Hessian-vector products: Hutchinson's estimator E[zᵀHz] with
// Rademacher z (as PyHessian's trace()) and Hutch++ (Meyer, Musco, Musco, Woodruff 2021), which
// computes the top of the spectrum exactly on a sketch and runs Hutchinson on what is left.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/generator.hpp"
#include "soda/hessian/estimator.hpp"
#include "soda/hessian/parameter_vector.hpp"

namespace soda::hessian {

enum class TraceMethod { hutchinson, hutch_plus_plus };

// What TraceEstimate::method says: the names the papers use.
inline std::string trace_method_name(TraceMethod method) {
  return method == TraceMethod::hutchinson ? "hutchinson" : "hutch++";
}

struct TraceOptions {
  // The most Hessian-vector products to spend (Hutchinson: one per probe).
  std::int64_t max_samples = 100;
  // Stop once |mean - previous mean| / (|previous mean| + 1e-6) < tolerance, PyHessian's rule;
  // 0 never stops early.
  double tolerance = 1e-3;
  std::uint64_t seed = 0;
  ProgressCallback progress{};
  TraceMethod method = TraceMethod::hutchinson;
  // Hutch++ only: sketch vectors; 0 picks max_samples / 3 (the paper's split of the budget).
  std::int64_t sketch_size = 0;
  // Probes pushed through one apply_many call. The probes and the stopping decision do not depend
  // on it; only the operator's batched arithmetic may (LinearizedHessian stacks the tangents).
  std::int64_t batch = 1;
};

struct TraceEstimate {
  double trace = 0;
  // Sample standard deviation of `samples` / sqrt(their count); NaN with fewer than 2 samples.
  double standard_error = 0;
  // One trace estimate per probe: zᵀHz (Hutchinson), or tr(QᵀHQ) + gᵀHg with g = (I - QQᵀ)z
  // (Hutch++); `trace` is their mean.
  std::vector<double> samples;
  // Every product computed, including the rest of a batch drawn after the stopping probe.
  std::int64_t hvp_count = 0;
  bool converged = false;  // stopped by the tolerance rule before max_samples
  std::string method;

  nlohmann::ordered_json to_json() const {
    return nlohmann::ordered_json{{"method", method},
                                  {"trace", trace},
                                  {"standard_error", standard_error},
                                  {"samples_used", samples.size()},
                                  {"hvp_count", hvp_count},
                                  {"converged", converged},
                                  {"samples", samples}};
  }
};

namespace detail {

inline std::string trace_format_number(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

inline void check_trace_options(const TraceOptions& options, const std::string& name) {
  if (options.max_samples < 1) {
    throw ValueError(name + ": max_samples must be at least 1 (got " +
                     std::to_string(options.max_samples) + ")");
  }
  if (options.batch < 1) {
    throw ValueError(name + ": batch must be at least 1 (got " + std::to_string(options.batch) +
                     ")");
  }
  if (!std::isfinite(options.tolerance) || options.tolerance < 0) {
    throw ValueError(name + ": tolerance must be finite and >= 0 (got " +
                     trace_format_number(options.tolerance) + "; 0 runs all max_samples)");
  }
}

template <SymmetricOperator Op>
std::vector<ParameterVector<scalar_of<Op>>> trace_apply(
    Op& op, const std::vector<ParameterVector<scalar_of<Op>>>& vectors) {
  if (vectors.size() == 1) return {op.apply(vectors.front())};
  return op.apply_many(vectors);
}

// Draws up to `count` probes, projects each off `basis` (empty for plain Hutchinson) and adds
// offset + gᵀHg to result.samples until PyHessian's stopping rule fires. Probes are drawn in
// order from `gen`, and the rule is checked probe by probe, so batching changes no sample.
template <SymmetricOperator Op>
void run_trace_probes(Op& op, Generator& gen,
                      const std::vector<ParameterVector<scalar_of<Op>>>& basis, double offset,
                      std::int64_t count, const TraceOptions& options, TraceEstimate& result) {
  using T = scalar_of<Op>;
  const std::vector<Shape> shapes(op.shapes().begin(), op.shapes().end());
  const std::int64_t products_before = result.hvp_count;
  double sum = 0;
  // PyHessian compares with 0 at the first probe; we need two probes, so that a first probe
  // that happens to be tiny does not end the run on a single sample.
  double previous_mean = 0;
  std::int64_t done = 0;
  while (done < count && !result.converged) {
    const auto k = std::min(options.batch, count - done);
    std::vector<ParameterVector<T>> probes;
    for (std::int64_t j = 0; j < k; ++j) {
      probes.push_back(rademacher_vector<T>(shapes, gen));
      if (!basis.empty()) orthogonalize(probes.back(), basis);
    }
    const auto products = trace_apply(op, probes);
    result.hvp_count += k;
    for (std::int64_t j = 0; j < k && !result.converged; ++j) {
      const auto at = static_cast<std::size_t>(j);
      const double sample = offset + dot(probes[at], products[at]);
      result.samples.push_back(sample);
      sum += sample;
      ++done;
      const double mean = sum / static_cast<double>(done);
      // The change is judged against the part still being estimated (the residual after Hutch++'s
      // exact sketch trace `offset`; everything for plain Hutchinson), else Hutch++ would stop
      // after two probes whenever the sketch holds most of the trace.
      if (done >= 2 && settled(mean - previous_mean, previous_mean - offset, options.tolerance)) {
        result.converged = true;
      }
      previous_mean = mean;
      report(options.progress, {"trace", done, count, result.hvp_count - products_before, mean});
    }
  }
}

inline void finish_trace(TraceEstimate& result) {
  const auto n = static_cast<double>(result.samples.size());
  double sum = 0;
  for (const double x : result.samples) sum += x;
  result.trace = n > 0 ? sum / n : 0;
  if (result.samples.size() < 2) {
    result.standard_error = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  double squares = 0;
  for (const double x : result.samples) squares += (x - result.trace) * (x - result.trace);
  result.standard_error = std::sqrt(squares / (n - 1) / n);
}

}  // namespace detail

// tr(H) ≈ mean of zᵀHz over Rademacher probes z (each draw's expectation is exactly tr(H)).
template <SymmetricOperator Op>
TraceEstimate hutchinson_trace(Op& op, const TraceOptions& options = {}) {
  detail::check_trace_options(options, "hutchinson_trace");
  TraceEstimate result;
  result.method = trace_method_name(TraceMethod::hutchinson);
  Generator gen(options.seed);
  detail::run_trace_probes(op, gen, {}, 0.0, options.max_samples, options, result);
  detail::finish_trace(result);
  return result;
}

// Hutch++: with s Rademacher sketch vectors S, Q = orthonormal basis of H·S; then
// tr(H) = tr(QᵀHQ) + tr((I - QQᵀ)H(I - QQᵀ)), the first exactly (one product per column of Q),
// the second by Hutchinson on projected probes with the budget left. Unbiased for any Q, and the
// residual carries little variance when a few eigenvalues dominate.
template <SymmetricOperator Op>
TraceEstimate hutch_plus_plus_trace(Op& op, const TraceOptions& options = {}) {
  using T = scalar_of<Op>;
  const std::string name = "hutch_plus_plus_trace";
  detail::check_trace_options(options, name);
  if (options.sketch_size < 0) {
    throw ValueError(name + ": sketch_size must be >= 0 (got " +
                     std::to_string(options.sketch_size) + "; 0 picks max_samples / 3)");
  }
  const std::int64_t sketch =
      options.sketch_size > 0 ? options.sketch_size : options.max_samples / 3;
  if (sketch == 0) {
    throw ValueError(name + ": max_samples " + std::to_string(options.max_samples) +
                     " leaves no room for a sketch (needs at least 3: a sketch vector, its product "
                     "with H and one residual probe)");
  }
  if (2 * sketch >= options.max_samples) {
    throw ValueError(name + ": sketch_size " + std::to_string(sketch) +
                     " is too large for max_samples " + std::to_string(options.max_samples) +
                     " (the sketch takes 2 * " + std::to_string(sketch) +
                     " products and at least one residual probe must remain; use sketch_size <= " +
                     std::to_string((options.max_samples - 1) / 2) + ")");
  }

  TraceEstimate result;
  result.method = trace_method_name(TraceMethod::hutch_plus_plus);
  const std::vector<Shape> shapes(op.shapes().begin(), op.shapes().end());
  Generator gen(options.seed);
  const std::int64_t sketch_products_at_most = 2 * sketch;
  const auto report_sketch = [&](double partial_trace) {
    report(options.progress, {"trace sketch", result.hvp_count, sketch_products_at_most,
                              result.hvp_count, partial_trace});
  };

  // Q = orthonormal basis of H·S. A column left with (almost) nothing after projection adds no
  // direction worth an exact product; dropping it keeps the estimator unbiased, since the
  // residual probes are projected off whatever Q is kept.
  const double drop_below = std::sqrt(static_cast<double>(std::numeric_limits<T>::epsilon()));
  std::vector<ParameterVector<T>> basis;
  for (std::int64_t start = 0; start < sketch; start += options.batch) {
    const auto k = std::min(options.batch, sketch - start);
    std::vector<ParameterVector<T>> sketch_vectors;
    for (std::int64_t j = 0; j < k; ++j)
      sketch_vectors.push_back(rademacher_vector<T>(shapes, gen));
    auto columns = detail::trace_apply(op, sketch_vectors);
    result.hvp_count += k;
    for (auto& column : columns) {
      const double before = norm(column);
      orthogonalize(column, basis);
      const double after = normalize(column);
      if (after > 0 && after > drop_below * before) basis.push_back(std::move(column));
    }
    report_sketch(0.0);
  }

  double sketch_trace = 0;
  const auto rank = static_cast<std::int64_t>(basis.size());
  for (std::int64_t start = 0; start < rank; start += options.batch) {
    const auto k = std::min(options.batch, rank - start);
    const std::vector<ParameterVector<T>> columns(basis.begin() + start, basis.begin() + start + k);
    const auto products = detail::trace_apply(op, columns);
    result.hvp_count += k;
    for (std::int64_t j = 0; j < k; ++j) {
      sketch_trace +=
          dot(columns[static_cast<std::size_t>(j)], products[static_cast<std::size_t>(j)]);
    }
    report_sketch(sketch_trace);
  }

  // The products that dropped columns did not need go to the residual too.
  detail::run_trace_probes(op, gen, basis, sketch_trace, options.max_samples - result.hvp_count,
                           options, result);
  detail::finish_trace(result);
  return result;
}

// The estimator options.method names.
template <SymmetricOperator Op>
TraceEstimate estimate_trace(Op& op, const TraceOptions& options = {}) {
  switch (options.method) {
    case TraceMethod::hutchinson:
      return hutchinson_trace(op, options);
    case TraceMethod::hutch_plus_plus:
      return hutch_plus_plus_trace(op, options);
  }
  throw ValueError("estimate_trace: unknown method " +
                   std::to_string(static_cast<int>(options.method)));
}

}  // namespace soda::hessian
