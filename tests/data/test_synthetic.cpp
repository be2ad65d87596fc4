// soda/data/synthetic.hpp: determinism by seed (and not by thread count), class balance, pixel
// statistics, and learnability shown by a nearest-class-mean classifier on a fresh seed.
#include <doctest/doctest.h>

#include <soda/soda.hpp>

#include <cstdint>
#include <vector>

namespace {

bool identical(const soda::ImageDataset& a, const soda::ImageDataset& b) {
  if (a.images.shape() != b.images.shape() || a.labels.shape() != b.labels.shape()) return false;
  for (std::int64_t i = 0; i < a.images.numel(); ++i)
    if (a.images.data()[i] != b.images.data()[i]) return false;
  for (std::int64_t i = 0; i < a.size(); ++i)
    if (a.labels.data()[i] != b.labels.data()[i]) return false;
  return true;
}

// Accuracy on `test` of the classifier that picks the class whose mean image (over `train`) is
// nearest in Euclidean distance.
double nearest_class_mean_accuracy(const soda::ImageDataset& train,
                                   const soda::ImageDataset& test) {
  const auto pixels = train.images.numel() / train.size();
  std::vector<double> means(static_cast<std::size_t>(train.classes * pixels), 0.0);
  std::vector<double> counts(static_cast<std::size_t>(train.classes), 0.0);
  for (std::int64_t i = 0; i < train.size(); ++i) {
    const auto label = train.labels.data()[i];
    counts[static_cast<std::size_t>(label)] += 1;
    for (std::int64_t p = 0; p < pixels; ++p)
      means[static_cast<std::size_t>(label * pixels + p)] += train.images.data()[i * pixels + p];
  }
  for (std::int64_t c = 0; c < train.classes; ++c)
    for (std::int64_t p = 0; p < pixels; ++p)
      means[static_cast<std::size_t>(c * pixels + p)] /= counts[static_cast<std::size_t>(c)];
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < test.size(); ++i) {
    std::int64_t best = -1;
    double best_distance = 0;
    for (std::int64_t c = 0; c < train.classes; ++c) {
      double distance = 0;
      for (std::int64_t p = 0; p < pixels; ++p) {
        const double d =
            test.images.data()[i * pixels + p] - means[static_cast<std::size_t>(c * pixels + p)];
        distance += d * d;
      }
      if (best < 0 || distance < best_distance) {
        best = c;
        best_distance = distance;
      }
    }
    correct += best == test.labels.data()[i];
  }
  return static_cast<double>(correct) / static_cast<double>(test.size());
}

}  // namespace

TEST_SUITE("data/synthetic") {
  TEST_CASE("shape, dtype, classes and a valid data set") {
    const auto set = soda::make_synthetic_images(50, 5, 3, 16, 12, 7);
    CHECK(set.images.shape() == soda::Shape{50, 3, 16, 12});
    CHECK(set.labels.shape() == soda::Shape{50});
    CHECK(set.classes == 5);
    CHECK(set.class_names.size() == 5);
    CHECK_NOTHROW(soda::check_image_dataset(set, "synthetic"));
    CHECK(soda::make_synthetic_images(0, 5, 1, 4, 4, 7).size() == 0);
  }

  TEST_CASE("the same seed gives the same set, whatever the thread count; another seed does not") {
    const auto a = soda::make_synthetic_images(300, 10, 3, 32, 32, 42);
    const int threads = soda::max_threads();
    soda::set_num_threads(1);
    const auto serial = soda::make_synthetic_images(300, 10, 3, 32, 32, 42);
    soda::set_num_threads(threads);
    CHECK(identical(a, serial));
    CHECK(identical(a, soda::make_synthetic_images(300, 10, 3, 32, 32, 42)));
    const auto other = soda::make_synthetic_images(300, 10, 3, 32, 32, 43);
    CHECK(!identical(a, other));
  }

  TEST_CASE("classes are balanced: counts differ by at most one, the extras going to low classes") {
    const auto set = soda::make_synthetic_images(103, 10, 1, 8, 8, 1);
    std::vector<std::int64_t> counts(10, 0);
    for (std::int64_t i = 0; i < set.size(); ++i)
      ++counts[static_cast<std::size_t>(set.labels.data()[i])];
    for (std::size_t c = 0; c < 10; ++c) CHECK(counts[c] == (c < 3 ? 11 : 10));
    // Shuffled: not simply 0, 1, 2, ... in order.
    std::int64_t in_order = 0;
    for (std::int64_t i = 0; i < set.size(); ++i) in_order += set.labels.data()[i] == i % 10;
    CHECK(in_order < 50);
  }

  TEST_CASE("pixels spread over the byte range around 128, with little clipping") {
    const auto set = soda::make_synthetic_images(200, 10, 3, 32, 32, 5);
    const auto n = set.images.numel();
    double sum = 0, clipped = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const auto v = set.images.data()[i];
      sum += v;
      clipped += v == 0 || v == 255;
    }
    CHECK(sum / static_cast<double>(n) == doctest::Approx(128).epsilon(0.05));
    CHECK(clipped / static_cast<double>(n) < 0.01);
  }

  TEST_CASE("learnable: nearest class mean from one seed beats 90% on another") {
    struct Case {
      std::int64_t classes, channels, height, width;
    };
    for (const auto& c : {Case{10, 3, 32, 32}, Case{10, 1, 28, 28}, Case{4, 1, 8, 8}}) {
      CAPTURE(c.classes);
      CAPTURE(c.channels);
      CAPTURE(c.height);
      const auto train =
          soda::make_synthetic_images(1000, c.classes, c.channels, c.height, c.width, 1);
      const auto test =
          soda::make_synthetic_images(500, c.classes, c.channels, c.height, c.width, 2);
      const double accuracy = nearest_class_mean_accuracy(train, test);
      MESSAGE("nearest-class-mean accuracy " << accuracy);
      CHECK(accuracy > 0.9);
    }
  }

  TEST_CASE("arguments out of range are rejected with the values given") {
    CHECK_THROWS_AS(soda::make_synthetic_images(-1, 10, 3, 32, 32, 0), soda::ValueError);
    CHECK_THROWS_AS(soda::make_synthetic_images(10, 0, 3, 32, 32, 0), soda::ValueError);
    CHECK_THROWS_AS(soda::make_synthetic_images(10, 10, 0, 32, 32, 0), soda::ValueError);
    CHECK_THROWS_AS(soda::make_synthetic_images(10, 10, 3, 32, 0, 0), soda::ValueError);
  }
}
