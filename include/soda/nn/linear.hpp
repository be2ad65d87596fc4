// Linear: y = x·Wᵀ + b over the last axis of x (torch.nn.Linear), W stored [out, in] as PyTorch.
// Default initialisation as PyTorch: W and b ~ U(−1/√in, 1/√in) (kaiming_uniform_ with a = √5).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

// The whole op set: an op's rules may call ops defined in other headers.
#include "soda/autodiff/autodiff.hpp"
#include "soda/core/generator.hpp"
#include "soda/nn/init.hpp"
#include "soda/nn/module.hpp"

namespace soda::nn {

template <class T = float>
class Linear : public Module<T> {
 public:
  // Parameters are drawn from `gen` in PyTorch's order: weight, then bias.
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias, Generator& gen)
      : in_features_(in_features), out_features_(out_features), has_bias_(bias) {
    if (in_features <= 0 || out_features <= 0) {
      throw ValueError(signature() + ": in_features and out_features must be positive");
    }
    weight_ = this->register_parameter("weight", Tensor<T>::empty({out_features, in_features}));
    kaiming_uniform_(weight_, gen, std::sqrt(5.0));
    weight_.set_requires_grad(true);
    if (bias) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
      bias_ = this->register_parameter("bias", Tensor<T>::empty({out_features}));
      uniform_(bias_, gen, -bound, bound);
      bias_.set_requires_grad(true);
    }
  }

  Linear(std::int64_t in_features, std::int64_t out_features, Generator& gen)
      : Linear(in_features, out_features, true, gen) {}

  // x [..., in] -> [..., out]; a 1-D x [in] gives [out], as PyTorch.
  Tensor<T> forward(const Tensor<T>& x) override {
    if (x.ndim() == 0 || x.shape().back() != in_features_) {
      throw ShapeError(signature() + ": input of shape " + to_string(x.shape()) +
                       " does not end in in_features = " + std::to_string(in_features_) +
                       " (weight shape " + to_string(weight_.shape()) + ")");
    }
    // matmul needs rank >= 2; it reads the transposed weight in place, without a copy.
    const Tensor<T> rows = x.ndim() == 1 ? unsqueeze(x, 0) : x;
    Tensor<T> y = matmul(rows, transpose(weight_, 0, 1));
    if (bias_.defined()) y = add(y, bias_);
    return x.ndim() == 1 ? squeeze(y, 0) : y;
  }

  std::string type_name() const override { return "Linear"; }

  // PyTorch's repr, used in error messages.
  std::string signature() const {
    return "Linear(in_features=" + std::to_string(in_features_) +
           ", out_features=" + std::to_string(out_features_) +
           ", bias=" + (has_bias_ ? "true" : "false") + ")";
  }

  const Tensor<T>& weight() const { return weight_; }
  // Undefined when the layer was built without a bias.
  const Tensor<T>& bias() const { return bias_; }
  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }

 private:
  std::int64_t in_features_;
  std::int64_t out_features_;
  bool has_bias_;
  Tensor<T> weight_;
  Tensor<T> bias_;
};

}  // namespace soda::nn
