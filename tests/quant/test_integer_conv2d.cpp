// soda/quant/integer_conv2d.hpp: NHWC integer convolution (im2col + integer_gemm) equals a direct
// convolution written from the definition, with padding, strides, 1×1 windows and 4-bit inputs.
#include <doctest/doctest.h>

#include <soda/quant/integer_conv2d.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "random_integers.hpp"

using namespace soda::quant;
using quant_test::random_matrix;
using quant_test::random_values;

namespace {

// out[(n, oh, ow), co] = Σ_{i, j, c} x[(n, ih, iw), c]·w[co, (i, j, c)] + bias[co].
std::vector<std::int32_t> direct_conv(const IntegerMatrix& x, const IntegerMatrix& w,
                                      const std::vector<std::int32_t>& bias,
                                      const IntegerConv2dGeometry& g) {
  const std::int64_t oh_count = g.out_h(), ow_count = g.out_w(), cin = x.cols;
  std::vector<std::int32_t> out(g.batch * oh_count * ow_count * w.rows);
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t oh = 0; oh < oh_count; ++oh)
      for (std::int64_t ow = 0; ow < ow_count; ++ow)
        for (std::int64_t co = 0; co < w.rows; ++co) {
          std::int64_t sum = bias[co];
          for (std::int64_t i = 0; i < g.kernel_h; ++i)
            for (std::int64_t j = 0; j < g.kernel_w; ++j) {
              const std::int64_t ih = oh * g.stride_h - g.pad_h + i;
              const std::int64_t iw = ow * g.stride_w - g.pad_w + j;
              if (ih < 0 || ih >= g.height || iw < 0 || iw >= g.width) continue;
              for (std::int64_t c = 0; c < cin; ++c) {
                sum += std::int64_t{x.at((n * g.height + ih) * g.width + iw, c)} *
                       w.at(co, (i * g.kernel_w + j) * cin + c);
              }
            }
          out[((n * oh_count + oh) * ow_count + ow) * w.rows + co] = static_cast<std::int32_t>(sum);
        }
  return out;
}

}  // namespace

TEST_CASE("integer_conv2d equals a direct convolution (padding, strides, 1×1, 4-bit inputs)") {
  std::mt19937 gen(31);
  const IntegerConv2dGeometry geometries[] = {
      {.batch = 2, .height = 7, .width = 6, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1},
      {.batch = 1,
       .height = 9,
       .width = 8,
       .kernel_h = 3,
       .kernel_w = 2,
       .stride_h = 2,
       .stride_w = 3,
       .pad_h = 2,
       .pad_w = 0},
      {.batch = 3, .height = 4, .width = 5},  // 1×1: the input is its own im2col
  };
  for (const auto& g : geometries) {
    for (const std::int64_t cin : {3, 8}) {
      for (const auto af : {IntegerFormat::uint8, IntegerFormat::int8, IntegerFormat::uint4}) {
        for (const auto wf : {IntegerFormat::int8, IntegerFormat::int4}) {
          CAPTURE(g.kernel_h);
          CAPTURE(cin);
          CAPTURE(format_name(af));
          const std::int64_t cout = 19;
          const auto x = random_matrix(g.batch * g.height * g.width, cin, af, gen);
          const auto w = random_matrix(cout, g.kernel_h * g.kernel_w * cin, wf, gen);
          const auto bias = random_values(cout, -1000, 1000, gen);
          const auto expected = direct_conv(x, w, bias, g);
          std::vector<std::int32_t> got(expected.size());
          integer_conv2d(x, pack_weights(w), bias, g, got);
          REQUIRE(got == expected);
          // The requantized path runs the same GEMM epilogue; check it once per case too.
          const std::vector<DyadicFactor> factors(cout, dyadic_factor(1.0 / 64));
          auto out = IntegerMatrix::zeros(static_cast<std::int64_t>(expected.size()) / cout, cout,
                                          IntegerFormat::uint8);
          integer_conv2d(x, pack_weights(w), bias, g, Requantization{factors, true}, out);
          for (std::size_t i = 0; i < expected.size(); ++i) {
            REQUIRE(
                out.at(static_cast<std::int64_t>(i) / cout, static_cast<std::int64_t>(i) % cout) ==
                requantize(expected[i], factors[i % cout], 0, 255));
          }
        }
      }
    }
  }
}

TEST_CASE("integer_conv2d_residual equals a direct convolution followed by residual_add") {
  std::mt19937 gen(37);
  const IntegerConv2dGeometry g{
      .batch = 2, .height = 6, .width = 5, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1};
  for (const std::int64_t cin : {3, 8}) {
    for (const auto wf : {IntegerFormat::int8, IntegerFormat::int4}) {
      for (const auto shortcut_format :
           {IntegerFormat::uint8, IntegerFormat::int8, IntegerFormat::uint4}) {
        for (const auto out_format : {IntegerFormat::uint8, IntegerFormat::uint4}) {
          CAPTURE(cin);
          CAPTURE(format_name(shortcut_format));
          CAPTURE(format_name(out_format));
          const std::int64_t cout = 18, rows = g.batch * g.out_h() * g.out_w();
          const auto x =
              random_matrix(g.batch * g.height * g.width, cin, IntegerFormat::uint8, gen);
          const auto w = random_matrix(cout, 9 * cin, wf, gen);
          const auto bias = random_values(cout, -1000, 1000, gen);
          const auto shortcut = random_matrix(rows, cout, shortcut_format, gen);
          std::vector<DyadicFactor> factors, shortcut_factors;
          for (std::int64_t n = 0; n < cout; ++n) {
            factors.push_back(dyadic_factor(1.0 / (200 + 37 * n)));
            shortcut_factors.push_back(dyadic_factor(0.3 + 0.05 * n));
          }
          const auto acc = direct_conv(x, w, bias, g);
          auto got = IntegerMatrix::zeros(rows, cout, out_format);
          integer_conv2d_residual(x, pack_weights(w), bias, g, factors, shortcut, shortcut_factors,
                                  true, got);
          for (std::int64_t m = 0; m < rows; ++m) {
            for (std::int64_t n = 0; n < cout; ++n) {
              REQUIRE(got.at(m, n) == residual_add(acc[m * cout + n], factors[n], shortcut.at(m, n),
                                                   shortcut_factors[n], 0, format_max(out_format)));
            }
          }
        }
      }
    }
  }
  const auto x = IntegerMatrix::zeros(2 * 6 * 5, 8, IntegerFormat::uint8);
  const auto w = pack_weights(IntegerMatrix::zeros(4, 9 * 8, IntegerFormat::int8));
  const std::vector<DyadicFactor> four(4, dyadic_factor(0.5));
  auto out = IntegerMatrix::zeros(60, 4, IntegerFormat::uint8);
  CHECK_THROWS_WITH_AS(
      integer_conv2d_residual(x, w, {}, g, four, IntegerMatrix::zeros(59, 4, IntegerFormat::uint8),
                              four, true, out),
      doctest::Contains("shortcut uint8 [59, 4] does not match"), soda::ShapeError);
}

TEST_CASE("integer_conv2d names the shapes that do not agree") {
  const auto x = IntegerMatrix::zeros(2 * 5 * 5, 4, IntegerFormat::uint8);
  const auto w = pack_weights(IntegerMatrix::zeros(8, 3 * 3 * 5, IntegerFormat::int8));
  std::vector<std::int32_t> out(2 * 25 * 8);
  const IntegerConv2dGeometry g{
      .batch = 2, .height = 5, .width = 5, .kernel_h = 3, .kernel_w = 3, .pad_h = 1, .pad_w = 1};
  CHECK_THROWS_WITH_AS(
      integer_conv2d(x, w, {}, g, out),
      doctest::Contains("integer_conv2d: weights [8, 45] are not [C_out, kh·kw·C_in]"),
      soda::ShapeError);
  const IntegerConv2dGeometry wrong_batch{.batch = 3, .height = 5, .width = 5};
  CHECK_THROWS_WITH_AS(integer_conv2d(x, w, {}, wrong_batch, out),
                       doctest::Contains("is not [N·H·W, C] for 3 images of 5×5"),
                       soda::ShapeError);
  const IntegerConv2dGeometry too_big{.batch = 2, .height = 5, .width = 5, .kernel_h = 7};
  CHECK_THROWS_AS(integer_conv2d(x, w, {}, too_big, out), soda::ValueError);
}
