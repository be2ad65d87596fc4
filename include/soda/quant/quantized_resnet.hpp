// The fake-quantized CIFAR ResNet of quantization-aware training (HAWQ-V3, Yao et al. 2021): a
// trained ResNetCifar with BatchNorm folded into its convolutions, per-layer bit widths, and the
// exact rounding points of the integer-only network (QuantizedResNetPlan), in autodiff.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "soda/autodiff/grad_mode.hpp"
#include "soda/models/resnet_cifar.hpp"
#include "soda/quant/fake_quantized_layers.hpp"

namespace soda::quant {

struct LayerBits {
  int weight_bits = 8;      // 2, 4 or 8
  int activation_bits = 8;  // 4 or 8: the bits of the tensor the layer reads
  bool operator==(const LayerBits&) const = default;
};

// Bit widths by layer, named by module path ("conv1", "layer2.0.downsample.0", "fc"); a layer
// not named takes the default.
class BitConfiguration {
 public:
  explicit BitConfiguration(LayerBits default_bits = {}) : default_(default_bits) {
    check("default", default_bits);
  }
  static BitConfiguration uniform(int weight_bits, int activation_bits) {
    return BitConfiguration(LayerBits{weight_bits, activation_bits});
  }

  BitConfiguration& set(const std::string& layer, LayerBits bits) {
    check(layer, bits);
    layers_[layer] = bits;
    return *this;
  }
  LayerBits of(const std::string& layer) const {
    const auto found = layers_.find(layer);
    return found == layers_.end() ? default_ : found->second;
  }
  const std::map<std::string, LayerBits>& layers() const { return layers_; }
  LayerBits default_bits() const { return default_; }

 private:
  static void check(const std::string& layer, LayerBits bits) {
    check_weight_bits("BitConfiguration (" + layer + ")", bits.weight_bits);
    check_activation_bits("BitConfiguration (" + layer + ")", bits.activation_bits);
  }

  LayerBits default_;
  std::map<std::string, LayerBits> layers_;
};

namespace detail {

// The child `name` of `parent` as an M, null when absent; a child of another type is an error.
template <class M, class T>
std::shared_ptr<M> child_as(const nn::Module<T>& parent, const std::string& name) {
  for (const auto& [child_name, child] : parent.children()) {
    if (child_name != name) continue;
    auto typed = std::dynamic_pointer_cast<M>(child);
    if (!typed) {
      throw ValueError("QuantizedResNet: " + parent.type_name() + "'s child '" + name + "' is a " +
                       child->type_name() + ", not the expected layer");
    }
    return typed;
  }
  return nullptr;
}

template <class M, class T>
std::shared_ptr<M> required_child(const nn::Module<T>& parent, const std::string& name) {
  auto child = child_as<M>(parent, name);
  if (!child) throw ValueError("QuantizedResNet: " + parent.type_name() + " has no '" + name + "'");
  return child;
}

// conv followed by `batch_norm` (eval mode) as one convolution with bias; without BatchNorm
// (the no-BN variant) the convolution itself, with a zero bias when it has none.
template <class T>
FoldedConv2d<T> fold_or_copy(const nn::Conv2d<T>& conv,
                             const std::shared_ptr<nn::BatchNorm2d<T>>& batch_norm) {
  if (batch_norm) return fold_batch_norm(conv, *batch_norm);
  return {copy_values(conv.weight()),
          conv.bias().defined() ? copy_values(conv.bias()) : soda::zeros<T>({conv.out_channels()}),
          conv.stride(), conv.padding()};
}

}  // namespace detail

// A BasicBlock at the integer network's rounding points: t = Q_inner(conv1(h)) with ReLU,
// a = conv2(t); out = clamp(round(a / S_out) + round(s / S_out), 0, hi)·S_out with s = h or the
// downsample's output on its own signed grid.
template <class T = float>
class QuantizedBasicBlock : public nn::Module<T> {
 public:
  QuantizedBasicBlock(const nn::BasicBlock<T>& block, bool residual, const std::string& name,
                      const BitConfiguration& bits)
      : residual_(residual),
        inner_(name + ".conv1 output", bits.of(name + ".conv2").activation_bits, true),
        shortcut_(name + ".downsample output", 8, false),
        output_(name + " output", 8, true) {
    const auto conv1 = detail::required_child<nn::Conv2d<T>>(block, "conv1");
    const auto conv2 = detail::required_child<nn::Conv2d<T>>(block, "conv2");
    conv1_ = this->register_module(
        "conv1",
        std::make_shared<FakeQuantizedConv2d<T>>(
            detail::fold_or_copy(*conv1, detail::child_as<nn::BatchNorm2d<T>>(block, "bn1")),
            bits.of(name + ".conv1").weight_bits));
    conv2_ = this->register_module(
        "conv2",
        std::make_shared<FakeQuantizedConv2d<T>>(
            detail::fold_or_copy(*conv2, detail::child_as<nn::BatchNorm2d<T>>(block, "bn2")),
            bits.of(name + ".conv2").weight_bits));
    if (const auto downsample = detail::child_as<nn::Sequential<T>>(block, "downsample")) {
      const auto conv = detail::required_child<nn::Conv2d<T>>(*downsample, "0");
      auto holder = this->register_module("downsample", std::make_shared<nn::Sequential<T>>());
      downsample_ = std::make_shared<FakeQuantizedConv2d<T>>(
          detail::fold_or_copy(*conv, detail::child_as<nn::BatchNorm2d<T>>(*downsample, "1")),
          bits.of(name + ".downsample.0").weight_bits);
      holder->push_back(downsample_);
    }
  }

  Tensor<T> forward(const Tensor<T>& h) override {
    const Tensor<T> t = inner_(conv1_->forward(h));
    const Tensor<T> a = conv2_->forward(t);
    if (!residual_) return output_(a);
    const Tensor<T> s = downsample_ ? shortcut_(downsample_->forward(h)) : h;
    if (output_.calibrating()) return output_(add(a, s));
    return output_(add(output_.round_onto_grid(a), output_.round_onto_grid(s)));
  }

  std::string type_name() const override { return "QuantizedBasicBlock"; }

  // The block output's bits (and the shortcut's, which is added at the output's scale).
  void set_output_bits(int bits) {
    output_.set_bits(bits);
    shortcut_.set_bits(bits);
  }
  // The block's quantization points (the shortcut's only where a downsample produces it).
  std::vector<ActivationQuantizer<T>*> quantizers() {
    if (downsample_) return {&inner_, &shortcut_, &output_};
    return {&inner_, &output_};
  }

  // Points the layers at their input grids once every scale is calibrated (nullopt: float).
  void set_input_scales(std::optional<float> block_input) {
    const bool on = block_input.has_value();
    conv1_->set_input_scale(block_input);
    conv2_->set_input_scale(on ? std::optional<float>(inner_.grid().scale) : std::nullopt);
    if (downsample_) downsample_->set_input_scale(block_input);
  }

  QuantizedBlockPlan plan(const std::string& name, const ActivationGrid& input) const {
    QuantizedBlockPlan out;
    out.residual = residual_;
    out.conv1 = conv1_->plan(name + ".conv1");
    out.conv1.input = input;
    out.conv1.output = inner_.grid();
    out.conv2 = conv2_->plan(name + ".conv2");
    out.conv2.input = inner_.grid();
    out.conv2.output = output_.grid();
    if (downsample_) {
      out.downsample = downsample_->plan(name + ".downsample.0");
      out.downsample->input = input;
      out.downsample->output = shortcut_.grid();
    }
    return out;
  }

  bool has_downsample() const { return downsample_ != nullptr; }
  const ActivationGrid& output_grid() const { return output_.grid(); }

 private:
  bool residual_;
  std::shared_ptr<FakeQuantizedConv2d<T>> conv1_, conv2_, downsample_;
  ActivationQuantizer<T> inner_, shortcut_, output_;
};

// The whole network: image → Q_image (signed, symmetric) → stem (ReLU) → blocks → mean pooling
// onto its own grid → classifier → logits on a signed 8-bit grid. Parameter names follow the
// float model's (conv1.weight, layer2.0.downsample.0.weight, fc.bias), BatchNorm folded in.
template <class T = float>
class QuantizedResNet : public nn::Module<T> {
 public:
  QuantizedResNet(const models::ResNetCifar<T>& model, const BitConfiguration& bits)
      : depth_(model.options().depth),
        in_channels_(model.options().in_channels),
        image_("image", bits.of("conv1").activation_bits, false, true),
        stem_output_("conv1 output", 8, true),
        pooled_("pooled", bits.of("fc").activation_bits, true),
        logits_("logits", 8, false),
        bits_(bits) {
    const auto conv1 = detail::required_child<nn::Conv2d<T>>(model, "conv1");
    stem_ = this->register_module(
        "conv1",
        std::make_shared<FakeQuantizedConv2d<T>>(
            detail::fold_or_copy(*conv1, detail::child_as<nn::BatchNorm2d<T>>(model, "bn1")),
            bits.of("conv1").weight_bits));
    layer_names_.push_back("conv1");
    for (int stage = 1; stage <= 3; ++stage) {
      const std::string stage_name = "layer" + std::to_string(stage);
      const auto float_stage = detail::required_child<nn::Sequential<T>>(model, stage_name);
      auto quantized_stage =
          this->register_module(stage_name, std::make_shared<nn::Sequential<T>>());
      for (std::int64_t b = 0; b < float_stage->size(); ++b) {
        const std::string name = stage_name + "." + std::to_string(b);
        const auto block =
            detail::required_child<nn::BasicBlock<T>>(*float_stage, std::to_string(b));
        blocks_.push_back(
            std::make_shared<QuantizedBasicBlock<T>>(*block, model.options().residual, name, bits));
        quantized_stage->push_back(blocks_.back());
        block_names_.push_back(name);
        layer_names_.push_back(name + ".conv1");
        layer_names_.push_back(name + ".conv2");
        if (blocks_.back()->has_downsample()) layer_names_.push_back(name + ".downsample.0");
      }
    }
    const auto fc = detail::required_child<nn::Linear<T>>(model, "fc");
    fc_ = this->register_module("fc", std::make_shared<FakeQuantizedLinear<T>>(
                                          fc->weight(), fc->bias(), bits.of("fc").weight_bits));
    layer_names_.push_back("fc");
    check_configuration(bits);
    assign_tensor_bits(bits);
  }

  // x [N, C, H, W] (normalized images) -> logits [N, classes] on the logits grid.
  Tensor<T> forward(const Tensor<T>& x) override {
    if (x.ndim() != 4 || x.shape()[1] != in_channels_) {
      throw ShapeError(type_name() + ": input of shape " + to_string(x.shape()) + " is not [N, " +
                       std::to_string(in_channels_) + ", H, W]");
    }
    Tensor<T> h = stem_output_(stem_->forward(image_(x)));
    for (const auto& block : blocks_) h = block->forward(h);
    return logits_(fc_->forward(pooled_(mean(h, {2, 3}))));
  }

  std::string type_name() const override { return "QuantizedResNet-" + std::to_string(depth_); }

  // Sets every activation scale from the float network's values on `image_batches` (weights and
  // activations unquantized while observing, as PyTorch's observers do).
  void calibrate(const std::vector<Tensor<T>>& image_batches,
                 const CalibrationOptions& options = {}) {
    if (image_batches.empty())
      throw ValueError(type_name() + ": calibrate() needs at least one batch");
    const auto points = quantizers();
    for (auto* point : points) point->start_calibration(options);
    set_input_scales(false);
    {
      NoGradGuard no_grad;
      for (const auto& batch : image_batches) forward(batch);
    }
    for (auto* point : points) point->finish_calibration();
    set_input_scales(true);
  }

  bool calibrated() const { return logits_.calibrated(); }

  // The snapshot the integer network compiles from (and a model file stores).
  QuantizedResNetPlan plan() const {
    if (!calibrated()) throw ValueError(type_name() + ": plan() needs a calibrated model");
    QuantizedResNetPlan out;
    out.in_channels = in_channels_;
    out.num_classes = fc_->weight().shape()[0];
    out.image = image_.grid();
    out.stem = stem_->plan("conv1");
    out.stem.input = image_.grid();
    out.stem.output = stem_output_.grid();
    ActivationGrid input = stem_output_.grid();
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      out.blocks.push_back(blocks_[b]->plan(block_names_[b], input));
      input = blocks_[b]->output_grid();
    }
    out.pooled = pooled_.grid();
    out.fc = fc_->plan("fc");
    out.fc.input = pooled_.grid();
    out.fc.output = logits_.grid();
    out.calibration_method = image_.method();
    return out;
  }

  // The quantizable layers in execution order, by module path.
  const std::vector<std::string>& layer_names() const { return layer_names_; }
  const BitConfiguration& bits() const { return bits_; }

 private:
  std::vector<ActivationQuantizer<T>*> quantizers() {
    std::vector<ActivationQuantizer<T>*> out{&image_, &stem_output_, &pooled_, &logits_};
    for (const auto& block : blocks_) {
      for (auto* point : block->quantizers()) out.push_back(point);
    }
    return out;
  }

  void set_input_scales(bool quantized) {
    const auto scale = [&](const ActivationQuantizer<T>& point) {
      return quantized ? std::optional<float>(point.grid().scale) : std::nullopt;
    };
    stem_->set_input_scale(scale(image_));
    std::optional<float> input = scale(stem_output_);
    for (const auto& block : blocks_) {
      block->set_input_scales(input);
      input = quantized ? std::optional<float>(block->output_grid().scale) : std::nullopt;
    }
    fc_->set_input_scale(scale(pooled_));
  }

  void check_configuration(const BitConfiguration& bits) const {
    for (const auto& [name, layer_bits] : bits.layers()) {
      if (std::find(layer_names_.begin(), layer_names_.end(), name) != layer_names_.end()) continue;
      std::string known;
      for (const auto& layer : layer_names_) known += (known.empty() ? "" : ", ") + layer;
      throw ValueError(type_name() + ": the bit configuration names '" + name +
                       "', which is not a quantizable layer (" + known + ")");
    }
  }

  // A tensor read by several layers (a block's input: its conv1 and downsample) takes the larger
  // of their activation bits; a block's output (and its shortcut) those of the next reader.
  void assign_tensor_bits(const BitConfiguration& bits) {
    const auto reader_bits = [&](std::size_t b) {
      const std::string& name = block_names_[b];
      int reader = bits.of(name + ".conv1").activation_bits;
      if (blocks_[b]->has_downsample()) {
        reader = std::max(reader, bits.of(name + ".downsample.0").activation_bits);
      }
      return reader;
    };
    stem_output_.set_bits(blocks_.empty() ? bits.of("fc").activation_bits : reader_bits(0));
    for (std::size_t b = 0; b < blocks_.size(); ++b) {
      blocks_[b]->set_output_bits(b + 1 < blocks_.size() ? reader_bits(b + 1)
                                                         : bits.of("fc").activation_bits);
    }
  }

  std::int64_t depth_, in_channels_;
  std::shared_ptr<FakeQuantizedConv2d<T>> stem_;
  std::vector<std::shared_ptr<QuantizedBasicBlock<T>>> blocks_;
  std::shared_ptr<FakeQuantizedLinear<T>> fc_;
  ActivationQuantizer<T> image_, stem_output_, pooled_, logits_;
  std::vector<std::string> layer_names_, block_names_;
  BitConfiguration bits_;
};

}  // namespace soda::quant
