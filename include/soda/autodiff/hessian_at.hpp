// Linearize once, apply many: hessian_at(f, params) runs the primal forward and backward once,
// recording every op (forward and backward) with its primal values. apply(v) then replays only
// the forward rules of that trace with v as the parameters' tangent: the tangent forward and the
// tangent backward, no primal recomputation. apply_many stacks k vectors in one replay.
// The trace shares storage with the parameters: update them in place (an optimizer step) and
// the linearization is stale; call hessian_at again at the new point.
#pragma once

#include <algorithm>
#include <unordered_map>

#include "soda/autodiff/functional.hpp"
#include "soda/autodiff/ops/join.hpp"

namespace soda {

template <class T>
class LinearizedHessian {
 public:
  using Scalar = T;
  using Vector = std::vector<Tensor<T>>;

  template <class F>
  LinearizedHessian(F&& f, const Vector& params) {
    detail::ParameterScope<T> scope(params, !detail::takes_parameters_v<F, T>, true, nullptr);
    Tensor<T> value;
    Vector grads;
    {
      detail::TraceScope<T> recording(&trace_);
      value = detail::call(f, scope.leaves());
      detail::check_scalar_output(value, "hessian_at");
      grads = gradients(value, scope.leaves());
    }
    value_ = value.detach();
    for (const auto& p : scope.leaves()) {
      parameter_ids_.push_back(p.id());
      shapes_.push_back(p.shape());
    }
    for (const auto& g : grads) {
      gradient_ids_.push_back(g.id());
      gradient_.push_back(g.detach());
    }
    // The last entry reading each value, so a replay frees tangents as soon as it can.
    for (std::size_t i = 0; i < trace_.entries.size(); ++i) {
      for (const auto& x : trace_.entries[i].inputs) last_use_[x.id()] = i;
    }
  }

  const Tensor<T>& value() const { return value_; }
  const Vector& gradient() const { return gradient_; }
  std::size_t recorded_ops() const { return trace_.entries.size(); }
  const std::vector<Shape>& shapes() const { return shapes_; }

  // Bytes held by the trace's values, each storage counted once: what keeping it costs.
  std::size_t memory_bytes() const {
    std::unordered_map<const T*, std::int64_t> extent;  // storage -> elements reached
    const auto visit = [&](const Tensor<T>& x) {
      if (!x.defined()) return;
      const T* base = x.impl()->storage.get();
      std::int64_t reach = x.offset() + 1;
      for (std::size_t d = 0; d < x.shape().size(); ++d) {
        if (x.shape()[d] > 0) reach += (x.shape()[d] - 1) * x.strides()[d];
      }
      auto& e = extent[base];
      e = std::max(e, reach);
    };
    for (const auto& entry : trace_.entries) {
      for (const auto& x : entry.inputs) visit(x);
      visit(entry.output);
    }
    std::size_t total = 0;
    for (const auto& [base, n] : extent) total += static_cast<std::size_t>(n) * sizeof(T);
    return total;
  }

  // H·v, equal to soda::hvp(f, params, v) at this point.
  Vector apply(const Vector& v) const { return apply_many({v}).front(); }

  // H·v for each v in vs, pushed through the trace together as a stack of k tangents.
  std::vector<Vector> apply_many(const std::vector<Vector>& vs) const {
    if (vs.empty()) return {};
    const auto k = static_cast<std::int64_t>(vs.size());
    std::unordered_map<std::uint64_t, Tensor<T>> tangents;
    for (std::size_t p = 0; p < shapes_.size(); ++p) {
      std::vector<Tensor<T>> column;
      for (const auto& v : vs) {
        if (v.size() != shapes_.size() || v[p].shape() != shapes_[p]) {
          throw ShapeError(
              "hessian_at: vector for parameter " + std::to_string(p) + " has shape " +
              (v.size() == shapes_.size() ? to_string(v[p].shape()) : std::string("(missing)")) +
              " but the parameter has shape " + to_string(shapes_[p]));
        }
        column.push_back(reshape(v[p].detach(), detail::stacked_shape(1, shapes_[p])));
      }
      tangents[parameter_ids_[p]] = k == 1 ? column.front() : concat(column, 0);
    }
    replay(tangents);
    std::vector<Vector> out(vs.size());
    for (std::size_t p = 0; p < shapes_.size(); ++p) {
      const auto found = tangents.find(gradient_ids_[p]);
      for (std::int64_t j = 0; j < k; ++j) {
        out[static_cast<std::size_t>(j)].push_back(
            found == tangents.end()
                ? zeros<T>(shapes_[p])
                : detail::copy_contiguous(reshape(select(found->second, 0, j), shapes_[p])));
      }
    }
    return out;
  }

 private:
  void replay(std::unordered_map<std::uint64_t, Tensor<T>>& tangents) const {
    NoGradGuard no_grad;
    detail::TraceScope<T> untraced(nullptr);
    std::unordered_map<std::uint64_t, bool> wanted;
    for (const auto id : gradient_ids_) wanted[id] = true;
    const std::vector<bool> no_grads;
    std::vector<Tensor<T>> inputs_tangents;
    for (std::size_t i = 0; i < trace_.entries.size(); ++i) {
      const auto& entry = trace_.entries[i];
      inputs_tangents.assign(entry.inputs.size(), Tensor<T>{});
      bool any = false;
      for (std::size_t j = 0; j < entry.inputs.size(); ++j) {
        const auto found = tangents.find(entry.inputs[j].id());
        if (found != tangents.end()) {
          inputs_tangents[j] = found->second;
          any = true;
        }
      }
      if (any) {
        auto t = entry.jvp(OpContext<T>{entry.inputs, entry.output, no_grads}, inputs_tangents);
        detail::check_tangent_shape(entry.name, t, entry.output);
        tangents[entry.output.id()] = std::move(t);
      }
      for (const auto& x : entry.inputs) {
        const auto last = last_use_.find(x.id());
        if (last != last_use_.end() && last->second == i && !wanted.count(x.id()))
          tangents.erase(x.id());
      }
    }
  }

  Trace<T> trace_;
  Tensor<T> value_;
  Vector gradient_;
  std::vector<std::uint64_t> parameter_ids_, gradient_ids_;
  std::vector<Shape> shapes_;
  std::unordered_map<std::uint64_t, std::size_t> last_use_;
};

// The Hessian of f at params as an operator: value(), gradient(), apply(v), apply_many(vs).
template <class F, class T>
LinearizedHessian<T> hessian_at(F&& f, const std::vector<Tensor<T>>& params) {
  return LinearizedHessian<T>(std::forward<F>(f), params);
}

}  // namespace soda
