// The loss along perturbations of the parameters (PyHessian's example and Li et al. 2018's plots):
// L(θ + α·u) on a line and L(θ + α·u₁ + β·u₂) on a grid, u typically a top Hessian eigenvector,
// averaged over a HessianOperator's batches as its loss() is.
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

#include "soda/autodiff/grad_mode.hpp"
#include "soda/core/error.hpp"
#include "soda/hessian/estimator.hpp"
#include "soda/hessian/hessian_operator.hpp"
#include "soda/hessian/parameter_vector.hpp"

namespace soda::hessian {

// n evenly spaced points from lo to hi, both included. Symmetric bounds give exactly symmetric
// points (x[n-1-i] == -x[i], and 0 in the middle when n is odd), so ±α land on mirrored weights.
inline std::vector<double> linspace(double lo, double hi, std::int64_t n) {
  if (n < 1) throw ValueError("linspace: n must be at least 1 (got " + std::to_string(n) + ")");
  if (n == 1) return {lo};
  std::vector<double> out(static_cast<std::size_t>(n));
  const auto last = static_cast<double>(n - 1);
  for (std::int64_t i = 0; i < n; ++i) {
    // Both terms are rounded the same way, so swapping lo and -hi mirrors them exactly.
    out[static_cast<std::size_t>(i)] =
        lo * static_cast<double>(n - 1 - i) / last + hi * static_cast<double>(i) / last;
  }
  out.front() = lo;
  out.back() = hi;
  return out;
}

// The loss along one direction: losses[i] = L(θ + alphas[i]·u).
struct LossLandscape1d {
  std::vector<double> alphas;
  std::vector<double> losses;

  nlohmann::ordered_json to_json() const {
    return nlohmann::ordered_json{{"alphas", alphas}, {"losses", losses}};
  }
  // "alpha,loss" and one row per point, 17 significant digits (they read back exactly).
  std::string to_csv() const {
    std::ostringstream out;
    out.precision(std::numeric_limits<double>::max_digits10);
    out << "alpha,loss\n";
    for (std::size_t i = 0; i < alphas.size(); ++i) out << alphas[i] << ',' << losses[i] << '\n';
    return out.str();
  }
};

// The loss on a plane: losses[i][j] = L(θ + alphas[i]·u₁ + betas[j]·u₂).
struct LossLandscape2d {
  std::vector<double> alphas;
  std::vector<double> betas;
  std::vector<std::vector<double>> losses;

  nlohmann::ordered_json to_json() const {
    return nlohmann::ordered_json{{"alphas", alphas}, {"betas", betas}, {"losses", losses}};
  }
  // "alpha,beta,loss" and one row per grid point, alpha-major.
  std::string to_csv() const {
    std::ostringstream out;
    out.precision(std::numeric_limits<double>::max_digits10);
    out << "alpha,beta,loss\n";
    for (std::size_t i = 0; i < alphas.size(); ++i) {
      for (std::size_t j = 0; j < betas.size(); ++j) {
        out << alphas[i] << ',' << betas[j] << ',' << losses[i][j] << '\n';
      }
    }
    return out.str();
  }
};

namespace detail {

// Holds θ₀ and writes θ₀ + α·u₁ + β·u₂ into the model's own parameter tensors; the destructor
// writes θ₀ back bit for bit, so the operator's linearizations (which share that storage) are
// valid again however the evaluation ended.
template <class T>
class PerturbedParameters {
 public:
  explicit PerturbedParameters(const std::vector<Tensor<T>>& parameters) : parameters_(parameters) {
    for (const auto& p : parameters_) origin_.push_back(p.template to<T>());
  }
  ~PerturbedParameters() {
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      std::copy_n(origin_[i].data(), origin_[i].numel(), parameters_[i].data());
    }
  }
  PerturbedParameters(const PerturbedParameters&) = delete;
  PerturbedParameters& operator=(const PerturbedParameters&) = delete;

  // θ₀ + α·u₁ (+ β·u₂) as explicit fused multiply-adds: the compiler has no product left to
  // contract (-ffp-contract would otherwise change the bits from one build to another), a 1-D
  // curve and the β = 0 column of a grid write the same weights, and α = 0 is θ₀ exactly.
  void move_to(double alpha, const ParameterVector<T>& u1, double beta,
               const ParameterVector<T>* u2) {
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      T* out = parameters_[i].data();
      const T* origin = origin_[i].data();
      const T* a = u1[i].data();
      const T* b = u2 ? (*u2)[i].data() : nullptr;
      for (std::int64_t j = 0; j < origin_[i].numel(); ++j) {
        double x = std::fma(alpha, static_cast<double>(a[j]), static_cast<double>(origin[j]));
        if (b) x = std::fma(beta, static_cast<double>(b[j]), x);
        out[j] = static_cast<T>(x);
      }
    }
  }

 private:
  std::vector<Tensor<T>> parameters_;
  std::vector<Tensor<T>> origin_;
};

// A contiguous copy of the direction, after checking it has one tensor per parameter of the
// parameter's shape.
template <class T>
ParameterVector<T> checked_direction(const HessianOperator<T>& op,
                                     const ParameterVector<T>& direction, const std::string& what) {
  const auto& shapes = op.shapes();
  const auto& names = op.parameter_names();
  if (direction.size() != shapes.size()) {
    throw ShapeError(what + " has " + std::to_string(direction.size()) +
                     " tensors but the operator has " + std::to_string(shapes.size()) +
                     " parameters");
  }
  ParameterVector<T> out;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    if (direction[i].shape() != shapes[i]) {
      throw ShapeError(what + ": tensor " + std::to_string(i) + " has shape " +
                       to_string(direction[i].shape()) + " but parameter '" + names[i] +
                       "' has shape " + to_string(shapes[i]));
    }
    out.push_back(direction[i].detach().template to<T>());
  }
  return out;
}

template <class T>
void check_parameters_writable(const HessianOperator<T>& op, const std::string& function) {
  for (std::size_t i = 0; i < op.parameters().size(); ++i) {
    if (!op.parameters()[i].is_contiguous()) {
      throw ValueError(function + ": parameter '" + op.parameter_names()[i] +
                       "' is a non-contiguous view; the landscape writes the weights in place and "
                       "needs contiguous parameter tensors");
    }
  }
}

// The mean loss over the operator's batches at the model's current weights, weighted and summed
// as HessianOperator::loss(), with no tape recorded.
template <class T>
double mean_loss(const HessianOperator<T>& op) {
  const NoGradGuard no_grad;
  auto& model = *op.model();
  double total = 0;
  for (const auto& batch : op.batches()) {
    const double weight = static_cast<double>(batch.labels.size(0)) / op.samples();
    total +=
        weight * static_cast<double>(op.loss_function()(model(batch.inputs), batch.labels).item());
  }
  return total;
}

}  // namespace detail

// L(θ + α·u) for each α in alphas, the mean loss over op's batches (its loss function and its
// BatchNorm mode; running statistics are left untouched). The model's parameters are perturbed in
// place and restored exactly before this returns or throws, so op stays valid.
template <class T>
LossLandscape1d loss_landscape_1d(const HessianOperator<T>& op, const ParameterVector<T>& direction,
                                  const std::vector<double>& alphas,
                                  const ProgressCallback& progress = {}) {
  const std::string name = "loss_landscape_1d";
  const auto u = detail::checked_direction(op, direction, name + ": direction");
  detail::check_parameters_writable(op, name);
  LossLandscape1d result;
  result.alphas = alphas;
  const nn::ModeGuard<T> mode(*op.model(), op.options().train_mode);
  detail::PerturbedParameters<T> weights(op.parameters());
  const auto points = static_cast<std::int64_t>(alphas.size());
  for (std::int64_t i = 0; i < points; ++i) {
    weights.move_to(alphas[static_cast<std::size_t>(i)], u, 0.0, nullptr);
    result.losses.push_back(detail::mean_loss(op));
    report(progress, {"landscape", i + 1, points, 0, result.losses.back()});
  }
  return result;
}

// L(θ + α·u₁ + β·u₂) on the grid alphas × betas (losses[i][j] for alphas[i], betas[j]), with the
// same evaluation and restoration as loss_landscape_1d.
template <class T>
LossLandscape2d loss_landscape_2d(const HessianOperator<T>& op, const ParameterVector<T>& u1,
                                  const ParameterVector<T>& u2, const std::vector<double>& alphas,
                                  const std::vector<double>& betas,
                                  const ProgressCallback& progress = {}) {
  const std::string name = "loss_landscape_2d";
  const auto first = detail::checked_direction(op, u1, name + ": first direction");
  const auto second = detail::checked_direction(op, u2, name + ": second direction");
  detail::check_parameters_writable(op, name);
  LossLandscape2d result;
  result.alphas = alphas;
  result.betas = betas;
  const nn::ModeGuard<T> mode(*op.model(), op.options().train_mode);
  detail::PerturbedParameters<T> weights(op.parameters());
  const auto points = static_cast<std::int64_t>(alphas.size() * betas.size());
  std::int64_t done = 0;
  for (const double alpha : alphas) {
    auto& row = result.losses.emplace_back();
    for (const double beta : betas) {
      weights.move_to(alpha, first, beta, &second);
      row.push_back(detail::mean_loss(op));
      report(progress, {"landscape", ++done, points, 0, row.back()});
    }
  }
  return result;
}

}  // namespace soda::hessian
