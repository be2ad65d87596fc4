// The building blocks of quantization-aware training: an activation quantizer that calibrates its
// per-tensor grid, and BN-folded convolution / linear layers whose weights (per output channel)
// and biases (at S_w[n]·S_input, as int32) are fake-quantized on every forward pass.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "soda/autodiff/autodiff.hpp"
#include "soda/nn/module.hpp"
#include "soda/quant/batch_norm_folding.hpp"
#include "soda/quant/calibration.hpp"
#include "soda/quant/fake_quantize.hpp"
#include "soda/quant/quantized_resnet_plan.hpp"

namespace soda::quant {

// How activation ranges are calibrated: the running maximum (percentile 100) or the exact
// nearest-rank percentile of the magnitudes seen, which ignores rare outliers.
struct CalibrationOptions {
  double percentile = 100;
};

namespace detail {

inline constexpr std::int32_t int32_grid_lo = -std::numeric_limits<std::int32_t>::max();
inline constexpr std::int32_t int32_grid_hi = std::numeric_limits<std::int32_t>::max();

// A fresh tensor with x's values (a module's parameters must not alias the float model's).
template <class T>
Tensor<T> copy_values(const Tensor<T>& x) {
  const Tensor<T> in = soda::contiguous(x.detach());
  return Tensor<T>(in.shape(), std::vector<T>(in.data(), in.data() + in.numel()));
}

template <class T>
std::vector<float> float_values(const Tensor<T>& x) {
  const Tensor<T> in = soda::contiguous(x.detach());
  return std::vector<float>(in.data(), in.data() + in.numel());
}

}  // namespace detail

// One per-tensor quantization point of the network. Before calibration it refuses to run; while
// calibrating it records the float values it sees (and applies the ReLU an unsigned grid
// implies); afterwards it fake-quantizes onto its grid.
template <class T = float>
class ActivationQuantizer {
 public:
  // `symmetric`: a signed grid of ±(2^(b−1) − 1), as the spec quantizes float inputs; otherwise
  // a signed grid spans the type's range, as a dyadic requantization clamps.
  ActivationQuantizer(std::string name, int bits, bool is_unsigned, bool symmetric = false)
      : name_(std::move(name)), grid_{1, bits, is_unsigned}, symmetric_(symmetric) {
    check_activation_bits("ActivationQuantizer " + name_, bits);
  }

  void start_calibration(const CalibrationOptions& options) {
    if (options.percentile >= 100) {
      observer_ = RunningMaxObserver(grid_.is_unsigned);
    } else {
      observer_ = PercentileObserver(options.percentile, grid_.is_unsigned);
    }
    calibrated_ = false;
  }

  // Sets the scale from what was observed and drops the observations.
  void finish_calibration() {
    std::visit(
        [&](const auto& observer) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(observer)>, std::monostate>) {
            grid_.scale = observer.scale(grid_.bits);
            method_ = observer.method();
          } else {
            throw ValueError("ActivationQuantizer " + name_ +
                             ": finish_calibration() without "
                             "start_calibration()");
          }
        },
        observer_);
    observer_ = std::monostate{};
    calibrated_ = true;
  }

  // Uses a known grid (a loaded model, or a test) instead of calibrating.
  void set_scale(float scale) {
    detail::check_scale(("ActivationQuantizer " + name_).c_str(), scale);
    grid_.scale = scale;
    observer_ = std::monostate{};
    calibrated_ = true;
  }

  bool calibrating() const { return !std::holds_alternative<std::monostate>(observer_); }
  bool calibrated() const { return calibrated_ && !calibrating(); }

  // Observes x (calibrating) or fake-quantizes it onto the grid, clamped to its range.
  Tensor<T> operator()(const Tensor<T>& x) {
    if (calibrating()) {
      std::visit(
          [&](auto& observer) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(observer)>, std::monostate>) {
              observer.observe(x.detach());
            }
          },
          observer_);
      return grid_.is_unsigned ? relu(x) : x;
    }
    check_calibrated();
    return fake_quantize(x, FakeQuantizer<T>{{static_cast<T>(grid_.scale)}, lo(), grid_.hi()});
  }

  // x rounded onto the grid's step without clamping, as an int32 dyadic requantization does
  // before a residual sum is clamped.
  Tensor<T> round_onto_grid(const Tensor<T>& x) const {
    check_calibrated();
    return fake_quantize(
        x, FakeQuantizer<T>{
               {static_cast<T>(grid_.scale)}, detail::int32_grid_lo, detail::int32_grid_hi});
  }

  const ActivationGrid& grid() const { return grid_; }
  void set_bits(int bits) {
    check_activation_bits("ActivationQuantizer " + name_, bits);
    grid_.bits = bits;
  }
  const std::string& name() const { return name_; }
  // The calibration method's name ("running_max", "percentile_99.99"), empty when set by hand.
  const std::string& method() const { return method_; }

 private:
  std::int32_t lo() const { return symmetric_ && !grid_.is_unsigned ? -grid_.hi() : grid_.lo(); }

  void check_calibrated() const {
    if (!calibrated_) {
      throw ValueError("ActivationQuantizer " + name_ +
                       ": not calibrated; run calibrate() on the quantized model (or set_scale) "
                       "before a quantized forward pass");
    }
  }

  std::string name_;
  ActivationGrid grid_;
  bool symmetric_;
  bool calibrated_ = false;
  std::string method_;
  std::variant<std::monostate, RunningMaxObserver, PercentileObserver> observer_;
};

namespace detail {

// W fake-quantized per output channel, and the bias fake-quantized on the int32 grid of scale
// S_w[n]·S_input (products in float, as quantize_bias computes them).
template <class T>
std::pair<Tensor<T>, Tensor<T>> fake_quantized_parameters(const Tensor<T>& weight,
                                                          const Tensor<T>& bias, int weight_bits,
                                                          float input_scale) {
  const FakeQuantizer<T> weights = weight_fake_quantizer(weight, weight_bits);
  FakeQuantizer<T> biases{{}, int32_grid_lo, int32_grid_hi};
  for (const T s : weights.scales) {
    biases.scales.push_back(static_cast<T>(static_cast<float>(s) * input_scale));
  }
  return {fake_quantize(weight, weights), fake_quantize(bias, biases)};
}

}  // namespace detail

// A BatchNorm-folded convolution with trainable float weight [O, C, kh, kw] and bias [O]. Until
// set_input_scale() it computes in float (calibration); then conv(x, Q(W)) + Q(b), x being the
// input already on its grid. The output is the int32 accumulator's value, not yet requantized.
template <class T = float>
class FakeQuantizedConv2d : public nn::Module<T> {
 public:
  FakeQuantizedConv2d(const FoldedConv2d<T>& folded, int weight_bits)
      : stride_(folded.stride), padding_(folded.padding), weight_bits_(weight_bits) {
    check_weight_bits("FakeQuantizedConv2d", weight_bits);
    weight_ = this->register_parameter("weight", detail::copy_values(folded.weight));
    bias_ = this->register_parameter("bias", detail::copy_values(folded.bias));
    weight_.set_requires_grad(true);
    bias_.set_requires_grad(true);
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    const std::int64_t channels = weight_.shape()[0];
    if (!input_scale_) {
      return add(conv2d(x, weight_, stride_, padding_), reshape(bias_, {channels, 1, 1}));
    }
    const auto [w, b] =
        detail::fake_quantized_parameters(weight_, bias_, weight_bits_, *input_scale_);
    return add(conv2d(x, w, stride_, padding_), reshape(b, {channels, 1, 1}));
  }

  std::string type_name() const override { return "FakeQuantizedConv2d"; }

  void set_input_scale(std::optional<float> scale) { input_scale_ = scale; }
  int weight_bits() const { return weight_bits_; }
  const Tensor<T>& weight() const { return weight_; }
  const Tensor<T>& bias() const { return bias_; }
  Size2d stride() const { return stride_; }
  Size2d padding() const { return padding_; }

  // The plan's description of this layer (the grids are filled in by the network).
  QuantizedLayerPlan plan(std::string name) const {
    const auto& shape = weight_.shape();
    if (stride_.h != stride_.w || padding_.h != padding_.w) {
      throw ValueError("FakeQuantizedConv2d " + name +
                       ": the integer network supports square strides and paddings only");
    }
    QuantizedLayerPlan out;
    out.name = std::move(name);
    out.out_channels = shape[0];
    out.in_channels = shape[1];
    out.kernel_h = shape[2];
    out.kernel_w = shape[3];
    out.stride = stride_.h;
    out.padding = padding_.h;
    out.weight_bits = weight_bits_;
    out.weight = detail::float_values(weight_);
    out.bias = detail::float_values(bias_);
    return out;
  }

 private:
  Tensor<T> weight_, bias_;
  Size2d stride_, padding_;
  int weight_bits_;
  std::optional<float> input_scale_;
};

// The classifier: x [N, in] -> x·Q(W)ᵀ + Q(b), float until set_input_scale().
template <class T = float>
class FakeQuantizedLinear : public nn::Module<T> {
 public:
  FakeQuantizedLinear(const Tensor<T>& weight, const Tensor<T>& bias, int weight_bits)
      : weight_bits_(weight_bits) {
    check_weight_bits("FakeQuantizedLinear", weight_bits);
    weight_ = this->register_parameter("weight", detail::copy_values(weight));
    bias_ = this->register_parameter(
        "bias", bias.defined() ? detail::copy_values(bias) : soda::zeros<T>({weight.shape()[0]}));
    weight_.set_requires_grad(true);
    bias_.set_requires_grad(true);
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    if (!input_scale_) return add(matmul(x, transpose(weight_, 0, 1)), bias_);
    const auto [w, b] =
        detail::fake_quantized_parameters(weight_, bias_, weight_bits_, *input_scale_);
    return add(matmul(x, transpose(w, 0, 1)), b);
  }

  std::string type_name() const override { return "FakeQuantizedLinear"; }

  void set_input_scale(std::optional<float> scale) { input_scale_ = scale; }
  int weight_bits() const { return weight_bits_; }
  const Tensor<T>& weight() const { return weight_; }
  const Tensor<T>& bias() const { return bias_; }

  // A 1×1 convolution over one pixel, as the integer network runs it.
  QuantizedLayerPlan plan(std::string name) const {
    QuantizedLayerPlan out;
    out.name = std::move(name);
    out.out_channels = weight_.shape()[0];
    out.in_channels = weight_.shape()[1];
    out.weight_bits = weight_bits_;
    out.weight = detail::float_values(weight_);
    out.bias = detail::float_values(bias_);
    return out;
  }

 private:
  Tensor<T> weight_, bias_;
  int weight_bits_;
  std::optional<float> input_scale_;
};

}  // namespace soda::quant
