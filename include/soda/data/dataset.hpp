// ImageDataset: a labelled image set held in memory (uint8 pixels [N, C, H, W], int64 labels [N]),
// with checks of its invariants, a subset by indices and the concatenation of compatible sets.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/shape.hpp"
#include "soda/core/tensor.hpp"

namespace soda {

struct ImageDataset {
  Tensor<std::uint8_t> images;  // [N, C, H, W]
  Tensor<std::int64_t> labels;  // [N], each in [0, classes)
  std::int64_t classes = 0;
  std::vector<std::string> class_names;  // empty, or one name per class

  std::int64_t size() const { return labels.defined() ? labels.numel() : 0; }
};

// Throws ValueError (naming `where`) unless images are [N, C, H, W], labels are [N] in
// [0, classes) and class_names is empty or has one name per class.
inline void check_image_dataset(const ImageDataset& set, const std::string& where) {
  if (!set.images.defined() || !set.labels.defined()) {
    throw ValueError(where + ": the data set has undefined images or labels");
  }
  if (set.images.ndim() != 4) {
    throw ValueError(where + ": images must be [N, C, H, W], got shape " +
                     to_string(set.images.shape()));
  }
  if (set.labels.ndim() != 1 || set.labels.size(0) != set.images.size(0)) {
    throw ValueError(where + ": labels of shape " + to_string(set.labels.shape()) +
                     " do not match images of shape " + to_string(set.images.shape()) +
                     " (expected [" + std::to_string(set.images.size(0)) + "])");
  }
  if (set.classes < 1) {
    throw ValueError(where + ": classes must be at least 1, got " + std::to_string(set.classes));
  }
  if (!set.class_names.empty() &&
      static_cast<std::int64_t>(set.class_names.size()) != set.classes) {
    throw ValueError(where + ": " + std::to_string(set.class_names.size()) + " class names for " +
                     std::to_string(set.classes) + " classes");
  }
  const auto labels = detail::copy_contiguous(set.labels);
  for (std::int64_t i = 0; i < labels.numel(); ++i) {
    const auto label = labels.data()[i];
    if (label < 0 || label >= set.classes) {
      throw ValueError(where + ": label " + std::to_string(label) + " of image " +
                       std::to_string(i) + " is outside [0, " + std::to_string(set.classes) + ")");
    }
  }
}

// The images and labels at `indices` (in that order; repeats allowed; negative counts from the
// end), as a new contiguous set with the same classes and names.
inline ImageDataset subset(const ImageDataset& set, const std::vector<std::int64_t>& indices) {
  check_image_dataset(set, "subset");
  const auto images = detail::copy_contiguous(set.images);
  const auto labels = detail::copy_contiguous(set.labels);
  const auto n = set.size();
  Shape shape = images.shape();
  const auto image_bytes = static_cast<std::size_t>(numel(Shape(shape.begin() + 1, shape.end())));
  shape[0] = static_cast<std::int64_t>(indices.size());
  ImageDataset out{Tensor<std::uint8_t>::empty(shape), Tensor<std::int64_t>::empty({shape[0]}),
                   set.classes, set.class_names};
  for (std::size_t i = 0; i < indices.size(); ++i) {
    auto k = indices[i];
    if (k < 0) k += n;
    if (k < 0 || k >= n) {
      throw IndexError("subset: index " + std::to_string(indices[i]) + " (position " +
                       std::to_string(i) + ") is out of bounds for a data set of " +
                       std::to_string(n) + " images");
    }
    std::memcpy(out.images.data() + i * image_bytes,
                images.data() + static_cast<std::size_t>(k) * image_bytes, image_bytes);
    out.labels.data()[i] = labels.data()[k];
  }
  return out;
}

// The sets one after another. They must agree on image shape [C, H, W], class count and class
// names (a set without names takes the others' names).
inline ImageDataset concatenate(const std::vector<ImageDataset>& sets) {
  if (sets.empty()) throw ValueError("concatenate: no data sets given");
  const auto& first = sets.front();
  const Shape image_shape(first.images.shape().begin() + 1, first.images.shape().end());
  std::int64_t total = 0;
  std::vector<std::string> names;
  for (std::size_t s = 0; s < sets.size(); ++s) {
    const auto& set = sets[s];
    const auto where = "concatenate (set " + std::to_string(s) + ")";
    check_image_dataset(set, where);
    const Shape shape(set.images.shape().begin() + 1, set.images.shape().end());
    if (shape != image_shape) {
      throw ShapeError(where + ": images of shape " + to_string(shape) + " vs " +
                       to_string(image_shape) + " in set 0");
    }
    if (set.classes != first.classes) {
      throw ValueError(where + ": " + std::to_string(set.classes) + " classes vs " +
                       std::to_string(first.classes) + " in set 0");
    }
    if (!set.class_names.empty()) {
      if (!names.empty() && set.class_names != names) {
        throw ValueError(where + ": class names differ from those of an earlier set");
      }
      names = set.class_names;
    }
    total += set.size();
  }

  Shape shape = first.images.shape();
  shape[0] = total;
  ImageDataset out{Tensor<std::uint8_t>::empty(shape), Tensor<std::int64_t>::empty({total}),
                   first.classes, std::move(names)};
  std::int64_t at = 0;
  const auto image_bytes = numel(image_shape);
  for (const auto& set : sets) {
    const auto images = detail::copy_contiguous(set.images);
    const auto labels = detail::copy_contiguous(set.labels);
    std::memcpy(out.images.data() + at * image_bytes, images.data(),
                static_cast<std::size_t>(images.numel()));
    std::memcpy(out.labels.data() + at, labels.data(),
                static_cast<std::size_t>(set.size()) * sizeof(std::int64_t));
    at += set.size();
  }
  return out;
}

}  // namespace soda
