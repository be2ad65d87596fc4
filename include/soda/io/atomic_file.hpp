// AtomicFileWriter: writes a file through a temporary sibling that is fsync'd and renamed over the
// target on commit(), so readers see either the old file or the complete new one, never half.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "soda/core/error.hpp"

namespace soda {

// POSIX only (open/fsync/rename). Not copyable or movable: it owns one temporary file.
class AtomicFileWriter {
 public:
  // Creates `<target>.tmp-<random>` in the target's folder; the target itself is not touched.
  explicit AtomicFileWriter(std::filesystem::path target) : target_(std::move(target)) {
    std::error_code ec;
    if (std::filesystem::is_directory(target_, ec)) {
      fail("it is a directory; give a file path");
    }
    const auto folder =
        target_.parent_path().empty() ? std::filesystem::path(".") : target_.parent_path();
    if (!std::filesystem::is_directory(folder, ec)) {
      fail("folder '" + folder.string() + "' does not exist");
    }
    std::random_device entropy;
    std::mt19937_64 random((static_cast<std::uint64_t>(entropy()) << 32) ^ entropy());
    constexpr int attempts = 16;
    for (int i = 0; i < attempts && descriptor_ < 0; ++i) {
      char suffix[17];
      std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(random()));
      temp_ = target_;
      temp_ += ".tmp-";
      temp_ += suffix;
      descriptor_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (descriptor_ < 0 && errno != EEXIST) {
        fail("cannot create temporary file '" + temp_.string() + "': " + std::strerror(errno));
      }
    }
    if (descriptor_ < 0) fail("cannot find a free temporary file name next to it");
  }

  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Without a successful commit() the temporary file is removed and the target left as it was.
  ~AtomicFileWriter() { discard(); }

  void write(const void* bytes, std::size_t size) {
    if (descriptor_ < 0) fail("write after commit or failure");
    const auto* p = static_cast<const char*>(bytes);
    while (size > 0) {
      const auto written = ::write(descriptor_, p, size);
      if (written < 0) {
        if (errno == EINTR) continue;
        const std::string reason = std::strerror(errno);
        discard();
        fail("writing the temporary file failed: " + reason);
      }
      p += written;
      size -= static_cast<std::size_t>(written);
    }
  }

  // Flushes the data to disk, renames the temporary file over the target and syncs the folder.
  void commit() {
    if (descriptor_ < 0) fail("commit after commit or failure");
    if (::fsync(descriptor_) != 0) fail_and_discard("fsync failed");
    const int descriptor = descriptor_;
    descriptor_ = -1;
    if (::close(descriptor) != 0) fail_and_discard("closing the temporary file failed");
    if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
      fail_and_discard("cannot rename the temporary file over it");
    }
    temp_.clear();
    sync_folder();
  }

  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  [[noreturn]] void fail(const std::string& reason) const {
    throw IoError("cannot write '" + target_.string() + "': " + reason);
  }

  [[noreturn]] void fail_and_discard(const std::string& what) {
    const std::string reason = what + ": " + std::strerror(errno);
    discard();
    fail(reason);
  }

  void discard() noexcept {
    if (descriptor_ >= 0) ::close(descriptor_);
    descriptor_ = -1;
    if (!temp_.empty()) ::unlink(temp_.c_str());
    temp_.clear();
  }

  // The rename is durable only once the folder's entry is on disk; best effort.
  void sync_folder() const noexcept {
    const auto folder =
        target_.parent_path().empty() ? std::filesystem::path(".") : target_.parent_path();
    const int descriptor = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (descriptor < 0) return;
    ::fsync(descriptor);
    ::close(descriptor);
  }

  std::filesystem::path target_;
  std::filesystem::path temp_;
  int descriptor_ = -1;
};

}  // namespace soda
