// Reader for IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed, and loaders
// for MNIST and Fashion-MNIST built on it. Compression is detected by the gzip magic, not the name.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/shape.hpp"
#include "soda/data/dataset.hpp"

namespace soda {

// Where Debian's package dataset-fashion-mnist installs the four .gz files.
inline std::filesystem::path fashion_mnist_default_root() {
  return "/usr/share/datasets/fashion-mnist";
}

inline const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

inline const std::vector<std::string>& mnist_class_names() {
  static const std::vector<std::string> names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  return names;
}

namespace detail {

inline bool starts_with_gzip_magic(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::array<unsigned char, 2> magic{};
  in.read(reinterpret_cast<char*>(magic.data()), 2);
  return in.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

// Deflate's largest compression factor (zlib's documentation: 1032:1): a gzip file of n bytes
// never inflates to more than 1032·n, which bounds what a header may declare before reading on.
inline constexpr std::uint64_t max_deflate_ratio = 1032;

// The bytes of an IDX file in order, inflated on the fly when it is gzip'd, so that the header is
// read before the data and no more is ever inflated than the header declares (plus one byte).
class IdxByteStream {
 public:
  IdxByteStream(const std::filesystem::path& file, const std::string& where)
      : file_(file),
        where_(where),
        file_bytes_(std::filesystem::file_size(file)),
        compressed_(starts_with_gzip_magic(file)),
        gzip_(nullptr, gzclose) {
    if (compressed_) {
      gzip_.reset(gzopen(file.c_str(), "rb"));
      if (gzip_) gzbuffer(gzip_.get(), 1 << 18);
    } else {
      raw_.open(file, std::ios::binary);
    }
    if (compressed_ ? !gzip_ : !raw_.is_open()) {
      throw IoError(where + ": cannot open " + file.string() + ": " + std::strerror(errno));
    }
  }

  bool compressed() const { return compressed_; }
  std::uint64_t file_bytes() const { return file_bytes_; }

  // Reads up to `count` bytes into `into`; fewer only at the end of the file.
  std::size_t read(unsigned char* into, std::size_t count) {
    if (!compressed_) {
      raw_.read(reinterpret_cast<char*>(into), static_cast<std::streamsize>(count));
      return static_cast<std::size_t>(raw_.gcount());
    }
    std::size_t total = 0;
    while (total < count) {
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(count - total, 1 << 30));
      const int got = gzread(gzip_.get(), into + total, chunk);
      if (got <= 0) break;
      total += static_cast<std::size_t>(got);
    }
    if (total < count) check_gzip_stream();
    return total;
  }

 private:
  // A stream cut short ends reads like end-of-file; zlib reports it only through gzerror.
  void check_gzip_stream() {
    int status = Z_OK;
    const char* message = gzerror(gzip_.get(), &status);
    if (status != Z_OK) {
      throw IoError(where_ + ": " + file_.string() +
                    ": the gzip stream is truncated or corrupt (zlib: " + message +
                    "); download the file again");
    }
  }

  std::filesystem::path file_;
  std::string where_;
  std::uint64_t file_bytes_;
  bool compressed_;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> gzip_;
  std::ifstream raw_;
};

inline std::string idx_dtype_name(unsigned code) {
  switch (code) {
    case 0x08:
      return "0x08 (unsigned byte)";
    case 0x09:
      return "0x09 (signed byte)";
    case 0x0B:
      return "0x0B (int16)";
    case 0x0C:
      return "0x0C (int32)";
    case 0x0D:
      return "0x0D (float32)";
    case 0x0E:
      return "0x0E (float64)";
    default:
      return "";
  }
}

inline std::string hex_byte(unsigned value) {
  constexpr const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[(value >> 4) & 0xf] + digits[value & 0xf];
}

// The bytes the data of `shape` takes (one per element), or nothing when no file could hold them.
inline std::optional<std::uint64_t> idx_data_bytes(const Shape& shape) {
  if (std::ranges::find(shape, 0) != shape.end()) return 0;
  std::uint64_t bytes = 1;
  for (const auto d : shape) {
    if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(d), &bytes)) return std::nullopt;
  }
  return bytes;
}

// The uint8 tensor stored in an IDX file; errors are prefixed with `where` and name the file.
// The header is read first and checked against the file's size, so that a corrupt header never
// allocates or inflates more than the file can hold.
inline Tensor<std::uint8_t> read_idx_u8(const std::filesystem::path& file,
                                        const std::string& where) {
  if (!std::filesystem::is_regular_file(file)) {
    throw IoError(where + ": missing file " + file.string());
  }
  IdxByteStream in(file, where);
  const auto name = file.string();
  std::array<unsigned char, 4> magic{};
  const std::size_t magic_bytes = in.read(magic.data(), magic.size());
  if (magic_bytes < 4 || magic[0] != 0 || magic[1] != 0 || idx_dtype_name(magic[2]).empty()) {
    std::string found;
    for (std::size_t i = 0; i < magic_bytes; ++i) found += " " + hex_byte(magic[i]);
    throw IoError(where + ": " + name + " has the bad magic number" +
                  (found.empty() ? " (empty file)" : found) +
                  "; an IDX file starts with 0x00 0x00 <dtype 0x08..0x0e> <rank>");
  }
  if (magic[2] != 0x08) {
    throw IoError(where + ": " + name + " holds dtype " + idx_dtype_name(magic[2]) +
                  "; only dtype 0x08 (unsigned byte) is supported");
  }
  const std::size_t rank = magic[3];
  std::vector<unsigned char> extents(4 * rank);
  const std::size_t extent_bytes = in.read(extents.data(), extents.size());
  if (extent_bytes < extents.size()) {
    throw IoError(where + ": " + name + " is truncated: its header declares " +
                  std::to_string(rank) + " dimensions but the file has only " +
                  std::to_string(4 + extent_bytes) + " bytes");
  }
  Shape shape(rank);
  for (std::size_t d = 0; d < rank; ++d) {
    const auto* p = extents.data() + 4 * d;
    shape[d] = std::int64_t{p[0]} << 24 | std::int64_t{p[1]} << 16 | std::int64_t{p[2]} << 8 | p[3];
  }
  const std::uint64_t header = 4 + 4 * rank;
  const auto needed = idx_data_bytes(shape);
  // Raw: what follows the header, exactly. Gzip: at most what the file can inflate to.
  const std::uint64_t available =
      in.compressed() ? in.file_bytes() * max_deflate_ratio : in.file_bytes() - header;
  if (!needed || *needed > available) {
    throw IoError(where + ": " + name + " is truncated: its header declares shape " +
                  to_string(shape) + " but only " +
                  (in.compressed()
                       ? "up to " + std::to_string(available) + " bytes can inflate from its " +
                             std::to_string(in.file_bytes()) + " compressed bytes"
                       : std::to_string(available) + " data bytes follow the header"));
  }
  if (!in.compressed() && *needed < available) {
    throw IoError(where + ": " + name + " is corrupt: " + std::to_string(available - *needed) +
                  " bytes follow the data of the shape " + to_string(shape) +
                  " its header declares");
  }
  Tensor<std::uint8_t> out;
  try {
    out = Tensor<std::uint8_t>::empty(shape);
  } catch (const ShapeError& e) {
    throw IoError(where + ": " + name + " is corrupt: its header declares shape " +
                  to_string(shape) + ", which no tensor can hold (" + e.what() + ")");
  }
  const std::size_t got = in.read(out.data(), static_cast<std::size_t>(*needed));
  if (got < *needed) {
    throw IoError(where + ": " + name + " is truncated: its header declares shape " +
                  to_string(shape) + " but only " + std::to_string(got) +
                  " data bytes follow the header");
  }
  unsigned char extra = 0;
  if (in.read(&extra, 1) != 0) {
    throw IoError(where + ": " + name + " is corrupt: more bytes follow the data of the shape " +
                  to_string(shape) + " its header declares");
  }
  return out;
}

// `root/name`, or `root/name.gz` when only that exists.
inline std::filesystem::path find_idx_file(const std::filesystem::path& root,
                                           const std::string& name, const std::string& where,
                                           const std::string& hint) {
  if (std::filesystem::is_regular_file(root / name)) return root / name;
  if (std::filesystem::is_regular_file(root / (name + ".gz"))) return root / (name + ".gz");
  throw IoError(where + ": missing file " + (root / name).string() + "[.gz]; expected " +
                "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and " +
                "t10k-labels-idx1-ubyte (each optionally .gz) in " + root.string() + hint);
}

inline ImageDataset load_mnist_layout(const std::filesystem::path& root, bool train,
                                      const std::string& where, const std::string& hint,
                                      const std::vector<std::string>& class_names) {
  const std::string prefix = train ? "train" : "t10k";
  const auto image_file = find_idx_file(root, prefix + "-images-idx3-ubyte", where, hint);
  const auto label_file = find_idx_file(root, prefix + "-labels-idx1-ubyte", where, hint);
  const auto images = read_idx_u8(image_file, where);
  const auto labels = read_idx_u8(label_file, where);
  if (images.ndim() != 3) {
    throw IoError(where + ": " + image_file.string() + " holds shape " + to_string(images.shape()) +
                  "; expected images [N, height, width]");
  }
  if (labels.ndim() != 1) {
    throw IoError(where + ": " + label_file.string() + " holds shape " + to_string(labels.shape()) +
                  "; expected labels [N]");
  }
  const auto n = images.size(0);
  if (labels.size(0) != n) {
    throw IoError(where + ": " + image_file.string() + " holds " + std::to_string(n) +
                  " images but " + label_file.string() + " holds " +
                  std::to_string(labels.size(0)) + " labels; the files do not belong together");
  }
  ImageDataset out{images.view_with({n, 1, images.size(1), images.size(2)},
                                    contiguous_strides({n, 1, images.size(1), images.size(2)}), 0),
                   Tensor<std::int64_t>::empty({n}), 10, class_names};
  for (std::int64_t i = 0; i < n; ++i) {
    const auto label = labels.data()[i];
    if (label > 9) {
      throw IoError(where + ": " + label_file.string() + ": the label of image " +
                    std::to_string(i) + " is " + std::to_string(label) + ", outside 0..9");
    }
    out.labels.data()[i] = label;
  }
  return out;
}

}  // namespace detail

// The uint8 tensor in an IDX file (raw or gzip), shaped as its header says.
inline Tensor<std::uint8_t> load_idx_u8(const std::filesystem::path& file) {
  return detail::read_idx_u8(file, "load_idx_u8");
}

// MNIST digits from `root` (train-images-idx3-ubyte etc., optionally .gz): [N, 1, 28, 28] uint8,
// labels 0..9; 60000 training or 10000 test images.
inline ImageDataset load_mnist(const std::filesystem::path& root, bool train) {
  return detail::load_mnist_layout(root, train, "load_mnist", "", mnist_class_names());
}

// Fashion-MNIST from `root` (same file names and layout as MNIST).
inline ImageDataset load_fashion_mnist(const std::filesystem::path& root, bool train) {
  return detail::load_mnist_layout(
      root, train, "load_fashion_mnist",
      " (on Debian/Ubuntu, apt-get install dataset-fashion-mnist puts them in " +
          fashion_mnist_default_root().string() + ")",
      fashion_mnist_class_names());
}

// Fashion-MNIST from fashion_mnist_default_root().
inline ImageDataset load_fashion_mnist(bool train) {
  return load_fashion_mnist(fashion_mnist_default_root(), train);
}
// A lone string would silently convert to `bool train`; pass (root, train) instead.
ImageDataset load_fashion_mnist(const char* root) = delete;

}  // namespace soda
