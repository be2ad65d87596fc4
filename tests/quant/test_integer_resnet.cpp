// soda/quant/integer_resnet.hpp: the integer-only network against a scalar oracle written here from
// the spec (direct NCHW convolutions in int64, requantize() from dyadic.hpp), on random ResNet-8
// plans with mixed 8/4/2-bit weights and 8/4-bit activations; and compile()'s checks.
#include <doctest/doctest.h>

#include <soda/quant/dyadic.hpp>
#include <soda/quant/integer_resnet.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "random_plan.hpp"

using namespace soda::quant;
using integer_resnet_test::random_images;
using integer_resnet_test::random_plan;
using integer_resnet_test::RandomPlanOptions;

namespace {

// Codes in NCHW, with how many hit the grid's top (to see that ranges are used, not saturated).
struct IntegerResnetOracleCodes {
  std::vector<std::int64_t> values;
  std::int64_t batch = 0, channels = 0, height = 0, width = 0;
};

struct IntegerResnetOracleStats {
  std::int64_t total = 0, at_top = 0, above_half = 0;
};

// The spec's weight quantizer over [out, in, kh, kw], the bias at S_w·S_in and the factors.
struct IntegerResnetOracleLayer {
  std::vector<std::int64_t> weights;
  std::vector<float> scales;
  std::vector<std::int64_t> bias;
  std::vector<DyadicFactor> factors;
};

double integer_resnet_round(double x) {
  return std::nearbyint(x);
}  // half to even

IntegerResnetOracleLayer integer_resnet_oracle_quantize(const QuantizedLayerPlan& layer) {
  IntegerResnetOracleLayer q;
  const std::int64_t per_channel = layer.in_channels * layer.kernel_h * layer.kernel_w;
  const std::int32_t q_max = (1 << (layer.weight_bits - 1)) - 1;
  for (std::int64_t o = 0; o < layer.out_channels; ++o) {
    float max_abs = 0;
    for (std::int64_t k = 0; k < per_channel; ++k) {
      max_abs = std::max(max_abs, std::abs(layer.weight[o * per_channel + k]));
    }
    const float scale = max_abs > 0 ? max_abs / static_cast<float>(q_max) : 1.0f;
    q.scales.push_back(scale);
    for (std::int64_t k = 0; k < per_channel; ++k) {
      const double v = integer_resnet_round(layer.weight[o * per_channel + k] / scale);
      q.weights.push_back(static_cast<std::int64_t>(std::clamp<double>(v, -q_max, q_max)));
    }
    const float bias_scale = scale * layer.input.scale;
    q.bias.push_back(static_cast<std::int64_t>(integer_resnet_round(layer.bias[o] / bias_scale)));
    q.factors.push_back(
        dyadic_factor(static_cast<double>(scale) * layer.input.scale / layer.output.scale));
  }
  return q;
}

// conv(x) + bias as int32 accumulators (checked to fit), NCHW.
IntegerResnetOracleCodes integer_resnet_oracle_conv(const IntegerResnetOracleCodes& x,
                                                    const QuantizedLayerPlan& layer,
                                                    const IntegerResnetOracleLayer& q) {
  IntegerResnetOracleCodes y{{},
                             x.batch,
                             layer.out_channels,
                             (x.height + 2 * layer.padding - layer.kernel_h) / layer.stride + 1,
                             (x.width + 2 * layer.padding - layer.kernel_w) / layer.stride + 1};
  REQUIRE(x.channels == layer.in_channels);
  for (std::int64_t n = 0; n < y.batch; ++n) {
    for (std::int64_t o = 0; o < y.channels; ++o) {
      for (std::int64_t oy = 0; oy < y.height; ++oy) {
        for (std::int64_t ox = 0; ox < y.width; ++ox) {
          std::int64_t acc = q.bias[o];
          for (std::int64_t c = 0; c < x.channels; ++c) {
            for (std::int64_t i = 0; i < layer.kernel_h; ++i) {
              const std::int64_t iy = oy * layer.stride - layer.padding + i;
              if (iy < 0 || iy >= x.height) continue;
              for (std::int64_t j = 0; j < layer.kernel_w; ++j) {
                const std::int64_t ix = ox * layer.stride - layer.padding + j;
                if (ix < 0 || ix >= x.width) continue;
                acc += x.values[((n * x.channels + c) * x.height + iy) * x.width + ix] *
                       q.weights[((o * x.channels + c) * layer.kernel_h + i) * layer.kernel_w + j];
              }
            }
          }
          REQUIRE(acc >= std::numeric_limits<std::int32_t>::min());
          REQUIRE(acc <= std::numeric_limits<std::int32_t>::max());
          y.values.push_back(acc);
        }
      }
    }
  }
  return y;
}

std::int32_t integer_resnet_oracle_lo(const ActivationGrid& g, bool relu) {
  return relu || g.is_unsigned ? 0 : -(1 << (g.bits - 1));
}
std::int32_t integer_resnet_oracle_hi(const ActivationGrid& g) {
  return g.is_unsigned ? (1 << g.bits) - 1 : (1 << (g.bits - 1)) - 1;
}

void integer_resnet_note(IntegerResnetOracleStats& stats, std::int64_t code,
                         const ActivationGrid& g) {
  const std::int32_t hi = integer_resnet_oracle_hi(g);
  ++stats.total;
  stats.at_top += code == hi;
  stats.above_half += 2 * code > hi;
}

// Each channel's accumulators requantized onto grid (lo = 0 when relu).
IntegerResnetOracleCodes integer_resnet_oracle_requantize(IntegerResnetOracleCodes acc,
                                                          const IntegerResnetOracleLayer& q,
                                                          const ActivationGrid& grid, bool relu,
                                                          IntegerResnetOracleStats& stats) {
  const std::int64_t plane = acc.height * acc.width;
  for (std::size_t i = 0; i < acc.values.size(); ++i) {
    const auto channel =
        static_cast<std::size_t>((static_cast<std::int64_t>(i) / plane) % acc.channels);
    acc.values[i] =
        requantize(static_cast<std::int32_t>(acc.values[i]), q.factors[channel],
                   integer_resnet_oracle_lo(grid, relu), integer_resnet_oracle_hi(grid));
    integer_resnet_note(stats, acc.values[i], grid);
  }
  return acc;
}

// The plan's execution order (quantized_resnet_plan.hpp) step by step: [N, classes] codes.
std::vector<std::int32_t> integer_resnet_oracle(const QuantizedResNetPlan& plan,
                                                const soda::Tensor<float>& images,
                                                IntegerResnetOracleStats& stats) {
  constexpr std::int32_t int32_lo = std::numeric_limits<std::int32_t>::min();
  constexpr std::int32_t int32_hi = std::numeric_limits<std::int32_t>::max();
  IntegerResnetOracleCodes h{
      {}, images.shape()[0], images.shape()[1], images.shape()[2], images.shape()[3]};
  const ActivationGrid& image = plan.image;
  const double image_hi = image.is_unsigned ? (1 << image.bits) - 1 : (1 << (image.bits - 1)) - 1;
  const double image_lo = image.is_unsigned ? 0 : -image_hi;
  for (std::int64_t i = 0; i < images.numel(); ++i) {
    const double q = integer_resnet_round(images.data()[i] / image.scale);
    h.values.push_back(static_cast<std::int64_t>(std::clamp(q, image_lo, image_hi)));
  }
  const auto stem = integer_resnet_oracle_quantize(plan.stem);
  h = integer_resnet_oracle_requantize(integer_resnet_oracle_conv(h, plan.stem, stem), stem,
                                       plan.stem.output, true, stats);
  float h_scale = plan.stem.output.scale;
  for (const auto& block : plan.blocks) {
    const auto q1 = integer_resnet_oracle_quantize(block.conv1);
    const auto q2 = integer_resnet_oracle_quantize(block.conv2);
    const auto t = integer_resnet_oracle_requantize(integer_resnet_oracle_conv(h, block.conv1, q1),
                                                    q1, block.conv1.output, true, stats);
    auto acc = integer_resnet_oracle_conv(t, block.conv2, q2);
    const ActivationGrid& out = block.conv2.output;
    if (!block.residual) {
      h = integer_resnet_oracle_requantize(acc, q2, out, true, stats);
    } else {
      IntegerResnetOracleCodes shortcut = h;
      float shortcut_scale = h_scale;
      if (block.downsample) {
        const auto qd = integer_resnet_oracle_quantize(*block.downsample);
        IntegerResnetOracleStats unused;
        shortcut =
            integer_resnet_oracle_requantize(integer_resnet_oracle_conv(h, *block.downsample, qd),
                                             qd, block.downsample->output, false, unused);
        shortcut_scale = block.downsample->output.scale;
      }
      REQUIRE(shortcut.values.size() == acc.values.size());
      const DyadicFactor shortcut_factor =
          dyadic_factor(static_cast<double>(shortcut_scale) / static_cast<double>(out.scale));
      const std::int64_t plane = acc.height * acc.width;
      for (std::size_t i = 0; i < acc.values.size(); ++i) {
        const auto channel =
            static_cast<std::size_t>((static_cast<std::int64_t>(i) / plane) % acc.channels);
        const std::int64_t sum = std::int64_t{requantize(static_cast<std::int32_t>(acc.values[i]),
                                                         q2.factors[channel], int32_lo, int32_hi)} +
                                 requantize(static_cast<std::int32_t>(shortcut.values[i]),
                                            shortcut_factor, int32_lo, int32_hi);
        acc.values[i] = std::clamp<std::int64_t>(sum, 0, integer_resnet_oracle_hi(out));
        integer_resnet_note(stats, acc.values[i], out);
      }
      h = acc;
    }
    h_scale = out.scale;
  }

  const std::int64_t plane = h.height * h.width;
  const DyadicFactor pool_factor = dyadic_factor(static_cast<double>(h_scale) /
                                                 (static_cast<double>(plane) * plan.pooled.scale));
  IntegerResnetOracleCodes pooled{{}, h.batch, h.channels, 1, 1};
  for (std::int64_t n = 0; n < h.batch; ++n) {
    for (std::int64_t c = 0; c < h.channels; ++c) {
      std::int64_t sum = 0;
      for (std::int64_t p = 0; p < plane; ++p) sum += h.values[(n * h.channels + c) * plane + p];
      pooled.values.push_back(requantize(static_cast<std::int32_t>(sum), pool_factor,
                                         integer_resnet_oracle_lo(plan.pooled, false),
                                         integer_resnet_oracle_hi(plan.pooled)));
    }
  }
  const auto fc = integer_resnet_oracle_quantize(plan.fc);
  IntegerResnetOracleStats unused;
  const auto logits = integer_resnet_oracle_requantize(
      integer_resnet_oracle_conv(pooled, plan.fc, fc), fc, plan.fc.output, false, unused);
  return {logits.values.begin(), logits.values.end()};
}

void integer_resnet_check_against_oracle(const RandomPlanOptions& options, std::int64_t count) {
  const QuantizedResNetPlan plan = random_plan(options);
  const IntegerResNet network = IntegerResNet::compile(plan, options.height, options.width);
  const auto images =
      random_images(count, options.in_channels, options.height, options.width, options.seed + 7);
  IntegerResnetOracleStats stats;
  const std::vector<std::int32_t> expected = integer_resnet_oracle(plan, images, stats);
  const IntegerMatrix codes = network.forward_codes(images);
  REQUIRE(codes.rows == count);
  REQUIRE(codes.cols == options.num_classes);
  CHECK(codes.format == plan.fc.output.format());
  const std::vector<std::int32_t> actual = codes.values();
  std::int64_t mismatches = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) mismatches += actual[i] != expected[i];
  CHECK(mismatches == 0);
  // The grids are used, not saturated: many codes in the upper half, few at the top.
  INFO("codes: " << stats.total << ", at the top " << stats.at_top << ", above half "
                 << stats.above_half);
  CHECK(stats.above_half > stats.total / 200);
  CHECK(stats.at_top < stats.total / 10);
  // The logits spread over more than one value.
  CHECK(std::set<std::int32_t>(actual.begin(), actual.end()).size() > 3);

  const auto logits = network.forward(images);
  const auto classes = network.predict(images);
  for (std::int64_t n = 0; n < count; ++n) {
    std::int64_t best = 0;
    for (std::int64_t k = 0; k < options.num_classes; ++k) {
      const std::int32_t code = expected[n * options.num_classes + k];
      CHECK(logits.at({n, k}) == static_cast<float>(code) * plan.fc.output.scale);
      if (code > expected[n * options.num_classes + best]) best = k;
    }
    CHECK(classes[static_cast<std::size_t>(n)] == best);
  }
}

}  // namespace

TEST_CASE("integer_resnet: ResNet-8 on 3-channel images equals the scalar oracle") {
  RandomPlanOptions options;
  options.seed = 11;
  integer_resnet_check_against_oracle(options, 9);
}

TEST_CASE("integer_resnet: 1-channel 12×10 images, 4-bit image and logits, chunked batches") {
  RandomPlanOptions options;
  options.in_channels = 1;
  options.height = 12;
  options.width = 10;
  options.widths = {6, 10, 14};
  options.weight_bits = {4, 2, 8, 8};
  options.activation_bits = {4, 8, 8};
  options.image_bits = 4;
  options.output_bits = 4;
  options.seed = 23;
  integer_resnet_check_against_oracle(options, IntegerResNet::images_per_chunk + 6);
}

TEST_CASE("integer_resnet: the no-residual variant equals the scalar oracle") {
  RandomPlanOptions options;
  options.residual = false;
  options.height = options.width = 9;
  options.weight_bits = {2, 8, 4};
  options.activation_bits = {8, 4};
  options.seed = 5;
  integer_resnet_check_against_oracle(options, 7);
}

TEST_CASE("integer_resnet: all-8-bit and all-4-bit networks equal the scalar oracle") {
  for (int bits : {8, 4}) {
    RandomPlanOptions options;
    options.weight_bits = {bits};
    options.activation_bits = {bits};
    options.image_bits = bits;
    options.output_bits = bits;
    options.seed = 40 + static_cast<std::uint32_t>(bits);
    integer_resnet_check_against_oracle(options, 5);
  }
}

TEST_CASE("integer_resnet: layers, size and summaries describe the compiled network") {
  RandomPlanOptions options;
  const auto plan = random_plan(options);
  const auto network = IntegerResNet::compile(plan, 16, 16);
  const auto layers = network.layers();
  REQUIRE(layers.size() == 1 + 2 * 3 + 2 + 1);
  CHECK(layers.front().get().name == "conv1");
  CHECK(layers[3].get().name == "layer2.0.conv1");
  CHECK(layers[5].get().name == "layer2.0.downsample");
  CHECK(layers.back().get().name == "fc");
  std::int64_t bits = 0;
  for (const IntegerLayer& layer : layers) {
    bits += layer.out_channels * layer.in_channels * layer.kernel_h * layer.kernel_w *
                layer.weight_bits +
            32 * layer.out_channels;
    CHECK(layer.weights.format ==
          (layer.weight_bits == 8 ? IntegerFormat::int8 : IntegerFormat::int4));
  }
  CHECK(network.size_bits() == bits);
  CHECK(network.image_grid() == plan.image);
  CHECK(network.pooled_grid() == plan.pooled);
  CHECK(network.output_grid() == plan.fc.output);
  CHECK(network.calibration_method() == "running_max");
  const auto json = network.to_json();
  CHECK(json["blocks"][1]["downsample"]["name"] == "layer2.0.downsample");
  CHECK(json["blocks"][0]["downsample"].is_null());
  CHECK(json["pooled_height"] == 4);
  CHECK(json["stem"]["weight_bits"] == plan.stem.weight_bits);
  CHECK(json["size_bits"] == bits);
  const std::string text = network.describe();
  CHECK(text.find("layer3.0.conv2") != std::string::npos);
  CHECK(text.find("pool: 4×4") != std::string::npos);
}

TEST_CASE("integer_resnet: compile names the layer of a bad plan") {
  const auto good = random_plan(RandomPlanOptions{});
  auto plan = good;
  plan.blocks[1].conv2.weight_bits = 3;
  CHECK_THROWS_WITH_AS(IntegerResNet::compile(plan, 16, 16),
                       doctest::Contains("layer 'layer2.0.conv2': weight bits must be 2, 4 or 8"),
                       soda::ValueError);
  plan = good;
  plan.blocks[0].conv1.output.bits = 2;
  CHECK_THROWS_WITH_AS(IntegerResNet::compile(plan, 16, 16),
                       doctest::Contains("layer 'layer1.0.conv1' output: activation bits"),
                       soda::ValueError);
  plan = good;
  plan.blocks[2].conv1.input.scale *= 1.5f;
  CHECK_THROWS_WITH_AS(IntegerResNet::compile(plan, 16, 16),
                       doctest::Contains("layer 'layer3.0.conv1' reads its input on"),
                       soda::ValueError);
  plan = good;
  plan.fc.input = plan.blocks[2].conv2.output;
  CHECK_THROWS_WITH_AS(IntegerResNet::compile(plan, 16, 16),
                       doctest::Contains("but the pooling writes"), soda::ValueError);
  plan = good;
  plan.blocks[1].conv2.weight.pop_back();
  CHECK_THROWS_WITH_AS(IntegerResNet::compile(plan, 16, 16),
                       doctest::Contains("layer 'layer2.0.conv2': 2303 weights do not fill"),
                       soda::ShapeError);
  plan = good;
  plan.blocks[1].downsample.reset();
  CHECK_THROWS_WITH_AS(IntegerResNet::compile(plan, 16, 16),
                       doctest::Contains("a shape change needs a downsample"), soda::ShapeError);
  plan = good;
  plan.num_classes = 7;
  CHECK_THROWS_WITH_AS(IntegerResNet::compile(plan, 16, 16),
                       doctest::Contains("10 outputs for 7 classes"), soda::ShapeError);
  plan = good;
  plan.in_channels = 1;
  CHECK_THROWS_WITH_AS(IntegerResNet::compile(plan, 16, 16),
                       doctest::Contains("layer 'conv1' takes 3 channels but the image gives 1"),
                       soda::ShapeError);
  plan = good;
  plan.blocks[2].conv2.name = "layer1.0.conv1";
  CHECK_THROWS_WITH_AS(IntegerResNet::compile(plan, 16, 16),
                       doctest::Contains("two layers are named 'layer1.0.conv1'"),
                       soda::ValueError);
  CHECK_THROWS_AS(IntegerResNet::compile(good, 0, 16), soda::ValueError);
  // Sizes whose output geometry would overflow are refused before any arithmetic on them.
  CHECK_THROWS_WITH_AS(IntegerResNet::compile(good, std::int64_t{1} << 40, 16),
                       doctest::Contains("image height"), soda::ValueError);
  plan = good;
  plan.num_classes = std::int64_t{1} << 40;
  CHECK_THROWS_WITH_AS(IntegerResNet::compile(plan, 16, 16), doctest::Contains("num_classes"),
                       soda::ValueError);
}

TEST_CASE("integer_resnet: forward checks the images against the compiled size and channels") {
  const auto network = IntegerResNet::compile(random_plan(RandomPlanOptions{}), 16, 16);
  CHECK_THROWS_WITH_AS(network.forward_codes(random_images(2, 1, 16, 16, 3)),
                       doctest::Contains("are not [N, 3, 16, 16]"), soda::ShapeError);
  CHECK_THROWS_AS(network.forward_codes(random_images(2, 3, 32, 32, 3)), soda::ShapeError);
  CHECK_THROWS_AS(network.predict(soda::Tensor<float>({3, 16, 16}, std::vector<float>(768))),
                  soda::ShapeError);
  const auto none = network.forward_codes(random_images(0, 3, 16, 16, 3));
  CHECK(none.rows == 0);
  CHECK(none.cols == 10);
  auto nan_image = random_images(1, 3, 16, 16, 3);
  nan_image.data()[5] = std::nanf("");
  CHECK_THROWS_AS(network.forward_codes(nan_image), soda::ValueError);
}
