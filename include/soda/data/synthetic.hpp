// A synthetic, class-conditional image set for tests and download-free examples: each class is a
// fixed smooth pattern; each image is its class's pattern, shifted a few pixels, plus noise.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/generator.hpp"
#include "soda/core/parallel.hpp"
#include "soda/data/dataset.hpp"

namespace soda {

// The class patterns come from this fixed key, not from the caller's seed, so sets drawn with
// different seeds (a training and a test set, say) pose the same task.
inline constexpr std::uint64_t synthetic_pattern_key = 0x50da'da7a'5eedULL;

namespace detail {

struct SyntheticLayout {
  std::int64_t classes, channels, height, width;
  std::int64_t max_shift;  // images are shifted by up to this many pixels along each axis
  std::int64_t padded_height() const { return height + 2 * max_shift; }
  std::int64_t padded_width() const { return width + 2 * max_shift; }
};

// Each (class, channel) pattern is a sum of three plane waves of at most 1.5 cycles across the
// image, scaled to peak at ±1, on a grid padded by max_shift on every side (so a shift is a crop).
inline std::vector<float> synthetic_patterns(const SyntheticLayout& layout) {
  constexpr int waves = 3;
  constexpr double two_pi = 6.283185307179586;
  const Generator gen(synthetic_pattern_key);
  const auto ph = layout.padded_height(), pw = layout.padded_width();
  std::vector<float> patterns(static_cast<std::size_t>(layout.classes * layout.channels * ph * pw));
  std::vector<double> grid(static_cast<std::size_t>(ph * pw));
  for (std::int64_t plane = 0; plane < layout.classes * layout.channels; ++plane) {
    std::fill(grid.begin(), grid.end(), 0.0);
    for (int w = 0; w < waves; ++w) {
      const auto draw = [&](int k) {
        return uniform_at(gen, 0, static_cast<std::uint64_t>((plane * waves + w) * 4 + k));
      };
      const double fy = (2 * draw(0) - 1) * 1.5 / static_cast<double>(layout.height);
      const double fx = (2 * draw(1) - 1) * 1.5 / static_cast<double>(layout.width);
      const double phase = two_pi * draw(2);
      const double amplitude = 0.5 + 0.5 * draw(3);
      for (std::int64_t y = 0; y < ph; ++y) {
        for (std::int64_t x = 0; x < pw; ++x) {
          grid[static_cast<std::size_t>(y * pw + x)] +=
              amplitude *
              std::cos(two_pi * (fy * static_cast<double>(y) + fx * static_cast<double>(x)) +
                       phase);
        }
      }
    }
    double peak = 1e-12;
    for (const auto v : grid) peak = std::max(peak, std::abs(v));
    for (std::size_t i = 0; i < grid.size(); ++i) {
      patterns[static_cast<std::size_t>(plane) * grid.size() + i] =
          static_cast<float>(grid[i] / peak);
    }
  }
  return patterns;
}

// Labels 0..classes-1 in equal counts (the first count % classes classes get one more), in an
// order shuffled by `gen`.
inline std::vector<std::int64_t> balanced_shuffled_labels(std::int64_t count, std::int64_t classes,
                                                          Generator& gen) {
  const auto first = gen.reserve(static_cast<std::uint64_t>((count + 1) / 2));
  std::vector<std::int64_t> order(static_cast<std::size_t>(count));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::vector<double> keys(order.size());
  for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = uniform_at(gen, first, i);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) {
    return keys[static_cast<std::size_t>(a)] < keys[static_cast<std::size_t>(b)];
  });
  std::vector<std::int64_t> labels(order.size());
  for (std::size_t j = 0; j < order.size(); ++j) {
    labels[static_cast<std::size_t>(order[j])] = static_cast<std::int64_t>(j) % classes;
  }
  return labels;
}

}  // namespace detail

// `count` images [count, channels, height, width] of `classes` classes in equal numbers (shuffled).
// Pixel = 128 + 64·pattern(class, channel) shifted by up to max(1, min(height, width) / 10) pixels
// + a per-image brightness offset in [-16, 16] + Gaussian noise of standard deviation 24, rounded
// and clamped to 0..255. The same arguments give the same set; the seed changes the images, not
// the class patterns. A nearest-class-mean classifier gets most of it right; a small CNN more.
inline ImageDataset make_synthetic_images(std::int64_t count, std::int64_t classes,
                                          std::int64_t channels, std::int64_t height,
                                          std::int64_t width, std::uint64_t seed) {
  if (count < 0 || classes < 1 || channels < 1 || height < 1 || width < 1) {
    throw ValueError(
        "make_synthetic_images: need count >= 0 and classes, channels, height, width "
        ">= 1; got count " +
        std::to_string(count) + ", classes " + std::to_string(classes) + ", channels " +
        std::to_string(channels) + ", height " + std::to_string(height) + ", width " +
        std::to_string(width));
  }
  const detail::SyntheticLayout layout{classes, channels, height, width,
                                       std::max<std::int64_t>(1, std::min(height, width) / 10)};
  const auto patterns = detail::synthetic_patterns(layout);

  Generator gen(seed);
  const auto labels = detail::balanced_shuffled_labels(count, classes, gen);
  const auto per_image_first = gen.reserve(static_cast<std::uint64_t>(3 * count + 1) / 2);
  const auto pixels = channels * height * width;
  const auto noise_first = gen.reserve(static_cast<std::uint64_t>(count * pixels + 1) / 2);

  std::vector<std::string> names;
  for (std::int64_t c = 0; c < classes; ++c) names.push_back("pattern " + std::to_string(c));
  ImageDataset out{Tensor<std::uint8_t>::empty({count, channels, height, width}),
                   Tensor<std::int64_t>(Shape{count}, labels), classes, std::move(names)};
  std::uint8_t* images = out.images.data();
  const auto span = 2 * layout.max_shift + 1;
  const auto ph = layout.padded_height(), pw = layout.padded_width();
  detail::parallel_for(count, 64, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) {
      const auto draw = [&](std::int64_t k) {
        return detail::uniform_at(gen, per_image_first, static_cast<std::uint64_t>(3 * i + k));
      };
      const double brightness = 32 * draw(0) - 16;
      const auto dy =
          std::min(span - 1, static_cast<std::int64_t>(draw(1) * static_cast<double>(span)));
      const auto dx =
          std::min(span - 1, static_cast<std::int64_t>(draw(2) * static_cast<double>(span)));
      for (std::int64_t ch = 0; ch < channels; ++ch) {
        const float* plane =
            patterns.data() + (labels[static_cast<std::size_t>(i)] * channels + ch) * ph * pw;
        for (std::int64_t y = 0; y < height; ++y) {
          for (std::int64_t x = 0; x < width; ++x) {
            const auto pixel = (ch * height + y) * width + x;
            const double noise =
                detail::normal_at(gen, noise_first, static_cast<std::uint64_t>(i * pixels + pixel));
            const double value =
                128 + brightness + 64 * plane[(y + dy) * pw + (x + dx)] + 24 * noise;
            images[i * pixels + pixel] =
                static_cast<std::uint8_t>(std::clamp(std::round(value), 0.0, 255.0));
          }
        }
      }
    }
  });
  return out;
}

}  // namespace soda
