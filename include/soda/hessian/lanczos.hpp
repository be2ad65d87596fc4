// The Lanczos process with full reorthogonalisation on a symmetric operator, and the Ritz pairs of
// its tridiagonal matrix (Golub & Van Loan, Matrix Computations, §10.1): H Q_m = Q_m T_m + β_m q_m
// e_mᵀ, T_m = tridiag(β, α, β); Ritz pair (θ_i, Q_m s_i) has residual ‖H y − θ y‖ = β_m |s_{m,i}|.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

// Only the tridiagonal solver is used here, which does not trip GCC 12's -Wuninitialized noise
// in avx512fintrin.h (that comes from Eigen's dense GEMM-based solvers; a pragma around this
// include could not silence it anyway: GCC judges it where <immintrin.h> was first included).
#include <Eigen/Eigenvalues>

#include "soda/core/error.hpp"
#include "soda/hessian/estimator.hpp"
#include "soda/hessian/parameter_vector.hpp"

namespace soda::hessian {

// β_j at or below this fraction of ‖H‖ (estimated as the largest ‖H q_i‖ seen so far) counts as a
// breakdown: the Krylov space is invariant to working precision. 100·ε of the scalar type sits
// well above the rounding left by full reorthogonalisation (a few ε·‖H‖) yet far below a trained
// network's bulk of small eigenvalues (√ε·‖H‖, about 3e-4·λmax in float, would stop SLQ there).
template <class T>
double default_breakdown_tolerance() {
  return 100 * static_cast<double>(std::numeric_limits<T>::epsilon());
}

// Lanczos run step by step, so callers can test convergence between steps (top eigenvalues) or
// stop at a fixed count (spectral density). The basis is kept: full reorthogonalisation needs it.
template <SymmetricOperator Op>
class LanczosProcess {
 public:
  using Scalar = scalar_of<Op>;
  using Vector = ParameterVector<Scalar>;

  // breakdown_tolerance ≤ 0 picks default_breakdown_tolerance<Scalar>().
  LanczosProcess(Op& op, const Vector& start, double breakdown_tolerance = 0)
      : op_(&op),
        dimension_(total_size(std::vector<Shape>(op.shapes().begin(), op.shapes().end()))),
        breakdown_tolerance_(breakdown_tolerance > 0 ? breakdown_tolerance
                                                     : default_breakdown_tolerance<Scalar>()) {
    next_ = clone(start);
    if (normalize(next_) == 0) {
      throw ValueError("lanczos: the start vector is zero; draw a random one (gaussian_vector)");
    }
  }

  // Whether step() may run: not after a breakdown (until restart) and not past dimension().
  bool can_step() const { return !broke_down_ && steps() < dimension_; }

  // One step, one Hessian-vector product: q_j joins the basis, α_j = q_jᵀ H q_j, and the new
  // residual r_j = H q_j − α_j q_j − β_{j−1} q_{j−1} is orthogonalised against the whole basis (two
  // Gram–Schmidt passes: plain Lanczos loses orthogonality once a Ritz value converges, and then
  // repeats it as a spurious copy). β_j = ‖r_j‖; breakdown when it is negligible.
  void step() {
    if (!can_step()) {
      throw ValueError("lanczos: cannot step " +
                       std::string(broke_down_ ? "after a breakdown; call restart() first"
                                               : "past the operator's dimension") +
                       " (" + std::to_string(steps()) + " steps, dimension " +
                       std::to_string(dimension_) + ")");
    }
    if (!basis_.empty()) betas_.push_back(next_coupling_);
    basis_.push_back(std::move(next_));
    next_ = {};
    const auto& q = basis_.back();
    Vector w = op_->apply(q);
    ++hvp_count_;
    scale_ = std::max(scale_, norm(w));
    const double alpha = dot(w, q);
    alphas_.push_back(alpha);
    add_scaled(w, -alpha, q);
    if (basis_.size() > 1 && next_coupling_ != 0) {
      add_scaled(w, -next_coupling_, basis_[basis_.size() - 2]);
    }
    orthogonalize(w, basis_);
    residual_norm_ = norm(w);
    if (residual_norm_ <= breakdown_tolerance_ * scale_) {
      broke_down_ = true;
    } else if (steps() < dimension_) {
      scale(w, 1.0 / residual_norm_);
      next_ = std::move(w);
      next_coupling_ = residual_norm_;
    }
  }

  // After a breakdown: go on from v's part outside the basis, coupled to it by β = 0 (T_m becomes
  // block diagonal). Finds eigenvalues the start vector had no component along, repeated ones
  // included. Returns false, changing nothing, when v lies in the basis' span to working precision.
  bool restart(const Vector& v) {
    if (!broke_down_) {
      throw ValueError("lanczos: restart() is only for after a breakdown");
    }
    auto fresh = clone(v);
    const double before = norm(fresh);
    orthogonalize(fresh, basis_);
    const double after = normalize(fresh);
    if (!(after > breakdown_tolerance_ * before)) return false;
    next_ = std::move(fresh);
    next_coupling_ = 0;
    broke_down_ = false;
    return true;
  }

  std::int64_t steps() const { return static_cast<std::int64_t>(alphas_.size()); }
  std::int64_t dimension() const { return dimension_; }
  std::int64_t hvp_count() const { return hvp_count_; }
  bool broke_down() const { return broke_down_; }
  double breakdown_tolerance() const { return breakdown_tolerance_; }
  // max ‖H q_j‖ so far: a lower bound on ‖H‖, the scale breakdowns are judged against.
  double operator_scale() const { return scale_; }
  const std::vector<double>& alphas() const { return alphas_; }
  const std::vector<double>& betas() const { return betas_; }  // T_m's off-diagonal (m − 1)
  double residual_norm() const { return residual_norm_; }      // β_m after the last step
  const std::vector<Vector>& basis() const { return basis_; }
  std::vector<Vector> take_basis() { return std::move(basis_); }

 private:
  Op* op_;
  std::int64_t dimension_;
  double breakdown_tolerance_;
  std::vector<Vector> basis_;
  std::vector<double> alphas_, betas_;
  Vector next_;               // q_{j+1}, ready for the next step
  double next_coupling_ = 0;  // T's entry between q_j and q_{j+1}: β_j, or 0 after a restart
  double residual_norm_ = 0;
  double scale_ = 0;
  std::int64_t hvp_count_ = 0;
  bool broke_down_ = false;
};

template <class T>
struct LanczosResult {
  std::vector<double> alphas;             // T_m's diagonal, one per step
  std::vector<double> betas;              // T_m's off-diagonal, m − 1 entries
  double residual_norm = 0;               // β_m: Ritz pair i's residual is β_m·|s_{m,i}|
  std::vector<ParameterVector<T>> basis;  // q_0 … q_{m−1} (empty when not kept)
  std::int64_t hvp_count = 0;
  bool breakdown = false;  // stopped before the steps asked: the Krylov space is invariant
};

struct LanczosOptions {
  bool keep_basis = true;
  double breakdown_tolerance = 0;  // ≤ 0: default_breakdown_tolerance of the scalar type
};

// Up to `steps` Lanczos steps from `start` (normalised here), clamped to the operator's dimension;
// stops early on a breakdown. One Hessian-vector product per step.
template <SymmetricOperator Op>
LanczosResult<scalar_of<Op>> lanczos(Op& op, const ParameterVector<scalar_of<Op>>& start,
                                     std::int64_t steps, const LanczosOptions& options = {}) {
  if (steps < 1) {
    throw ValueError("lanczos: steps = " + std::to_string(steps) + " must be at least 1");
  }
  LanczosProcess<Op> process(op, start, options.breakdown_tolerance);
  const auto limit = std::min(steps, process.dimension());
  while (process.steps() < limit && process.can_step()) process.step();
  LanczosResult<scalar_of<Op>> result;
  result.alphas = process.alphas();
  result.betas = process.betas();
  result.residual_norm = process.residual_norm();
  result.hvp_count = process.hvp_count();
  result.breakdown = process.broke_down();
  if (options.keep_basis) result.basis = process.take_basis();
  return result;
}

// Eigen-decomposition of T_m. values ascend; vectors holds s_i as columns; weights[i] = (s_i)_0²,
// the Gauss quadrature weights of stochastic Lanczos quadrature (they sum to 1).
struct RitzDecomposition {
  std::vector<double> values;
  std::vector<double> weights;
  Eigen::MatrixXd vectors;

  // β_m·|s_{m,i}|: ‖H y_i − θ_i y_i‖ for the Ritz vector y_i = Q_m s_i (exact while the basis is
  // orthonormal, which full reorthogonalisation keeps to rounding).
  double residual_bound(std::size_t i, double residual_norm) const {
    return residual_norm * std::abs(vectors(vectors.rows() - 1, static_cast<Eigen::Index>(i)));
  }
};

inline RitzDecomposition ritz_decomposition(const std::vector<double>& alphas,
                                            const std::vector<double>& betas) {
  if (alphas.empty()) {
    throw ValueError("ritz_decomposition: no Lanczos steps (alphas is empty)");
  }
  if (betas.size() + 1 != alphas.size()) {
    throw ShapeError("ritz_decomposition: " + std::to_string(alphas.size()) +
                     " diagonal entries need " + std::to_string(alphas.size() - 1) +
                     " off-diagonal ones, got " + std::to_string(betas.size()));
  }
  const auto m = static_cast<Eigen::Index>(alphas.size());
  const Eigen::VectorXd diagonal = Eigen::Map<const Eigen::VectorXd>(alphas.data(), m);
  Eigen::VectorXd off_diagonal(m - 1);
  for (Eigen::Index i = 0; i + 1 < m; ++i) off_diagonal[i] = betas[static_cast<std::size_t>(i)];
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver;
  solver.computeFromTridiagonal(diagonal, off_diagonal, Eigen::ComputeEigenvectors);
  if (solver.info() != Eigen::Success) {
    throw ValueError(
        "ritz_decomposition: the tridiagonal eigensolver did not converge (are the "
        "Lanczos coefficients finite?)");
  }
  RitzDecomposition out;
  out.vectors = solver.eigenvectors();
  for (Eigen::Index i = 0; i < m; ++i) {
    out.values.push_back(solver.eigenvalues()[i]);
    out.weights.push_back(out.vectors(0, i) * out.vectors(0, i));
  }
  return out;
}

// The Ritz vector Σ_j s_j q_j, normalised (it is unit already in exact arithmetic).
template <class T>
ParameterVector<T> ritz_vector(const std::vector<ParameterVector<T>>& basis,
                               const Eigen::VectorXd& coefficients) {
  if (basis.empty() || static_cast<Eigen::Index>(basis.size()) != coefficients.size()) {
    throw ShapeError("ritz_vector: " + std::to_string(coefficients.size()) +
                     " coefficients for a basis of " + std::to_string(basis.size()) + " vectors");
  }
  auto out = zeros_like<T>(shapes_of(basis.front()));
  for (std::size_t j = 0; j < basis.size(); ++j) {
    add_scaled(out, coefficients[static_cast<Eigen::Index>(j)], basis[j]);
  }
  normalize(out);
  return out;
}

}  // namespace soda::hessian
