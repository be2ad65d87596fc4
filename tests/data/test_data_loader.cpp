// soda/data/data_loader.hpp: each sample once per epoch, orders fixed by (seed, epoch), prefetch
// invisible in the results, batch-size changes mid-epoch, normalisation by hand, and errors.
#include <doctest/doctest.h>

#include <soda/soda.hpp>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace {

struct Epoch {
  std::vector<std::int64_t> indices;  // all batches' indices in serving order
  std::vector<std::int64_t> sizes;    // batch sizes
  std::vector<std::int64_t> labels;
  std::vector<float> pixels;
};

Epoch drain(soda::DataLoader& loader) {
  Epoch epoch;
  while (auto batch = loader.next()) {
    const auto b = static_cast<std::int64_t>(batch->indices.size());
    REQUIRE(batch->labels.numel() == b);
    REQUIRE(batch->images.size(0) == b);
    epoch.sizes.push_back(b);
    epoch.indices.insert(epoch.indices.end(), batch->indices.begin(), batch->indices.end());
    epoch.labels.insert(epoch.labels.end(), batch->labels.data(), batch->labels.data() + b);
    epoch.pixels.insert(epoch.pixels.end(), batch->images.data(),
                        batch->images.data() + batch->images.numel());
  }
  return epoch;
}

Epoch run_epoch(const soda::ImageDataset& data, const soda::DataLoaderOptions& options,
                std::int64_t epoch) {
  soda::DataLoader loader(data, options);
  loader.start_epoch(epoch);
  return drain(loader);
}

std::vector<std::int64_t> sorted(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::int64_t> range(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), std::int64_t{0});
  return v;
}

soda::DataLoaderOptions options_with(std::int64_t batch_size, bool prefetch = true) {
  soda::DataLoaderOptions options;
  options.batch_size = batch_size;
  options.seed = 42;
  options.prefetch = prefetch;
  return options;
}

}  // namespace

TEST_SUITE("data/data_loader") {
  TEST_CASE("every sample once per epoch, the last batch partial unless drop_last") {
    const auto data = soda::make_synthetic_images(37, 3, 1, 4, 4, 0);
    for (const bool prefetch : {true, false}) {
      auto options = options_with(8, prefetch);
      soda::DataLoader loader(data, options);
      CHECK(loader.batches_per_epoch() == 5);
      const auto all = drain(loader);
      CHECK(all.sizes == std::vector<std::int64_t>{8, 8, 8, 8, 5});
      CHECK(sorted(all.indices) == range(37));
      CHECK(loader.position() == 37);
      CHECK_FALSE(loader.next().has_value());

      options.drop_last = true;
      soda::DataLoader dropping(data, options);
      CHECK(dropping.batches_per_epoch() == 4);
      const auto kept = drain(dropping);
      CHECK(kept.sizes == std::vector<std::int64_t>{8, 8, 8, 8});
      auto unique = sorted(kept.indices);
      CHECK(std::unique(unique.begin(), unique.end()) == unique.end());
      CHECK(unique.size() == 32);
    }
  }

  TEST_CASE("labels and plain pixels are those of the served indices") {
    const auto data = soda::make_synthetic_images(20, 4, 2, 3, 5, 9);
    const auto epoch = run_epoch(data, options_with(6), 1);
    constexpr std::int64_t pixels = 2 * 3 * 5;
    for (std::size_t k = 0; k < epoch.indices.size(); ++k) {
      const auto index = epoch.indices[k];
      CHECK(epoch.labels[k] == data.labels.data()[index]);
      bool equal = true;
      for (std::int64_t p = 0; p < pixels; ++p) {
        const float want = static_cast<float>(data.images.data()[index * pixels + p]) / 255.0f;
        equal = equal && epoch.pixels[k * pixels + static_cast<std::size_t>(p)] == want;
      }
      CHECK(equal);
    }
  }

  TEST_CASE("an epoch's order and pixels depend on (seed, epoch) only") {
    const auto data = soda::make_synthetic_images(50, 5, 3, 6, 6, 2);
    auto options = options_with(7);
    options.random_crop = true;
    options.crop_padding = 2;
    options.horizontal_flip = true;
    const auto fresh = run_epoch(data, options, 3);
    // The same epoch reached after others, and restarted mid-way, is the same.
    soda::DataLoader loader(data, options);
    for (const std::int64_t e : {0, 1, 2}) {
      loader.start_epoch(e);
      drain(loader);
    }
    loader.start_epoch(3);
    loader.next();
    loader.start_epoch(3);
    const auto again = drain(loader);
    CHECK(again.indices == fresh.indices);
    CHECK(again.pixels == fresh.pixels);

    const auto other_epoch = run_epoch(data, options, 4);
    CHECK(other_epoch.indices != fresh.indices);
    CHECK(sorted(other_epoch.indices) == range(50));
    options.seed = 43;
    CHECK(run_epoch(data, options, 3).indices != fresh.indices);
    options.shuffle = false;
    CHECK(run_epoch(data, options, 3).indices == range(50));
  }

  TEST_CASE("prefetch on and off give identical batches") {
    const auto data = soda::make_synthetic_images(45, 3, 3, 8, 8, 4);
    auto options = options_with(10);
    options.random_crop = true;
    options.horizontal_flip = true;
    options.mean = {0.4f, 0.5f, 0.6f};
    options.stddev = {0.2f, 0.3f, 0.25f};
    for (const std::int64_t e : {0, 5}) {
      options.prefetch = true;
      const auto with = run_epoch(data, options, e);
      options.prefetch = false;
      const auto without = run_epoch(data, options, e);
      CHECK(with.indices == without.indices);
      CHECK(with.sizes == without.sizes);
      CHECK(with.labels == without.labels);
      CHECK(with.pixels == without.pixels);
    }
  }

  TEST_CASE("seek resumes mid-epoch with the batches an uninterrupted run serves") {
    const auto data = soda::make_synthetic_images(45, 3, 3, 8, 8, 4);
    auto options = options_with(10);
    options.random_crop = true;
    options.horizontal_flip = true;
    const auto whole = run_epoch(data, options, 3);
    soda::DataLoader resumed(data, options);
    resumed.seek(3, 20);
    CHECK(resumed.epoch() == 3);
    CHECK(resumed.position() == 20);
    const auto rest = drain(resumed);
    CHECK(rest.indices ==
          std::vector<std::int64_t>(whole.indices.begin() + 20, whole.indices.end()));
    const auto pixels_per_sample = static_cast<std::ptrdiff_t>(3 * 8 * 8);
    CHECK(rest.pixels ==
          std::vector<float>(whole.pixels.begin() + 20 * pixels_per_sample, whole.pixels.end()));
    CHECK_THROWS_AS(resumed.seek(0, 46), soda::ValueError);
    CHECK_THROWS_AS(resumed.seek(0, -1), soda::ValueError);
  }

  TEST_CASE("set_batch_size mid-epoch neither repeats nor skips a sample") {
    const auto data = soda::make_synthetic_images(53, 3, 1, 4, 4, 6);
    for (const bool prefetch : {true, false}) {
      auto options = options_with(8, prefetch);
      options.horizontal_flip = true;
      const auto reference = run_epoch(data, options, 2);

      soda::DataLoader loader(data, options);
      loader.start_epoch(2);
      Epoch served;
      std::vector<std::int64_t> sizes;
      const auto take = [&](std::int64_t batches) {
        for (std::int64_t i = 0; i < batches; ++i) {
          auto batch = loader.next();
          REQUIRE(batch.has_value());
          sizes.push_back(static_cast<std::int64_t>(batch->indices.size()));
          served.indices.insert(served.indices.end(), batch->indices.begin(), batch->indices.end());
          served.pixels.insert(served.pixels.end(), batch->images.data(),
                               batch->images.data() + batch->images.numel());
        }
      };
      take(2);
      CHECK(loader.position() == 16);
      loader.set_batch_size(5);
      CHECK(loader.batch_size() == 5);
      CHECK(loader.position() == 16);
      take(3);
      loader.set_batch_size(20);
      const auto rest = drain(loader);
      served.indices.insert(served.indices.end(), rest.indices.begin(), rest.indices.end());
      served.pixels.insert(served.pixels.end(), rest.pixels.begin(), rest.pixels.end());
      sizes.insert(sizes.end(), rest.sizes.begin(), rest.sizes.end());
      CHECK(sizes == std::vector<std::int64_t>{8, 8, 5, 5, 5, 20, 2});
      CHECK(served.indices == reference.indices);
      CHECK(served.pixels == reference.pixels);
      CHECK(sorted(served.indices) == range(53));
    }
  }

  TEST_CASE("set_batch_size with drop_last stops once fewer than a batch remain") {
    const auto data = soda::make_synthetic_images(30, 3, 1, 2, 2, 6);
    auto options = options_with(10);
    options.drop_last = true;
    soda::DataLoader loader(data, options);
    CHECK(loader.next()->indices.size() == 10);
    loader.set_batch_size(15);
    CHECK(loader.batches_per_epoch() == 2);
    CHECK(loader.next()->indices.size() == 15);
    CHECK_FALSE(loader.next().has_value());  // 5 remain
    loader.set_batch_size(5);
    CHECK(loader.next()->indices.size() == 5);
    CHECK_FALSE(loader.next().has_value());
  }

  TEST_CASE("normalisation matches a hand computation per channel") {
    // One image, 2 channels of 1 x 3 pixels.
    soda::ImageDataset data{soda::Tensor<std::uint8_t>({1, 2, 1, 3}, {0, 51, 255, 102, 204, 153}),
                            soda::Tensor<std::int64_t>({1}, {1}),
                            2,
                            {}};
    soda::DataLoaderOptions options;
    options.batch_size = 4;
    options.mean = {0.5f, 0.25f};
    options.stddev = {0.25f, 0.5f};
    soda::DataLoader loader(data, options);
    const auto batch = loader.next();
    REQUIRE(batch.has_value());
    CHECK(batch->images.shape() == soda::Shape{1, 2, 1, 3});
    CHECK(batch->labels.data()[0] == 1);
    // (v / 255 - mean) / stddev: channel 0: (0 - .5)/.25, (.2 - .5)/.25, (1 - .5)/.25;
    // channel 1: (.4 - .25)/.5, (.8 - .25)/.5, (.6 - .25)/.5.
    const std::vector<double> expected{-2.0, -1.2, 2.0, 0.3, 1.1, 0.7};
    for (std::size_t p = 0; p < expected.size(); ++p) {
      CHECK(batch->images.data()[p] == doctest::Approx(expected[p]).epsilon(1e-6));
    }
    // Only a mean, or only a stddev, applies just that part.
    options.stddev.clear();
    soda::DataLoader mean_only(data, options);
    CHECK(mean_only.next()->images.data()[0] == doctest::Approx(-0.5));
  }

  TEST_CASE("start_epoch and set_batch_size drop a prefetched batch; the loader moves and ends") {
    const auto data = soda::make_synthetic_images(24, 2, 1, 4, 4, 8);
    auto options = options_with(4);
    soda::DataLoader loader(data, options);
    loader.next();             // batch 2 of epoch 0 is now being prefetched
    loader.start_epoch(1);     // ... and must not be served in epoch 1
    loader.set_batch_size(4);  // unchanged size: nothing to redo
    const auto epoch1 = drain(loader);
    CHECK(epoch1.indices == run_epoch(data, options, 1).indices);

    soda::DataLoader moved(std::move(loader));
    moved.start_epoch(0);
    CHECK(moved.next().has_value());
    { soda::DataLoader abandoned(data, options); }  // destroyed with a batch in flight
    {
      soda::DataLoader empty(soda::make_synthetic_images(0, 2, 1, 4, 4, 0), options);
      CHECK(empty.batches_per_epoch() == 0);
      CHECK_FALSE(empty.next().has_value());
    }
  }

  TEST_CASE("bad options and data sets raise ValueError") {
    const auto data = soda::make_synthetic_images(10, 2, 3, 4, 4, 0);
    const auto rejects = [&](soda::DataLoaderOptions options, const char* fragment) {
      CHECK_THROWS_WITH_AS(soda::DataLoader(data, options), doctest::Contains(fragment),
                           soda::ValueError);
    };
    auto options = options_with(0);
    rejects(options, "batch_size must be positive");
    options.batch_size = -3;
    rejects(options, "batch_size must be positive");
    options = options_with(4);
    options.mean = {0.5f, 0.5f};
    rejects(options, "mean has 2 values but the images have 3 channels");
    options = options_with(4);
    options.stddev = {0.5f};
    rejects(options, "stddev has 1 values");
    options.stddev = {0.5f, 0.0f, 0.5f};
    rejects(options, "stddev of channel 1 must be positive");
    options = options_with(4);
    options.crop_padding = -1;
    rejects(options, "crop_padding must be >= 0");

    soda::DataLoader loader(data, options_with(4));
    CHECK_THROWS_AS(loader.set_batch_size(0), soda::ValueError);
    CHECK(loader.batch_size() == 4);

    auto broken = data;
    broken.labels = soda::Tensor<std::int64_t>({3}, {0, 1, 0});
    CHECK_THROWS_AS(soda::DataLoader(broken, options_with(4)), soda::ValueError);
  }
}
