// The Hessian's spectral density by stochastic Lanczos quadrature, as PyHessian's density() and
// density_generate() (Ghorbani, Krishnan & Xiao, ICML 2019; Yao et al., "PyHessian", 2020):
// φ(t) ≈ mean over runs of Σ_i w_i N(t; θ_i, σ²), θ_i the Ritz values and w_i = (s_i)_0².
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <numbers>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/generator.hpp"
#include "soda/hessian/estimator.hpp"
#include "soda/hessian/lanczos.hpp"
#include "soda/hessian/parameter_vector.hpp"

namespace soda::hessian {

struct DensityOptions {
  std::int64_t lanczos_steps = 100;  // per run (PyHessian's iter); clamped to the dimension
  std::int64_t runs = 1;             // independent start vectors (PyHessian's n_v)
  std::int64_t grid_points = 10000;  // PyHessian's num_bins
  // Each Ritz value is smoothed by a Gaussian of variance sigma_squared·max(1, grid width).
  double sigma_squared = 1e-5;
  double padding = 0.01;  // the grid reaches this fraction of the Ritz span beyond each end
  std::uint64_t seed = 0;
  ProgressCallback progress{};
};

// Per run, the Ritz values (ascending) and their quadrature weights, which alone determine the
// density; the density sampled on a grid, normalised so Σ density·Δx = 1 (as PyHessian).
struct SpectralDensity {
  std::vector<std::vector<double>> ritz_values, weights;
  std::vector<double> grid, density;
  std::int64_t lanczos_steps = 0;  // the steps asked per run, after clamping to the dimension
  std::int64_t hvp_count = 0;  // runs stop early at a breakdown, so this may be below runs·steps

  // Mean over runs of Σ_i w_i θ_i^p: the quadrature estimate of tr(H^p)/n (each run's value is
  // vᵀ H^p v for its unit Rademacher start v, exact for p < 2·steps).
  double moment(int p) const {
    double sum = 0;
    for (std::size_t r = 0; r < ritz_values.size(); ++r) sum += run_moment(r, p);
    return ritz_values.empty() ? 0 : sum / static_cast<double>(ritz_values.size());
  }

  // The standard error of moment(p) over runs (0 with a single run).
  double moment_standard_error(int p) const {
    const auto runs = ritz_values.size();
    if (runs < 2) return 0;
    const double mean = moment(p);
    double squares = 0;
    for (std::size_t r = 0; r < runs; ++r) squares += std::pow(run_moment(r, p) - mean, 2);
    return std::sqrt(squares / static_cast<double>(runs - 1) / static_cast<double>(runs));
  }

  // Everything, grid and density included (10,000 points by default: about 400 kB of JSON);
  // drop "grid" and "density" from the object to keep only what regenerates them.
  nlohmann::ordered_json to_json() const {
    return nlohmann::ordered_json{{"lanczos_steps", lanczos_steps},
                                  {"runs", ritz_values.size()},
                                  {"hvp_count", hvp_count},
                                  {"trace_per_parameter", moment(1)},
                                  {"trace_per_parameter_standard_error", moment_standard_error(1)},
                                  {"ritz_values", ritz_values},
                                  {"weights", weights},
                                  {"grid", grid},
                                  {"density", density}};
  }

 private:
  double run_moment(std::size_t run, int p) const {
    double sum = 0;
    for (std::size_t i = 0; i < ritz_values[run].size(); ++i) {
      sum += weights[run][i] * std::pow(ritz_values[run][i], p);
    }
    return sum;
  }
};

// PyHessian's density_generate: the grid spans the mean over runs of the smallest and largest
// Ritz values, padded; each run's density is Σ_i w_i N(x; θ_i, σ²) with σ² = sigma_squared·
// max(1, padded width); the runs are averaged and normalised so Σ density·Δx = 1.
// One difference: PyHessian pads by an absolute 0.01 on each side; here the padding is a
// fraction of the span (λmax − λmin), so the picture looks the same at any scale of H (a span of
// zero, as for a multiple of the identity, pads by padding·max(1, |λ|)). Fills out.grid and
// out.density from out.ritz_values and out.weights.
inline void fill_density_grid(SpectralDensity& out, std::int64_t grid_points, double sigma_squared,
                              double padding) {
  if (out.ritz_values.empty() || out.ritz_values.size() != out.weights.size()) {
    throw ValueError("spectral density: " + std::to_string(out.ritz_values.size()) +
                     " runs of Ritz values and " + std::to_string(out.weights.size()) +
                     " of weights; need at least one of each, as many of both");
  }
  double low = 0, high = 0;
  for (const auto& values : out.ritz_values) {
    if (values.empty()) throw ValueError("spectral density: a run without Ritz values");
    low += *std::min_element(values.begin(), values.end());
    high += *std::max_element(values.begin(), values.end());
  }
  const auto runs = static_cast<double>(out.ritz_values.size());
  low /= runs;
  high /= runs;
  const double span = high - low;
  const double pad =
      padding * (span > 0 ? span : std::max(1.0, std::max(std::abs(low), std::abs(high))));
  low -= pad;
  high += pad;
  const double variance = sigma_squared * std::max(1.0, high - low);
  const double step = (high - low) / static_cast<double>(grid_points - 1);
  const double peak = 1.0 / std::sqrt(2 * std::numbers::pi * variance);
  out.grid.assign(static_cast<std::size_t>(grid_points), 0.0);
  out.density.assign(static_cast<std::size_t>(grid_points), 0.0);
  for (std::size_t j = 0; j < out.grid.size(); ++j) {
    out.grid[j] = j + 1 == out.grid.size() ? high : low + static_cast<double>(j) * step;
  }
  for (std::size_t r = 0; r < out.ritz_values.size(); ++r) {
    for (std::size_t j = 0; j < out.grid.size(); ++j) {
      double sum = 0;
      for (std::size_t i = 0; i < out.ritz_values[r].size(); ++i) {
        const double distance = out.grid[j] - out.ritz_values[r][i];
        sum += out.weights[r][i] * peak * std::exp(-distance * distance / (2 * variance));
      }
      out.density[j] += sum / runs;
    }
  }
  double total = 0;
  for (const double d : out.density) total += d * step;
  if (!(total > 0) || !std::isfinite(total)) {
    throw ValueError("spectral density: the smoothed density is zero on the grid (grid spacing " +
                     std::to_string(step) + " against a Gaussian variance of " +
                     std::to_string(variance) + "); raise grid_points or sigma_squared");
  }
  for (double& d : out.density) d /= total;
}

// Stochastic Lanczos quadrature: per run, a Rademacher start (±1 entries, normalised; run r uses
// the r-th draw from Generator(seed)), min(lanczos_steps, n) Lanczos steps with full
// reorthogonalisation, stopping early at a breakdown (later blocks would carry zero weight), and
// the Ritz values and weights of T_m. Products: at most runs·lanczos_steps.
template <SymmetricOperator Op>
SpectralDensity spectral_density(Op& op, const DensityOptions& options = {}) {
  using T = scalar_of<Op>;
  const auto fail = [](const std::string& what) { throw ValueError("spectral_density: " + what); };
  if (options.lanczos_steps < 1) fail("lanczos_steps must be at least 1");
  if (options.runs < 1) fail("runs must be at least 1");
  if (options.grid_points < 2) fail("grid_points must be at least 2");
  if (!(options.sigma_squared > 0) || !std::isfinite(options.sigma_squared)) {
    fail("sigma_squared must be finite and positive");
  }
  if (!(options.padding >= 0) || !std::isfinite(options.padding)) {
    fail("padding must be finite, zero or positive");
  }
  const std::vector<Shape> shapes(op.shapes().begin(), op.shapes().end());
  SpectralDensity out;
  out.lanczos_steps = std::min(options.lanczos_steps, total_size(shapes));
  Generator gen(options.seed);
  const auto max_steps = options.runs * out.lanczos_steps;
  double first_moment_sum = 0;  // Σ over runs begun of vᵀHv, for the progress line
  for (std::int64_t run = 0; run < options.runs; ++run) {
    LanczosProcess<Op> process(op, rademacher_vector<T>(shapes, gen));
    while (process.steps() < out.lanczos_steps && process.can_step()) {
      process.step();
      if (process.steps() == 1) first_moment_sum += process.alphas().front();
      report(options.progress, {"density", out.hvp_count + process.hvp_count(), max_steps,
                                out.hvp_count + process.hvp_count(),
                                first_moment_sum / static_cast<double>(run + 1)});
    }
    out.hvp_count += process.hvp_count();
    auto ritz = ritz_decomposition(process.alphas(), process.betas());
    out.ritz_values.push_back(std::move(ritz.values));
    out.weights.push_back(std::move(ritz.weights));
  }
  fill_density_grid(out, options.grid_points, options.sigma_squared, options.padding);
  return out;
}

}  // namespace soda::hessian
