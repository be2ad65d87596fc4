// Fuzz target: load_idx_u8 on a gzip file whose inflated content is the input, so that mutations
// reach the header and sizes behind the compression. Only soda::Error may come out; an accepted
// file is its header's shape and then its data.
#include <soda/data/idx.hpp>

#include <zlib.h>

#include <cstring>
#include <vector>

#include "fuzz_input.hpp"

namespace {

// `data` as one gzip member (zlib's deflate with the gzip wrapper: window bits 16 + 15).
std::vector<std::uint8_t> gzip(const std::uint8_t* data, std::size_t size) {
  z_stream stream{};
  soda_fuzz::require(deflateInit2(&stream, 1, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) == Z_OK,
                     "zlib initializes");
  std::vector<std::uint8_t> out(deflateBound(&stream, static_cast<uLong>(size)));
  stream.next_in = const_cast<Bytef*>(data);
  stream.avail_in = static_cast<uInt>(size);
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  soda_fuzz::require(deflate(&stream, Z_FINISH) == Z_STREAM_END, "zlib compresses in one call");
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto compressed = gzip(data, size);
  const auto path = soda_fuzz::write_input(compressed.data(), compressed.size(), "input.idx.gz");
  soda::Tensor<std::uint8_t> tensor;
  try {
    tensor = soda::load_idx_u8(path);
  } catch (const soda::Error&) {
    return 0;
  }
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(tensor.ndim());
  soda_fuzz::require(size >= header && data[3] == tensor.ndim(), "the rank is the header's");
  soda_fuzz::require(static_cast<std::size_t>(tensor.numel()) == size - header,
                     "the data is exactly what follows the header");
  soda_fuzz::require(std::memcmp(tensor.data(), data + header, size - header) == 0,
                     "the tensor holds the inflated data bytes");
  return 0;
}
