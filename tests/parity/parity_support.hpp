// What the PyTorch parity tests share: a temporary folder, finding their Python script (through
// SODA_SOURCE_DIR or above the current folder) and running it with Debian's python3-torch.
// One header, since the parity area is built as one unity file where helpers must not repeat.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <system_error>
#include <vector>

namespace soda_parity {

namespace fs = std::filesystem;

inline constexpr const char* python = "/usr/bin/python3";
inline constexpr const char* install_hint = "apt-get install python3-torch";

// A fresh folder under the system temp folder, removed with everything in it.
class TempFolder {
 public:
  TempFolder() {
    std::random_device entropy;
    path_ = fs::temp_directory_path() /
            ("soda-parity-" + std::to_string(entropy()) + "-" + std::to_string(entropy()));
    fs::create_directories(path_);
  }
  ~TempFolder() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;

  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The last non-empty line of `text` (the error of a Python traceback).
inline std::string last_line(const std::string& text) {
  const auto end = text.find_last_not_of("\n");
  if (end == std::string::npos) return text;
  const auto start = text.find_last_of('\n', end);
  const auto begin = start == std::string::npos ? 0 : start + 1;
  return text.substr(begin, end + 1 - begin);
}

// In single quotes for the shell (the paths here come from the temp folder and the source tree).
inline std::string shell_quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

// tests/parity/<file_name> under SODA_SOURCE_DIR, else under the nearest folder above the current
// one that has it; empty when neither has it.
inline fs::path parity_script(const std::string& file_name) {
  const fs::path relative = fs::path("tests") / "parity" / file_name;
  if (const char* source_dir = std::getenv("SODA_SOURCE_DIR"))
    return fs::path(source_dir) / relative;
  for (fs::path folder = fs::current_path();; folder = folder.parent_path()) {
    if (fs::exists(folder / relative)) return folder / relative;
    if (folder == folder.parent_path()) return {};
  }
}

// Empty when python can import torch and numpy; otherwise what is missing and how to install it.
// `log` receives Python's output.
inline std::string python_torch_problem(const fs::path& log) {
  if (!fs::exists(python)) {
    return std::string(python) + " not found; the parity test needs Python 3 with " +
           "PyTorch: " + install_hint;
  }
  const std::string to_log = " > " + shell_quoted(log) + " 2>&1";
  if (std::system((std::string(python) + " -c 'import torch, numpy'" + to_log).c_str()) != 0) {
    return std::string(python) + " cannot import torch and numpy (" + last_line(read_text(log)) +
           "); install them with: " + install_hint;
  }
  return {};
}

// Empty when `script` (from parity_script(file_name)) exists; otherwise where it was looked for.
inline std::string missing_script_problem(const fs::path& script, const std::string& file_name) {
  if (!script.empty() && fs::exists(script)) return {};
  return "tests/parity/" + file_name + " not found " +
         (script.empty() ? "in any folder above '" + fs::current_path().string() + "'"
                         : "at '" + script.string() + "'") +
         "; set SODA_SOURCE_DIR to soda's source folder";
}

// Runs `python script arguments...` with its output in `log`; empty on success, else the command
// and its output. `seconds` receives its wall time.
inline std::string run_parity_script(const fs::path& script,
                                     const std::vector<std::string>& arguments, const fs::path& log,
                                     double& seconds) {
  std::string command = std::string(python) + " " + shell_quoted(script);
  for (const auto& argument : arguments) command += " " + shell_quoted(argument);
  const auto start = std::chrono::steady_clock::now();
  const int status = std::system((command + " > " + shell_quoted(log) + " 2>&1").c_str());
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (status == 0) return {};
  return "'" + command + "' failed (std::system returned " + std::to_string(status) + "):\n" +
         read_text(log);
}

}  // namespace soda_parity
