// Reader for the binary version of CIFAR-10 (data_batch_1.bin … data_batch_5.bin, test_batch.bin):
// records of 1 label byte and 3072 pixel bytes (32x32 red, then green, then blue, row-major).
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/data/dataset.hpp"

namespace soda {

inline constexpr std::int64_t cifar10_image_bytes = 3 * 32 * 32;
inline constexpr std::int64_t cifar10_record_bytes = 1 + cifar10_image_bytes;

inline const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names = {
      "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return names;
}

namespace detail {

inline std::vector<std::string> cifar10_batch_files(bool train) {
  if (!train) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
          "data_batch_5.bin"};
}

// `root` itself when it holds the batches, else the archive's folder cifar-10-batches-bin inside
// it when that holds them, else `root` (so that the missing-file error names it).
inline std::filesystem::path cifar10_folder(const std::filesystem::path& root, bool train) {
  const auto probe = cifar10_batch_files(train).front();
  if (std::filesystem::is_regular_file(root / probe)) return root;
  const auto extracted = root / "cifar-10-batches-bin";
  if (std::filesystem::is_regular_file(extracted / probe)) return extracted;
  return root;
}

inline std::string cifar10_layout_hint(const std::filesystem::path& root) {
  return "the CIFAR-10 binary version has data_batch_1.bin … data_batch_5.bin (train) and "
         "test_batch.bin (test), looked for in " +
         root.string() + " and in " + (root / "cifar-10-batches-bin").string() +
         " (download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and "
         "extract it there)";
}

// Number of records in one batch file, after checking that it exists and is a whole number of
// records.
inline std::int64_t cifar10_record_count(const std::filesystem::path& file,
                                         const std::filesystem::path& root) {
  if (!std::filesystem::is_regular_file(file)) {
    throw IoError("load_cifar10: missing file " + file.string() + "; " + cifar10_layout_hint(root));
  }
  const auto bytes = static_cast<std::int64_t>(std::filesystem::file_size(file));
  if (bytes == 0 || bytes % cifar10_record_bytes != 0) {
    throw IoError("load_cifar10: " + file.string() + " has " + std::to_string(bytes) +
                  " bytes, not a positive multiple of the " + std::to_string(cifar10_record_bytes) +
                  "-byte record (1 label + 3072 pixels): the file is truncated or corrupt");
  }
  return bytes / cifar10_record_bytes;
}

// Reads `records` records of `file` into images/labels starting at image `first`.
inline void read_cifar10_batch(const std::filesystem::path& file, std::int64_t records,
                               std::int64_t first, ImageDataset& out) {
  std::vector<char> bytes(static_cast<std::size_t>(records * cifar10_record_bytes));
  std::ifstream in(file, std::ios::binary);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (in.gcount() != static_cast<std::streamsize>(bytes.size())) {
    throw IoError("load_cifar10: could not read " + file.string() + " (read " +
                  std::to_string(in.gcount()) + " of " + std::to_string(bytes.size()) +
                  " bytes); check that the file is readable and not being written");
  }
  for (std::int64_t r = 0; r < records; ++r) {
    const char* record = bytes.data() + r * cifar10_record_bytes;
    const auto label = static_cast<std::uint8_t>(record[0]);
    if (label > 9) {
      throw IoError("load_cifar10: " + file.string() + ": record " + std::to_string(r) +
                    " has label " + std::to_string(label) +
                    ", but CIFAR-10 labels are 0..9 (is this a CIFAR-100 file?)");
    }
    out.labels.data()[first + r] = label;
    std::memcpy(out.images.data() + (first + r) * cifar10_image_bytes, record + 1,
                static_cast<std::size_t>(cifar10_image_bytes));
  }
}

}  // namespace detail

// The 50000 training images (train = true) or 10000 test images as [N, 3, 32, 32] uint8 with
// labels 0..9. `root` holds the .bin files or the extracted folder cifar-10-batches-bin.
inline ImageDataset load_cifar10(const std::filesystem::path& root, bool train) {
  const auto folder = detail::cifar10_folder(root, train);
  std::vector<std::filesystem::path> files;
  std::vector<std::int64_t> counts;
  std::int64_t total = 0;
  for (const auto& name : detail::cifar10_batch_files(train)) {
    files.push_back(folder / name);
    counts.push_back(detail::cifar10_record_count(files.back(), root));
    total += counts.back();
  }
  ImageDataset out{Tensor<std::uint8_t>::empty({total, 3, 32, 32}),
                   Tensor<std::int64_t>::empty({total}), 10, cifar10_class_names()};
  std::int64_t first = 0;
  for (std::size_t f = 0; f < files.size(); ++f) {
    detail::read_cifar10_batch(files[f], counts[f], first, out);
    first += counts[f];
  }
  return out;
}

}  // namespace soda
