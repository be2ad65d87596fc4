// Shared helpers for the autodiff tests: central-difference checkers for gradients, Hessian-vector
// products and Jacobian-vector products, a one-call checker for a single op, and a small MLP.
#pragma once

#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace soda_test {

using Tensor = soda::Tensor<double>;
using Params = std::vector<Tensor>;
using Index = soda::Tensor<std::int64_t>;

// A contiguous copy sharing nothing with x and carrying no autodiff state.
template <class T>
soda::Tensor<T> copy_of(const soda::Tensor<T>& x) {
  return x.template to<T>();
}

inline Params copies(const Params& ps) {
  Params out;
  for (const auto& p : ps) out.push_back(copy_of(p));
  return out;
}

// max_i |a_i − b_i| / max(1, |a_i|, |b_i|); infinite when the shapes differ.
template <class T>
double relative_error(const soda::Tensor<T>& expected, const soda::Tensor<T>& actual) {
  if (expected.shape() != actual.shape()) return std::numeric_limits<double>::infinity();
  const auto a = copy_of(expected), b = copy_of(actual);
  double worst = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double x = static_cast<double>(a.data()[i]), y = static_cast<double>(b.data()[i]);
    const double e = std::abs(x - y) / std::max({1.0, std::abs(x), std::abs(y)});
    if (std::isnan(e)) return e;
    worst = std::max(worst, e);
  }
  return worst;
}

template <class T>
double relative_error(const std::vector<soda::Tensor<T>>& expected,
                      const std::vector<soda::Tensor<T>>& actual) {
  if (expected.size() != actual.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i)
    worst = std::max(worst, relative_error(expected[i], actual[i]));
  return worst;
}

// Largest |a − b| over a list of tensors (0 means bit-for-bit equal values).
template <class T>
double max_difference(const std::vector<soda::Tensor<T>>& a,
                      const std::vector<soda::Tensor<T>>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].shape() != b[i].shape()) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, soda::max_abs_difference(a[i], b[i]));
  }
  return worst;
}

// params + s·v, as fresh tensors.
// A standard normal tensor in double from its own seed.
inline Tensor normal(const soda::Shape& shape, std::uint64_t seed) {
  soda::Generator gen(seed);
  return soda::randn<double>(shape, gen);
}

inline Params axpy(const Params& params, double s, const Params& v) {
  soda::NoGradGuard no_grad;
  Params out;
  for (std::size_t i = 0; i < params.size(); ++i) out.push_back(copy_of(params[i] + v[i] * s));
  return out;
}

inline Params random_like(const Params& params, soda::Generator& gen) {
  Params out;
  for (const auto& p : params) out.push_back(soda::randn<double>(p.shape(), gen));
  return out;
}

// Standard normal values pushed at least `margin` away from each kink (relu, abs, clamp bounds).
inline Tensor randn_avoiding(const soda::Shape& shape, soda::Generator& gen,
                             std::vector<double> kinks, double margin = 0.05) {
  auto x = soda::randn<double>(shape, gen);
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    for (const double k : kinks) {
      double& v = x.data()[i];
      if (std::abs(v - k) < margin) v = v < k ? k - 2 * margin : k + 2 * margin;
    }
  }
  return x;
}

// Central differences of a scalar f, one element at a time.
template <class F>
Params numerical_gradient(F& f, const Params& params, double h = 1e-6) {
  soda::NoGradGuard no_grad;
  Params point = copies(params);
  Params out;
  for (std::size_t i = 0; i < point.size(); ++i) {
    auto g = soda::zeros<double>(point[i].shape());
    double* x = point[i].data();
    for (std::int64_t j = 0; j < point[i].numel(); ++j) {
      const double saved = x[j];
      x[j] = saved + h;
      const double plus = f(point).item();
      x[j] = saved - h;
      const double minus = f(point).item();
      x[j] = saved;
      g.data()[j] = (plus - minus) / (2 * h);
    }
    out.push_back(g);
  }
  return out;
}

// Central differences of the gradient along v: (∇f(p + hv) − ∇f(p − hv)) / 2h.
template <class F>
Params numerical_hvp(F& f, const Params& params, const Params& v, double h = 1e-5) {
  const auto plus = soda::grad(f, axpy(params, h, v));
  const auto minus = soda::grad(f, axpy(params, -h, v));
  soda::NoGradGuard no_grad;
  Params out;
  for (std::size_t i = 0; i < plus.size(); ++i) out.push_back((plus[i] - minus[i]) / (2 * h));
  return out;
}

// Central differences of f (any output shape) along v.
template <class F>
Tensor numerical_jvp(F& f, const Params& params, const Params& v, double h = 1e-6) {
  soda::NoGradGuard no_grad;
  return (f(axpy(params, h, v)) - f(axpy(params, -h, v))) / (2 * h);
}

// Relative error of value_and_grad against central differences (and of the value against f).
template <class F>
double gradient_error(F&& f, const Params& params, double h = 1e-6) {
  const auto [value, grads] = soda::value_and_grad(f, params);
  double value_error;
  {
    soda::NoGradGuard no_grad;
    value_error = relative_error(f(params), value);
  }
  return std::max(value_error, relative_error(numerical_gradient(f, params, h), grads));
}

template <class F>
double hvp_error(F&& f, const Params& params, const Params& v, double h = 1e-5) {
  return relative_error(numerical_hvp(f, params, v, h), soda::hvp(f, params, v));
}

template <class F>
double jvp_error(F&& f, const Params& params, const Params& v, double h = 1e-6) {
  return relative_error(numerical_jvp(f, params, v, h), soda::jvp(f, params, v));
}

// The closure form f() of modules reads its parameters by handle: the finite differences below
// move those very tensors in place (and put them back), then differentiate f() where it stands.
inline void overwrite_values(const Params& targets, const Params& values) {
  for (std::size_t i = 0; i < targets.size(); ++i) {
    std::copy(values[i].data(), values[i].data() + values[i].numel(), targets[i].data());
  }
}

template <class F>
Params closure_numerical_gradient(F& f, const Params& params, double h = 1e-6) {
  soda::NoGradGuard no_grad;
  Params out;
  for (const auto& p : params) {
    auto g = soda::zeros<double>(p.shape());
    for (std::int64_t j = 0; j < p.numel(); ++j) {
      double& x = p.data()[j];
      const double saved = x;
      x = saved + h;
      const double plus = f().item();
      x = saved - h;
      const double minus = f().item();
      x = saved;
      g.data()[j] = (plus - minus) / (2 * h);
    }
    out.push_back(g);
  }
  return out;
}

template <class F>
double closure_gradient_error(F&& f, const Params& params, double h = 1e-6) {
  const auto grads = soda::grad(f, params);
  return relative_error(closure_numerical_gradient(f, params, h), grads);
}

// (∇f(p + hv) − ∇f(p − hv)) / 2h against forward-over-reverse H·v, for a closure f().
template <class F>
double closure_hvp_error(F&& f, const Params& params, const Params& v, double h = 1e-5) {
  const Params saved = copies(params);
  overwrite_values(params, axpy(saved, h, v));
  const auto plus = soda::grad(f, params);
  overwrite_values(params, axpy(saved, -h, v));
  const auto minus = soda::grad(f, params);
  overwrite_values(params, saved);
  Params numerical;
  for (std::size_t i = 0; i < plus.size(); ++i) numerical.push_back((plus[i] - minus[i]) / (2 * h));
  return relative_error(numerical, soda::hvp(f, params, v));
}

// hessian_at's replay of a closure f(): must be bit-for-bit the direct forward-over-reverse H·v.
template <class F>
double closure_replay_difference(F&& f, const Params& params, const Params& v) {
  const auto hessian = soda::hessian_at(f, params);
  return max_difference(hessian.apply(v), soda::hvp(f, params, v));
}

// A closure f() over params: gradient and H·v (along a direction drawn from `seed`) against
// central differences in place, and hessian_at's replay bit-equal to the direct H·v.
template <class F>
void check_closure_derivatives(F&& f, const Params& params, std::uint64_t seed,
                               double gradient_tolerance, double hvp_tolerance) {
  soda::Generator gen(seed);
  const auto v = random_like(params, gen);
  CHECK(closure_gradient_error(f, params) < gradient_tolerance);
  CHECK(closure_hvp_error(f, params, v) < hvp_tolerance);
  CHECK(closure_replay_difference(f, params, v) == 0);
}

// A loss with a non-trivial Hessian in every tensor: fixed random weights on y and on y².
struct CurvedLoss {
  Tensor w, u;
  CurvedLoss(const soda::Shape& shape, std::uint64_t seed)
      : w(normal(shape, seed)), u(normal(shape, seed + 1)) {}
  Tensor operator()(const Tensor& y) const {
    return soda::sum(y * w) + soda::sum(soda::square(y) * u);
  }
};

// The message of the exception E thrown by `call` (fails the test if none or another is thrown).
template <class E>
std::string message_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("threw the wrong exception type: " << e.what());
    return {};
  }
  FAIL("did not throw");
  return {};
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The names of named tensors, in order.
template <class T>
std::vector<std::string> names_of(const soda::nn::NamedTensors<T>& named) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : named) names.push_back(name);
  return names;
}

// The values of a tensor in row-major order.
template <class T>
std::vector<T> values_of(const soda::Tensor<T>& x) {
  const auto c = copy_of(x);
  return {c.data(), c.data() + c.numel()};
}

// Checks that `values` look like independent draws from U(−bound, bound): inside the bounds,
// reaching near both, a mean near 0 and, for large tensors, the variance bound² / 3.
inline void check_uniform_draws(const Tensor& values, double bound) {
  double lo = 1, hi = -1, sum = 0, squares = 0;
  const auto c = copy_of(values);
  for (std::int64_t i = 0; i < c.numel(); ++i) {
    const double v = c.data()[i];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
    squares += v * v;
  }
  const auto n = static_cast<double>(c.numel());
  CHECK(lo >= -bound);
  CHECK(hi < bound);
  CHECK(lo < -0.95 * bound);
  CHECK(hi > 0.95 * bound);
  CHECK(std::abs(sum / n) < 5 * bound / std::sqrt(3 * n));
  if (n > 10000) CHECK(squares / n == doctest::Approx(bound * bound / 3).epsilon(0.02));
}

struct OpReport {
  double gradient;  // ∇ of sum(w ⊙ op) against central differences
  double hvp;       // H·v of sum(w ⊙ op) + sum(u ⊙ op²) against central differences of ∇
  double jvp;       // J·v of op against central differences
  double replay;    // |hessian_at(...).apply(v) − hvp(...)|: 0 when bit-for-bit equal
  double stacked;   // apply_many of 3 vectors (k = 3 tangents) against 3 single applies
};

// Checks one op (a function of the parameters returning a tensor of any shape) every way at once.
// The losses weigh every output element with fixed random weights, so all of them matter.
template <class Op>
OpReport check_op(Op op, const Params& params, std::uint64_t seed = 7) {
  soda::Generator gen(seed);
  Tensor w, u;
  {
    soda::NoGradGuard no_grad;
    const auto y = op(params);
    w = soda::randn<double>(y.shape(), gen);
    u = soda::randn<double>(y.shape(), gen);
  }
  auto linear = [&](const Params& p) { return soda::sum(op(p) * w); };
  auto curved = [&](const Params& p) {
    const auto y = op(p);
    return soda::sum(y * w) + soda::sum(soda::square(y) * u);
  };
  const auto v = random_like(params, gen);
  OpReport r{};
  r.gradient = gradient_error(linear, params);
  r.hvp = hvp_error(curved, params, v);
  r.jvp = jvp_error(op, params, v);
  const auto hessian = soda::hessian_at(curved, params);
  r.replay = max_difference(hessian.apply(v), soda::hvp(curved, params, v));
  const std::vector<Params> vs{v, random_like(params, gen), random_like(params, gen)};
  const auto many = hessian.apply_many(vs);
  r.stacked = 0;
  for (std::size_t i = 0; i < vs.size(); ++i)
    r.stacked = std::max(r.stacked, relative_error(hessian.apply(vs[i]), many[i]));
  return r;
}

// CHECKs every part of check_op's report; params may be a braced list.
#define SODA_CHECK_OP(op, ...)                                   \
  do {                                                           \
    const auto report_ = ::soda_test::check_op(op, __VA_ARGS__); \
    CHECK(report_.gradient < 1e-6);                              \
    CHECK(report_.hvp < 1e-6);                                   \
    CHECK(report_.jvp < 1e-6);                                   \
    CHECK(report_.replay == 0);                                  \
    CHECK(report_.stacked < 1e-12);                              \
  } while (false)

// A two-layer tanh MLP with biases and a softmax cross-entropy loss on a fixed batch:
// params = {W1 [in, hidden], b1 [hidden], W2 [hidden, classes], b2 [classes]}.
template <class T = double>
struct Mlp {
  soda::Tensor<T> x;
  soda::Tensor<std::int64_t> labels;  // [batch, 1]
  std::vector<soda::Tensor<T>> params;

  Mlp(std::int64_t batch, std::int64_t in, std::int64_t hidden, std::int64_t classes,
      std::uint64_t seed = 1) {
    soda::Generator gen(seed);
    x = soda::randn<T>({batch, in}, gen);
    labels = soda::randint<std::int64_t>({batch, 1}, gen, 0, classes);
    params = {soda::randn<T>({in, hidden}, gen, T(0), T(0.7)),
              soda::randn<T>({hidden}, gen, T(0), T(0.3)),
              soda::randn<T>({hidden, classes}, gen, T(0), T(0.7)),
              soda::randn<T>({classes}, gen, T(0), T(0.3))};
  }

  soda::Tensor<T> logits(const std::vector<soda::Tensor<T>>& p) const {
    const auto h = soda::tanh(soda::matmul(x, p[0]) + p[1]);
    return soda::matmul(h, p[2]) + p[3];
  }

  // Mean negative log-likelihood of the labels.
  soda::Tensor<T> loss(const std::vector<soda::Tensor<T>>& p) const {
    return -soda::mean(soda::gather(soda::log_softmax(logits(p), 1), 1, labels));
  }

  auto loss_fn() const {
    return [this](const std::vector<soda::Tensor<T>>& p) { return loss(p); };
  }
};

}  // namespace soda_test
