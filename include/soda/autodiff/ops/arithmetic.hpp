// Broadcasting arithmetic (+ − × ÷, maximum, minimum, where, neg) with their reverse and forward
// rules, and the operators on tensors and scalars. Reverse rules reduce a broadcast gradient back
// to each input's shape with sum_to.
#pragma once

#include "soda/autodiff/ops/declarations.hpp"
#include "soda/autodiff/tangent.hpp"
#include "soda/core/factories.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/kernels/functors.hpp"

namespace soda {

namespace detail {

// out_tangent = da * scale_a + db * scale_b, where each scale is a primal tensor (or undefined
// for 1) and either tangent may be missing; the result has shape [k, out...].
template <class T>
Tensor<T> combine_tangents(const Tensor<T>& da, const Tensor<T>& scale_a, const Tensor<T>& db,
                           const Tensor<T>& scale_b, const Shape& out_shape) {
  const auto rank = out_shape.size();
  auto term = [rank](const Tensor<T>& d, const Tensor<T>& scale) {
    const auto lifted = lift_tangent(d, rank);
    return scale.defined() ? mul(lifted, scale) : lifted;
  };
  Tensor<T> result;
  if (da.defined()) result = term(da, scale_a);
  if (db.defined()) result = result.defined() ? add(result, term(db, scale_b)) : term(db, scale_b);
  return tangent_to(result, out_shape);
}

template <class T>
Tensor<T> scalar_like(T value) {
  return Tensor<T>::scalar(value);
}

}  // namespace detail

template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  return record_op<T>(
      "add", {a, b}, detail::map_binary(a, b, detail::fn::Add{}, "add"),
      [](const OpContext<T>& c, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{
            c.needs_grad[0] ? sum_to(g, c.inputs[0].shape()) : Tensor<T>{},
            c.needs_grad[1] ? sum_to(g, c.inputs[1].shape()) : Tensor<T>{}};
      },
      [](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return detail::combine_tangents(t[0], Tensor<T>{}, t[1], Tensor<T>{}, c.output.shape());
      });
}

template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  return record_op<T>(
      "sub", {a, b}, detail::map_binary(a, b, detail::fn::Sub{}, "sub"),
      [](const OpContext<T>& c, const Tensor<T>& g) {
        return std::vector<Tensor<T>>{
            c.needs_grad[0] ? sum_to(g, c.inputs[0].shape()) : Tensor<T>{},
            c.needs_grad[1] ? sum_to(neg(g), c.inputs[1].shape()) : Tensor<T>{}};
      },
      [](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto db = t[1].defined() ? neg(t[1]) : Tensor<T>{};
        return detail::combine_tangents(t[0], Tensor<T>{}, db, Tensor<T>{}, c.output.shape());
      });
}

template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  return record_op<T>(
      "mul", {a, b}, detail::map_binary(a, b, detail::fn::Mul{}, "mul"),
      [](const OpContext<T>& c, const Tensor<T>& g) {
        const auto& [x, y] = std::tie(c.inputs[0], c.inputs[1]);
        return std::vector<Tensor<T>>{c.needs_grad[0] ? sum_to(mul(g, y), x.shape()) : Tensor<T>{},
                                      c.needs_grad[1] ? sum_to(mul(g, x), y.shape()) : Tensor<T>{}};
      },
      [](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        return detail::combine_tangents(t[0], c.inputs[1], t[1], c.inputs[0], c.output.shape());
      });
}

template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  return record_op<T>(
      "div", {a, b}, detail::map_binary(a, b, detail::fn::Div{}, "div"),
      [](const OpContext<T>& c, const Tensor<T>& g) {
        const auto& [x, y] = std::tie(c.inputs[0], c.inputs[1]);
        // d(x/y)/dy = -x/y² = -out/y
        return std::vector<Tensor<T>>{
            c.needs_grad[0] ? sum_to(div(g, y), x.shape()) : Tensor<T>{},
            c.needs_grad[1] ? sum_to(neg(div(mul(g, c.output), y)), y.shape()) : Tensor<T>{}};
      },
      [](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto& y = c.inputs[1];
        const auto inv = t[0].defined() ? div(detail::scalar_like<T>(1), y) : Tensor<T>{};
        const auto scale_b = t[1].defined() ? neg(div(c.output, y)) : Tensor<T>{};
        return detail::combine_tangents(t[0], inv, t[1], scale_b, c.output.shape());
      });
}

template <class T>
Tensor<T> neg(const Tensor<T>& x) {
  return record_op<T>(
      "neg", {x}, detail::map_unary(x, detail::fn::Neg{}),
      [](const OpContext<T>&, const Tensor<T>& g) { return std::vector<Tensor<T>>{neg(g)}; },
      [](const OpContext<T>&, const std::vector<Tensor<T>>& t) { return neg(t[0]); });
}

namespace detail {
// maximum/minimum: the gradient goes to `a` where pick_a is 1 (ties go to a, as PyTorch's
// clamp-style convention), to `b` elsewhere.
template <class T>
Tensor<T> select_binary(const char* name, const Tensor<T>& a, const Tensor<T>& b, Tensor<T> out,
                        Tensor<T> pick_a) {
  return record_op<T>(
      name, {a, b}, std::move(out),
      [pick_a](const OpContext<T>& c, const Tensor<T>& g) {
        const auto ga = mul(g, pick_a);
        return std::vector<Tensor<T>>{
            c.needs_grad[0] ? sum_to(ga, c.inputs[0].shape()) : Tensor<T>{},
            c.needs_grad[1] ? sum_to(sub(g, ga), c.inputs[1].shape()) : Tensor<T>{}};
      },
      [pick_a](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto da = tangent_to(
            t[0].defined() ? t[0] : zeros<T>(stacked_shape(tangent_count(t), c.inputs[0].shape())),
            c.output.shape());
        const auto db = tangent_to(
            t[1].defined() ? t[1] : zeros<T>(stacked_shape(tangent_count(t), c.inputs[1].shape())),
            c.output.shape());
        return where(pick_a, da, db);
      });
}
}  // namespace detail

template <class T>
Tensor<T> maximum(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::select_binary("maximum", a, b,
                               detail::map_binary(a, b, detail::fn::Maximum{}, "maximum"),
                               detail::map_binary(a, b, detail::fn::GreaterEqual{}, "maximum"));
}

template <class T>
Tensor<T> minimum(const Tensor<T>& a, const Tensor<T>& b) {
  return detail::select_binary("minimum", a, b,
                               detail::map_binary(a, b, detail::fn::Minimum{}, "minimum"),
                               detail::map_binary(a, b, detail::fn::LessEqual{}, "minimum"));
}

// condition != 0 ? a : b (condition is a constant mask).
template <class T>
Tensor<T> where(const Tensor<T>& condition, const Tensor<T>& a, const Tensor<T>& b) {
  const auto mask = condition.detach();
  return record_op<T>(
      "where", {a, b}, detail::map_where(condition, a, b),
      [mask](const OpContext<T>& c, const Tensor<T>& g) {
        const auto zero = detail::scalar_like<T>(0);
        return std::vector<Tensor<T>>{
            c.needs_grad[0] ? sum_to(where(mask, g, zero), c.inputs[0].shape()) : Tensor<T>{},
            c.needs_grad[1] ? sum_to(where(mask, zero, g), c.inputs[1].shape()) : Tensor<T>{}};
      },
      [mask](const OpContext<T>& c, const std::vector<Tensor<T>>& t) {
        const auto rank = c.output.shape().size();
        const auto zero = detail::scalar_like<T>(0);
        const auto da = t[0].defined() ? detail::lift_tangent(t[0], rank) : zero;
        const auto db = t[1].defined() ? detail::lift_tangent(t[1], rank) : zero;
        return detail::tangent_to(where(mask, da, db), c.output.shape());
      });
}

// Operators: tensor ∘ tensor and tensor ∘ scalar in either order.
template <class S>
concept Scalar = std::is_arithmetic_v<S>;

template <class T>
Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) {
  return add(a, b);
}
template <class T>
Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) {
  return sub(a, b);
}
template <class T>
Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) {
  return mul(a, b);
}
template <class T>
Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) {
  return div(a, b);
}
template <class T>
Tensor<T> operator-(const Tensor<T>& x) {
  return neg(x);
}

template <class T, Scalar S>
Tensor<T> operator+(const Tensor<T>& a, S s) {
  return add(a, Tensor<T>::scalar(static_cast<T>(s)));
}
template <class T, Scalar S>
Tensor<T> operator+(S s, const Tensor<T>& a) {
  return add(Tensor<T>::scalar(static_cast<T>(s)), a);
}
template <class T, Scalar S>
Tensor<T> operator-(const Tensor<T>& a, S s) {
  return sub(a, Tensor<T>::scalar(static_cast<T>(s)));
}
template <class T, Scalar S>
Tensor<T> operator-(S s, const Tensor<T>& a) {
  return sub(Tensor<T>::scalar(static_cast<T>(s)), a);
}
template <class T, Scalar S>
Tensor<T> operator*(const Tensor<T>& a, S s) {
  return mul(a, Tensor<T>::scalar(static_cast<T>(s)));
}
template <class T, Scalar S>
Tensor<T> operator*(S s, const Tensor<T>& a) {
  return mul(Tensor<T>::scalar(static_cast<T>(s)), a);
}
template <class T, Scalar S>
Tensor<T> operator/(const Tensor<T>& a, S s) {
  return div(a, Tensor<T>::scalar(static_cast<T>(s)));
}
template <class T, Scalar S>
Tensor<T> operator/(S s, const Tensor<T>& a) {
  return div(Tensor<T>::scalar(static_cast<T>(s)), a);
}

}  // namespace soda
