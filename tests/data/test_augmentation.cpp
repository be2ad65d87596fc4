// soda/data/augmentation.hpp: the padded random crop and the horizontal flip against hand-made
// oracles, and the per-sample draws: in range, covering every offset, fixed by (seed, epoch,
// index).
#include <doctest/doctest.h>

#include <soda/soda.hpp>

#include <cstdint>
#include <set>
#include <utility>
#include <vector>

namespace {

soda::Tensor<std::uint8_t> image_of(soda::Shape shape, std::vector<std::uint8_t> values) {
  return soda::Tensor<std::uint8_t>(std::move(shape), std::move(values));
}

std::vector<std::uint8_t> values_of(const soda::Tensor<std::uint8_t>& t) {
  return {t.data(), t.data() + t.numel()};
}

}  // namespace

TEST_SUITE("data/augmentation") {
  TEST_CASE("random_crop: literal windows of a 2x2 image padded by 1") {
    const auto image = image_of({1, 2, 2}, {1, 2, 3, 4});
    // Padded: 0 0 0 0 / 0 1 2 0 / 0 3 4 0 / 0 0 0 0.
    CHECK(values_of(soda::random_crop(image, 1, 0, 0)) == std::vector<std::uint8_t>{0, 0, 0, 1});
    CHECK(values_of(soda::random_crop(image, 1, 1, 1)) == std::vector<std::uint8_t>{1, 2, 3, 4});
    CHECK(values_of(soda::random_crop(image, 1, 2, 2)) == std::vector<std::uint8_t>{4, 0, 0, 0});
    CHECK(values_of(soda::random_crop(image, 1, 1, 2)) == std::vector<std::uint8_t>{2, 0, 4, 0});
    CHECK(values_of(soda::random_crop(image, 1, 0, 1)) == std::vector<std::uint8_t>{0, 0, 1, 2});
    CHECK(values_of(soda::random_crop(image, 0, 0, 0)) == std::vector<std::uint8_t>{1, 2, 3, 4});
  }

  TEST_CASE("random_crop: every window of a padded multi-channel image matches an explicit pad") {
    constexpr std::int64_t c = 2, h = 3, w = 4, p = 2;
    std::vector<std::uint8_t> values(c * h * w);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::uint8_t>(i + 1);
    const auto image = image_of({c, h, w}, values);
    // Build the zero-padded image explicitly, then cut windows out of it.
    const std::int64_t ph = h + 2 * p, pw = w + 2 * p;
    std::vector<std::uint8_t> padded(c * ph * pw, 0);
    for (std::int64_t ch = 0; ch < c; ++ch) {
      for (std::int64_t y = 0; y < h; ++y) {
        for (std::int64_t x = 0; x < w; ++x) {
          padded[(ch * ph + y + p) * pw + x + p] = values[(ch * h + y) * w + x];
        }
      }
    }
    for (std::int64_t top = 0; top <= 2 * p; ++top) {
      for (std::int64_t left = 0; left <= 2 * p; ++left) {
        std::vector<std::uint8_t> expected;
        for (std::int64_t ch = 0; ch < c; ++ch) {
          for (std::int64_t y = 0; y < h; ++y) {
            for (std::int64_t x = 0; x < w; ++x) {
              expected.push_back(padded[(ch * ph + y + top) * pw + x + left]);
            }
          }
        }
        const auto crop = soda::random_crop(image, p, top, left);
        CHECK(crop.shape() == soda::Shape{c, h, w});
        CHECK(values_of(crop) == expected);
      }
    }
  }

  TEST_CASE("horizontal_flip mirrors each row exactly and is its own inverse") {
    const auto image = image_of({2, 2, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
    const auto flipped = soda::horizontal_flip(image);
    CHECK(values_of(flipped) == std::vector<std::uint8_t>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10});
    CHECK(values_of(soda::horizontal_flip(flipped)) == values_of(image));
  }

  TEST_CASE("draw_augmentation: offsets in [0, 2p], all of them occur, flips near half") {
    constexpr std::int64_t p = 3, draws = 4000;
    std::set<std::int64_t> tops, lefts;
    std::int64_t flips = 0;
    for (std::int64_t i = 0; i < draws; ++i) {
      const auto d = soda::draw_augmentation(7, 1, i, true, p, true);
      CHECK(d.crop_top >= 0);
      CHECK(d.crop_top <= 2 * p);
      CHECK(d.crop_left >= 0);
      CHECK(d.crop_left <= 2 * p);
      tops.insert(d.crop_top);
      lefts.insert(d.crop_left);
      flips += d.flip ? 1 : 0;
    }
    CHECK(tops.size() == 2 * p + 1);
    CHECK(lefts.size() == 2 * p + 1);
    CHECK(flips > draws * 45 / 100);
    CHECK(flips < draws * 55 / 100);
  }

  TEST_CASE("draw_augmentation depends on (seed, epoch, index) only") {
    const auto same = [](const soda::AugmentationDraw& a, const soda::AugmentationDraw& b) {
      return a.crop_top == b.crop_top && a.crop_left == b.crop_left && a.flip == b.flip;
    };
    int epoch_differs = 0, seed_differs = 0;
    for (std::int64_t i = 0; i < 50; ++i) {
      const auto d = soda::draw_augmentation(5, 2, i, true, 4, true);
      CHECK(same(d, soda::draw_augmentation(5, 2, i, true, 4, true)));
      epoch_differs += same(d, soda::draw_augmentation(5, 3, i, true, 4, true)) ? 0 : 1;
      seed_differs += same(d, soda::draw_augmentation(6, 2, i, true, 4, true)) ? 0 : 1;
    }
    CHECK(epoch_differs > 25);
    CHECK(seed_differs > 25);
    // Without crop or flip the draw is the identity view.
    const auto none = soda::draw_augmentation(5, 2, 9, false, 4, false);
    CHECK(none.crop_top == 4);
    CHECK(none.crop_left == 4);
    CHECK_FALSE(none.flip);
  }

  TEST_CASE("the loader's augmented images are the crop and flip of the drawn window") {
    const auto data = soda::make_synthetic_images(40, 4, 3, 8, 8, 3);
    soda::DataLoaderOptions options;
    options.batch_size = 16;
    options.seed = 11;
    options.random_crop = true;
    options.crop_padding = 2;
    options.horizontal_flip = true;
    soda::DataLoader loader(data, options);
    loader.start_epoch(4);
    int flipped = 0, shifted = 0;
    while (auto batch = loader.next()) {
      for (std::size_t b = 0; b < batch->indices.size(); ++b) {
        const auto index = batch->indices[b];
        const auto d = soda::draw_augmentation(11, 4, index, true, 2, true);
        flipped += d.flip ? 1 : 0;
        shifted += (d.crop_top != 2 || d.crop_left != 2) ? 1 : 0;
        const auto source = soda::detail::copy_contiguous(data.images);
        const auto image =
            image_of({3, 8, 8}, std::vector<std::uint8_t>(source.data() + index * 192,
                                                          source.data() + (index + 1) * 192));
        auto expected = soda::random_crop(image, 2, d.crop_top, d.crop_left);
        if (d.flip) expected = soda::horizontal_flip(expected);
        bool equal = true;
        for (std::int64_t p = 0; p < 192; ++p) {
          const float want = static_cast<float>(expected.data()[p]) / 255.0f;
          equal = equal && batch->images.data()[static_cast<std::int64_t>(b) * 192 + p] == want;
        }
        CHECK(equal);
      }
    }
    CHECK(flipped > 0);
    CHECK(shifted > 0);
  }

  TEST_CASE("augmented batches do not depend on the thread count") {
    const auto data = soda::make_synthetic_images(96, 3, 3, 8, 8, 1);
    soda::DataLoaderOptions options;
    options.batch_size = 96;
    options.random_crop = true;
    options.horizontal_flip = true;
    options.mean = {0.5f, 0.4f, 0.3f};
    options.stddev = {0.2f, 0.25f, 0.3f};
    options.prefetch = false;  // the caller's thread assembles, split over OpenMP threads
    const auto threads = soda::max_threads();
    const auto run = [&](int n) {
      soda::set_num_threads(n);
      soda::DataLoader loader(data, options);
      loader.start_epoch(2);
      auto batch = loader.next();
      REQUIRE(batch.has_value());
      return std::vector<float>(batch->images.data(), batch->images.data() + batch->images.numel());
    };
    const auto one = run(1);
    const auto two = run(2);
    soda::set_num_threads(threads);
    CHECK(one == two);
  }

  TEST_CASE("augmentation errors name the bad argument") {
    const auto image = image_of({1, 2, 2}, {1, 2, 3, 4});
    CHECK_THROWS_AS(soda::random_crop(image, -1, 0, 0), soda::ValueError);
    CHECK_THROWS_AS(soda::random_crop(image, 1, 3, 0), soda::ValueError);
    CHECK_THROWS_AS(soda::random_crop(image, 1, 0, -1), soda::ValueError);
    CHECK_THROWS_AS(soda::random_crop(image_of({2, 2}, {1, 2, 3, 4}), 1, 0, 0), soda::ValueError);
    CHECK_THROWS_AS(soda::horizontal_flip(image_of({4}, {1, 2, 3, 4})), soda::ValueError);
    CHECK_THROWS_AS(soda::draw_augmentation(0, 0, 0, true, -2, false), soda::ValueError);
    CHECK_THROWS_WITH_AS(soda::random_crop(image, 1, 5, 0), doctest::Contains("outside [0, 2]"),
                         soda::ValueError);
  }
}
