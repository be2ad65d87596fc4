// Fuzz target: load_idx_u8 on any bytes, read raw or, when they start with gzip's magic, inflated.
// Only soda::Error may come out; a raw file it accepts is its header's shape and then its data.
#include <soda/data/idx.hpp>

#include <cstring>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = soda_fuzz::write_input(data, size, "input.idx");
  soda::Tensor<std::uint8_t> tensor;
  try {
    tensor = soda::load_idx_u8(path);
  } catch (const soda::Error&) {
    return 0;
  }
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return 0;
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(tensor.ndim());
  soda_fuzz::require(size >= header && data[3] == tensor.ndim(), "the rank is the header's");
  soda_fuzz::require(static_cast<std::size_t>(tensor.numel()) == size - header,
                     "the data is exactly what follows the header");
  soda_fuzz::require(std::memcmp(tensor.data(), data + header, size - header) == 0,
                     "the tensor holds the file's data bytes");
  return 0;
}
