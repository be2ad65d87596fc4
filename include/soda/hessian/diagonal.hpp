// Stochastic estimate of the Hessian's diagonal (Bekas, Kokiopoulou, Saad 2007): diag(H) =
// E[z ⊙ Hz] for Rademacher z, since E[z_i Σ_j H_ij z_j] = H_ii. AdaHessian and HAWQ use it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "soda/core/error.hpp"
#include "soda/core/generator.hpp"
#include "soda/hessian/estimator.hpp"
#include "soda/hessian/parameter_vector.hpp"

namespace soda::hessian {

struct DiagonalOptions {
  std::int64_t samples = 1;  // probes averaged
  std::uint64_t seed = 0;
  ProgressCallback progress{};
  // Probes pushed through one apply_many call; the probes themselves do not depend on it.
  std::int64_t batch = 1;
};

template <class T>
struct DiagonalEstimate {
  ParameterVector<T> diagonal;
  // Elementwise: sample standard deviation over the probes / sqrt(samples); empty when
  // samples < 2 (one probe says nothing about its own spread).
  ParameterVector<T> standard_error;
  std::int64_t samples = 0;
  std::int64_t hvp_count = 0;

  // The counts and, per tensor, the sum of its diagonal entries (the vectors themselves are
  // parameter-sized: save them with safetensors instead).
  nlohmann::ordered_json to_json() const {
    nlohmann::ordered_json sums = nlohmann::ordered_json::array();
    double total = 0;
    for (const auto& d : diagonal) {
      double sum = 0;
      const auto values = d.template to<T>();
      for (std::int64_t i = 0; i < values.numel(); ++i)
        sum += static_cast<double>(values.data()[i]);
      sums.push_back(sum);
      total += sum;
    }
    return {
        {"samples", samples}, {"hvp_count", hvp_count}, {"trace", total}, {"tensor_sums", sums}};
  }
};

// z ⊙ Hz: one probe's unbiased estimate of diag(H), for callers that computed Hz themselves
// (AdaHessian gets it from the same pass as the gradient).
template <class T>
ParameterVector<T> diagonal_from_probe(const ParameterVector<T>& z, const ParameterVector<T>& hz) {
  soda::detail::check_same_shapes(z, hz, "diagonal_from_probe");
  ParameterVector<T> out;
  for (std::size_t i = 0; i < z.size(); ++i) {
    const auto zi = detail::contiguous(z[i]), hzi = detail::contiguous(hz[i]);
    auto product = zeros<T>(zi.shape());
    const T* pz = zi.data();
    const T* phz = hzi.data();
    T* p = product.data();
    for (std::int64_t j = 0; j < product.numel(); ++j) {
      p[j] = static_cast<T>(static_cast<double>(pz[j]) * static_cast<double>(phz[j]));
    }
    out.push_back(std::move(product));
  }
  return out;
}

namespace detail {

template <class T>
ParameterVector<T> diagonal_to_vector(const std::vector<double>& flat,
                                      const std::vector<Shape>& shapes) {
  auto out = zeros_like<T>(shapes);
  std::size_t at = 0;
  for (auto& t : out) {
    T* p = t.data();
    for (std::int64_t j = 0; j < t.numel(); ++j) p[j] = static_cast<T>(flat[at++]);
  }
  return out;
}

}  // namespace detail

// diag(H) ≈ mean over `samples` Rademacher probes of z ⊙ Hz, accumulated in double (Welford's
// update, so the spread is exact enough for the standard error even when the mean is large).
template <SymmetricOperator Op>
DiagonalEstimate<scalar_of<Op>> hutchinson_diagonal(Op& op, const DiagonalOptions& options = {}) {
  using T = scalar_of<Op>;
  if (options.samples < 1) {
    throw ValueError("hutchinson_diagonal: samples must be at least 1 (got " +
                     std::to_string(options.samples) + ")");
  }
  if (options.batch < 1) {
    throw ValueError("hutchinson_diagonal: batch must be at least 1 (got " +
                     std::to_string(options.batch) + ")");
  }
  const std::vector<Shape> shapes(op.shapes().begin(), op.shapes().end());
  const auto size = static_cast<std::size_t>(total_size(shapes));
  std::vector<double> mean(size, 0.0), squares(size, 0.0);
  Generator gen(options.seed);
  DiagonalEstimate<T> result;
  while (result.samples < options.samples) {
    const auto k = std::min(options.batch, options.samples - result.samples);
    std::vector<ParameterVector<T>> probes;
    for (std::int64_t j = 0; j < k; ++j) probes.push_back(rademacher_vector<T>(shapes, gen));
    const auto products =
        k == 1 ? std::vector<ParameterVector<T>>{op.apply(probes.front())} : op.apply_many(probes);
    result.hvp_count += k;
    for (std::int64_t j = 0; j < k; ++j) {
      const auto& z = probes[static_cast<std::size_t>(j)];
      const auto& hz = products[static_cast<std::size_t>(j)];
      soda::detail::check_same_shapes(z, hz, "hutchinson_diagonal");
      ++result.samples;
      const auto n = static_cast<double>(result.samples);
      std::size_t at = 0;
      double trace = 0;
      for (std::size_t i = 0; i < z.size(); ++i) {
        const auto hzi = detail::contiguous(hz[i]);
        const T* pz = z[i].data();
        const T* phz = hzi.data();
        for (std::int64_t e = 0; e < hzi.numel(); ++e, ++at) {
          const double x = static_cast<double>(pz[e]) * static_cast<double>(phz[e]);
          const double delta = x - mean[at];
          mean[at] += delta / n;
          squares[at] += delta * (x - mean[at]);
          trace += mean[at];
        }
      }
      // The running diagonal's sum is a trace estimate: a progress figure that settles.
      report(options.progress,
             {"diagonal", result.samples, options.samples, result.hvp_count, trace});
    }
  }
  result.diagonal = detail::diagonal_to_vector<T>(mean, shapes);
  if (result.samples >= 2) {
    const auto n = static_cast<double>(result.samples);
    for (auto& s : squares) s = std::sqrt(s / (n - 1) / n);
    result.standard_error = detail::diagonal_to_vector<T>(squares, shapes);
  }
  return result;
}

}  // namespace soda::hessian
