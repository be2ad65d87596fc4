// The functional entry points: value_and_grad, grad, hvp, value_grad_hvp and jvp of a scalar
// function f. f takes the parameters as std::vector<Tensor<T>>, or is a closure f() that reads
// them by handle (modules). hvp runs forward-over-reverse: one pass gives f, ∇f and H·v.
#pragma once

#include <tuple>
#include <type_traits>
#include <utility>

#include "soda/autodiff/engine.hpp"

namespace soda {

namespace detail {

template <class T>
void check_same_shapes(const std::vector<Tensor<T>>& params, const std::vector<Tensor<T>>& v,
                       const char* op) {
  if (params.size() != v.size()) {
    throw ShapeError(std::string(op) + ": " + std::to_string(v.size()) + " vectors given for " +
                     std::to_string(params.size()) + " parameters");
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (params[i].shape() != v[i].shape()) {
      throw ShapeError(std::string(op) + ": vector " + std::to_string(i) + " has shape " +
                       to_string(v[i].shape()) + " but parameter " + std::to_string(i) +
                       " has shape " + to_string(params[i].shape()));
    }
  }
}

// The parameters as f will see them: fresh leaves sharing storage (list form), or the caller's
// own tensors temporarily marked (closure form); restored on destruction.
template <class T>
class ParameterScope {
 public:
  ParameterScope(const std::vector<Tensor<T>>& params, bool by_handle, bool requires_grad,
                 const std::vector<Tensor<T>>* tangents)
      : by_handle_(by_handle) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      Tensor<T> p = by_handle ? params[i] : params[i].detach();
      if (by_handle) saved_.push_back({p.impl()->requires_grad, p.impl()->tangent});
      p.impl()->requires_grad = requires_grad;
      if (tangents != nullptr) {
        // A [1, shape...] view of v (copied only if v is a non-contiguous view).
        const auto v =
            (*tangents)[i].is_contiguous() ? (*tangents)[i] : copy_contiguous((*tangents)[i]);
        p.impl()->tangent = v.view_with(stacked_shape(1, p.shape()),
                                        contiguous_strides(stacked_shape(1, p.shape())), v.offset())
                                .impl();
      }
      leaves_.push_back(p);
    }
  }
  ~ParameterScope() {
    if (!by_handle_) return;
    for (std::size_t i = 0; i < leaves_.size(); ++i) {
      leaves_[i].impl()->requires_grad = saved_[i].first;
      leaves_[i].impl()->tangent = saved_[i].second;
    }
  }
  ParameterScope(const ParameterScope&) = delete;
  ParameterScope& operator=(const ParameterScope&) = delete;

  const std::vector<Tensor<T>>& leaves() const { return leaves_; }

 private:
  bool by_handle_;
  std::vector<Tensor<T>> leaves_;
  std::vector<std::pair<bool, std::shared_ptr<TensorImpl<T>>>> saved_;
};

template <class F, class T>
constexpr bool takes_parameters_v = std::is_invocable_v<F&, const std::vector<Tensor<T>>&>;

template <class F, class T>
Tensor<T> call(F& f, const std::vector<Tensor<T>>& leaves) {
  if constexpr (takes_parameters_v<F, T>) {
    return f(leaves);
  } else {
    static_assert(std::is_invocable_v<F&>, "f must take const std::vector<Tensor<T>>& or nothing");
    return f();
  }
}

// The tangent plane of t as a tensor of t's shape (zeros when none rode on it).
template <class T>
Tensor<T> tangent_or_zeros(const Tensor<T>& t) {
  if (!t.has_tangent()) return zeros_like(t);
  const auto plane = t.tangent().detach();
  return plane.is_contiguous()
             ? plane.view_with(t.shape(), contiguous_strides(t.shape()), plane.offset())
             : copy_contiguous(reshape(plane, t.shape()));
}

}  // namespace detail

template <class F, class T>
std::pair<Tensor<T>, std::vector<Tensor<T>>> value_and_grad(F&& f,
                                                            const std::vector<Tensor<T>>& params) {
  detail::ParameterScope<T> scope(params, !detail::takes_parameters_v<F, T>, true, nullptr);
  const Tensor<T> value = detail::call(f, scope.leaves());
  detail::check_scalar_output(value, "value_and_grad");
  auto grads = gradients(value, scope.leaves());
  for (auto& g : grads) g = g.detach();
  return {value.detach(), std::move(grads)};
}

template <class F, class T>
std::vector<Tensor<T>> grad(F&& f, const std::vector<Tensor<T>>& params) {
  return value_and_grad(std::forward<F>(f), params).second;
}

// f(params), ∇f and H·v in one forward-over-reverse pass.
template <class F, class T>
std::tuple<Tensor<T>, std::vector<Tensor<T>>, std::vector<Tensor<T>>> value_grad_hvp(
    F&& f, const std::vector<Tensor<T>>& params, const std::vector<Tensor<T>>& v) {
  detail::check_same_shapes(params, v, "value_grad_hvp");
  detail::ParameterScope<T> scope(params, !detail::takes_parameters_v<F, T>, true, &v);
  const Tensor<T> value = detail::call(f, scope.leaves());
  detail::check_scalar_output(value, "value_grad_hvp");
  const auto grads = gradients(value, scope.leaves());
  std::vector<Tensor<T>> g, hv;
  for (const auto& gi : grads) {
    g.push_back(gi.detach());
    hv.push_back(detail::tangent_or_zeros(gi));
  }
  return {value.detach(), std::move(g), std::move(hv)};
}

template <class F, class T>
std::vector<Tensor<T>> hvp(F&& f, const std::vector<Tensor<T>>& params,
                           const std::vector<Tensor<T>>& v) {
  return std::get<2>(value_grad_hvp(std::forward<F>(f), params, v));
}

// Directional derivative J·v of f (any output shape) by forward mode alone.
template <class F, class T>
Tensor<T> jvp(F&& f, const std::vector<Tensor<T>>& params, const std::vector<Tensor<T>>& v) {
  detail::check_same_shapes(params, v, "jvp");
  NoGradGuard no_grad;
  detail::ParameterScope<T> scope(params, !detail::takes_parameters_v<F, T>, false, &v);
  return detail::tangent_or_zeros(detail::call(f, scope.leaves()));
}

}  // namespace soda
