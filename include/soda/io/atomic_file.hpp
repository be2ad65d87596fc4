// AtomicFileWriter: writes a file through a temporary sibling that is fsync'd and renamed over the
// target on commit(), so readers see either the old file or the complete new one, never half;
// with it, write_file_atomically, the output-folder check and the clean-up of killed writers'
// files.
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
#include <string_view>
#include <system_error>
#include <vector>

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

  // Whether `file_name` is a temporary file name this class gives for a target named
  // `target_name`: the target's name, ".tmp-" and 16 lowercase hexadecimal digits.
  static bool is_temporary_name(std::string_view file_name, std::string_view target_name) {
    constexpr std::string_view marker = ".tmp-";
    constexpr std::size_t digits = 16;
    if (file_name.size() != target_name.size() + marker.size() + digits) return false;
    if (file_name.substr(0, target_name.size()) != target_name) return false;
    if (file_name.substr(target_name.size(), marker.size()) != marker) return false;
    for (const char c : file_name.substr(target_name.size() + marker.size())) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
  }

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

// Writes `text` as the whole of `path`, atomically; a failed write (disk full, no permission) is
// an IoError naming the file, and leaves the old file as it was.
inline void write_file_atomically(const std::filesystem::path& path, std::string_view text) {
  AtomicFileWriter out(path);
  out.write(text.data(), text.size());
  out.commit();
}

// Removes what writers of the files `target_names` in `folder` left when killed before commit():
// `<target>.tmp-<16 hex digits>` files, nothing else. A writer still at work in the same folder
// would lose its temporary file too, so one process writes a folder at a time. Returns the
// files removed.
inline std::vector<std::filesystem::path> remove_stale_temporary_files(
    const std::filesystem::path& folder, const std::vector<std::string>& target_names) {
  std::vector<std::filesystem::path> stale;  // collected first: no removal while listing
  std::error_code ec;
  for (std::filesystem::directory_iterator entry(folder, ec), end; !ec && entry != end;
       entry.increment(ec)) {
    const auto name = entry->path().filename().string();
    std::error_code type_ec;
    for (const auto& target : target_names) {
      if (AtomicFileWriter::is_temporary_name(name, target) && entry->is_regular_file(type_ec)) {
        stale.push_back(entry->path());
      }
    }
  }
  std::vector<std::filesystem::path> removed;
  for (const auto& path : stale) {
    std::error_code remove_ec;
    if (std::filesystem::remove(path, remove_ec)) removed.push_back(path);
  }
  return removed;
}

// Creates `folder` (and its parents) when missing and checks that files can be created in it, so
// that a long run fails at its start rather than at its first checkpoint: an IoError naming the
// folder otherwise.
inline void prepare_output_folder(const std::filesystem::path& folder) {
  const auto fail = [&](const std::string& reason) {
    throw IoError("output folder '" + folder.string() + "': " + reason);
  };
  if (folder.empty()) fail("the path is empty");
  std::error_code ec;
  if (std::filesystem::exists(folder, ec) && !std::filesystem::is_directory(folder, ec)) {
    fail("it exists and is not a folder; give a folder path");
  }
  std::filesystem::create_directories(folder, ec);
  if (ec) fail("cannot create it: " + ec.message());
  // A writer that is never committed creates its temporary file and removes it again.
  const std::string probe = ".soda-write-check";
  remove_stale_temporary_files(folder, {probe});
  try {
    const AtomicFileWriter check(folder / probe);
  } catch (const IoError& error) {
    fail(std::string("cannot create files in it (") + error.what() + ")");
  }
}

}  // namespace soda
