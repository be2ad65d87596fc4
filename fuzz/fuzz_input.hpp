// Shared by the fuzz targets: soda's readers take paths, so each input is written to a file in a
// folder of this process's own (in RAM under /dev/shm when there is one), removed at exit.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace soda_fuzz {

class ScratchFolder {
 public:
  ScratchFolder() {
    const std::filesystem::path shared_memory = "/dev/shm";
    const auto base = std::filesystem::is_directory(shared_memory)
                          ? shared_memory
                          : std::filesystem::temp_directory_path();
    path_ = base / ("soda-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline const std::filesystem::path& scratch_folder() {
  static const ScratchFolder folder;
  return folder.path();
}

// Writes `size` bytes to `name` in the scratch folder and returns its path.
inline std::filesystem::path write_input(const std::uint8_t* data, std::size_t size,
                                         const std::string& name) {
  const auto path = scratch_folder() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) std::abort();  // the harness itself failed: not a finding in soda
  return path;
}

// Stops the run with a report when a property that must hold of an accepted input does not.
inline void require(bool property, const char* what) {
  if (!property) {
    std::fprintf(stderr, "soda fuzz: property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace soda_fuzz
