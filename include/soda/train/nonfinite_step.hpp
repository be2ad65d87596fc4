// Non-finite training steps: NonFiniteError, which names the epoch and step where training
// stopped, and NonFiniteStepGuard, the check after each optimizer step that stops or skips it.
// A non-finite gradient shows in the parameters after the update (SGD, Adam and AdaHessian all
// carry a NaN or infinite gradient element into its parameter), so the check reads the loss and
// the model's state, and never needs the optimizer's internals.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "soda/core/error.hpp"
#include "soda/nn/module.hpp"
#include "soda/optim/optimizer.hpp"
#include "soda/train/training_snapshot.hpp"

namespace soda::train {

class NonFiniteError : public Error {
 public:
  NonFiniteError(const std::string& message, std::int64_t epoch, std::int64_t step)
      : Error(message), epoch_(epoch), step_(step) {}

  std::int64_t epoch() const { return epoch_; }  // 0-based, as the log counts epochs
  std::int64_t step() const { return step_; }    // the run's steps so far, this one included

 private:
  std::int64_t epoch_, step_;
};

namespace detail {

inline std::string non_finite_text(double value) {
  if (std::isnan(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

// The first element of `tensor` that is NaN or infinite, if any.
template <class T>
std::optional<double> first_non_finite(const Tensor<T>& tensor) {
  const auto values = tensor.is_contiguous() ? tensor : tensor.template to<T>();
  const T* data = values.data();
  for (std::int64_t i = 0; i < values.numel(); ++i) {
    if (!std::isfinite(static_cast<double>(data[i]))) return static_cast<double>(data[i]);
  }
  return std::nullopt;
}

}  // namespace detail

// What is not finite after a step with loss `loss`: empty when all is, else e.g. "the loss is
// nan" or "'fc.weight' holds inf after the update (a non-finite gradient)".
template <class T>
std::string non_finite_after_step(double loss, const nn::Module<T>& model) {
  if (!std::isfinite(loss)) return "the loss is " + detail::non_finite_text(loss);
  for (const auto& [name, tensor] : model.state_dict()) {
    if (const auto bad = detail::first_non_finite(tensor)) {
      return "'" + name + "' holds " + detail::non_finite_text(*bad) +
             " after the update (a non-finite gradient)";
    }
  }
  return "";
}

// Where a step ran, for the error: who trains, the epoch (0-based) of how many (0: not counted),
// the step.
struct StepPlace {
  std::string trainer;
  std::int64_t epoch = 0, epochs = 0, step = 0;
};

// Made before a step, checked after it. Skipping, it keeps a TrainingSnapshot (a copy of the
// model's and optimizer's state: the cost of one more copy of the parameters and the optimizer's
// buffers) and puts it back when the step was not finite; stopping, it only reads the model.
template <class T>
class NonFiniteStepGuard {
 public:
  NonFiniteStepGuard(nn::Module<T>& model, optim::Optimizer<T>& optimizer, bool skip)
      : model_(model), optimizer_(optimizer) {
    if (skip) before_.emplace(model, optimizer);
  }

  // True when the loss and the model after the step are finite. Otherwise, skipping: the model
  // and optimizer are as before the step and the answer is false; stopping: NonFiniteError.
  bool step_kept(double loss, const StepPlace& place) {
    const auto problem = non_finite_after_step(loss, model_);
    if (problem.empty()) return true;
    if (!before_) {
      const auto epochs = place.epochs > 0 ? "/" + std::to_string(place.epochs) : "";
      throw NonFiniteError(place.trainer + ": epoch " + std::to_string(place.epoch + 1) + epochs +
                               ", step " + std::to_string(place.step) + ": " + problem +
                               "; training stopped there, before anything of that step was "
                               "saved. Lower the learning rate, or skip such steps "
                               "(skip_nonfinite_steps; --skip-nonfinite-steps in the examples)",
                           place.epoch, place.step);
    }
    before_->restore(model_, optimizer_);
    return false;
  }

 private:
  nn::Module<T>& model_;
  optim::Optimizer<T>& optimizer_;
  std::optional<TrainingSnapshot<T>> before_;
};

}  // namespace soda::train
