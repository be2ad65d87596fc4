// soda/data/dataset.hpp: ImageDataset's invariant checks, subset by indices and concatenation,
// compared image by image with the source set.
#include <doctest/doctest.h>

#include <soda/soda.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "scratch.hpp"

namespace {

// n images of shape [2, 3, 4] whose bytes encode (seed, image, position), labels (seed + i) % 3.
soda::ImageDataset numbered_set(std::int64_t n, std::uint8_t seed) {
  soda::ImageDataset set{soda::Tensor<std::uint8_t>::empty({n, 2, 3, 4}),
                         soda::Tensor<std::int64_t>::empty({n}),
                         3,
                         {"a", "b", "c"}};
  for (std::int64_t i = 0; i < n; ++i) {
    set.labels.data()[i] = (seed + i) % 3;
    for (std::int64_t p = 0; p < 24; ++p) {
      set.images.data()[i * 24 + p] = static_cast<std::uint8_t>(seed * 100 + i * 24 + p);
    }
  }
  return set;
}

// Image `i` of `a` equals image `j` of `b`, pixel by pixel, and so do their labels.
bool same_image(const soda::ImageDataset& a, std::int64_t i, const soda::ImageDataset& b,
                std::int64_t j) {
  bool same = a.labels.at({i}) == b.labels.at({j});
  for (std::int64_t c = 0; c < 2; ++c)
    for (std::int64_t y = 0; y < 3; ++y)
      for (std::int64_t x = 0; x < 4; ++x)
        same = same && a.images.at({i, c, y, x}) == b.images.at({j, c, y, x});
  return same;
}

}  // namespace

TEST_SUITE("data/dataset") {
  TEST_CASE("size is the number of labels; a default set is empty") {
    CHECK(soda::ImageDataset{}.size() == 0);
    CHECK(numbered_set(5, 0).size() == 5);
  }

  TEST_CASE("subset takes images in the order given, with repeats and negative indices") {
    const auto set = numbered_set(5, 1);
    const auto sub = soda::subset(set, {3, 0, -1, 3});
    CHECK(sub.images.shape() == soda::Shape{4, 2, 3, 4});
    CHECK(sub.classes == 3);
    CHECK(sub.class_names == set.class_names);
    CHECK(same_image(sub, 0, set, 3));
    CHECK(same_image(sub, 1, set, 0));
    CHECK(same_image(sub, 2, set, 4));
    CHECK(same_image(sub, 3, set, 3));
    // A copy: writing to the subset leaves the source alone.
    sub.images.data()[0] = 0;
    CHECK(set.images.at({3, 0, 0, 0}) == static_cast<std::uint8_t>(100 + 3 * 24));

    const auto none = soda::subset(set, {});
    CHECK(none.size() == 0);
    CHECK(none.images.shape() == soda::Shape{0, 2, 3, 4});
  }

  TEST_CASE("subset reads non-contiguous (channels-last) images by their strides") {
    const auto set = numbered_set(3, 2);
    // The same values stored as [N, H, W, C] and viewed as [N, C, H, W].
    auto channels_last = soda::Tensor<std::uint8_t>::empty({3, 3, 4, 2});
    for (std::int64_t i = 0; i < 3; ++i)
      for (std::int64_t c = 0; c < 2; ++c)
        for (std::int64_t y = 0; y < 3; ++y)
          for (std::int64_t x = 0; x < 4; ++x)
            channels_last.at({i, y, x, c}) = set.images.at({i, c, y, x});
    soda::ImageDataset strided = set;
    strided.images = channels_last.view_with({3, 2, 3, 4}, {24, 1, 8, 2}, 0);
    REQUIRE(!strided.images.is_contiguous());
    const auto sub = soda::subset(strided, {2, 1});
    CHECK(same_image(sub, 0, set, 2));
    CHECK(same_image(sub, 1, set, 1));
  }

  TEST_CASE("subset rejects an index out of bounds, naming it") {
    const auto set = numbered_set(4, 0);
    const auto message = scratch::error_message<soda::IndexError>([&] {
      soda::subset(set, {1, 4});
    });
    CHECK(scratch::mentions(message, {"subset", "index 4", "4 images"}));
    CHECK_THROWS_AS(soda::subset(set, {-5}), soda::IndexError);
  }

  TEST_CASE("concatenate puts sets one after another and fills in missing class names") {
    const auto a = numbered_set(2, 1);
    auto b = numbered_set(3, 2);
    b.class_names.clear();
    const auto all = soda::concatenate({b, a});
    CHECK(all.size() == 5);
    CHECK(all.images.shape() == soda::Shape{5, 2, 3, 4});
    CHECK(all.class_names == a.class_names);
    for (std::int64_t i = 0; i < 3; ++i) CHECK(same_image(all, i, b, i));
    for (std::int64_t i = 0; i < 2; ++i) CHECK(same_image(all, 3 + i, a, i));
    const auto one = soda::concatenate({a});
    CHECK(same_image(one, 1, a, 1));
  }

  TEST_CASE("concatenate rejects sets that do not fit together") {
    const auto a = numbered_set(2, 1);
    CHECK_THROWS_AS(soda::concatenate({}), soda::ValueError);

    soda::ImageDataset wide{soda::Tensor<std::uint8_t>::empty({1, 2, 3, 5}),
                            soda::Tensor<std::int64_t>(soda::Shape{1}, {0}),
                            3,
                            {}};
    const auto shape = scratch::error_message<soda::ShapeError>([&] {
      soda::concatenate({a, wide});
    });
    CHECK(scratch::mentions(shape, {"set 1", "[2, 3, 5]", "[2, 3, 4]"}));

    auto more_classes = numbered_set(1, 0);
    more_classes.classes = 4;
    more_classes.class_names.push_back("d");
    const auto classes = scratch::error_message<soda::ValueError>([&] {
      soda::concatenate({a, more_classes});
    });
    CHECK(scratch::mentions(classes, {"set 1", "4 classes", "3"}));

    auto renamed = numbered_set(1, 0);
    renamed.class_names[0] = "z";
    CHECK_THROWS_AS(soda::concatenate({a, renamed}), soda::ValueError);
  }

  TEST_CASE("check_image_dataset names the broken invariant") {
    auto set = numbered_set(3, 0);
    CHECK_NOTHROW(soda::check_image_dataset(set, "here"));

    auto bad_label = numbered_set(3, 0);
    bad_label.labels.data()[2] = 3;
    const auto label = scratch::error_message<soda::ValueError>(
        [&] { soda::check_image_dataset(bad_label, "here"); });
    CHECK(scratch::mentions(label, {"here", "label 3", "image 2", "[0, 3)"}));

    auto short_labels = numbered_set(3, 0);
    short_labels.labels = soda::Tensor<std::int64_t>(soda::Shape{2}, {0, 1});
    CHECK_THROWS_AS(soda::check_image_dataset(short_labels, "here"), soda::ValueError);

    auto flat = numbered_set(3, 0);
    flat.images = flat.images.view_with({3, 24}, {24, 1}, 0);
    const auto rank =
        scratch::error_message<soda::ValueError>([&] { soda::check_image_dataset(flat, "here"); });
    CHECK(scratch::mentions(rank, {"[N, C, H, W]", "[3, 24]"}));

    auto names = numbered_set(3, 0);
    names.class_names.pop_back();
    CHECK_THROWS_AS(soda::check_image_dataset(names, "here"), soda::ValueError);
    CHECK_THROWS_AS(soda::check_image_dataset(soda::ImageDataset{}, "here"), soda::ValueError);
  }
}
