// Helpers for the safetensors tests: a self-removing temp folder, files written and read as raw
// bytes, hand-assembled safetensors files and checks on the errors loading them raises.
#pragma once

#include <doctest/doctest.h>

#include <soda/soda.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace safetensors_test {

namespace fs = std::filesystem;
using soda::Tensor;

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A fresh folder under the system temp folder, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device entropy;
    path = fs::temp_directory_path() /
           ("soda-io-test-" + std::to_string(entropy()) + "-" + std::to_string(entropy()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path operator/(const std::string& name) const { return path / name; }

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(path)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
};

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string little_endian_u64(std::uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// A safetensors file assembled from its parts, exactly as given (no padding added).
inline std::string by_hand(const std::string& header, const std::string& buffer) {
  return little_endian_u64(header.size()) + header + buffer;
}

template <class T>
inline std::string bytes_of(const std::vector<T>& values) {
  std::string bytes(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

template <class T>
inline std::vector<T> values(const Tensor<T>& t) {
  const auto c = soda::detail::copy_contiguous(t);
  return std::vector<T>(c.raw_data(), c.raw_data() + c.numel());
}

// Bitwise equality, so that NaN, -0.0 and denormals must survive unchanged.
template <class T>
inline bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() && bytes_of(values(a)) == bytes_of(values(b));
}

inline std::string load_error(const fs::path& path) {
  try {
    soda::load_safetensors(path);
  } catch (const soda::IoError& e) {
    return e.what();
  }
  return "(no IoError thrown)";
}

// Loading `bytes` fails with an IoError naming the file and containing `problem`.
inline void check_rejected(const std::string& bytes, const std::string& problem) {
  TempDir dir;
  const auto path = dir / "bad.safetensors";
  write_file(path, bytes);
  const auto message = load_error(path);
  CHECK_MESSAGE(contains(message, path.string()), message);
  CHECK_MESSAGE(contains(message, problem), message);
}

inline const std::string f32_entry = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

}  // namespace safetensors_test
