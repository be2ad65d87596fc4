// soda/io/atomic_file.hpp: write_file_atomically replaces a file whole or not at all (a failed
// write is an IoError naming it, the old file intact, no temporary file left), the clean-up of a
// killed writer's temporary files removes those and nothing else, and prepare_output_folder
// creates a folder or says why it cannot be written.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>

namespace atomic_file_test {

namespace fs = std::filesystem;

struct Folder {
  fs::path path;
  Folder() {
    std::random_device entropy;
    path = fs::temp_directory_path() /
           ("soda-atomic-file-test-" + std::to_string(entropy()) + std::to_string(entropy()));
    fs::create_directories(path);
  }
  ~Folder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  Folder(const Folder&) = delete;
  Folder& operator=(const Folder&) = delete;
};

inline std::string read_text(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

inline std::set<std::string> names_in(const fs::path& folder) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

}  // namespace atomic_file_test

TEST_SUITE("io/atomic_file") {
  using atomic_file_test::Folder;
  using atomic_file_test::names_in;
  using atomic_file_test::read_text;
  namespace fs = std::filesystem;

  TEST_CASE("write_file_atomically replaces the file whole and leaves nothing beside it") {
    const Folder folder;
    const auto path = folder.path / "summary.json";
    soda::write_file_atomically(path, "first\n");
    CHECK(read_text(path) == "first\n");
    soda::write_file_atomically(path, std::string(100000, 'x'));
    CHECK(read_text(path) == std::string(100000, 'x'));
    soda::write_file_atomically(path, "");
    CHECK(read_text(path).empty());
    CHECK(names_in(folder.path) == std::set<std::string>{"summary.json"});
  }

  TEST_CASE("a failed write is an IoError naming the file, and the old file stays") {
    const Folder folder;
    const auto path = folder.path / "log.jsonl";
    soda::write_file_atomically(path, "old line\n");
    {
      // A full disk, for any user: writes past RLIMIT_FSIZE fail with EFBIG (SIGXFSZ ignored).
      rlimit saved{};
      REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
      const auto handler = std::signal(SIGXFSZ, SIG_IGN);
      rlimit lowered = saved;
      lowered.rlim_cur = 4096;
      REQUIRE(::setrlimit(RLIMIT_FSIZE, &lowered) == 0);
      std::string message;
      try {
        soda::write_file_atomically(path, std::string(10000, 'y'));
      } catch (const soda::IoError& error) {
        message = error.what();
      }
      ::setrlimit(RLIMIT_FSIZE, &saved);
      std::signal(SIGXFSZ, handler);
      CHECK(message.find("cannot write '" + path.string() + "'") != std::string::npos);
      CHECK(message.find("File too large") != std::string::npos);
    }
    CHECK(read_text(path) == "old line\n");
    CHECK(names_in(folder.path) == std::set<std::string>{"log.jsonl"});

    CHECK_THROWS_WITH_AS(soda::write_file_atomically(folder.path, "x"),
                         doctest::Contains("it is a directory"), soda::IoError);
    CHECK_THROWS_WITH_AS(soda::write_file_atomically(folder.path / "absent" / "file", "x"),
                         doctest::Contains("does not exist"), soda::IoError);
  }

  TEST_CASE("a writer's temporary name is the target's, .tmp- and 16 lowercase hex digits") {
    const Folder folder;
    const soda::AtomicFileWriter writer(folder.path / "checkpoint.safetensors");
    const auto temporary = writer.temp_path().filename().string();
    CHECK(temporary.rfind("checkpoint.safetensors.tmp-", 0) == 0);
    CHECK(temporary.size() == std::string("checkpoint.safetensors.tmp-").size() + 16);
    CHECK(soda::AtomicFileWriter::is_temporary_name(temporary, "checkpoint.safetensors"));
    CHECK(!soda::AtomicFileWriter::is_temporary_name(temporary, "log.jsonl"));
    using soda::AtomicFileWriter;
    CHECK(AtomicFileWriter::is_temporary_name("a.tmp-0123456789abcdef", "a"));
    CHECK(!AtomicFileWriter::is_temporary_name("a.tmp-0123456789ABCDEF", "a"));
    CHECK(!AtomicFileWriter::is_temporary_name("a.tmp-0123456789abcde", "a"));
    CHECK(!AtomicFileWriter::is_temporary_name("a.tmp-0123456789abcdef0", "a"));
    CHECK(!AtomicFileWriter::is_temporary_name("a.tmp-0123456789abcdeg", "a"));
    CHECK(!AtomicFileWriter::is_temporary_name("b.tmp-0123456789abcdef", "a"));
    CHECK(!AtomicFileWriter::is_temporary_name("a.tmp_0123456789abcdef", "a"));
  }

  TEST_CASE("the clean-up removes what killed writers of the named files left, nothing else") {
    const Folder folder;
    const std::set<std::string> stale{"log.jsonl.tmp-0123456789abcdef",
                                      "checkpoint.safetensors.tmp-fedcba9876543210"};
    const std::set<std::string> kept{"log.jsonl", "log.jsonl.tmp-0123456789ABCDEF",
                                     "log.jsonl.tmp-12", "notes.txt.tmp-0123456789abcdef",
                                     "data.bin"};
    for (const auto& name : stale) std::ofstream(folder.path / name) << "half";
    for (const auto& name : kept) std::ofstream(folder.path / name) << "keep";
    fs::create_directory(folder.path / "summary.json.tmp-0123456789abcdef");  // not a file
    const auto removed = soda::remove_stale_temporary_files(
        folder.path, {"log.jsonl", "checkpoint.safetensors", "summary.json"});
    std::set<std::string> removed_names;
    for (const auto& path : removed) removed_names.insert(path.filename().string());
    CHECK(removed_names == stale);
    auto expected = kept;
    expected.insert("summary.json.tmp-0123456789abcdef");
    CHECK(names_in(folder.path) == expected);
  }

  TEST_CASE("prepare_output_folder creates the folder, or names it and says why it cannot") {
    const Folder folder;
    const auto nested = folder.path / "runs" / "a" / "b";
    soda::prepare_output_folder(nested);
    CHECK(fs::is_directory(nested));
    CHECK(names_in(nested).empty());      // the write check leaves nothing behind
    soda::prepare_output_folder(nested);  // an existing folder is fine

    const auto file = folder.path / "file";
    std::ofstream(file) << "x";
    CHECK_THROWS_WITH_AS(
        soda::prepare_output_folder(file),
        doctest::Contains(
            ("output folder '" + file.string() + "': it exists and is not a folder").c_str()),
        soda::IoError);
    CHECK_THROWS_WITH_AS(
        soda::prepare_output_folder(file / "below"),
        doctest::Contains(
            ("output folder '" + (file / "below").string() + "': cannot create it").c_str()),
        soda::IoError);
    CHECK_THROWS_AS(soda::prepare_output_folder(""), soda::IoError);
  }
}
