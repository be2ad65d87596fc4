// Integer 2-D convolution in NHWC: im2col of the quantized activations feeding integer_gemm.
// NHWC because channels-last makes each im2col row (one output pixel's window) a run of
// C-contiguous slices: K-contiguous as the GEMM contract wants, copied with memcpy, and the output
// [N·OH·OW, C_out] is already the next layer's NHWC input. Weights are [C_out, kh, kw, C_in]
// (OHWI), K = kh·kw·C_in.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>

#include "soda/core/error.hpp"
#include "soda/quant/integer_gemm.hpp"
#include "soda/quant/integer_matrix.hpp"
#include "soda/quant/residual_add.hpp"

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

namespace detail {

// The packed activations (PackedActivations' layout) of the im2col matrix of x, gathered straight
// from the NHWC input: one pass, no im2col copy. Only 8-bit inputs whose channel count fills whole
// groups (pairs, or quads) qualify; others return nothing and go through im2col_nhwc.
inline std::optional<PackedActivations> pack_conv_activations(const IntegerMatrix& x,
                                                              const IntegerConv2dGeometry& g,
                                                              bool quads) {
  const std::int64_t group = quads ? 4 : 2, channels = x.cols;
  if (is_4bit(x.format) || channels % group != 0) return std::nullopt;
  const std::int64_t oh_count = g.out_h(), ow_count = g.out_w();
  const std::int64_t rows = g.batch * oh_count * ow_count;
  const std::int64_t slice_groups = channels / group;
  PackedActivations p;
  p.allocate(rows, g.kernel_h * g.kernel_w * slice_groups);
  p.shifted = quads && is_signed(x.format);
  const std::int64_t panels = ceil_div(rows, gemm_mr);
  // A pixel outside the image is the value 0: +128 in shifted quads, as the compensation expects.
  const auto outside = static_cast<std::int32_t>(p.shifted ? 0x80808080u : 0u);
  const bool is_signed_input = is_signed(x.format);
  const bool parallel = rows * p.groups >= (std::int64_t{1} << 15);
  // Pairs: the whole input widened to int16 once (a contiguous loop the compiler vectorizes,
  // over 1/(kh·kw) of the im2col's size), so packing only moves 32-bit words.
  std::vector<std::uint16_t> wide(quads ? 0 : static_cast<std::size_t>(x.rows * channels));
  const std::uint8_t* bytes = x.bytes.data();
  std::uint16_t* widened = wide.data();
  const std::int64_t values = static_cast<std::int64_t>(wide.size());
  if (is_signed_input) {
#pragma omp parallel for simd schedule(static) if (parallel)
    for (std::int64_t i = 0; i < values; ++i) {
      widened[i] = static_cast<std::uint16_t>(static_cast<std::int8_t>(bytes[i]));
    }
  } else {
#pragma omp parallel for simd schedule(static) if (parallel)
    for (std::int64_t i = 0; i < values; ++i) widened[i] = bytes[i];
  }
  const std::uint8_t* words = quads ? bytes : reinterpret_cast<const std::uint8_t*>(widened);
  const std::int64_t pixel_bytes = quads ? channels : 2 * channels;
  const std::uint32_t flip = p.shifted ? 0x80808080u : 0u;  // int8 + 128 = byte ^ 0x80
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t panel = 0; panel < panels; ++panel) {
    std::int32_t* base = p.data.get() + panel * p.groups * gemm_mr;
    for (std::int64_t r = 0; r < gemm_mr && panel * gemm_mr + r < rows; ++r) {
      const std::int64_t m = panel * gemm_mr + r;
      const std::int64_t n = m / (oh_count * ow_count), oh = (m / ow_count) % oh_count,
                         ow = m % ow_count;
      for (std::int64_t i = 0; i < g.kernel_h; ++i) {
        const std::int64_t ih = oh * g.stride_h - g.pad_h + i;
        for (std::int64_t j = 0; j < g.kernel_w; ++j) {
          const std::int64_t iw = ow * g.stride_w - g.pad_w + j;
          std::int32_t* out = base + (i * g.kernel_w + j) * slice_groups * gemm_mr + r;
          if (ih < 0 || ih >= g.height || iw < 0 || iw >= g.width) {
            for (std::int64_t s = 0; s < slice_groups; ++s) out[s * gemm_mr] = outside;
            continue;
          }
          const std::uint8_t* in = words + ((n * g.height + ih) * g.width + iw) * pixel_bytes;
          for (std::int64_t s = 0; s < slice_groups; ++s) {
            std::uint32_t word;
            std::memcpy(&word, in + 4 * s, 4);
            out[s * gemm_mr] = static_cast<std::int32_t>(word ^ flip);
          }
        }
      }
    }
  }
  return p;
}

// Up to Columns dyadic factors unpacked for a row loop: apply(j, x) is requantize(x, f[j]) clamped
// to int32, as residual_add() computes each of its terms.
template <std::int64_t Columns>
struct HoistedFactors {
  std::int64_t multiplier[Columns], rounding[Columns];
  int shift[Columns];

  explicit HoistedFactors(std::span<const DyadicFactor> factors) {
    for (std::size_t j = 0; j < factors.size(); ++j) {
      multiplier[j] = factors[j].multiplier;
      shift[j] = factors[j].shift;
      rounding[j] = factors[j].shift > 0 ? std::int64_t{1} << (factors[j].shift - 1) : 0;
    }
  }
  std::int64_t apply(std::int64_t j, std::int64_t x) const {
    const std::int64_t scaled = (x * multiplier[j] + rounding[j]) >> shift[j];
    constexpr std::int64_t low = std::numeric_limits<std::int32_t>::min(),
                           high = std::numeric_limits<std::int32_t>::max();
    return std::min(std::max(scaled, low), high);
  }
};

// Checks a convolution's operands; returns the output's row count N·OH·OW.
inline std::int64_t check_conv_call(const char* op, const IntegerMatrix& x, const PackedWeights& w,
                                    std::span<const std::int32_t> bias,
                                    const IntegerConv2dGeometry& g) {
  x.check(op, "input");
  check_conv_operands(x, w, g);
  check_packed(op, w);
  if (!bias.empty() && static_cast<std::int64_t>(bias.size()) != w.rows) {
    throw ShapeError(std::string(op) + ": bias holds " + std::to_string(bias.size()) +
                     " values for " + std::to_string(w.rows) + " output channels (or none)");
  }
  return g.batch * g.out_h() * g.out_w();
}

// Runs conv(x, w) + bias through the GEMM driver, handing each finished tile to store.
template <class Store>
void run_integer_conv2d(const IntegerMatrix& x, const PackedWeights& w,
                        std::span<const std::int32_t> bias, const IntegerConv2dGeometry& g,
                        Store&& store) {
  if (g.is_pointwise()) return run_integer_gemm(x, w, bias, std::forward<Store>(store));
  auto packed = pack_conv_activations(x, g, quad_groups(w.kernel, w.format));
  if (packed) return run_packed_integer_gemm(*packed, w, bias, std::forward<Store>(store));
  run_integer_gemm(im2col_nhwc(x, g), w, bias, std::forward<Store>(store));
}

}  // namespace detail

// out [N·OH·OW, C_out] int32 = conv(x, w) + bias (NHWC).
inline void integer_conv2d(const IntegerMatrix& x, const PackedWeights& w,
                           std::span<const std::int32_t> bias, const IntegerConv2dGeometry& g,
                           std::span<std::int32_t> out) {
  constexpr const char* op = "integer_conv2d";
  const std::int64_t rows = detail::check_conv_call(op, x, w, bias, g);
  detail::check_int32_output(op, rows, w.rows, out.size());
  detail::run_integer_conv2d(x, w, bias, g, detail::int32_tile_store(out.data(), w.rows));
}

// The same, requantized per output channel into out's format (the next layer's input).
inline void integer_conv2d(const IntegerMatrix& x, const PackedWeights& w,
                           std::span<const std::int32_t> bias, const IntegerConv2dGeometry& g,
                           const Requantization& requantization, IntegerMatrix& out) {
  constexpr const char* op = "integer_conv2d";
  const std::int64_t rows = detail::check_conv_call(op, x, w, bias, g);
  detail::check_requantized_output(op, rows, w.rows, requantization, out);
  detail::run_integer_conv2d(x, w, bias, g, detail::requantizing_tile_store(requantization, out));
}

// A residual block's second convolution with the residual addition fused into its epilogue:
// out[m, n] = clamp(requantize(conv(x, w)[m, n] + bias[n], factors[n]) +
//                   requantize(shortcut[m, n], shortcut_factors[n]), lo, hi)
// in out's range (lo = 0 when relu): residual_add without the int32 accumulators in memory.
inline void integer_conv2d_residual(const IntegerMatrix& x, const PackedWeights& w,
                                    std::span<const std::int32_t> bias,
                                    const IntegerConv2dGeometry& g,
                                    std::span<const DyadicFactor> factors,
                                    const IntegerMatrix& shortcut,
                                    std::span<const DyadicFactor> shortcut_factors, bool relu,
                                    IntegerMatrix& out) {
  constexpr const char* op = "integer_conv2d_residual";
  const std::int64_t rows = detail::check_conv_call(op, x, w, bias, g);
  detail::check_requantized_output(op, rows, w.rows, Requantization{factors, relu}, out);
  shortcut.check(op, "shortcut");
  if (shortcut.rows != rows || shortcut.cols != w.rows) {
    throw ShapeError(std::string(op) + ": shortcut " + shortcut.shape_string() +
                     " does not match the output " + out.shape_string());
  }
  if (static_cast<std::int64_t>(shortcut_factors.size()) != w.rows) {
    throw ShapeError(std::string(op) + ": " + std::to_string(shortcut_factors.size()) +
                     " shortcut factors for " + std::to_string(w.rows) + " channels");
  }
  const std::int32_t lo = relu ? 0 : format_min(out.format), hi = format_max(out.format);
  const bool bytes = !is_4bit(out.format) && !is_4bit(shortcut.format);
  const bool shortcut_signed = is_signed(shortcut.format);
  detail::run_integer_conv2d(
      x, w, bias, g,
      [&](std::int64_t m0, std::int64_t n0, std::int64_t tile_rows, std::int64_t cols,
          const std::int32_t* tile, std::int64_t ldc) {
        if (!bytes) {
          for (std::int64_t r = 0; r < tile_rows; ++r) {
            for (std::int64_t j = 0; j < cols; ++j) {
              out.set(m0 + r, n0 + j,
                      residual_add(tile[r * ldc + j], factors[n0 + j], shortcut.at(m0 + r, n0 + j),
                                   shortcut_factors[n0 + j], lo, hi));
            }
          }
          return;
        }
        // residual_add() with each column's terms hoisted out of the row loop.
        detail::HoistedFactors<detail::gemm_nc> fa(factors.subspan(n0, cols)),
            fb(shortcut_factors.subspan(n0, cols));
        for (std::int64_t r = 0; r < tile_rows; ++r) {
          const std::int64_t m = m0 + r;
          const std::int32_t* acc = tile + r * ldc;
          const std::uint8_t* in = shortcut.bytes.data() + m * shortcut.cols + n0;
          std::uint8_t* dst = out.bytes.data() + m * out.cols + n0;
          for (std::int64_t j = 0; j < cols; ++j) {
            const std::int64_t b = shortcut_signed ? static_cast<std::int8_t>(in[j]) : in[j];
            const std::int64_t sum = fa.apply(j, acc[j]) + fb.apply(j, b);
            dst[j] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(std::min<std::int64_t>(
                                                   std::max<std::int64_t>(sum, lo), hi)) &
                                               0xFFu);
          }
        }
      });
}

}  // namespace soda::quant
