// Reverse mode: walks the tape from a scalar output in reverse creation order, calling each
// node's reverse rule and summing gradients where a value was used more than once. Runs with the
// tape off; tangents riding on saved values flow through the rules, giving H·v alongside ∇f.
#pragma once

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "soda/autodiff/ops/arithmetic.hpp"
#include "soda/autodiff/ops/reduce.hpp"
#include "soda/autodiff/ops/views.hpp"

namespace soda {

namespace detail {

template <class T>
std::vector<Node<T>*> nodes_in_reverse_order(const Tensor<T>& root) {
  std::vector<Node<T>*> order;
  std::unordered_set<Node<T>*> seen;
  std::vector<Node<T>*> stack;
  if (root.impl()->grad_fn) stack.push_back(root.impl()->grad_fn.get());
  while (!stack.empty()) {
    Node<T>* node = stack.back();
    stack.pop_back();
    if (!seen.insert(node).second) continue;
    order.push_back(node);
    for (const auto& input : node->inputs) {
      if (input.impl()->grad_fn) stack.push_back(input.impl()->grad_fn.get());
    }
  }
  std::sort(order.begin(), order.end(),
            [](const Node<T>* a, const Node<T>* b) { return a->sequence > b->sequence; });
  return order;
}

// Gradients of `root` (seeded with `seed`) for every tensor id in `keep`, plus every leaf that
// requires grad when `leaves` is given (id -> leaf tensor).
template <class T>
std::unordered_map<std::uint64_t, Tensor<T>> propagate(
    const Tensor<T>& root, const Tensor<T>& seed, const std::unordered_set<std::uint64_t>& keep,
    std::unordered_map<std::uint64_t, Tensor<T>>* leaves) {
  NoGradGuard no_grad;
  std::unordered_map<std::uint64_t, Tensor<T>> grads;
  grads[root.id()] = seed;
  for (Node<T>* node : nodes_in_reverse_order(root)) {
    const auto found = grads.find(node->output.id());
    if (found == grads.end()) continue;
    const Tensor<T> g = found->second;
    if (!keep.count(node->output.id())) grads.erase(found);
    const auto input_grads =
        node->vjp(OpContext<T>{node->inputs, node->output, node->needs_grad}, g);
    for (std::size_t i = 0; i < node->inputs.size(); ++i) {
      if (!node->needs_grad[i] || i >= input_grads.size() || !input_grads[i].defined()) continue;
      const auto& input = node->inputs[i];
      if (input_grads[i].shape() != input.shape()) {
        throw Error(std::string(node->name) + ": reverse rule gave a gradient of shape " +
                    to_string(input_grads[i].shape()) + " for an input of shape " +
                    to_string(input.shape()) + " (internal error)");
      }
      if (leaves != nullptr && !input.impl()->grad_fn) leaves->emplace(input.id(), input);
      auto [slot, inserted] = grads.try_emplace(input.id(), input_grads[i]);
      if (!inserted) slot->second = add(slot->second, input_grads[i]);
    }
  }
  return grads;
}

template <class T>
void check_scalar_output(const Tensor<T>& value, const char* op) {
  if (value.numel() != 1) {
    throw ValueError(std::string(op) +
                     ": the function must return a scalar (one element), got shape " +
                     to_string(value.shape()));
  }
}

}  // namespace detail

// Gradients of a scalar `root` with respect to `inputs` (as torch.autograd.grad). Inputs the
// root does not depend on get zeros. Each comes back contiguous (a rule may leave a transposed or
// broadcast view, whose data() a caller could not read), still differentiable.
template <class T>
std::vector<Tensor<T>> gradients(const Tensor<T>& root, const std::vector<Tensor<T>>& inputs) {
  detail::check_scalar_output(root, "gradients");
  std::unordered_set<std::uint64_t> keep;
  for (const auto& x : inputs) keep.insert(x.id());
  const auto grads = detail::propagate<T>(root, ones_like(root), keep, nullptr);
  std::vector<Tensor<T>> out;
  out.reserve(inputs.size());
  for (const auto& x : inputs) {
    const auto found = grads.find(x.id());
    out.push_back(found != grads.end() ? contiguous(found->second) : zeros_like(x));
  }
  return out;
}

// Accumulates d root / d leaf into leaf.grad() for every leaf that requires grad (as
// loss.backward() in PyTorch). Gradients are constants: tangents are dropped.
template <class T>
void backward(const Tensor<T>& root) {
  detail::check_scalar_output(root, "backward");
  if (!root.requires_grad()) {
    throw ValueError("backward: the output does not depend on any tensor that requires grad");
  }
  std::unordered_map<std::uint64_t, Tensor<T>> leaves;
  if (!root.impl()->grad_fn) leaves.emplace(root.id(), root);
  const auto grads = detail::propagate<T>(root, ones_like(root), {}, &leaves);
  for (const auto& [id, leaf] : leaves) {
    const auto g = grads.at(id).detach();
    auto& slot = leaf.impl()->grad;
    slot = slot ? detail::map_binary(Tensor<T>(slot), g, detail::fn::Add{}, "backward").impl()
                : detail::copy_contiguous(g).impl();
  }
}

}  // namespace soda
