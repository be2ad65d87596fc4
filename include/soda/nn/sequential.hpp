// Sequential: a chain of modules applied in order, as torch.nn.Sequential. Children are named
// "0", "1", ... so parameters get PyTorch's state-dict names (0.weight, 2.bias, ...).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "soda/core/error.hpp"
#include "soda/nn/module.hpp"

namespace soda::nn {

template <class T = float>
class Sequential : public Module<T> {
 public:
  using ModulePtr = std::shared_ptr<Module<T>>;

  Sequential() = default;

  // Sequential<float> net{conv, relu, flatten}.
  Sequential(std::initializer_list<ModulePtr> modules) {
    for (const auto& m : modules) push_back(m);
  }

  // std::make_shared<Sequential<float>>(conv, relu, flatten): make_shared cannot forward a braced
  // list, so the modules may also come as separate arguments.
  template <class... Ms>
  requires(sizeof...(Ms) > 0 && (std::is_base_of_v<Module<T>, Ms> &&
                                 ...)) explicit Sequential(std::shared_ptr<Ms>... modules) {
    (push_back(std::move(modules)), ...);
  }

  // Appends a module under the next free index; returns it with its own type for further use.
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module<T>, M>, "Sequential<T> holds Module<T> subclasses");
    if (!module) {
      throw ValueError("Sequential: push_back got a null module at position " +
                       std::to_string(size()));
    }
    return this->register_module(std::to_string(size()), std::move(module));
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    Tensor<T> y = x;
    for (const auto& [name, child] : this->children()) y = child->forward(y);
    return y;
  }

  std::string type_name() const override { return "Sequential"; }

  std::int64_t size() const { return static_cast<std::int64_t>(this->children().size()); }

  // The module at `index`; negative indices count from the end, as in Python.
  const ModulePtr& operator[](std::int64_t index) const {
    const auto n = size();
    if (index < -n || index >= n) {
      throw IndexError("Sequential: index " + std::to_string(index) +
                       " is out of range for a Sequential of " + std::to_string(n) + " modules");
    }
    return this->children()[static_cast<std::size_t>(index < 0 ? index + n : index)].second;
  }
};

}  // namespace soda::nn
