// The top-k Hessian eigenvalues and eigenvectors: power iteration with deflation exactly as
// PyHessian's eigenvalues() (Yao et al., "PyHessian", 2020), and Lanczos with full
// reorthogonalisation, which reaches the same top k in fewer Hessian-vector products.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/generator.hpp"
#include "soda/hessian/estimator.hpp"
#include "soda/hessian/lanczos.hpp"
#include "soda/hessian/parameter_vector.hpp"

namespace soda::hessian {

struct EigenOptions {
  // Power iteration: iterations per eigenvalue (PyHessian's maxIter). Lanczos: the largest
  // Krylov dimension, i.e. the total Hessian-vector products and the basis vectors kept.
  std::int64_t max_iterations = 100;
  // Power iteration: stop when |λ − λ_prev| / (|λ_prev| + 1e-6) < tolerance (PyHessian's tol).
  // Lanczos: stop when every top-k Ritz pair has ‖H y − θ y‖ ≤ tolerance·|θ|, which bounds the
  // eigenvalue's error by (tolerance·|θ|)² / gap: far tighter than power iteration's test.
  double tolerance = 1e-3;
  std::uint64_t seed = 0;  // random start vectors come from Generator(seed)
  ProgressCallback progress{};
};

template <class T>
struct EigenResult {
  std::vector<double> eigenvalues;
  std::vector<ParameterVector<T>> eigenvectors;  // unit norm, mutually orthogonal
  // ‖H u − λ u‖ from quantities already at hand, no extra product: power iteration keeps the
  // last H u; Lanczos uses β_m·|s_{m,i}| (exact while the basis is orthonormal).
  std::vector<double> residual_norms;
  // Power iteration: iterations (= products) per eigenvalue. Lanczos: the Krylov dimension
  // reached, the same for all.
  std::vector<std::int64_t> iterations;
  std::int64_t hvp_count = 0;
  bool converged = false;  // every eigenvalue met the tolerance within max_iterations

  nlohmann::ordered_json to_json() const {
    return nlohmann::ordered_json{{"eigenvalues", eigenvalues},
                                  {"residual_norms", residual_norms},
                                  {"iterations", iterations},
                                  {"hvp_count", hvp_count},
                                  {"converged", converged}};
  }
};

namespace detail {

template <class Op>
std::int64_t checked_dimension(const Op& op, std::int64_t k, const EigenOptions& options,
                               const std::string& name) {
  const auto n = total_size(std::vector<Shape>(op.shapes().begin(), op.shapes().end()));
  if (k < 1 || k > n) {
    throw ValueError(name + ": k = " + std::to_string(k) +
                     " eigenvalues asked, but k must be in [1, " + std::to_string(n) +
                     "] (the operator's dimension, its number of parameters)");
  }
  if (options.max_iterations < 1) {
    throw ValueError(name + ": max_iterations = " + std::to_string(options.max_iterations) +
                     " must be at least 1");
  }
  if (!(options.tolerance >= 0) || !std::isfinite(options.tolerance)) {
    throw ValueError(name + ": tolerance = " + std::to_string(options.tolerance) +
                     " must be zero or a finite positive number");
  }
  return n;
}

}  // namespace detail

// Power iteration with deflation, PyHessian's eigenvalues(): for each of k eigenvalues, from a
// unit start v (Gaussian, or start[i] to warm-start from a previous result), repeat: v ← v
// orthogonalised against the eigenvectors found and normalised; λ = ⟨Hv, v⟩; v ← Hv; until λ's
// relative change is below tolerance. Eigenvalues come in the order found: largest magnitude
// first. Two deliberate differences from PyHessian, neither changing the λ sequence or the
// products: the pair returned is (λ_last, v_last) with λ_last = ⟨H v_last, v_last⟩ (PyHessian
// returns the previous λ and normalize(H v_last)), so the residual ‖H v − λ v‖ comes for free;
// and a start vector with nothing outside the found eigenvectors is replaced by a random one.
template <SymmetricOperator Op>
EigenResult<scalar_of<Op>> top_eigenvalues(
    Op& op, std::int64_t k, const EigenOptions& options = {},
    const std::vector<ParameterVector<scalar_of<Op>>>& start = {}) {
  using T = scalar_of<Op>;
  using Vector = ParameterVector<T>;
  detail::checked_dimension(op, k, options, "top_eigenvalues");
  if (static_cast<std::int64_t>(start.size()) > k) {
    throw ValueError("top_eigenvalues: " + std::to_string(start.size()) +
                     " start vectors for k = " + std::to_string(k) + " eigenvalues");
  }
  const std::vector<Shape> shapes(op.shapes().begin(), op.shapes().end());
  for (std::size_t i = 0; i < start.size(); ++i) {
    if (shapes_of(start[i]) != shapes) {
      throw ShapeError(
          "top_eigenvalues: start vector " + std::to_string(i) +
          " is not shaped like the operator's parameters (" + std::to_string(start[i].size()) +
          " tensors, " + std::to_string(total_size(shapes_of(start[i]))) + " entries, against " +
          std::to_string(shapes.size()) + " and " + std::to_string(total_size(shapes)) + ")");
    }
  }
  Generator gen(options.seed);
  EigenResult<T> result;
  result.converged = true;
  std::int64_t steps_done = 0;
  for (std::int64_t i = 0; i < k; ++i) {
    const auto index = static_cast<std::size_t>(i);
    Vector v = index < start.size() ? clone(start[index]) : gaussian_vector<T>(shapes, gen);
    Vector hv;
    double eigenvalue = 0, previous = 0;
    bool converged = false;
    std::int64_t iteration = 0;
    while (iteration < options.max_iterations) {
      if (iteration > 0) v = std::move(hv);
      orthogonalize(v, result.eigenvectors);
      // A zero v: a warm start inside the span already found, or H v = 0 last time (caught
      // below). Only the first can reach here; a fresh random draw replaces it.
      while (normalize(v) == 0) {
        v = gaussian_vector<T>(shapes, gen);
        orthogonalize(v, result.eigenvectors);
      }
      hv = op.apply(v);
      ++result.hvp_count;
      ++iteration;
      ++steps_done;
      eigenvalue = dot(hv, v);
      report(options.progress, {"top eigenvalues", steps_done, k * options.max_iterations,
                                result.hvp_count, eigenvalue});
      if (iteration > 1 && settled(eigenvalue - previous, previous, options.tolerance)) {
        converged = true;
        break;
      }
      // H v = 0 exactly: v is a null vector, λ = 0 is exact, and another step would divide by 0.
      if (norm(hv) == 0) {
        converged = true;
        break;
      }
      previous = eigenvalue;
    }
    result.residual_norms.push_back(norm(linear_combination(1.0, hv, -eigenvalue, v)));
    result.eigenvalues.push_back(eigenvalue);
    result.eigenvectors.push_back(std::move(v));
    result.iterations.push_back(iteration);
    result.converged = result.converged && converged;
  }
  return result;
}

// Lanczos with full reorthogonalisation from one Gaussian start, grown until the k algebraically
// largest Ritz pairs satisfy ‖H y − θ y‖ ≤ tolerance·|θ| (or is at rounding level), checked every
// step (T_m is small), or max_iterations steps. Eigenvalues are returned in descending order.
// On a breakdown (the Krylov space is invariant: H has few distinct eigenvalues along the start)
// it restarts from a fresh random vector orthogonal to the basis, so repeated eigenvalues are
// found too; it accepts the result only once a restart's block shows nothing above the k-th
// value. Without a breakdown, a single start vector cannot see an eigenvalue's multiplicity: an
// exactly repeated eigenvalue in the top k is then reported once (power iteration with
// deflation finds every copy).
template <SymmetricOperator Op>
EigenResult<scalar_of<Op>> top_eigenvalues_lanczos(Op& op, std::int64_t k,
                                                   const EigenOptions& options = {}) {
  using T = scalar_of<Op>;
  const auto n = detail::checked_dimension(op, k, options, "top_eigenvalues_lanczos");
  if (options.max_iterations < k) {
    throw ValueError(
        "top_eigenvalues_lanczos: max_iterations = " + std::to_string(options.max_iterations) +
        " is the Krylov dimension and must be at least k = " + std::to_string(k));
  }
  const std::vector<Shape> shapes(op.shapes().begin(), op.shapes().end());
  Generator gen(options.seed);
  LanczosProcess<Op> process(op, gaussian_vector<T>(shapes, gen));
  const auto limit = std::min(options.max_iterations, n);
  const auto count = static_cast<std::size_t>(k);
  std::int64_t block_start = 0;  // where the current block (since the last restart) begins
  bool converged = false;
  RitzDecomposition ritz;
  while (true) {
    process.step();
    const auto m = process.steps();
    ritz = ritz_decomposition(process.alphas(), process.betas());
    report(options.progress,
           {"top eigenvalues", m, limit, process.hvp_count(), ritz.values.back()});
    // Residuals at the breakdown level (√ε·‖H‖) count as converged whatever |θ| (θ = 0, say).
    const double negligible = process.breakdown_tolerance() * process.operator_scale();
    const auto is_converged = [&](double bound, double value) {
      return bound <= options.tolerance * std::abs(value) || bound <= negligible;
    };
    if (m >= k) {
      bool top_converged = true;
      for (std::size_t i = ritz.values.size() - count; i < ritz.values.size(); ++i) {
        top_converged =
            top_converged &&
            is_converged(ritz.residual_bound(i, process.residual_norm()), ritz.values[i]);
      }
      if (top_converged) {
        if (m == n) {
          converged = true;
        } else {
          // The current block, T's trailing diagonal block since the last restart.
          const auto begin = static_cast<std::size_t>(block_start);
          const std::vector<double> block_alphas(process.alphas().begin() + begin,
                                                 process.alphas().end());
          const std::vector<double> block_betas(process.betas().begin() + begin,
                                                process.betas().end());
          const auto block = ritz_decomposition(block_alphas, block_betas);
          const double kth = ritz.values[ritz.values.size() - count];
          if (process.broke_down()) {
            // The block holds every distinct eigenvalue of the space it started in; copies may
            // remain outside the basis only of values it found, so nothing above the k-th value
            // means the top k are final.
            converged = block.values.back() <= kth + options.tolerance * std::abs(kth) + negligible;
          } else {
            // The block's top Ritz value bounds the unexplored space's largest eigenvalue from
            // below; once it has converged it is that eigenvalue (block_start = 0: it is θ_max,
            // converged above).
            converged =
                is_converged(block.residual_bound(block.values.size() - 1, process.residual_norm()),
                             block.values.back());
          }
        }
      }
    }
    if (converged || m >= limit) break;
    if (process.broke_down()) {
      if (!process.restart(gaussian_vector<T>(shapes, gen))) {
        converged = m >= k;  // the basis spans the whole space: T's eigenvalues are H's
        break;
      }
      block_start = m;
    }
  }
  EigenResult<T> result;
  result.converged = converged;
  result.hvp_count = process.hvp_count();
  const auto found = std::min(count, ritz.values.size());
  for (std::size_t j = 0; j < found; ++j) {
    const auto i = ritz.values.size() - 1 - j;
    result.eigenvalues.push_back(ritz.values[i]);
    result.eigenvectors.push_back(ritz_vector(
        process.basis(), Eigen::VectorXd(ritz.vectors.col(static_cast<Eigen::Index>(i)))));
    result.residual_norms.push_back(ritz.residual_bound(i, process.residual_norm()));
    result.iterations.push_back(process.steps());
  }
  return result;
}

}  // namespace soda::hessian
