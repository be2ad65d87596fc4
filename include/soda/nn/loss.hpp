// Losses as torch.nn.functional, mean reduction: cross_entropy (with label smoothing,
// (1 − ε)·NLL + ε·mean over classes of −log p) and mse_loss; plus count_correct for accuracy.
#pragma once

#include <cstdint>
#include <string>

// Op rules call other ops, so a translation unit needs every op's definition: take them all.
#include "soda/autodiff/autodiff.hpp"
#include "soda/core/convert.hpp"
#include "soda/core/error.hpp"

namespace soda {
namespace detail {

// Checks logits [N, C] against labels [N] in [0, C) and returns the labels as a contiguous
// [N, 1] index, the shape gather takes.
template <class T>
Tensor<std::int64_t> classification_labels(const Tensor<T>& logits,
                                           const Tensor<std::int64_t>& labels, const char* op) {
  if (logits.ndim() != 2) {
    throw ShapeError(std::string(op) + ": logits must have shape [N, C], got " +
                     to_string(logits.shape()));
  }
  if (labels.ndim() != 1) {
    throw ShapeError(std::string(op) +
                     ": labels must have shape [N] (one class index per row), got " +
                     to_string(labels.shape()));
  }
  const auto rows = logits.size(0), classes = logits.size(1);
  if (labels.size(0) != rows) {
    throw ShapeError(std::string(op) + ": logits " + to_string(logits.shape()) + " and labels " +
                     to_string(labels.shape()) + " disagree on the batch size (" +
                     std::to_string(rows) + " != " + std::to_string(labels.size(0)) + ")");
  }
  if (rows == 0) throw ValueError(std::string(op) + ": the batch is empty (logits [0, C])");
  const auto index = labels.template to<std::int64_t>();  // contiguous, whatever labels' strides
  for (std::int64_t i = 0; i < rows; ++i) {
    const auto label = index.data()[i];
    if (label < 0 || label >= classes) {
      throw IndexError(std::string(op) + ": label " + std::to_string(label) + " at position " +
                       std::to_string(i) + " is outside [0, " + std::to_string(classes) +
                       ") for logits " + to_string(logits.shape()));
    }
  }
  return index.view_with({rows, 1}, {1, 1}, 0);
}

}  // namespace detail
}  // namespace soda

namespace soda::nn {

// Mean over the batch of −log softmax(logits)[label], as torch.nn.functional.cross_entropy. With
// label_smoothing ε the target puts 1 − ε on the label and ε spread evenly over all C classes.
// Built from log_softmax and gather, so its gradient and Hessian-vector products are exact.
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Tensor<std::int64_t>& labels,
                        double label_smoothing = 0.0) {
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0)) {
    throw ValueError("cross_entropy: label_smoothing = " + std::to_string(label_smoothing) +
                     " must lie in [0, 1]");
  }
  const auto index = soda::detail::classification_labels(logits, labels, "cross_entropy");
  const auto log_probabilities = log_softmax(logits, 1);
  const auto nll = neg(mean(gather(log_probabilities, 1, index)));
  // ε = 0 adds nothing to the tape, so the plain loss costs no more than NLL.
  if (label_smoothing == 0.0) return nll;
  const auto uniform_target_loss = neg(mean(log_probabilities));  // mean over rows and classes
  return add(mul(nll, Tensor<T>::scalar(static_cast<T>(1.0 - label_smoothing))),
             mul(uniform_target_loss, Tensor<T>::scalar(static_cast<T>(label_smoothing))));
}

// Mean of (prediction − target)² over all elements, as torch.nn.functional.mse_loss. The shapes
// must match exactly: PyTorch would broadcast [N] against [N, 1] into [N, N] with only a warning.
template <class T>
Tensor<T> mse_loss(const Tensor<T>& prediction, const Tensor<T>& target) {
  if (prediction.shape() != target.shape()) {
    throw ShapeError("mse_loss: prediction " + to_string(prediction.shape()) + " and target " +
                     to_string(target.shape()) + " must have the same shape");
  }
  if (prediction.numel() == 0) {
    throw ValueError("mse_loss: prediction of shape " + to_string(prediction.shape()) +
                     " is empty");
  }
  return mean(square(sub(prediction, target)));
}

// How many rows of logits [N, C] have their largest value at the label (the first largest on
// ties, as torch.argmax). Reads values only: no tape, no gradient.
template <class T>
std::int64_t count_correct(const Tensor<T>& logits, const Tensor<std::int64_t>& labels) {
  const auto index = soda::detail::classification_labels(logits, labels, "count_correct");
  const auto values = logits.template to<T>();
  const auto rows = values.size(0), classes = values.size(1);
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < rows; ++i) {
    const T* row = values.data() + i * classes;
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < classes; ++j) {
      if (row[j] > row[best]) best = j;
    }
    if (best == index.data()[i]) ++correct;
  }
  return correct;
}

}  // namespace soda::nn
