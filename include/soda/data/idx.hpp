// Reader for IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed, and loaders
// for MNIST and Fashion-MNIST built on it. Compression is detected by the gzip magic, not the name.
#pragma once

#include <zlib.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
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

inline std::vector<unsigned char> read_gzip_file(const std::filesystem::path& file,
                                                 const std::string& where) {
  const std::unique_ptr<gzFile_s, int (*)(gzFile)> in(gzopen(file.c_str(), "rb"), gzclose);
  if (!in) throw IoError(where + ": cannot open " + file.string());
  gzbuffer(in.get(), 1 << 18);
  constexpr std::size_t chunk = 1 << 20;
  std::vector<unsigned char> bytes;
  for (;;) {
    const auto have = bytes.size();
    bytes.resize(have + chunk);
    const int got = gzread(in.get(), bytes.data() + have, static_cast<unsigned>(chunk));
    bytes.resize(have + static_cast<std::size_t>(got < 0 ? 0 : got));
    if (got <= 0) break;
  }
  // A stream cut short ends reads like end-of-file; zlib reports it only through gzerror.
  int status = Z_OK;
  const char* message = gzerror(in.get(), &status);
  if (status != Z_OK) {
    throw IoError(where + ": " + file.string() +
                  ": the gzip stream is truncated or corrupt (zlib: " + message +
                  "); download the file again");
  }
  return bytes;
}

inline std::vector<unsigned char> read_raw_file(const std::filesystem::path& file,
                                                const std::string& where) {
  std::vector<unsigned char> bytes(static_cast<std::size_t>(std::filesystem::file_size(file)));
  std::ifstream in(file, std::ios::binary);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (in.gcount() != static_cast<std::streamsize>(bytes.size())) {
    throw IoError(where + ": could not read " + file.string());
  }
  return bytes;
}

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

// The uint8 tensor stored in an IDX file; errors are prefixed with `where` and name the file.
inline Tensor<std::uint8_t> read_idx_u8(const std::filesystem::path& file,
                                        const std::string& where) {
  if (!std::filesystem::is_regular_file(file)) {
    throw IoError(where + ": missing file " + file.string());
  }
  const auto bytes =
      starts_with_gzip_magic(file) ? read_gzip_file(file, where) : read_raw_file(file, where);
  const auto name = file.string();
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0 || idx_dtype_name(bytes[2]).empty()) {
    std::string magic;
    for (std::size_t i = 0; i < 4 && i < bytes.size(); ++i) magic += " " + hex_byte(bytes[i]);
    throw IoError(where + ": " + name + " has the bad magic number" +
                  (magic.empty() ? " (empty file)" : magic) +
                  "; an IDX file starts with 0x00 0x00 <dtype 0x08..0x0e> <rank>");
  }
  if (bytes[2] != 0x08) {
    throw IoError(where + ": " + name + " holds dtype " + idx_dtype_name(bytes[2]) +
                  "; only dtype 0x08 (unsigned byte) is supported");
  }
  const std::size_t rank = bytes[3];
  const std::size_t header = 4 + 4 * rank;
  if (bytes.size() < header) {
    throw IoError(where + ": " + name + " is truncated: its header declares " +
                  std::to_string(rank) + " dimensions but the file has only " +
                  std::to_string(bytes.size()) + " bytes");
  }
  Shape shape(rank);
  for (std::size_t d = 0; d < rank; ++d) {
    const auto* p = bytes.data() + 4 + 4 * d;
    shape[d] = std::int64_t{p[0]} << 24 | std::int64_t{p[1]} << 16 | std::int64_t{p[2]} << 8 | p[3];
  }
  // Multiply only while the product fits in what follows the header, so no overflow.
  const auto available = static_cast<std::int64_t>(bytes.size() - header);
  std::int64_t needed = 1;
  bool fits = true;
  for (const auto d : shape) {
    if (d == 0) {
      needed = 0;
      fits = true;
      break;
    }
    if (fits && needed > available / d) fits = false;
    if (fits) needed *= d;
  }
  if (!fits || needed > available) {
    throw IoError(where + ": " + name + " is truncated: its header declares shape " +
                  to_string(shape) + " but only " + std::to_string(available) +
                  " data bytes follow the header");
  }
  if (needed < available) {
    throw IoError(where + ": " + name + " is corrupt: " + std::to_string(available - needed) +
                  " bytes follow the data of the shape " + to_string(shape) +
                  " its header declares");
  }
  auto out = Tensor<std::uint8_t>::empty(shape);
  if (needed > 0) std::memcpy(out.data(), bytes.data() + header, static_cast<std::size_t>(needed));
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
