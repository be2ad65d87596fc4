// soda/train/checkpoint_position.hpp through Trainer::resume: metadata out of range (epoch, step,
// position, data seed, the kept log lines) is refused with the file and the entry named, and a
// resume that fails at any point, its model or optimizer state half loaded included, leaves the
// trainer's model, optimizer and position exactly as they were (soda/train/training_snapshot.hpp).
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <string>
#include <vector>

#include "trainer_fixture.hpp"

TEST_SUITE("train/checkpoint_position") {
  using trainer_fixture::identical;
  using trainer_fixture::Setup;
  using trainer_fixture::snapshot;
  using trainer_fixture::TempDir;
  using trainer_fixture::TrainingState;

  // The state a failed resume must leave as it was.
  struct VictimState {
    TrainingState training;
    std::int64_t epoch = 0, step = 0, position = 0;
  };

  VictimState state_of(soda::train::Trainer<float> & trainer) {
    VictimState state{{snapshot(trainer.model()), {}, trainer.optimizer().state_metadata()},
                      trainer.epoch(),
                      trainer.step(),
                      trainer.train_loader().position()};
    for (const auto& [name, t] : trainer.optimizer().state_dict()) {
      state.training.optimizer.push_back(t.to<float>());
    }
    return state;
  }

  bool unchanged(soda::train::Trainer<float> & trainer, const VictimState& before) {
    const auto now = state_of(trainer);
    return identical(now.training, before.training) && now.epoch == before.epoch &&
           now.step == before.step && now.position == before.position;
  }

  // A run of another seed, 3 steps in (momentum buffers set), with another seed's weights: any
  // value a resume copies in shows.
  soda::train::Trainer<float> victim(const Setup& setup) {
    soda::train::TrainerOptions options;
    options.epochs = 3;
    options.max_steps = 3;
    auto trainer = setup.make(5, options);
    trainer.fit();
    return trainer;
  }

  TEST_CASE("checkpoint metadata out of range is refused, naming the file and the entry") {
    const Setup setup;
    const TempDir dir;
    soda::train::TrainerOptions options;
    options.epochs = 3;
    options.max_steps = 10;
    options.out_dir = dir.path;
    setup.make(1, options).fit();
    const auto good = soda::load_safetensors(dir.path / "checkpoint.safetensors");
    auto trainer = victim(setup);
    const auto before = state_of(trainer);

    struct Case {
      std::string entry, value, expected;
    };
    const std::vector<Case> cases{
        // 2^64 - 1 was read as epoch -1 before.
        {"train.epoch", "18446744073709551615", "not an integer in [0, 2^63)"},
        {"train.epoch", "-1", "not an integer in [0, 2^63)"},
        {"train.epoch", "1.5", "not an integer in [0, 2^63)"},
        {"train.step", "9223372036854775808", "not an integer in [0, 2^63)"},
        {"train.position", "241", "training set of 240 samples"},
        {"train.data_seed", "+3", "not an unsigned integer"},
        {"train.history", "not json", "is not a JSON array of log lines"},
        {"train.history", "[{\"epoch\": 7}]", "holds epoch 7, outside [0, 1]"},
        {"train.history", "[{\"steps\": 1}]", "without an integer \"epoch\""},
    };
    for (const auto& c : cases) {
      CAPTURE(c.entry);
      CAPTURE(c.value);
      auto bad = good;
      bad.metadata[c.entry] = c.value;
      const auto path = dir.path / "bad.safetensors";
      soda::save_safetensors(path, bad);
      CHECK_THROWS_WITH_AS(
          trainer.resume(path),
          doctest::Contains(
              ("Trainer::resume: '" + path.string() + "': metadata entry '" + c.entry).c_str()),
          soda::ValueError);
      CHECK_THROWS_WITH(trainer.resume(path), doctest::Contains(c.expected.c_str()));
      CHECK(unchanged(trainer, before));
    }
    // The good file is taken, so the cases above failed on their entry alone.
    trainer.resume(dir.path / "checkpoint.safetensors");
    CHECK(trainer.step() == 10);
    CHECK(!unchanged(trainer, before));
  }

  TEST_CASE("a resume whose model or optimizer state fails midway leaves the trainer untouched") {
    const Setup setup;
    const TempDir dir;
    soda::train::TrainerOptions options;
    options.epochs = 3;
    options.max_steps = 10;
    options.out_dir = dir.path;
    setup.make(1, options).fit();
    const auto good = soda::load_safetensors(dir.path / "checkpoint.safetensors");
    auto trainer = victim(setup);
    const auto before = state_of(trainer);
    const auto model_names = trainer.model().state_dict();
    // The last model tensor fails after all others were copied in; the optimizer's buffer fails
    // after the whole model was.
    for (const std::string& name :
         {"model." + model_names.back().first, std::string("optimizer.momentum_buffer.0")}) {
      CAPTURE(name);
      auto bad = good;
      bool found = false;
      for (auto& [tensor_name, tensor] : bad.tensors) {
        if (tensor_name != name) continue;
        tensor = soda::zeros<float>({3});
        found = true;
      }
      REQUIRE(found);
      const auto path = dir.path / "bad.safetensors";
      soda::save_safetensors(path, bad);
      CHECK_THROWS_AS(trainer.resume(path), soda::Error);
      CHECK(unchanged(trainer, before));
    }
  }
}
