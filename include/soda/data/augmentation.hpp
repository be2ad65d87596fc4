// Image augmentation for training: a random crop of a zero-padded image and a horizontal flip, each
// drawn per sample from (seed, epoch, dataset index) alone, so a sample's view never depends on
// order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "soda/core/error.hpp"
#include "soda/core/generator.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/shape.hpp"
#include "soda/core/tensor.hpp"

namespace soda {

// Where one sample's crop window starts in the padded image (each in [0, 2 * padding]) and
// whether it is mirrored left to right after cropping.
struct AugmentationDraw {
  std::int64_t crop_top = 0;
  std::int64_t crop_left = 0;
  bool flip = false;
};

namespace detail {

// SplitMix64's finaliser: spreads every input bit over the whole output.
inline std::uint64_t mix_bits(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Independent random streams of one loader: the epoch's shuffle and the epoch's augmentations.
enum class LoaderStream : std::uint64_t { shuffle = 1, augmentation = 2 };

// The generator key of stream `stream` in `epoch` under `seed`.
inline std::uint64_t loader_stream_key(std::uint64_t seed, std::int64_t epoch,
                                       LoaderStream stream) {
  return seed ^
         mix_bits(mix_bits(static_cast<std::uint64_t>(epoch)) ^ static_cast<std::uint64_t>(stream));
}

// An integer in [0, span) from a uniform in [0, 1).
inline std::int64_t scale_uniform(double u, std::int64_t span) {
  return std::min(span - 1, static_cast<std::int64_t>(u * static_cast<double>(span)));
}

// Writes the [channels, height, width] image `src` cropped (window at draw.crop_top/left of the
// image zero-padded by `padding`) and then, if draw.flip, mirrored, to `dst` (same shape).
inline void augment_image(const std::uint8_t* src, std::int64_t channels, std::int64_t height,
                          std::int64_t width, std::int64_t padding, const AugmentationDraw& draw,
                          std::uint8_t* dst) {
  const auto shift_y = draw.crop_top - padding;
  const auto shift_x = draw.crop_left - padding;
  for (std::int64_t c = 0; c < channels; ++c) {
    const std::uint8_t* plane = src + c * height * width;
    std::uint8_t* out = dst + c * height * width;
    for (std::int64_t y = 0; y < height; ++y) {
      const auto sy = y + shift_y;
      for (std::int64_t x = 0; x < width; ++x) {
        const auto cropped_x = draw.flip ? width - 1 - x : x;
        const auto sx = cropped_x + shift_x;
        const bool inside = sy >= 0 && sy < height && sx >= 0 && sx < width;
        out[y * width + x] = inside ? plane[sy * width + sx] : std::uint8_t{0};
      }
    }
  }
}

inline void check_single_image(const Tensor<std::uint8_t>& image, const std::string& where) {
  if (!image.defined() || image.ndim() != 3) {
    throw ValueError(where + ": expected one image [C, H, W], got " +
                     (image.defined() ? "shape " + to_string(image.shape()) : "undefined tensor"));
  }
}

inline Tensor<std::uint8_t> augmented_copy(const Tensor<std::uint8_t>& image, std::int64_t padding,
                                           const AugmentationDraw& draw) {
  const auto src = detail::copy_contiguous(image);
  auto out = Tensor<std::uint8_t>::empty(src.shape());
  augment_image(src.data(), src.size(0), src.size(1), src.size(2), padding, draw, out.data());
  return out;
}

}  // namespace detail

// The augmentation of dataset sample `index` in `epoch`: crop offsets uniform in [0, 2 * padding]
// when random_crop (else `padding`, the uncropped centre), a flip with probability 1/2 when
// horizontal_flip. Depends on (seed, epoch, index) only.
inline AugmentationDraw draw_augmentation(std::uint64_t seed, std::int64_t epoch,
                                          std::int64_t index, bool random_crop,
                                          std::int64_t padding, bool horizontal_flip) {
  if (padding < 0) {
    throw ValueError("draw_augmentation: crop padding must be >= 0, got " +
                     std::to_string(padding));
  }
  const Generator gen(detail::loader_stream_key(seed, epoch, detail::LoaderStream::augmentation));
  const auto counter = 2 * static_cast<std::uint64_t>(index);
  const auto span = 2 * padding + 1;
  AugmentationDraw draw{padding, padding, false};
  if (random_crop) {
    draw.crop_top = detail::scale_uniform(detail::uniform_at(gen, counter, 0), span);
    draw.crop_left = detail::scale_uniform(detail::uniform_at(gen, counter, 1), span);
  }
  if (horizontal_flip) draw.flip = detail::uniform_at(gen, counter + 1, 0) < 0.5;
  return draw;
}

// The [C, H, W] image zero-padded by `padding` on every side, then cut to its H x W window whose
// top-left corner is (top, left) in the padded image; top and left must lie in [0, 2 * padding].
inline Tensor<std::uint8_t> random_crop(const Tensor<std::uint8_t>& image, std::int64_t padding,
                                        std::int64_t top, std::int64_t left) {
  detail::check_single_image(image, "random_crop");
  if (padding < 0) {
    throw ValueError("random_crop: padding must be >= 0, got " + std::to_string(padding));
  }
  if (top < 0 || top > 2 * padding || left < 0 || left > 2 * padding) {
    throw ValueError("random_crop: window corner (" + std::to_string(top) + ", " +
                     std::to_string(left) + ") lies outside [0, " + std::to_string(2 * padding) +
                     "] for padding " + std::to_string(padding));
  }
  return detail::augmented_copy(image, padding, AugmentationDraw{top, left, false});
}

// The [C, H, W] image mirrored left to right.
inline Tensor<std::uint8_t> horizontal_flip(const Tensor<std::uint8_t>& image) {
  detail::check_single_image(image, "horizontal_flip");
  return detail::augmented_copy(image, 0, AugmentationDraw{0, 0, true});
}

}  // namespace soda
