// Test helpers for the data readers: a temporary folder removed on scope exit, and writers for
// raw and gzip files (via zlib's gzwrite) so that tests can build small fake data sets.
#pragma once

#include <doctest/doctest.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace scratch {

using Bytes = std::vector<unsigned char>;

class TempFolder {
 public:
  TempFolder() {
    static std::atomic<int> counter{0};
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = std::filesystem::temp_directory_path() /
            ("soda_data_test_" + std::to_string(stamp) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_raw(const std::filesystem::path& file, const Bytes& bytes) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline void write_gzip(const std::filesystem::path& file, const Bytes& bytes) {
  std::filesystem::create_directories(file.parent_path());
  gzFile out = gzopen(file.c_str(), "wb");
  REQUIRE(out != nullptr);
  const int written = gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size()));
  REQUIRE(gzclose(out) == Z_OK);
  REQUIRE(written == static_cast<int>(bytes.size()));
}

inline Bytes read_raw(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A byte pattern that differs at every position (up to wrap-around) and between seeds.
inline Bytes pattern(std::size_t n, unsigned seed) {
  Bytes out(n);
  std::uint32_t state = 2463534242u ^ (seed * 0x9E3779B9u);
  for (auto& b : out) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    b = static_cast<unsigned char>(state >> 24);
  }
  return out;
}

// True when `text` contains every one of `parts`; reports the text otherwise.
inline bool mentions(const std::string& text, const std::vector<std::string>& parts) {
  for (const auto& part : parts) {
    if (text.find(part) == std::string::npos) {
      MESSAGE("message \"" << text << "\" does not mention \"" << part << "\"");
      return false;
    }
  }
  return true;
}

// The message of the `Error` that `call` throws; fails the test when it throws none.
template <class Error, class Call>
std::string error_message(Call&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  FAIL_CHECK("expected an exception, none was thrown");
  return "";
}

}  // namespace scratch
