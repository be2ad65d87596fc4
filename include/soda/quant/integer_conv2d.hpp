// Integer 2-D convolution in NHWC: im2col of the quantized activations feeding integer_gemm.
// NHWC because channels-last makes each im2col row (one output pixel's window) a run of
// C-contiguous slices: K-contiguous as the GEMM contract wants, copied with memcpy, and the output
// [N·OH·OW, C_out] is already the next layer's NHWC input. Weights are [C_out, kh, kw, C_in]
// (OHWI), K = kh·kw·C_in.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "soda/core/error.hpp"
#include "soda/quant/integer_gemm.hpp"
#include "soda/quant/integer_matrix.hpp"

namespace soda::quant {

// The window sweep of a convolution over NHWC images of height × width pixels.
struct IntegerConv2dGeometry {
  std::int64_t batch = 1, height = 1, width = 1;
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;

  std::int64_t out_h() const { return (height + 2 * pad_h - kernel_h) / stride_h + 1; }
  std::int64_t out_w() const { return (width + 2 * pad_w - kernel_w) / stride_w + 1; }
  bool is_pointwise() const {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 &&
           pad_w == 0;
  }
};

namespace detail {

inline void check_conv_geometry(const char* op, const IntegerMatrix& x,
                                const IntegerConv2dGeometry& g) {
  if (g.batch < 1 || g.height < 1 || g.width < 1 || g.kernel_h < 1 || g.kernel_w < 1 ||
      g.stride_h < 1 || g.stride_w < 1 || g.pad_h < 0 || g.pad_w < 0 ||
      g.kernel_h > g.height + 2 * g.pad_h || g.kernel_w > g.width + 2 * g.pad_w) {
    throw ValueError(std::string(op) + ": bad geometry: images " + std::to_string(g.height) + "×" +
                     std::to_string(g.width) + ", window " + std::to_string(g.kernel_h) + "×" +
                     std::to_string(g.kernel_w) + ", stride " + std::to_string(g.stride_h) + "×" +
                     std::to_string(g.stride_w) + ", padding " + std::to_string(g.pad_h) + "×" +
                     std::to_string(g.pad_w));
  }
  if (x.rows != g.batch * g.height * g.width) {
    throw ShapeError(std::string(op) + ": input " + x.shape_string() + " is not [N·H·W, C] for " +
                     std::to_string(g.batch) + " images of " + std::to_string(g.height) + "×" +
                     std::to_string(g.width));
  }
}

inline void check_conv_operands(const IntegerMatrix& x, const PackedWeights& w,
                                const IntegerConv2dGeometry& g) {
  check_conv_geometry("integer_conv2d", x, g);
  if (w.cols != g.kernel_h * g.kernel_w * x.cols) {
    throw ShapeError("integer_conv2d: weights [" + std::to_string(w.rows) + ", " +
                     std::to_string(w.cols) + "] are not [C_out, kh·kw·C_in] = [" +
                     std::to_string(w.rows) + ", " + std::to_string(g.kernel_h * g.kernel_w) + "·" +
                     std::to_string(x.cols) + "] for input " + x.shape_string());
  }
}

}  // namespace detail

// The im2col matrix [N·OH·OW, kh·kw·C] of NHWC activations x [N·H·W, C] (zero outside the image:
// the zero point of every activation format is 0).
inline IntegerMatrix im2col_nhwc(const IntegerMatrix& x, const IntegerConv2dGeometry& g) {
  x.check("im2col_nhwc", "input");
  detail::check_conv_geometry("im2col_nhwc", x, g);
  const std::int64_t channels = x.cols, oh_count = g.out_h(), ow_count = g.out_w();
  auto col = IntegerMatrix::zeros(g.batch * oh_count * ow_count, g.kernel_h * g.kernel_w * channels,
                                  x.format);
  // Whole bytes per pixel slice: 8-bit formats, and 4-bit ones with an even channel count.
  const bool byte_slices = !is_4bit(x.format) || channels % 2 == 0;
  const std::int64_t slice_bytes = x.row_bytes();
#pragma omp parallel for schedule(static) if (col.rows * col.cols >= (std::int64_t{1} << 16))
  for (std::int64_t p = 0; p < col.rows; ++p) {
    const std::int64_t n = p / (oh_count * ow_count), oh = (p / ow_count) % oh_count,
                       ow = p % ow_count;
    for (std::int64_t i = 0; i < g.kernel_h; ++i) {
      const std::int64_t ih = oh * g.stride_h - g.pad_h + i;
      if (ih < 0 || ih >= g.height) continue;
      for (std::int64_t j = 0; j < g.kernel_w; ++j) {
        const std::int64_t iw = ow * g.stride_w - g.pad_w + j;
        if (iw < 0 || iw >= g.width) continue;
        const std::int64_t pixel = (n * g.height + ih) * g.width + iw;
        const std::int64_t k0 = (i * g.kernel_w + j) * channels;
        if (byte_slices) {
          std::memcpy(col.bytes.data() + p * col.row_bytes() + row_bytes(x.format, k0),
                      x.bytes.data() + pixel * slice_bytes, static_cast<std::size_t>(slice_bytes));
        } else {
          for (std::int64_t c = 0; c < channels; ++c) col.set(p, k0 + c, x.at(pixel, c));
        }
      }
    }
  }
  return col;
}

// out [N·OH·OW, C_out] int32 = conv(x, w) + bias (NHWC).
inline void integer_conv2d(const IntegerMatrix& x, const PackedWeights& w,
                           std::span<const std::int32_t> bias, const IntegerConv2dGeometry& g,
                           std::span<std::int32_t> out) {
  detail::check_conv_operands(x, w, g);
  if (g.is_pointwise()) return integer_gemm(x, w, bias, out);
  integer_gemm(im2col_nhwc(x, g), w, bias, out);
}

// The same, requantized per output channel into out's format (the next layer's input).
inline void integer_conv2d(const IntegerMatrix& x, const PackedWeights& w,
                           std::span<const std::int32_t> bias, const IntegerConv2dGeometry& g,
                           const Requantization& requantization, IntegerMatrix& out) {
  detail::check_conv_operands(x, w, g);
  if (g.is_pointwise()) return integer_gemm(x, w, bias, requantization, out);
  integer_gemm(im2col_nhwc(x, g), w, bias, requantization, out);
}

}  // namespace soda::quant
