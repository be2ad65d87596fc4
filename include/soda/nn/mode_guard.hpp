// ModeGuard: a model switched to train or eval mode for a scope (an analysis pass), with its mode
// and, in train mode, its buffers restored afterwards, so the pass leaves no trace in the model.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include "soda/nn/module.hpp"

namespace soda::nn {

// Puts a model in train or eval mode and, in train mode, saves its buffers (the running
// statistics a forward pass updates); both come back when the guard ends, also on an exception.
template <class T>
class ModeGuard {
 public:
  ModeGuard(Module<T>& model, bool train_mode) : model_(model), was_training_(model.is_training()) {
    if (train_mode) {
      for (const auto& [name, b] : model.named_buffers())
        saved_.emplace_back(b, b.template to<T>());
    }
    model.train(train_mode);
  }
  ~ModeGuard() {
    for (auto& [buffer, copy] : saved_) std::copy_n(copy.data(), copy.numel(), buffer.data());
    model_.train(was_training_);
  }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  Module<T>& model_;
  bool was_training_;
  std::vector<std::pair<Tensor<T>, Tensor<T>>> saved_;
};

}  // namespace soda::nn
