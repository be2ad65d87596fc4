// soda/train/trainer.hpp's files: the output folder is checked before the first step, log.jsonl
// and summary.json are written atomically and a failed write is an IoError naming the file, a run
// killed between an epoch's log line and its checkpoint loses no line and its resume removes the
// killed writer's temporary file, and a resumed run's log and summary hold every epoch.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "trainer_fixture.hpp"

extern char** environ;

TEST_SUITE("train/trainer_outputs") {
  using trainer_fixture::epochs_of;
  using trainer_fixture::files_starting_with;
  using trainer_fixture::read_json_lines;
  using trainer_fixture::Setup;
  using trainer_fixture::TempDir;

  constexpr const char* killed_run_variable = "SODA_TEST_KILLED_RUN_DIR";

  // Runs this test binary again as a child process with only the test cases `filter` (skipped
  // ones included) and the environment variable set; returns its wait status. A fresh process,
  // not a fork, so that no OpenMP or BLAS thread state is inherited.
  int run_child_test(const std::string& filter, const std::string& variable,
                     const std::string& value) {
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::vector<std::string> arguments{self, "--no-skip=true", "--test-case=" + filter,
                                       "--minimal=true"};
    std::vector<char*> argv;
    for (auto& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    std::vector<std::string> environment{variable + "=" + value};
    for (char** entry = environ; *entry != nullptr; ++entry) environment.emplace_back(*entry);
    std::vector<char*> envp;
    for (auto& entry : environment) envp.push_back(entry.data());
    envp.push_back(nullptr);
    pid_t child = 0;
    REQUIRE(::posix_spawn(&child, self.c_str(), nullptr, nullptr, argv.data(), envp.data()) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    return status;
  }

  // Only run as the child of the test below: trains 3 epochs and, once epoch 2's log line is on
  // disk, starts writing its checkpoint and is killed midway (SIGKILL: no clean-up of any kind).
  TEST_CASE("killed run child: trains until it is killed inside its second checkpoint" *
            doctest::skip()) {
    const char* folder = std::getenv(killed_run_variable);
    REQUIRE(folder != nullptr);
    const Setup setup;
    soda::train::TrainerOptions options;
    options.epochs = 3;
    options.out_dir = folder;
    options.on_epoch_logged = [&](const soda::train::EpochRecord& record) {
      if (record.epoch != 1) return;
      soda::AtomicFileWriter writer(options.out_dir / "checkpoint.safetensors");
      writer.write("half a checkpoint", 17);
      std::raise(SIGKILL);
    };
    setup.make(7, options).fit();
    FAIL("the run was not killed");
  }

  TEST_CASE("a run killed between log line and checkpoint loses no line; its resume cleans up") {
    const Setup setup;
    const TempDir dir;
    const int status = run_child_test("killed run child*", killed_run_variable, dir.path.string());
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);

    // The kill left epoch 2's line, the checkpoint of epoch 1 and the writer's temporary file.
    const auto killed_lines = read_json_lines(dir.path / "log.jsonl");
    CHECK(epochs_of(killed_lines) == std::vector<std::int64_t>{0, 1});
    const auto checkpoint = dir.path / "checkpoint.safetensors";
    CHECK(soda::load_safetensors(checkpoint).metadata.at("train.epoch") == "1");
    const auto leftovers = files_starting_with(dir.path, "checkpoint.safetensors.tmp-");
    REQUIRE(leftovers.size() == 1);
    // Files that only look alike are not soda's to remove.
    const std::vector<std::string> kept_names{"notes.txt", "checkpoint.safetensors.tmp-x",
                                              "log.jsonl.tmp-0123456789ABCDEF",
                                              "other.bin.tmp-0123456789abcdef"};
    for (const auto& name : kept_names) std::ofstream(dir.path / name) << "user file";

    soda::train::TrainerOptions options;
    options.epochs = 3;
    options.out_dir = dir.path;
    auto resumed = setup.make(99, options);  // another seed: everything comes from the file
    resumed.resume(checkpoint);
    resumed.fit();
    resumed.write_summary({{"run", "resumed"}});

    CHECK(!std::filesystem::exists(leftovers.front()));
    for (const auto& name : kept_names) CHECK(std::filesystem::exists(dir.path / name));
    const auto lines = read_json_lines(dir.path / "log.jsonl");
    CHECK(epochs_of(lines) == std::vector<std::int64_t>{0, 1, 2});
    std::ifstream summary_file(dir.path / "summary.json");
    const auto summary = nlohmann::json::parse(summary_file);
    CHECK(epochs_of(summary["epochs"].get<std::vector<nlohmann::json>>()) ==
          std::vector<std::int64_t>{0, 1, 2});
    CHECK(summary["run"] == "resumed");
    // The second epoch ran twice, in the killed run and after the resume, to the same figures; the
    // first epoch's line is the killed run's own (its seconds too), carried in the checkpoint.
    REQUIRE(lines.size() == 3);
    for (const auto* key : {"steps", "train_loss", "train_accuracy", "test_accuracy"}) {
      CAPTURE(key);
      CHECK(lines[0][key] == killed_lines[0][key]);
      CHECK(lines[1][key] == killed_lines[1][key]);
    }
    CHECK(lines[0]["seconds"] == killed_lines[0]["seconds"]);
  }

  TEST_CASE("a resumed run's log and summary list every epoch, its cut one twice") {
    const Setup setup;
    const TempDir dir;
    soda::train::TrainerOptions options;
    options.epochs = 3;
    options.out_dir = dir.path;
    options.max_steps = 11;  // epoch 2, 3 batches in
    setup.make(7, options).fit();
    options.max_steps = -1;
    auto resumed = setup.make(7, options);
    resumed.resume(dir.path / "checkpoint.safetensors");
    const auto records = resumed.fit();
    CHECK(records.size() == 2);  // fit() returns this call's epochs only
    resumed.write_summary();

    const auto lines = read_json_lines(dir.path / "log.jsonl");
    CHECK(epochs_of(lines) == std::vector<std::int64_t>{0, 1, 1, 2});
    REQUIRE(lines.size() == 4);
    CHECK(lines[1]["complete"] == false);
    CHECK(lines[1]["steps"].get<int>() + lines[2]["steps"].get<int>() == 8);
    std::ifstream summary_file(dir.path / "summary.json");
    const auto summary = nlohmann::json::parse(summary_file);
    REQUIRE(summary["epochs"].size() == 4);
    for (std::size_t i = 0; i < 4; ++i) CHECK(summary["epochs"][i]["epoch"] == lines[i]["epoch"]);
    CHECK(summary["test_accuracy"] == lines[3]["test_accuracy"]);
    CHECK(summary["skipped_steps"] == 0);
  }

  TEST_CASE("the output folder is checked before the first step") {
    const Setup setup;
    const TempDir dir;
    const auto file = dir.path / "a-file";
    std::ofstream(file) << "not a folder";
    for (const auto& out : {file, file / "below"}) {
      CAPTURE(out);
      soda::train::TrainerOptions options;
      options.out_dir = out;
      auto trainer = setup.make(1, options);
      CHECK_THROWS_WITH_AS(trainer.fit(),
                           doctest::Contains(("output folder '" + out.string() + "'").c_str()),
                           soda::IoError);
      CHECK(trainer.step() == 0);
    }
  }

  TEST_CASE("a failed log or summary write is an IoError naming the file; the old files stay") {
    const Setup setup;
    const TempDir dir;
    soda::train::TrainerOptions options;
    options.epochs = 2;
    options.out_dir = dir.path;
    options.max_steps = 8;
    auto first = setup.make(2, options);
    first.fit();  // epoch 1 written
    const auto log_path = dir.path / "log.jsonl";
    const auto log_before = std::filesystem::file_size(log_path);
    {
      // Room for one more log line's worth of bytes, not two: the rewrite of the log fails.
      const trainer_fixture::FileSizeLimit limit(log_before + log_before / 2);
      options.max_steps = -1;
      auto second = setup.make(2, options);
      second.resume(dir.path / "checkpoint.safetensors");
      CHECK_THROWS_WITH_AS(second.fit(), doctest::Contains(("'" + log_path.string() + "'").c_str()),
                           soda::IoError);
      CHECK_THROWS_WITH_AS(
          second.write_summary(),
          doctest::Contains(("'" + (dir.path / "summary.json").string() + "'").c_str()),
          soda::IoError);
    }
    CHECK(epochs_of(read_json_lines(log_path)) == std::vector<std::int64_t>{0});
    CHECK(soda::load_safetensors(dir.path / "checkpoint.safetensors").metadata.at("train.epoch") ==
          "1");
    CHECK(!std::filesystem::exists(dir.path / "summary.json"));
    CHECK(files_starting_with(dir.path, "log.jsonl.tmp-").empty());
    CHECK(files_starting_with(dir.path, "summary.json.tmp-").empty());
  }

  TEST_CASE("options that would train or test on nothing, or never stop, are refused") {
    const Setup setup;
    soda::train::TrainerOptions options;
    options.eval_max_batches = 0;
    CHECK_THROWS_WITH_AS(setup.make(1, options), doctest::Contains("eval_max_batches = 0"),
                         soda::ValueError);
    options.eval_max_batches = -1;
    options.time_budget_seconds = std::nan("");
    CHECK_THROWS_WITH_AS(setup.make(1, options), doctest::Contains("time_budget_seconds"),
                         soda::ValueError);
    options.time_budget_seconds = 0;
    options.label_smoothing = 1.5;
    CHECK_THROWS_WITH_AS(setup.make(1, options), doctest::Contains("label_smoothing"),
                         soda::ValueError);
  }
}
