// TrainingSnapshot: a copy of a model's state (parameters and buffers) and of its optimizer's, put
// back when a step must leave no trace (a skipped non-finite step) or a resume fails midway.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "soda/core/convert.hpp"
#include "soda/core/error.hpp"
#include "soda/nn/module.hpp"
#include "soda/optim/optimizer.hpp"

namespace soda::train {

template <class T>
class TrainingSnapshot {
 public:
  TrainingSnapshot(const nn::Module<T>& model, const optim::Optimizer<T>& optimizer)
      : model_values_(copies_of(model)),
        optimizer_tensors_(optimizer.state_dict()),
        optimizer_metadata_(optimizer.state_metadata()) {}

  // Writes the copies back in place, so handles held elsewhere (the optimizer's, closures')
  // stay valid. The optimizer goes first: it checks its state and changes nothing on an error.
  void restore(nn::Module<T>& model, optim::Optimizer<T>& optimizer) const {
    optimizer.load_state_dict(optimizer_tensors_, optimizer_metadata_);
    const auto state = model.state_dict();
    if (state.size() != model_values_.size()) {
      throw ValueError("TrainingSnapshot: the model has " + std::to_string(state.size()) +
                       " tensors, the snapshot " + std::to_string(model_values_.size()) +
                       "; restore into the model it was taken of");
    }
    for (std::size_t i = 0; i < state.size(); ++i) {
      const auto& saved = model_values_[i];
      std::copy_n(saved.data(), saved.numel(), state[i].second.raw_data());
    }
  }

 private:
  static std::vector<Tensor<T>> copies_of(const nn::Module<T>& model) {
    std::vector<Tensor<T>> values;
    for (const auto& [name, tensor] : model.state_dict()) {
      // restore() writes through raw_data(), which addresses a contiguous tensor's elements only.
      if (!tensor.is_contiguous()) {
        throw ValueError("TrainingSnapshot: the model's tensor '" + name +
                         "' is a strided view (internal)");
      }
      values.push_back(tensor.template to<T>());  // a contiguous copy
    }
    return values;
  }

  std::vector<Tensor<T>> model_values_;
  nn::NamedTensors<T> optimizer_tensors_;
  std::map<std::string, std::string> optimizer_metadata_;
};

}  // namespace soda::train
