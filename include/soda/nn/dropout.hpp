// Dropout(p, seed): in training mode zeroes each element with probability p and scales the rest
// by 1/(1 − p) (inverted dropout, as torch.nn.Dropout); the identity in evaluation mode.
#pragma once

#include <cstdint>
#include <string>

// Op rules call other ops, so a translation unit needs every op's definition: take them all.
#include "soda/autodiff/autodiff.hpp"
#include "soda/core/factories.hpp"
#include "soda/core/generator.hpp"
#include "soda/nn/module.hpp"

namespace soda::nn {

// The mask comes from the module's own Philox generator, whose counter advances with each draw:
// a run replays exactly from (seed, offset), whatever the thread count. Saving offset() with a
// checkpoint and restoring it with set_offset() resumes the same sequence of masks.
template <class T = float>
class Dropout : public Module<T> {
 public:
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0) : p_(p), generator_(seed) {
    if (!(p >= 0.0 && p <= 1.0)) {
      throw ValueError("Dropout: probability p = " + std::to_string(p) + " must lie in [0, 1]");
    }
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    // p = 0 draws nothing, so adding or removing a zero-rate dropout leaves every other mask as is.
    if (!this->is_training() || p_ == 0.0) return x;
    // The mask is a constant of the tape: gradients and tangents pass through the kept elements
    // scaled, exactly as through any product with a constant.
    return mul(x, draw_mask(x.shape()));
  }

  std::string type_name() const override { return "Dropout"; }

  double p() const { return p_; }

  // The generator state: restoring (seed, offset) replays the masks from that point on.
  std::uint64_t seed() const { return generator_.seed(); }
  std::uint64_t offset() const { return generator_.offset(); }
  void set_offset(std::uint64_t offset) { generator_.set_offset(offset); }
  void set_generator_state(std::uint64_t seed, std::uint64_t offset) {
    generator_ = Generator(seed);
    generator_.set_offset(offset);
  }

 private:
  // 0 where dropped and 1/(1 − p) where kept; p = 1 drops everything (PyTorch's zeros), and the
  // scale is then never used.
  Tensor<T> draw_mask(const Shape& shape) {
    const double keep_scale = p_ < 1.0 ? 1.0 / (1.0 - p_) : 0.0;
    return soda::detail::random_fill<T>(
        shape, generator_, [&](std::uint64_t first, std::uint64_t i) {
          return soda::detail::uniform_at(generator_, first, i) < p_ ? 0.0 : keep_scale;
        });
  }

  double p_;
  Generator generator_;
};

}  // namespace soda::nn
