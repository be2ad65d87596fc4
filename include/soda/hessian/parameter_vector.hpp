// Parameter-shaped vectors (one tensor per parameter) and the linear algebra the Hessian
// estimators need: dot, norm, axpy, normalise, Gram–Schmidt and seeded random draws.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "soda/autodiff/functional.hpp"
#include "soda/core/error.hpp"
#include "soda/core/factories.hpp"
#include "soda/core/generator.hpp"
#include "soda/core/tensor.hpp"

namespace soda::hessian {

// One tensor per parameter, in the parameters' order. Estimators create and own their vectors
// (contiguous, sharing storage with nothing), so the in-place updates below never touch a model.
template <class T>
using ParameterVector = std::vector<Tensor<T>>;

namespace detail {

template <class T>
Tensor<T> contiguous(const Tensor<T>& x) {
  return x.is_contiguous() ? x : x.template to<T>();
}

}  // namespace detail

template <class T>
std::vector<Shape> shapes_of(const ParameterVector<T>& v) {
  std::vector<Shape> out;
  for (const auto& t : v) out.push_back(t.shape());
  return out;
}

inline std::int64_t total_size(const std::vector<Shape>& shapes) {
  std::int64_t n = 0;
  for (const auto& s : shapes) n += numel(s);
  return n;
}

// An independent copy: contiguous, no shared storage, no autodiff state.
template <class T>
ParameterVector<T> clone(const ParameterVector<T>& v) {
  ParameterVector<T> out;
  for (const auto& t : v) out.push_back(t.detach().template to<T>());
  return out;
}

template <class T>
ParameterVector<T> zeros_like(const std::vector<Shape>& shapes) {
  ParameterVector<T> out;
  for (const auto& s : shapes) out.push_back(zeros<T>(s));
  return out;
}

// Entries ±1 with probability 1/2 each (Hutchinson's probe); the draw depends on gen only.
template <class T>
ParameterVector<T> rademacher_vector(const std::vector<Shape>& shapes, Generator& gen) {
  ParameterVector<T> out;
  for (const auto& s : shapes) out.push_back(rademacher<T>(s, gen));
  return out;
}

// Entries standard normal.
template <class T>
ParameterVector<T> gaussian_vector(const std::vector<Shape>& shapes, Generator& gen) {
  ParameterVector<T> out;
  for (const auto& s : shapes) out.push_back(randn<T>(s, gen));
  return out;
}

// Σ a_i b_i accumulated in double, in a fixed order: the same at any thread count.
template <class T>
double dot(const ParameterVector<T>& a, const ParameterVector<T>& b) {
  soda::detail::check_same_shapes(a, b, "hessian::dot");
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = detail::contiguous(a[i]), y = detail::contiguous(b[i]);
    const T* px = x.data();
    const T* py = y.data();
    double part = 0;
    for (std::int64_t j = 0; j < x.numel(); ++j) {
      part += static_cast<double>(px[j]) * static_cast<double>(py[j]);
    }
    sum += part;
  }
  return sum;
}

template <class T>
double norm(const ParameterVector<T>& v) {
  return std::sqrt(dot(v, v));
}

// y ← y + alpha·x, in place (y must own its storage: an estimator's own vector).
template <class T>
void add_scaled(ParameterVector<T>& y, double alpha, const ParameterVector<T>& x) {
  soda::detail::check_same_shapes(y, x, "hessian::add_scaled");
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (!y[i].is_contiguous()) y[i] = y[i].template to<T>();
    const auto xi = detail::contiguous(x[i]);
    T* py = y[i].data();
    const T* px = xi.data();
    for (std::int64_t j = 0; j < y[i].numel(); ++j) {
      py[j] = static_cast<T>(static_cast<double>(py[j]) + alpha * static_cast<double>(px[j]));
    }
  }
}

// v ← alpha·v, in place.
template <class T>
void scale(ParameterVector<T>& v, double alpha) {
  for (auto& t : v) {
    if (!t.is_contiguous()) t = t.template to<T>();
    T* p = t.data();
    for (std::int64_t j = 0; j < t.numel(); ++j) {
      p[j] = static_cast<T>(alpha * static_cast<double>(p[j]));
    }
  }
}

// α·x + β·y as a new vector.
template <class T>
ParameterVector<T> linear_combination(double alpha, const ParameterVector<T>& x, double beta,
                                      const ParameterVector<T>& y) {
  auto out = clone(x);
  scale(out, alpha);
  add_scaled(out, beta, y);
  return out;
}

// Scales v to unit norm and returns the norm it had; a zero vector is left as is (returns 0).
template <class T>
double normalize(ParameterVector<T>& v) {
  const double n = norm(v);
  if (n > 0) scale(v, 1.0 / n);
  return n;
}

// Removes from v its components along each vector of an orthonormal basis (modified
// Gram–Schmidt, two passes: one pass loses orthogonality once v is nearly in the span).
template <class T>
void orthogonalize(ParameterVector<T>& v, const std::vector<ParameterVector<T>>& basis) {
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& q : basis) add_scaled(v, -dot(q, v), q);
  }
}

}  // namespace soda::hessian
