// The tape. Every differentiable op goes through record_op(), which (1) pushes forward-mode
// tangents through the op's JVP rule, (2) appends the op to an active Trace (kept by hessian_at so
// tangents can be replayed later without the primal), and (3) links a Node for reverse mode.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "soda/autodiff/grad_mode.hpp"
#include "soda/core/tensor.hpp"

namespace soda {

// What a rule sees: the op's inputs and output (aliases sharing storage and identity), and for
// reverse rules which inputs need a gradient.
template <class T>
struct OpContext {
  const std::vector<Tensor<T>>& inputs;
  const Tensor<T>& output;
  const std::vector<bool>& needs_grad;
};

// Reverse rule: the gradient of each input from the output's gradient (undefined = none).
// Written with differentiable ops, so tangents riding on its operands give H·v for free.
template <class T>
using VjpRule = std::function<std::vector<Tensor<T>>(const OpContext<T>&, const Tensor<T>&)>;

// Forward rule: the output's tangent [k, out...] from the inputs' tangents [k, in...]
// (undefined = zero; at least one is defined). Sees primal values only.
template <class T>
using JvpRule = std::function<Tensor<T>(const OpContext<T>&, const std::vector<Tensor<T>>&)>;

template <class T>
class Node {
 public:
  const char* name;
  std::vector<Tensor<T>> inputs;  // dual values (with tangents when those were live)
  Tensor<T> output;               // alias of the output: no grad_fn, so no reference cycle
  std::vector<bool> needs_grad;
  VjpRule<T> vjp;
  std::uint64_t sequence;  // creation order, a topological order of the graph

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Frees the chain of nodes only this one keeps alive with a loop: the default recursive release
  // (node -> input -> its node -> ...) overflows the stack on graphs of ~10^6 ops in a row.
  ~Node() {
    std::vector<Tensor<T>> pending = std::move(inputs);
    while (!pending.empty()) {
      const Tensor<T> x = std::move(pending.back());
      pending.pop_back();
      const auto& impl = x.impl();
      if (impl && impl.use_count() == 1 && impl->grad_fn && impl->grad_fn.use_count() == 1) {
        const auto node = std::move(impl->grad_fn);
        for (auto& input : node->inputs) pending.push_back(std::move(input));
        node->inputs.clear();
      }  // x, and its node with no inputs left, die here without recursing
    }
  }
};

// One op as recorded for tangent replay: primal values only.
template <class T>
struct TraceEntry {
  const char* name;
  std::vector<Tensor<T>> inputs;
  Tensor<T> output;
  JvpRule<T> jvp;
};

template <class T>
struct Trace {
  std::vector<TraceEntry<T>> entries;
};

namespace detail {

inline std::uint64_t next_sequence() {
  thread_local std::uint64_t counter = 0;
  return ++counter;
}

template <class T>
Trace<T>*& active_trace() {
  thread_local Trace<T>* trace = nullptr;
  return trace;
}

// Records into `trace` for a scope (nullptr suspends recording).
template <class T>
class TraceScope {
 public:
  explicit TraceScope(Trace<T>* trace) : previous_(active_trace<T>()) { active_trace<T>() = trace; }
  ~TraceScope() { active_trace<T>() = previous_; }
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

 private:
  Trace<T>* previous_;
};

// Same storage, view and identity; no tangent and no tape link: what rules compute with.
template <class T>
Tensor<T> primal_alias(const Tensor<T>& t) {
  auto impl = std::make_shared<TensorImpl<T>>();
  impl->storage = t.impl()->storage;
  impl->offset = t.impl()->offset;
  impl->shape = t.impl()->shape;
  impl->strides = t.impl()->strides;
  impl->id = t.impl()->id;
  return Tensor<T>(std::move(impl));
}

// As primal_alias, but keeping the tangent: what a node saves of its own output.
template <class T>
Tensor<T> dual_alias(const Tensor<T>& t) {
  auto alias = primal_alias(t);
  alias.impl()->tangent = t.impl()->tangent;
  return alias;
}

template <class T>
void check_tangent_shape(const char* op, const Tensor<T>& tangent, const Tensor<T>& out) {
  const Shape& ts = tangent.shape();
  const bool ok = ts.size() == out.shape().size() + 1 &&
                  std::equal(out.shape().begin(), out.shape().end(), ts.begin() + 1);
  if (!ok) {
    throw Error(std::string(op) + ": forward rule returned a tangent of shape " + to_string(ts) +
                " for an output of shape " + to_string(out.shape()) + " (internal error)");
  }
}

}  // namespace detail

// Whether record_op would do anything for an op on `inputs`: a tangent rides on one of them, a
// trace is recording, or the tape is on and one needs a gradient. Ops whose rules need extra
// primal work (max's tie mask) ask first, so inference pays nothing for it.
template <class T>
bool will_record(const std::vector<Tensor<T>>& inputs) {
  if constexpr (!std::is_floating_point_v<T>) {
    return false;
  } else {
    if (detail::active_trace<T>() != nullptr) return true;
    for (const auto& x : inputs) {
      if (x.has_tangent() || (x.requires_grad() && grad_enabled())) return true;
    }
    return false;
  }
}

// Wires `out` (already computed by the op's kernel from `inputs`) into autodiff.
template <class T>
Tensor<T> record_op(const char* name, std::vector<Tensor<T>> inputs, Tensor<T> out, VjpRule<T> vjp,
                    JvpRule<T> jvp) {
  if (!will_record(inputs)) return out;
  if constexpr (std::is_floating_point_v<T>) {
    bool any_tangent = false, any_grad = false;
    for (const auto& x : inputs) {
      any_tangent = any_tangent || x.has_tangent();
      any_grad = any_grad || x.requires_grad();
    }
    Trace<T>* trace = detail::active_trace<T>();
    const bool tape = any_grad && grad_enabled();

    if (any_tangent || trace != nullptr) {
      std::vector<Tensor<T>> primals;
      primals.reserve(inputs.size());
      for (const auto& x : inputs) primals.push_back(detail::primal_alias(x));
      const Tensor<T> out_primal = detail::primal_alias(out);
      if (any_tangent) {
        std::vector<Tensor<T>> tangents;
        tangents.reserve(inputs.size());
        for (const auto& x : inputs) tangents.push_back(x.tangent());
        const std::vector<bool> no_grads;
        Tensor<T> tangent;
        {
          NoGradGuard no_grad;
          detail::TraceScope<T> untraced(nullptr);
          tangent = jvp(OpContext<T>{primals, out_primal, no_grads}, tangents);
        }
        detail::check_tangent_shape(name, tangent, out);
        out.impl()->tangent = tangent.impl();
      }
      if (trace != nullptr) {
        trace->entries.push_back(TraceEntry<T>{name, std::move(primals), out_primal, jvp});
      }
    }
    if (tape) {
      auto node = std::make_shared<Node<T>>();
      node->name = name;
      node->needs_grad.reserve(inputs.size());
      for (const auto& x : inputs) node->needs_grad.push_back(x.requires_grad());
      node->inputs = std::move(inputs);
      node->output = detail::dual_alias(out);
      node->vjp = std::move(vjp);
      node->sequence = detail::next_sequence();
      out.impl()->grad_fn = std::move(node);
      out.impl()->requires_grad = true;
    }
    return out;
  } else {
    return out;
  }
}

}  // namespace soda
