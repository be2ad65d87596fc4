// soda/quant/quantize.hpp: the spec's quantizers on hand-computed cases (round half to even,
// symmetric clamps, unsigned activations, int32 bias) and their dequantization error bound.
#include <doctest/doctest.h>

#include <soda/quant/quantize.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

using namespace soda::quant;

TEST_CASE("quantize_weights: per-row max / (2^(b-1) - 1), round half to even, symmetric clamp") {
  const std::vector<float> w{127.0f, 2.5f,  3.5f,  -2.5f,   // row max 127: scale 1
                             0.0f,   0.0f,  0.0f,  0.0f,    // zeros: scale 1
                             -6.35f, 0.05f, 0.15f, 6.35f};  // scale 0.05
  const auto q8 = quantize_weights(w, 3, 4, 8);
  CHECK(q8.values.format == IntegerFormat::int8);
  CHECK(q8.scales[0] == 1.0f);
  CHECK(q8.scales[1] == 1.0f);
  CHECK(q8.scales[2] == doctest::Approx(0.05f));
  CHECK(q8.values.values() ==
        std::vector<std::int32_t>{127, 2, 4, -2, 0, 0, 0, 0, -127, 1, 3, 127});
  const std::vector<float> w4{7.0f, 2.5f, 6.5f, -7.0f, 0.5f, -3.5f};
  const auto q4 = quantize_weights(w4, 1, 6, 4);
  CHECK(q4.values.format == IntegerFormat::int4);
  CHECK(q4.values.values() == std::vector<std::int32_t>{7, 2, 6, -7, 0, -4});
  CHECK_THROWS_AS(quantize_weights(w4, 1, 6, 3), soda::ValueError);
  CHECK_THROWS_AS(quantize_weights(w4, 2, 6, 8), soda::ShapeError);
}

TEST_CASE("quantize_weights: 2 bits are the ternary grid at scale max|w|, stored as int4") {
  // Row 0: scale 2; -2 -> -1, 0.99 -> 0 (0.495), 1.0 -> 0 (0.5, half to even), 1.01 -> 1, 1.5 -> 1.
  // Row 1: all zeros, scale 1.
  const std::vector<float> w{-2.0f, 0.99f, 1.0f, 1.01f, 1.5f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  const auto q2 = quantize_weights(w, 2, 5, 2);
  CHECK(q2.values.format == IntegerFormat::int4);
  CHECK(q2.scales == std::vector<float>{2.0f, 1.0f});
  CHECK(q2.values.values() == std::vector<std::int32_t>{-1, 0, 0, 1, 1, 0, 0, 0, 0, 0});
  CHECK_THROWS_WITH_AS(quantize_weights(w, 2, 5, 1), doctest::Contains("2, 4 or 8"),
                       soda::ValueError);
  CHECK_THROWS_AS(quantize_activations(w, 2, 5, 1.0f, 2, false), soda::ValueError);
}

TEST_CASE("quantize_activations: unsigned after a ReLU, signed symmetric elsewhere") {
  const std::vector<float> x{255.7f, 300.0f, -3.0f, 2.5f, 3.5f, 0.49f};
  CHECK(quantize_activations(x, 2, 3, 1.0f, 8, true).values() ==
        std::vector<std::int32_t>{255, 255, 0, 2, 4, 0});
  CHECK(quantize_activations(x, 2, 3, 1.0f, 8, false).values() ==
        std::vector<std::int32_t>{127, 127, -3, 2, 4, 0});
  CHECK(quantize_activations(x, 3, 2, 1.0f, 4, true).values() ==
        std::vector<std::int32_t>{15, 15, 0, 2, 4, 0});
  const auto s4 = quantize_activations(x, 1, 6, 1.0f, 4, false);
  CHECK(s4.format == IntegerFormat::int4);
  CHECK(s4.values() == std::vector<std::int32_t>{7, 7, -3, 2, 4, 0});
  CHECK(activation_scale(255.0f, 8, true) == 1.0f);
  CHECK(activation_scale(127.0f, 8, false) == 1.0f);
  CHECK(activation_scale(15.0f, 4, true) == 1.0f);
  CHECK_THROWS_AS(quantize_activations(x, 2, 3, 0.0f, 8, true), soda::ValueError);
}

TEST_CASE("quantize_bias at scale S_w[n]·S_a, rounding half to even") {
  const std::vector<float> bias{10.0f, 2.5f, -7.5f};
  const std::vector<float> weight_scales{0.5f, 1.0f, 1.0f};
  CHECK(quantize_bias(bias, weight_scales, 2.0f) == std::vector<std::int32_t>{10, 1, -4});
  CHECK(quantize_bias(bias, weight_scales, 1.0f) == std::vector<std::int32_t>{20, 2, -8});
  const std::vector<float> huge{1e10f};
  const std::vector<float> one{1.0f};
  CHECK_THROWS_WITH_AS(quantize_bias(huge, one, 1.0f), doctest::Contains("does not fit int32"),
                       soda::ValueError);
}

TEST_CASE("dequantized weights lie within half a step of the originals") {
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(16 * 33);
  for (auto& v : w) v = normal(gen);
  for (int bits : {8, 4}) {
    const auto q = quantize_weights(w, 16, 33, bits);
    const auto back = dequantize(q.values, q.scales);
    for (std::int64_t n = 0; n < 16; ++n) {
      for (std::int64_t k = 0; k < 33; ++k) {
        CHECK(std::abs(back[n * 33 + k] - w[n * 33 + k]) <= 0.5001f * q.scales[n]);
      }
    }
  }
  const auto factors = requantization_factors(std::vector<float>{0.5f, 0.25f}, 0.1f, 0.2f);
  CHECK(factors[0] == dyadic_factor(0.5 * static_cast<double>(0.1f) / 0.2f));
  CHECK(factors[1].value() == doctest::Approx(0.125).epsilon(1e-9));
}
