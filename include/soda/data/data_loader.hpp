// DataLoader: serves an ImageDataset in shuffled, augmented, normalised float batches, the next
// batch assembled on a worker thread meanwhile; everything is fixed by (seed, epoch) alone.
#pragma once

#include <algorithm>
#include <cstdint>
#include <future>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/generator.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/parallel.hpp"
#include "soda/core/tensor.hpp"
#include "soda/data/augmentation.hpp"
#include "soda/data/dataset.hpp"

namespace soda {

struct Batch {
  Tensor<float> images;               // [B, C, H, W], augmented and normalised
  Tensor<std::int64_t> labels;        // [B]
  std::vector<std::int64_t> indices;  // the dataset index of each image in the batch
};

struct DataLoaderOptions {
  std::int64_t batch_size = 128;
  bool shuffle = true;     // a fresh permutation each epoch, else dataset order
  bool drop_last = false;  // skip a final batch smaller than batch_size
  std::uint64_t seed = 0;
  bool random_crop = false;  // zero-pad by crop_padding, then take a random H x W window
  std::int64_t crop_padding = 4;
  bool horizontal_flip = false;  // mirror left to right with probability 1/2
  // Per channel, applied to pixel / 255 as (x - mean[c]) / stddev[c]; each empty = none.
  std::vector<float> mean, stddev;
  bool prefetch = true;  // assemble the next batch on a worker thread
};

namespace detail {

// What a batch is made from; shared, read-only, with any worker thread still assembling a batch.
struct LoaderSource {
  Tensor<std::uint8_t> images;  // contiguous [N, C, H, W]
  Tensor<std::int64_t> labels;  // contiguous [N]
  std::int64_t channels = 0, height = 0, width = 0;
  DataLoaderOptions options;
  std::vector<float> pixel_values;  // [C, 256]: the normalised float of each byte in channel c
};

inline void check_loader_options(const DataLoaderOptions& options, std::int64_t channels) {
  if (options.batch_size <= 0) {
    throw ValueError("DataLoader: batch_size must be positive, got " +
                     std::to_string(options.batch_size));
  }
  if (options.crop_padding < 0) {
    throw ValueError("DataLoader: crop_padding must be >= 0, got " +
                     std::to_string(options.crop_padding));
  }
  const auto check_size = [&](const std::vector<float>& values, const std::string& name) {
    if (!values.empty() && static_cast<std::int64_t>(values.size()) != channels) {
      throw ValueError("DataLoader: " + name + " has " + std::to_string(values.size()) +
                       " values but the images have " + std::to_string(channels) +
                       " channels (give one per channel, or none)");
    }
  };
  check_size(options.mean, "mean");
  check_size(options.stddev, "stddev");
  for (std::size_t c = 0; c < options.stddev.size(); ++c) {
    if (!(options.stddev[c] > 0.0f)) {
      throw ValueError("DataLoader: stddev of channel " + std::to_string(c) +
                       " must be positive, got " + std::to_string(options.stddev[c]));
    }
  }
}

inline std::shared_ptr<const LoaderSource> make_loader_source(const ImageDataset& data,
                                                              DataLoaderOptions options) {
  check_image_dataset(data, "DataLoader");
  auto source = std::make_shared<LoaderSource>();
  source->images = copy_contiguous(data.images);
  source->labels = copy_contiguous(data.labels);
  source->channels = data.images.size(1);
  source->height = data.images.size(2);
  source->width = data.images.size(3);
  check_loader_options(options, source->channels);
  source->pixel_values.resize(static_cast<std::size_t>(source->channels * 256));
  for (std::int64_t c = 0; c < source->channels; ++c) {
    const auto k = static_cast<std::size_t>(c);
    const float mean = options.mean.empty() ? 0.0f : options.mean[k];
    const float stddev = options.stddev.empty() ? 1.0f : options.stddev[k];
    for (int v = 0; v < 256; ++v) {
      source->pixel_values[k * 256 + static_cast<std::size_t>(v)] =
          (static_cast<float>(v) / 255.0f - mean) / stddev;
    }
  }
  source->options = std::move(options);
  return source;
}

// The order in which epoch `epoch` visits n samples: a Fisher-Yates shuffle driven by the
// counter-based generator keyed by (seed, epoch), or 0..n-1 without shuffle.
inline std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch,
                                             bool shuffle) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  if (!shuffle) return order;
  const Generator gen(loader_stream_key(seed, epoch, LoaderStream::shuffle));
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto draw = uniform_at(gen, 0, static_cast<std::uint64_t>(n - 1 - i));
    const auto j = scale_uniform(draw, i + 1);
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  return order;
}

// The batch of the given dataset indices in `epoch`: each image augmented by its own draw and
// normalised. Split across OpenMP threads only when `use_threads`; the result is the same.
inline Batch assemble_batch(const LoaderSource& source, std::vector<std::int64_t> indices,
                            std::int64_t epoch, bool use_threads) {
  const auto count = static_cast<std::int64_t>(indices.size());
  const auto channels = source.channels, height = source.height, width = source.width;
  const auto pixels = channels * height * width;
  const auto& options = source.options;
  const bool augment = options.random_crop || options.horizontal_flip;
  Batch batch{Tensor<float>::empty({count, channels, height, width}),
              Tensor<std::int64_t>::empty({count}), std::move(indices)};
  const std::uint8_t* images = source.images.data();
  const std::int64_t* labels = source.labels.data();
  float* out = batch.images.data();
  std::int64_t* out_labels = batch.labels.data();
  const auto& sample_indices = batch.indices;
  const auto body = [&](std::int64_t lo, std::int64_t hi) {
    std::vector<std::uint8_t> scratch(static_cast<std::size_t>(augment ? pixels : 0));
    for (std::int64_t i = lo; i < hi; ++i) {
      const auto index = sample_indices[static_cast<std::size_t>(i)];
      out_labels[i] = labels[index];
      const std::uint8_t* image = images + index * pixels;
      if (augment) {
        const auto draw = draw_augmentation(options.seed, epoch, index, options.random_crop,
                                            options.crop_padding, options.horizontal_flip);
        augment_image(image, channels, height, width, options.crop_padding, draw, scratch.data());
        image = scratch.data();
      }
      for (std::int64_t c = 0; c < channels; ++c) {
        const float* values = source.pixel_values.data() + c * 256;
        const auto plane = c * height * width;
        for (std::int64_t p = 0; p < height * width; ++p) {
          out[i * pixels + plane + p] = values[image[plane + p]];
        }
      }
    }
  };
  if (use_threads) {
    parallel_for(count, 16, body);
  } else {
    body(0, count);
  }
  return batch;
}

}  // namespace detail

class DataLoader {
 public:
  // Checks the data set and options (ValueError on a bad one) and starts epoch 0.
  DataLoader(ImageDataset data, DataLoaderOptions options)
      : source_(detail::make_loader_source(data, std::move(options))),
        batch_size_(source_->options.batch_size) {
    start_epoch(0);
  }

  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;
  DataLoader(DataLoader&&) = default;
  DataLoader& operator=(DataLoader&&) = default;
  ~DataLoader() { discard_prefetched(); }

  // Rewinds to the start of epoch `epoch`, whose order and augmentations depend on (seed, epoch)
  // only, never on the epochs served before.
  void start_epoch(std::int64_t epoch) {
    discard_prefetched();
    epoch_ = epoch;
    position_ = 0;
    order_ = detail::epoch_order(size(), source_->options.seed, epoch, source_->options.shuffle);
    prefetch_next();
  }

  // The next batch of this epoch, or nothing once the epoch is over (with drop_last, once fewer
  // than batch_size samples remain).
  std::optional<Batch> next() {
    const auto count = next_batch_count();
    if (count == 0) return std::nullopt;
    std::optional<Batch> batch;
    if (prefetched_ && prefetched_->epoch == epoch_ && prefetched_->start == position_ &&
        prefetched_->count == count) {
      auto pending = std::move(prefetched_->batch);
      prefetched_.reset();
      batch = pending.get();
    } else {
      discard_prefetched();
      batch = detail::assemble_batch(*source_, slice(position_, count), epoch_, true);
    }
    position_ += count;
    prefetch_next();
    return batch;
  }

  // Batches in a whole epoch at the current batch size.
  std::int64_t batches_per_epoch() const {
    return source_->options.drop_last ? size() / batch_size_
                                      : (size() + batch_size_ - 1) / batch_size_;
  }

  std::int64_t batch_size() const { return batch_size_; }

  // Takes effect from the next batch; the epoch goes on where it was (nothing repeated or skipped).
  void set_batch_size(std::int64_t batch_size) {
    if (batch_size <= 0) {
      throw ValueError("DataLoader::set_batch_size: batch size must be positive, got " +
                       std::to_string(batch_size));
    }
    if (batch_size == batch_size_) return;
    discard_prefetched();
    batch_size_ = batch_size;
    prefetch_next();
  }

  // Jumps to sample `position` of epoch `epoch` (as if that many samples had been served), so a
  // resumed run continues with the very batches it would have seen.
  void seek(std::int64_t epoch, std::int64_t position) {
    if (position < 0 || position > size()) {
      throw ValueError("DataLoader::seek: position " + std::to_string(position) +
                       " is outside the data set of " + std::to_string(size()) + " samples");
    }
    start_epoch(epoch);
    discard_prefetched();
    position_ = position;
    prefetch_next();
  }

  // The seed of shuffling and augmentation; set_seed restarts the current epoch under a new one
  // (how a resumed run takes back the data order it had).
  std::uint64_t seed() const { return source_->options.seed; }
  void set_seed(std::uint64_t seed) {
    discard_prefetched();
    auto reseeded = std::make_shared<detail::LoaderSource>(*source_);  // tensors are shared
    reseeded->options.seed = seed;
    source_ = std::move(reseeded);
    start_epoch(epoch_);
  }

  // True once next() has nothing left to serve in this epoch.
  bool epoch_finished() const { return next_batch_count() == 0; }

  // Samples served so far in this epoch.
  std::int64_t position() const { return position_; }
  std::int64_t epoch() const { return epoch_; }
  // Samples in the data set.
  std::int64_t size() const { return source_->labels.numel(); }

 private:
  struct Prefetched {
    std::int64_t epoch, start, count;
    std::future<Batch> batch;
  };

  std::int64_t next_batch_count() const {
    const auto remaining = size() - position_;
    if (remaining <= 0) return 0;
    if (source_->options.drop_last && remaining < batch_size_) return 0;
    return std::min(batch_size_, remaining);
  }

  std::vector<std::int64_t> slice(std::int64_t start, std::int64_t count) const {
    return {order_.begin() + start, order_.begin() + start + count};
  }

  // Starts assembling the batch that next() will serve, unless prefetch is off or none is left.
  // The worker gets its own copy of the indices and shares only the read-only source.
  void prefetch_next() {
    const auto count = next_batch_count();
    if (!source_->options.prefetch || count == 0) return;
    auto task = [source = source_, indices = slice(position_, count), epoch = epoch_]() mutable {
      return detail::assemble_batch(*source, std::move(indices), epoch, false);
    };
    prefetched_ = Prefetched{epoch_, position_, count, std::async(std::launch::async, task)};
  }

  // Waits for any batch in flight and drops it (and any error it raised).
  void discard_prefetched() {
    if (!prefetched_) return;
    if (prefetched_->batch.valid()) prefetched_->batch.wait();
    prefetched_.reset();
  }

  std::shared_ptr<const detail::LoaderSource> source_;
  std::int64_t batch_size_;
  std::int64_t epoch_ = 0;
  std::int64_t position_ = 0;
  std::vector<std::int64_t> order_;
  std::optional<Prefetched> prefetched_;
};

}  // namespace soda
