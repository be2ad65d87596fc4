// im2col / col2im: the layout change that turns a 2-D convolution into one GEMM per image.
// col[(c, i, j), (oh, ow)] = x[c, oh·sh − ph + i, ow·sw − pw + j] (zero outside the image).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace soda::detail {

// The geometry of one convolution window sweep over a [C, H, W] image.
struct ConvGeometry {
  std::int64_t channels, height, width;  // input image
  std::int64_t kernel_h, kernel_w;       // window
  std::int64_t stride_h, stride_w, pad_h, pad_w;
  std::int64_t out_h, out_w;  // output plane

  std::int64_t col_rows() const { return channels * kernel_h * kernel_w; }
  std::int64_t col_cols() const { return out_h * out_w; }
  // A 1×1, stride-1, unpadded window: the image already is its own column matrix.
  bool is_pointwise() const {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 &&
           pad_w == 0;
  }
};

// The range of output columns ow whose input column ow·stride − pad + offset lies in [0, width).
inline void valid_output_range(std::int64_t width, std::int64_t out_w, std::int64_t stride,
                               std::int64_t pad, std::int64_t offset, std::int64_t& begin,
                               std::int64_t& end) {
  // ow·stride ≥ pad − offset  and  ow·stride ≤ width − 1 + pad − offset.
  const std::int64_t low = pad - offset;
  begin = low <= 0 ? 0 : (low + stride - 1) / stride;
  const std::int64_t high = width - 1 + pad - offset;
  end = high < 0 ? 0 : std::min(out_w, high / stride + 1);
  begin = std::min(begin, end);
}

// x: one contiguous [C, H, W] image; col: [C·kh·kw, out_h·out_w], fully written.
template <class T>
void im2col(const T* x, const ConvGeometry& g, T* col) {
  for (std::int64_t c = 0; c < g.channels; ++c) {
    const T* plane = x + c * g.height * g.width;
    for (std::int64_t i = 0; i < g.kernel_h; ++i) {
      for (std::int64_t j = 0; j < g.kernel_w; ++j) {
        T* row = col + ((c * g.kernel_h + i) * g.kernel_w + j) * g.out_h * g.out_w;
        std::int64_t begin, end;
        valid_output_range(g.width, g.out_w, g.stride_w, g.pad_w, j, begin, end);
        for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
          T* out = row + oh * g.out_w;
          const std::int64_t ih = oh * g.stride_h - g.pad_h + i;
          if (ih < 0 || ih >= g.height) {
            std::fill(out, out + g.out_w, T(0));
            continue;
          }
          std::fill(out, out + begin, T(0));
          std::fill(out + end, out + g.out_w, T(0));
          const T* in = plane + ih * g.width - g.pad_w + j;
          if (g.stride_w == 1) {
            std::memcpy(out + begin, in + begin, sizeof(T) * static_cast<std::size_t>(end - begin));
          } else {
            for (std::int64_t ow = begin; ow < end; ++ow) out[ow] = in[ow * g.stride_w];
          }
        }
      }
    }
  }
}

// The adjoint of im2col: x[c, ih, iw] += every col entry that im2col read from it. x is one
// contiguous [C, H, W] image that the caller has zeroed (or holds a sum to add to).
template <class T>
void col2im(const T* col, const ConvGeometry& g, T* x) {
  for (std::int64_t c = 0; c < g.channels; ++c) {
    T* plane = x + c * g.height * g.width;
    for (std::int64_t i = 0; i < g.kernel_h; ++i) {
      for (std::int64_t j = 0; j < g.kernel_w; ++j) {
        const T* row = col + ((c * g.kernel_h + i) * g.kernel_w + j) * g.out_h * g.out_w;
        std::int64_t begin, end;
        valid_output_range(g.width, g.out_w, g.stride_w, g.pad_w, j, begin, end);
        for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
          const std::int64_t ih = oh * g.stride_h - g.pad_h + i;
          if (ih < 0 || ih >= g.height) continue;
          const T* in = row + oh * g.out_w;
          T* out = plane + ih * g.width - g.pad_w + j;
          if (g.stride_w == 1) {
            for (std::int64_t ow = begin; ow < end; ++ow) out[ow] += in[ow];
          } else {
            for (std::int64_t ow = begin; ow < end; ++ow) out[ow * g.stride_w] += in[ow];
          }
        }
      }
    }
  }
}

}  // namespace soda::detail
