// soda/data/cifar10.hpp: reading fake CIFAR-10 batches, checked pixel by pixel against the bytes
// written, and one test per error (missing file, truncated file, bad label).
#include <doctest/doctest.h>

#include <soda/soda.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "scratch.hpp"

namespace {

// `records` CIFAR records with labels (seed + r) % 10 and pseudo-random pixels.
scratch::Bytes fake_batch(std::int64_t records, unsigned seed) {
  auto bytes = scratch::pattern(static_cast<std::size_t>(records * 3073), seed);
  for (std::int64_t r = 0; r < records; ++r)
    bytes[r * 3073] = static_cast<unsigned char>((seed + r) % 10);
  return bytes;
}

// Every pixel and label of `set` from image `first` on equals the records in `batch`.
void check_matches_batch(const soda::ImageDataset& set, std::int64_t first,
                         const scratch::Bytes& batch) {
  const auto records = static_cast<std::int64_t>(batch.size()) / 3073;
  std::int64_t wrong = 0;
  for (std::int64_t r = 0; r < records; ++r) {
    const auto* record = batch.data() + r * 3073;
    wrong += set.labels.at({first + r}) != record[0];
    for (std::int64_t c = 0; c < 3; ++c) {
      for (std::int64_t y = 0; y < 32; ++y) {
        for (std::int64_t x = 0; x < 32; ++x) {
          wrong += set.images.at({first + r, c, y, x}) != record[1 + c * 1024 + y * 32 + x];
        }
      }
    }
  }
  CHECK(wrong == 0);
}

const std::vector<std::int64_t> train_records = {3, 2, 4, 1, 2};

// Writes data_batch_1..5.bin (with train_records records) into `folder`; returns their bytes.
std::vector<scratch::Bytes> write_train_batches(const std::filesystem::path& folder) {
  std::vector<scratch::Bytes> batches;
  for (std::size_t f = 0; f < train_records.size(); ++f) {
    batches.push_back(fake_batch(train_records[f], static_cast<unsigned>(f + 1)));
    scratch::write_raw(folder / ("data_batch_" + std::to_string(f + 1) + ".bin"), batches.back());
  }
  return batches;
}

}  // namespace

TEST_SUITE("data/cifar10") {
  TEST_CASE("the training set is the five batches in order, every pixel and label as written") {
    scratch::TempFolder tmp;
    const auto batches = write_train_batches(tmp.path());
    const auto set = soda::load_cifar10(tmp.path(), true);
    CHECK(set.size() == 12);
    CHECK(set.images.shape() == soda::Shape{12, 3, 32, 32});
    CHECK(set.labels.shape() == soda::Shape{12});
    CHECK(set.classes == 10);
    REQUIRE(set.class_names.size() == 10);
    CHECK(set.class_names.front() == "airplane");
    CHECK(set.class_names[3] == "cat");
    CHECK(set.class_names.back() == "truck");
    std::int64_t first = 0;
    for (std::size_t f = 0; f < batches.size(); ++f) {
      check_matches_batch(set, first, batches[f]);
      first += train_records[f];
    }
    CHECK_NOTHROW(soda::check_image_dataset(set, "test"));
  }

  TEST_CASE("the test set is read from the extracted folder cifar-10-batches-bin") {
    scratch::TempFolder tmp;
    const auto batch = fake_batch(5, 7);
    scratch::write_raw(tmp.path() / "cifar-10-batches-bin" / "test_batch.bin", batch);
    const auto set = soda::load_cifar10(tmp.path(), false);
    CHECK(set.images.shape() == soda::Shape{5, 3, 32, 32});
    check_matches_batch(set, 0, batch);
    // Naming the extracted folder itself works too.
    const auto direct = soda::load_cifar10(tmp.path() / "cifar-10-batches-bin", false);
    check_matches_batch(direct, 0, batch);
  }

  TEST_CASE("a missing batch names the file and the files expected") {
    scratch::TempFolder tmp;
    write_train_batches(tmp.path());
    std::filesystem::remove(tmp.path() / "data_batch_3.bin");
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_cifar10(tmp.path(), true); });
    CHECK(scratch::mentions(
        message, {(tmp.path() / "data_batch_3.bin").string(), "missing", "data_batch_1.bin",
                  "data_batch_5.bin", "test_batch.bin", "cifar-10-batches-bin"}));
    // An empty folder: the test batch is missing.
    scratch::TempFolder empty;
    const auto none =
        scratch::error_message<soda::IoError>([&] { soda::load_cifar10(empty.path(), false); });
    CHECK(scratch::mentions(none, {(empty.path() / "test_batch.bin").string(), "missing"}));
  }

  TEST_CASE("a file that is not a whole number of records is reported as truncated") {
    scratch::TempFolder tmp;
    auto batch = fake_batch(2, 3);
    batch.resize(batch.size() - 100);
    scratch::write_raw(tmp.path() / "test_batch.bin", batch);
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_cifar10(tmp.path(), false); });
    CHECK(scratch::mentions(message, {(tmp.path() / "test_batch.bin").string(),
                                      std::to_string(batch.size()), "3073", "truncated"}));
  }

  TEST_CASE("a label byte above 9 is reported with its record index") {
    scratch::TempFolder tmp;
    auto batch = fake_batch(4, 0);
    batch[2 * 3073] = 10;
    scratch::write_raw(tmp.path() / "test_batch.bin", batch);
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_cifar10(tmp.path(), false); });
    CHECK(scratch::mentions(message,
                            {(tmp.path() / "test_batch.bin").string(), "record 2", "label 10"}));
  }
}
