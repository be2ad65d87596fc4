// HessianOperator: H·v of a model's loss with respect to all its parameters or a chosen block,
// over one batch or summed over many (PyHessian's full-dataset mode), built on hessian_at.
// Like hessian_at, it shares storage with the model's parameters and buffers: after training
// further (or a train-mode pass that moves BatchNorm statistics), build a new one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "soda/autodiff/hessian_at.hpp"
#include "soda/data/data_loader.hpp"
#include "soda/hessian/parameter_vector.hpp"
#include "soda/nn/loss.hpp"
#include "soda/nn/mode_guard.hpp"
#include "soda/nn/module.hpp"

namespace soda::hessian {

// A batch as the Hessian sees it: inputs in the model's type and integer class labels.
template <class T>
struct LabeledBatch {
  Tensor<T> inputs;
  Tensor<std::int64_t> labels;
};

// The first max_batches batches of the loader's epoch 0 (all of them when max_batches < 0),
// converted to T. The operator keeps them, so every H·v sees the same samples: use a loader
// without shuffling or augmentation for a reproducible full-dataset Hessian.
template <class T>
std::vector<LabeledBatch<T>> collect_batches(DataLoader& loader, std::int64_t max_batches = -1) {
  loader.start_epoch(0);
  std::vector<LabeledBatch<T>> out;
  while (max_batches < 0 || static_cast<std::int64_t>(out.size()) < max_batches) {
    auto batch = loader.next();
    if (!batch) break;
    if constexpr (std::is_same_v<T, float>) {
      out.push_back({batch->images, batch->labels});
    } else {
      out.push_back({batch->images.template to<T>(), batch->labels});
    }
  }
  return out;
}

struct HessianOperatorOptions {
  // Parameter names (as named_parameters() gives them) the Hessian is taken with respect to;
  // empty = every parameter. The other parameters stay fixed.
  std::vector<std::string> parameters;
  // The model in train mode (BatchNorm on batch statistics) instead of eval mode (running
  // statistics, the default, as PyHessian). Train mode switches every module, Dropout included:
  // a model with Dropout gives a different random Hessian per linearization, so keep such a
  // model in eval mode. Running statistics are left as they were either way.
  bool train_mode = false;
  // Linearizations kept between products; a batch beyond the budget is linearized again on
  // every product (one primal forward and backward extra per batch and product).
  std::size_t memory_budget_bytes = std::size_t{2} << 30;
};

// The loss of a batch from the model's output: the batch mean (the operator weights batches by
// their size to get the mean over all samples); cross-entropy by default.
template <class T>
using BatchLoss = std::function<Tensor<T>(const Tensor<T>& output, const Tensor<std::int64_t>&)>;

template <class T>
class HessianOperator {
 public:
  using Scalar = T;

  // The loss is the mean over all samples: Σ_b (n_b / N)·loss_b, so H·v sums the batches'
  // products weighted by their sizes. Linearizes every batch once, keeping what the budget
  // allows; loss() and gradient() are available at once.
  HessianOperator(std::shared_ptr<nn::Module<T>> model, std::vector<LabeledBatch<T>> batches,
                  HessianOperatorOptions options = {}, BatchLoss<T> loss = default_loss())
      : model_(std::move(model)),
        batches_(std::move(batches)),
        options_(std::move(options)),
        loss_(std::move(loss)) {
    if (!model_) throw ValueError("HessianOperator: no model given");
    if (batches_.empty()) throw ValueError("HessianOperator: no batches given (an empty loader?)");
    select_parameters();
    for (const auto& b : batches_) {
      if (b.inputs.ndim() == 0 || b.labels.ndim() != 1 || b.labels.size(0) != b.inputs.size(0)) {
        throw ShapeError("HessianOperator: a batch has inputs " + to_string(b.inputs.shape()) +
                         " and labels " + to_string(b.labels.shape()) +
                         "; expected one label per input row");
      }
      samples_ += b.labels.size(0);
    }
    linearize_all();
  }

  static BatchLoss<T> default_loss() {
    return [](const Tensor<T>& output, const Tensor<std::int64_t>& labels) {
      return nn::cross_entropy(output, labels);
    };
  }

  const std::vector<Shape>& shapes() const { return shapes_; }
  const std::vector<std::string>& parameter_names() const { return names_; }
  const std::vector<Tensor<T>>& parameters() const { return parameters_; }
  const std::vector<LabeledBatch<T>>& batches() const { return batches_; }
  const std::shared_ptr<nn::Module<T>>& model() const { return model_; }
  const HessianOperatorOptions& options() const { return options_; }
  const BatchLoss<T>& loss_function() const { return loss_; }
  std::int64_t samples() const { return samples_; }
  std::int64_t parameter_count() const { return total_size(shapes_); }

  // The mean loss and its gradient at the point of linearization.
  double loss() const { return loss_value_; }
  const ParameterVector<T>& gradient() const { return gradient_; }

  // H·v products given so far (a product over all batches counts once) and the batches whose
  // linearization is kept.
  std::int64_t products() const { return products_; }
  std::size_t kept_batches() const { return kept_bytes_.size(); }
  std::size_t kept_bytes() const {
    std::size_t total = 0;
    for (const auto bytes : kept_bytes_) total += bytes;
    return total;
  }

  ParameterVector<T> apply(const ParameterVector<T>& v) const { return apply_many({v}).front(); }

  // H·v for each v, one replay per batch carrying all k vectors.
  std::vector<ParameterVector<T>> apply_many(const std::vector<ParameterVector<T>>& vs) const {
    if (vs.empty()) return {};
    for (const auto& v : vs) {
      if (shapes_of(v) != shapes_) {
        throw ShapeError("HessianOperator::apply: a vector of " + std::to_string(v.size()) +
                         " tensors does not match the " + std::to_string(shapes_.size()) +
                         " parameters' shapes (parameter_names() lists them)");
      }
    }
    std::vector<ParameterVector<T>> sum;
    for (std::size_t b = 0; b < batches_.size(); ++b) {
      const double weight = static_cast<double>(batches_[b].labels.size(0)) / samples_;
      auto part = b < kept_.size() ? kept_[b]->apply_many(vs) : linearize(b).apply_many(vs);
      if (sum.empty()) {
        sum = std::move(part);
        if (weight != 1) {  // one batch: the product as it is
          for (auto& hv : sum) scale(hv, weight);
        }
      } else {
        for (std::size_t j = 0; j < vs.size(); ++j) add_scaled(sum[j], weight, part[j]);
      }
    }
    products_ += static_cast<std::int64_t>(vs.size());
    return sum;
  }

 private:
  void select_parameters() {
    const auto all = model_->named_parameters();
    if (options_.parameters.empty()) {
      for (const auto& [name, p] : all) add_parameter(name, p);
      return;
    }
    for (const auto& wanted : options_.parameters) {
      bool found = false;
      for (const auto& [name, p] : all) {
        if (name == wanted) {
          add_parameter(name, p);
          found = true;
        }
      }
      if (!found) {
        std::string known;
        for (const auto& [name, p] : all) known += (known.empty() ? "" : ", ") + name;
        throw ValueError("HessianOperator: the model has no parameter named '" + wanted +
                         "'; its parameters are: " + known);
      }
    }
  }

  void add_parameter(const std::string& name, const Tensor<T>& p) {
    for (const auto& n : names_) {
      if (n == name) throw ValueError("HessianOperator: parameter '" + name + "' named twice");
    }
    names_.push_back(name);
    parameters_.push_back(p);
    shapes_.push_back(p.shape());
  }

  LinearizedHessian<T> linearize(std::size_t b) const {
    const nn::ModeGuard<T> mode(*model_, options_.train_mode);
    const auto& batch = batches_[b];
    return hessian_at([&] { return loss_((*model_)(batch.inputs), batch.labels); }, parameters_);
  }

  void linearize_all() {
    std::size_t used = 0;
    bool keeping = true;
    for (std::size_t b = 0; b < batches_.size(); ++b) {
      auto h = std::make_unique<LinearizedHessian<T>>(linearize(b));
      const double weight = static_cast<double>(batches_[b].labels.size(0)) / samples_;
      loss_value_ += weight * static_cast<double>(h->value().item());
      if (gradient_.empty()) {
        gradient_ = clone(h->gradient());
        scale(gradient_, weight);
      } else {
        add_scaled(gradient_, weight, h->gradient());
      }
      // Keep a prefix of the batches: later products then replay those and relinearize the rest.
      const auto bytes = h->memory_bytes();
      keeping = keeping && used + bytes <= options_.memory_budget_bytes;
      if (keeping) {
        used += bytes;
        kept_bytes_.push_back(bytes);
        kept_.push_back(std::move(h));
      }
    }
  }

  std::shared_ptr<nn::Module<T>> model_;
  std::vector<LabeledBatch<T>> batches_;
  HessianOperatorOptions options_;
  BatchLoss<T> loss_;
  std::vector<std::string> names_;
  std::vector<Tensor<T>> parameters_;
  std::vector<Shape> shapes_;
  std::int64_t samples_ = 0;
  double loss_value_ = 0;
  ParameterVector<T> gradient_;
  std::vector<std::unique_ptr<LinearizedHessian<T>>> kept_;
  std::vector<std::size_t> kept_bytes_;
  mutable std::int64_t products_ = 0;
};

// The same Hessian restricted to a block of its parameters: H_BB·v_B, with v_B padded by zeros
// to a full vector and the block of the product read back. Shares the full operator's
// linearizations, so many blocks cost no primal pass (block methods batch through apply_many).
template <class Op>
class BlockOperator {
 public:
  using Scalar = typename Op::Scalar;

  // Holds `full` by reference: it must outlive the block (a temporary is refused).
  BlockOperator(const Op& full, std::vector<std::size_t> indices)
      : full_(&full), indices_(std::move(indices)) {
    if (indices_.empty()) throw ValueError("BlockOperator: an empty block");
    for (std::size_t j = 0; j < indices_.size(); ++j) {
      const auto i = indices_[j];
      if (i >= full.shapes().size()) {
        throw ValueError("BlockOperator: parameter index " + std::to_string(i) + " but the " +
                         "operator has " + std::to_string(full.shapes().size()) + " parameters");
      }
      for (std::size_t earlier = 0; earlier < j; ++earlier) {
        if (indices_[earlier] == i) {
          throw ValueError("BlockOperator: parameter index " + std::to_string(i) +
                           " appears twice in the block");
        }
      }
      shapes_.push_back(full.shapes()[i]);
    }
  }
  BlockOperator(const Op&& full, std::vector<std::size_t> indices) = delete;

  const std::vector<Shape>& shapes() const { return shapes_; }
  const std::vector<std::size_t>& indices() const { return indices_; }

  ParameterVector<Scalar> pad(const ParameterVector<Scalar>& v_block) const {
    if (shapes_of(v_block) != shapes_) {
      throw ShapeError("BlockOperator: a vector of " + std::to_string(v_block.size()) +
                       " tensors does not match the block's " + std::to_string(shapes_.size()) +
                       " parameter shapes");
    }
    auto full = zeros_like<Scalar>(full_->shapes());
    for (std::size_t j = 0; j < indices_.size(); ++j) full[indices_[j]] = v_block[j];
    return full;
  }
  ParameterVector<Scalar> restrict(const ParameterVector<Scalar>& v_full) const {
    if (shapes_of(v_full) != full_->shapes()) {
      throw ShapeError("BlockOperator: a full vector of " + std::to_string(v_full.size()) +
                       " tensors does not match the operator's " +
                       std::to_string(full_->shapes().size()) + " parameter shapes");
    }
    ParameterVector<Scalar> out;
    for (const auto i : indices_) out.push_back(v_full[i]);
    return out;
  }

  ParameterVector<Scalar> apply(const ParameterVector<Scalar>& v) const {
    return apply_many({v}).front();
  }
  std::vector<ParameterVector<Scalar>> apply_many(
      const std::vector<ParameterVector<Scalar>>& vs) const {
    std::vector<ParameterVector<Scalar>> padded;
    for (const auto& v : vs) padded.push_back(pad(v));
    std::vector<ParameterVector<Scalar>> out;
    for (const auto& hv : full_->apply_many(padded)) out.push_back(restrict(hv));
    return out;
  }

 private:
  const Op* full_;
  std::vector<std::size_t> indices_;
  std::vector<Shape> shapes_;
};

}  // namespace soda::hessian
