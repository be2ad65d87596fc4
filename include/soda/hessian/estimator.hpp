// What every Hessian estimator shares: the operator concept it runs on (anything with
// apply / apply_many / shapes, such as hessian_at's LinearizedHessian or HessianOperator) and the
// progress report it sends while it runs.
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "soda/hessian/parameter_vector.hpp"

namespace soda::hessian {

// A symmetric linear operator on parameter vectors: H·v for one vector or for several at once.
// The vectors it returns belong to the caller (estimators scale them in place).
template <class Op>
concept SymmetricOperator =
    requires(Op& op, const ParameterVector<typename std::remove_cvref_t<Op>::Scalar>& v,
             const std::vector<ParameterVector<typename std::remove_cvref_t<Op>::Scalar>>& vs) {
  { op.apply(v) } -> std::convertible_to<ParameterVector<typename std::remove_cvref_t<Op>::Scalar>>;
  {op.apply_many(vs)};
  { op.shapes() } -> std::convertible_to<std::vector<Shape>>;
};

template <class Op>
using scalar_of = typename std::remove_cvref_t<Op>::Scalar;

// Sent after each step of an estimator, for a progress line.
struct EstimatorProgress {
  std::string stage;           // "top eigenvalues", "trace", "density", ...
  std::int64_t step = 0;       // steps done in this stage
  std::int64_t max_steps = 0;  // the most it may take (it may stop earlier on convergence)
  std::int64_t hvp_count = 0;  // Hessian-vector products so far in this stage
  double estimate = 0;         // the current estimate (eigenvalue, trace, ...)
};

using ProgressCallback = std::function<void(const EstimatorProgress&)>;

// PyHessian's stopping rule: the estimate moved by less than `tolerance` relative to `scale` (the
// previous estimate, or the part of it still being estimated); its 1e-6 keeps a near-zero scale
// from dividing by zero.
inline bool settled(double change, double scale, double tolerance) {
  return std::abs(change) / (std::abs(scale) + 1e-6) < tolerance;
}

inline void report(const ProgressCallback& progress, const EstimatorProgress& state) {
  if (progress) progress(state);
}

}  // namespace soda::hessian
