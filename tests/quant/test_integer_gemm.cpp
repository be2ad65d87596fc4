// soda/quant/integer_gemm.hpp: every kernel this CPU runs (portable, AVX2, AVX-512 VNNI) equals
// the scalar oracle bit for bit: odd shapes, several K blocks and tiles, extreme values, every
// activation, weight and output format; plus thread-count independence and the errors.
#include <doctest/doctest.h>

#include <soda/core/parallel.hpp>
#include <soda/quant/integer_gemm.hpp>
#include <soda/quant/quantize.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "random_integers.hpp"

using namespace soda::quant;
using quant_test::random_matrix;
using quant_test::random_values;

namespace {

struct Shape3 {
  std::int64_t m, n, k;
};

constexpr IntegerFormat activation_formats[] = {IntegerFormat::uint8, IntegerFormat::int8,
                                                IntegerFormat::uint4, IntegerFormat::int4};
constexpr IntegerFormat weight_formats[] = {IntegerFormat::int8, IntegerFormat::int4};
constexpr IntegerFormat output_formats[] = {IntegerFormat::int8, IntegerFormat::uint8,
                                            IntegerFormat::int4, IntegerFormat::uint4};

// Factors around the accumulators' size, so that outputs spread over the range and clamp too.
std::vector<DyadicFactor> random_factors(std::int64_t n, std::int64_t k, std::mt19937& gen) {
  std::uniform_real_distribution<double> exponent(-2.0, 1.0);
  std::vector<DyadicFactor> out(static_cast<std::size_t>(n));
  const double typical =
      1.0 / (64.0 * std::sqrt(static_cast<double>(std::max<std::int64_t>(k, 1))));
  for (auto& f : out) f = dyadic_factor(typical * std::pow(10.0, exponent(gen)));
  return out;
}

void check_all_outputs(const IntegerMatrix& a, const IntegerMatrix& b, std::mt19937& gen) {
  const auto bias = random_values(b.rows, -(1 << 20), 1 << 20, gen);
  const auto factors = random_factors(b.rows, a.cols, gen);
  std::vector<std::int32_t> expected(static_cast<std::size_t>(a.rows * b.rows));
  integer_gemm_reference(a, b, bias, expected);
  struct Case {
    Requantization requantization;
    IntegerMatrix want;
  };
  std::vector<Case> cases;
  for (const auto out_format : output_formats) {
    for (const bool relu : {false, true}) {
      Case c{Requantization{factors, relu}, IntegerMatrix::zeros(a.rows, b.rows, out_format)};
      integer_gemm_reference(a, b, bias, c.requantization, c.want);
      cases.push_back(std::move(c));
    }
  }
  std::vector<std::int32_t> got(expected.size());
  for (const auto kernel : supported_integer_gemm_kernels()) {
    CAPTURE(kernel_name(kernel));
    const PackedWeights packed = pack_weights(b, kernel);
    std::fill(got.begin(), got.end(), -1);
    integer_gemm(a, packed, bias, got);
    REQUIRE(got == expected);
    for (const auto& c : cases) {
      CAPTURE(format_name(c.want.format));
      CAPTURE(c.requantization.relu);
      auto out = IntegerMatrix::zeros(a.rows, b.rows, c.want.format);
      integer_gemm(a, packed, bias, c.requantization, out);
      REQUIRE(out.bytes == c.want.bytes);
    }
  }
}

}  // namespace

TEST_CASE("integer_gemm equals the oracle on odd shapes for every activation and weight format") {
  std::mt19937 gen(2024);
  const Shape3 shapes[] = {{1, 1, 1},    {1, 17, 3},  {3, 17, 63}, {5, 16, 64},  {7, 33, 65},
                           {17, 1, 129}, {6, 63, 31}, {13, 65, 2}, {2, 129, 17}, {4, 3, 0}};
  for (const auto& s : shapes) {
    for (const auto af : activation_formats) {
      for (const auto bf : weight_formats) {
        CAPTURE(s.m);
        CAPTURE(s.n);
        CAPTURE(s.k);
        CAPTURE(format_name(af));
        CAPTURE(format_name(bf));
        check_all_outputs(random_matrix(s.m, s.k, af, gen), random_matrix(s.n, s.k, bf, gen), gen);
      }
    }
  }
}

TEST_CASE("integer_gemm equals the oracle across K blocks and output tiles") {
  std::mt19937 gen(99);
  // 97 rows: two 96-row tiles; 257 columns: two 256-column tiles; K 1031: three 512-value blocks.
  const Shape3 shapes[] = {{97, 257, 67}, {9, 40, 1031}, {100, 18, 600}};
  for (const auto& s : shapes) {
    for (const auto af : {IntegerFormat::uint8, IntegerFormat::int4}) {
      for (const auto bf : weight_formats) {
        CAPTURE(s.m);
        CAPTURE(s.k);
        check_all_outputs(random_matrix(s.m, s.k, af, gen), random_matrix(s.n, s.k, bf, gen), gen);
      }
    }
  }
}

TEST_CASE("integer_gemm at the extremes: 255·−128 and −128·−128 sums, int32 wrap-around") {
  for (const auto af : {IntegerFormat::uint8, IntegerFormat::int8}) {
    for (const std::int64_t k : {2, 3, 4095, 70001}) {  // 70001·255·128 > 2^31: wraps mod 2^32
      CAPTURE(k);
      const std::int32_t a_value = format_min(af) == 0 ? 255 : -128;
      const auto a =
          IntegerMatrix::from_values(std::vector<std::int32_t>(2 * k, a_value), 2, k, af);
      std::vector<std::int32_t> b_values(3 * k, -128);
      for (std::int64_t i = 2 * k; i < 3 * k; ++i) b_values[i] = 127;
      const auto b = IntegerMatrix::from_values(b_values, 3, k, IntegerFormat::int8);
      const std::vector<std::int32_t> bias{2147483647, -2147483647 - 1, 0};
      std::vector<std::int32_t> expected(6), got(6);
      integer_gemm_reference(a, b, bias, expected);
      for (const auto kernel : supported_integer_gemm_kernels()) {
        CAPTURE(kernel_name(kernel));
        integer_gemm(a, pack_weights(b, kernel), bias, got);
        CHECK(got == expected);
      }
    }
  }
}

// int4 weights take vpmaddubsw on AVX2, exact only while |a0·b0 + a1·b1| (at most 2·255·8) and
// the int16 sum of two groups' pairs stay within int16: the extremes of every activation format,
// with one row panel (nibbles unpacked in registers) and with several (a widened strip).
TEST_CASE("integer_gemm at the extremes of int4 weights: 255·−8, −128·−8 and −8·−8 sums") {
  for (const auto af : activation_formats) {
    for (const std::int64_t m : {2, 13}) {
      for (const std::int64_t k : {3, 8, 4095, 70001}) {
        CAPTURE(format_name(af));
        CAPTURE(m);
        CAPTURE(k);
        const std::int32_t a_value = format_min(af) == 0 ? format_max(af) : format_min(af);
        const auto a =
            IntegerMatrix::from_values(std::vector<std::int32_t>(m * k, a_value), m, k, af);
        std::vector<std::int32_t> b_values(3 * k, -8);
        for (std::int64_t i = 2 * k; i < 3 * k; ++i) b_values[i] = 7;
        const auto b = IntegerMatrix::from_values(b_values, 3, k, IntegerFormat::int4);
        std::vector<std::int32_t> expected(m * 3), got(m * 3);
        integer_gemm_reference(a, b, {}, expected);
        for (const auto kernel : supported_integer_gemm_kernels()) {
          CAPTURE(kernel_name(kernel));
          integer_gemm(a, pack_weights(b, kernel), {}, got);
          CHECK(got == expected);
        }
      }
    }
  }
}

TEST_CASE("integer_gemm does not depend on the thread count, and packed weights are reusable") {
  std::mt19937 gen(8);
  const auto b = random_matrix(300, 130, IntegerFormat::int4, gen);
  const auto a1 = random_matrix(200, 130, IntegerFormat::uint8, gen);
  const auto a2 = random_matrix(3, 130, IntegerFormat::int8, gen);
  const PackedWeights packed = pack_weights(b);
  const int threads = soda::max_threads();
  for (const auto* a : {&a1, &a2}) {
    std::vector<std::int32_t> expected(a->rows * b.rows), one(expected.size()),
        many(expected.size());
    integer_gemm_reference(*a, b, {}, expected);
    soda::set_num_threads(1);
    integer_gemm(*a, packed, {}, one);
    soda::set_num_threads(std::max(threads, 3));
    integer_gemm(*a, packed, {}, many);
    soda::set_num_threads(threads);
    CHECK(one == expected);
    CHECK(many == expected);
  }
  std::vector<std::int32_t> c(a1.rows * b.rows), d(c.size());
  integer_gemm(a1, b, {}, c);  // packs B on the fly
  integer_gemm(a1, packed, {}, d);
  CHECK(c == d);
}

TEST_CASE("integer_gemm names the op and both shapes for operands that do not agree") {
  const auto a = IntegerMatrix::zeros(4, 10, IntegerFormat::uint8);
  const auto b = IntegerMatrix::zeros(6, 12, IntegerFormat::int4);
  std::vector<std::int32_t> c(24);
  CHECK_THROWS_WITH_AS(
      integer_gemm(a, b, {}, c),
      doctest::Contains("integer_gemm: A uint8 [4, 10] and B int4 [6, 12] do not agree in K"),
      soda::ShapeError);
  CHECK_THROWS_WITH_AS(integer_gemm(a, pack_weights(b), {}, c),
                       doctest::Contains("do not agree in K (10 != 12)"), soda::ShapeError);
  IntegerMatrix unpadded{6, 9, IntegerFormat::int4, std::vector<std::uint8_t>(6 * 4, 0)};
  CHECK_THROWS_WITH_AS(pack_weights(unpadded),
                       doctest::Contains("pack_weights: B int4 [6, 9] holds 24 bytes, expected 30"),
                       soda::ShapeError);
  const auto b10 = IntegerMatrix::zeros(6, 10, IntegerFormat::int8);
  CHECK_THROWS_WITH_AS(integer_gemm(a, b10, {}, std::span<std::int32_t>(c.data(), 20)),
                       doctest::Contains("int32 output holds 20 values"), soda::ShapeError);
  const std::vector<std::int32_t> bias(5);
  CHECK_THROWS_WITH_AS(integer_gemm(a, b10, bias, c), doctest::Contains("bias holds 5 values"),
                       soda::ShapeError);
  auto out = IntegerMatrix::zeros(4, 5, IntegerFormat::int8);
  const std::vector<DyadicFactor> factors(6);
  CHECK_THROWS_WITH_AS(integer_gemm(a, b10, {}, Requantization{factors}, out),
                       doctest::Contains("output int8 [4, 5] does not match C [4, 6]"),
                       soda::ShapeError);
  const auto u8_weights = IntegerMatrix::zeros(6, 10, IntegerFormat::uint8);
  CHECK_THROWS_AS(pack_weights(u8_weights), soda::ValueError);
  if (!integer_gemm_kernel_supported(IntegerGemmKernel::avx512_vnni)) {
    CHECK_THROWS_WITH_AS(pack_weights(b10, IntegerGemmKernel::avx512_vnni),
                         doctest::Contains("does not run the avx512_vnni kernel"),
                         soda::ValueError);
  }
}

TEST_CASE("the README's quantized linear layer: float weights to uint8 outputs, as the oracle") {
  std::mt19937 gen(12);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::int64_t m = 5, n = 24, k = 40;
  std::vector<float> weights(n * k), inputs(m * k), bias(n);
  for (auto& v : weights) v = 0.1f * normal(gen);
  for (auto& v : inputs) v = std::clamp(normal(gen), 0.0f, 4.0f);  // after a ReLU, calibrated to 4
  for (auto& v : bias) v = 0.1f * normal(gen);
  const float s_in = activation_scale(4.0f, 8, true), s_out = 0.02f;
  const auto w = quantize_weights(weights, n, k, /*bits=*/4);
  const auto x = quantize_activations(inputs, m, k, s_in, 8, /*is_unsigned=*/true);
  const auto bias_q = quantize_bias(bias, w.scales, s_in);
  const auto factors = requantization_factors(w.scales, s_in, s_out);
  const PackedWeights packed = pack_weights(w.values);
  auto y = IntegerMatrix::zeros(m, n, IntegerFormat::uint8);
  integer_gemm(x, packed, bias_q, Requantization{factors, /*relu=*/true}, y);
  auto want = IntegerMatrix::zeros(m, n, IntegerFormat::uint8);
  integer_gemm_reference(x, w.values, bias_q, Requantization{factors, true}, want);
  CHECK(y.bytes == want.bytes);
  // And within the worst-case quantization error of the float layer relu(x·wᵀ + b):
  // Σ|x|·S_w/2 + Σ|w|·S_a/2 (+ their product), the bias's and the output's half steps.
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double exact = bias[j], bound = s_out + w.scales[j] * s_in;
      for (std::int64_t p = 0; p < k; ++p) {
        exact += double(inputs[i * k + p]) * weights[j * k + p];
        bound += (std::abs(inputs[i * k + p]) + s_in) * w.scales[j] / 2 +
                 std::abs(weights[j * k + p]) * s_in / 2;
      }
      CHECK(std::abs(y.at(i, j) * s_out - std::clamp(exact, 0.0, 255.0 * s_out)) <= bound);
    }
  }
}
