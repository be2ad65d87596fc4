#include <cmath>
#include <iostream>
#include <random>
#include <soda/soda.hpp>
#include <vector>

int main() {
  using namespace soda::quant;
  const std::int64_t m = 4, n = 16, k = 64;  // y[m, n] = relu(x[m, k]·w[n, k]ᵀ + bias[n])
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  std::vector<float> weights(n * k), bias(n), inputs(m * k);
  for (auto& w : weights) w = normal(rng) / 8;
  for (auto& b : bias) b = normal(rng);
  for (auto& x : inputs) x = std::abs(normal(rng));  // non-negative, as after a ReLU
  const float s_in = activation_scale(4.0f, 8, /*is_unsigned=*/true);  // calibrated ranges
  const float s_out = activation_scale(8.0f, 8, /*is_unsigned=*/true);

  const auto w = quantize_weights(weights, n, k, /*bits=*/4);  // int4, per-channel scales
  const auto x = quantize_activations(inputs, m, k, s_in, 8, /*is_unsigned=*/true);
  const auto bias_q = quantize_bias(bias, w.scales, s_in);
  const auto factors = requantization_factors(w.scales, s_in, s_out);
  const PackedWeights packed = pack_weights(w.values);  // once, reused per call
  auto y = IntegerMatrix::zeros(m, n, IntegerFormat::uint8);
  integer_gemm(x, packed, bias_q, Requantization{factors, /*relu=*/true}, y);

  // The same layer in float, to see what quantization costs.
  const auto y_float = dequantize(y, s_out);
  double worst = 0;
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double sum = bias[j];
      for (std::int64_t l = 0; l < k; ++l) sum += inputs[i * k + l] * weights[j * k + l];
      worst = std::max(worst, std::abs(std::max(sum, 0.0) - y_float[i * n + j]));
    }
  }
  std::cout << "kernel " << kernel_name(best_integer_gemm_kernel()) << ", largest error " << worst
            << " (output step " << s_out << ")\n";
}
