// Fuzz target: load_cifar10 on a folder whose test_batch.bin is the input. Only soda::Error may
// come out; an accepted file is whole records, each a label then 3072 pixels, read in order.
#include <soda/data/cifar10.hpp>

#include <cstring>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  soda_fuzz::write_input(data, size, "test_batch.bin");
  soda::ImageDataset set;
  try {
    set = soda::load_cifar10(soda_fuzz::scratch_folder(), false);
  } catch (const soda::Error&) {
    return 0;
  }
  const auto record = static_cast<std::size_t>(soda::cifar10_record_bytes);
  const auto count = static_cast<std::int64_t>(size / record);
  soda_fuzz::require(size % record == 0 && set.images.shape() == soda::Shape{count, 3, 32, 32} &&
                         set.labels.shape() == soda::Shape{count},
                     "an accepted file is whole records");
  for (std::int64_t r = 0; r < count; ++r) {
    const std::uint8_t* bytes = data + static_cast<std::size_t>(r) * record;
    soda_fuzz::require(set.labels.data()[r] == bytes[0], "labels are read in order");
    soda_fuzz::require(
        std::memcmp(set.images.data() + r * soda::cifar10_image_bytes, bytes + 1, record - 1) == 0,
        "pixels are read in order");
  }
  return 0;
}
