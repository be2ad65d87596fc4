// soda/train/nonfinite_step.hpp through the Trainer and train_large_batch: a step whose loss is
// NaN, or whose gradient is NaN under a finite loss, stops training with NonFiniteError naming
// epoch and step and leaves the last checkpoint as it was; skip_nonfinite_steps undoes such a step
// exactly (model and optimizer state bit-identical to before it) and counts it.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <cmath>
#include <fstream>
#include <memory>
#include <string>

#include "trainer_fixture.hpp"

TEST_SUITE("train/nonfinite_step") {
  using trainer_fixture::identical;
  using trainer_fixture::PoisonedCnn;
  using trainer_fixture::Setup;
  using trainer_fixture::snapshot;
  using trainer_fixture::TempDir;

  TEST_CASE("a NaN loss stops training with an error naming epoch and step; the checkpoint stays") {
    const Setup setup;
    const TempDir dir;
    auto model = std::make_shared<PoisonedCnn>(3);
    model->nan_loss_at = {11};  // epoch 2 (8 steps per epoch), its third step
    soda::train::TrainerOptions options;
    options.epochs = 3;
    options.out_dir = dir.path;
    auto trainer = setup.make_with(model, 3, options);
    std::string message;
    try {
      trainer.fit();
    } catch (const soda::train::NonFiniteError& error) {
      message = error.what();
      CHECK(error.epoch() == 1);
      CHECK(error.step() == 11);
    }
    CHECK(message.find("Trainer: epoch 2/3, step 11: the loss is nan") != std::string::npos);
    CHECK(message.find("skip_nonfinite_steps") != std::string::npos);

    // What is on disk is epoch 1's end, which is the state the 9th step started from.
    const auto lines = trainer_fixture::read_json_lines(dir.path / "log.jsonl");
    CHECK(trainer_fixture::epochs_of(lines) == std::vector<std::int64_t>{0});
    const auto file = soda::load_safetensors(dir.path / "checkpoint.safetensors");
    CHECK(file.metadata.at("train.epoch") == "1");
    CHECK(file.metadata.at("train.step") == "8");
    PoisonedCnn reloaded(0);
    soda::load_state_dict(reloaded, file, "checkpoint", "model.");
    REQUIRE(model->before_call.size() >= 9);
    CHECK(identical(snapshot(reloaded), model->before_call[8].model));
  }

  TEST_CASE("a NaN gradient under a finite loss stops training too, naming the parameter") {
    const Setup setup;
    auto model = std::make_shared<PoisonedCnn>(4);
    model->nan_gradient_at = {3};
    soda::train::TrainerOptions options;
    options.epochs = 1;
    auto trainer = setup.make_with(model, 4, options, "adam");
    CHECK_THROWS_WITH_AS(
        trainer.fit(),
        doctest::Contains("Trainer: epoch 1/1, step 3: 'probe' holds nan after the "
                          "update (a non-finite gradient)"),
        soda::train::NonFiniteError);
    // The model was finite when the step began (the guard reads the loss first, so naming the
    // probe also says that the loss was finite).
    REQUIRE(model->before_call.size() == 3);
    for (const auto& tensor : model->before_call.back().model) {
      CHECK(!soda::train::detail::first_non_finite(tensor));
    }
  }

  TEST_CASE("skip_nonfinite_steps undoes such a step exactly and counts it in log and summary") {
    for (const std::string optimizer : {"sgd", "adam", "adahessian"}) {
      CAPTURE(optimizer);
      const Setup setup;
      const TempDir dir;
      auto model = std::make_shared<PoisonedCnn>(5);
      model->nan_loss_at = {3, 7};
      model->nan_gradient_at = {5};
      soda::train::TrainerOptions options;
      options.epochs = 1;
      options.out_dir = dir.path;
      options.skip_nonfinite_steps = true;
      auto trainer = setup.make_with(model, 5, options, optimizer);
      model->optimizer = &trainer.optimizer();
      const auto records = trainer.fit();

      // One forward per step, each recording the state the step starts from.
      REQUIRE(model->before_call.size() == 8);
      for (const std::int64_t skipped : {3, 5, 7}) {
        CAPTURE(skipped);
        CHECK(identical(model->before_call[skipped - 1], model->before_call[skipped]));
      }
      for (const std::int64_t kept : {2, 4, 6}) {
        CAPTURE(kept);
        CHECK(!identical(model->before_call[kept - 1].model, model->before_call[kept].model));
      }
      CHECK(trainer.optimizer().step_count() == 8 - 3);
      for (const auto& tensor : snapshot(*model)) {
        CHECK(!soda::train::detail::first_non_finite(tensor));
      }

      REQUIRE(records.size() == 1);
      CHECK(records[0].steps == 8);
      CHECK(records[0].skipped_steps == 3);
      CHECK(std::isfinite(records[0].train_loss));
      const auto lines = trainer_fixture::read_json_lines(dir.path / "log.jsonl");
      REQUIRE(lines.size() == 1);
      CHECK(lines[0]["skipped_steps"] == 3);
      trainer.write_summary({{"model", "PoisonedCnn"}});
      std::ifstream summary_file(dir.path / "summary.json");
      const auto summary = nlohmann::json::parse(summary_file);
      CHECK(summary["skipped_steps"] == 3);
      CHECK(summary["model"] == "PoisonedCnn");
      CHECK(summary["epochs"].size() == 1);
    }
  }

  TEST_CASE("an epoch whose every step is skipped changes nothing and reports no loss, not 0") {
    const Setup setup;
    const TempDir dir;
    auto model = std::make_shared<PoisonedCnn>(8);
    model->nan_loss_at = {1, 2, 3, 4, 5, 6, 7, 8};
    soda::train::TrainerOptions options;
    options.out_dir = dir.path;
    options.skip_nonfinite_steps = true;
    auto trainer = setup.make_with(model, 8, options);
    const auto records = trainer.fit();
    REQUIRE(records.size() == 1);
    CHECK(records[0].skipped_steps == 8);
    CHECK(std::isnan(records[0].train_loss));
    CHECK(identical(snapshot(*model), model->before_call.front().model));
    const auto lines = trainer_fixture::read_json_lines(dir.path / "log.jsonl");
    REQUIRE(lines.size() == 1);
    CHECK(lines[0]["train_loss"].is_null());
    CHECK(lines[0]["train_accuracy"].is_null());
  }

  TEST_CASE("large-batch training stops at a non-finite step, or skips it when asked") {
    const Setup setup;
    soda::DataLoaderOptions loader;
    loader.seed = 9;
    loader.mean = {0.5f};
    loader.stddev = {0.25f};
    soda::train::LargeBatchOptions options;
    options.method = soda::train::BatchMethod::small_batch;
    options.epochs = 1;
    options.batch = 48;  // 5 steps over the 240 images
    options.large_batch = 48;
    options.learning_rate = 0.05;
    options.progress = nullptr;
    for (const bool skip : {false, true}) {
      CAPTURE(skip);
      auto model = std::make_shared<PoisonedCnn>(6);
      model->nan_loss_at = {2};
      soda::optim::SGD<float> sgd(model->parameters(), {.lr = 0.05, .momentum = 0.9});
      options.skip_nonfinite_steps = skip;
      const auto run = [&] {
        return soda::train::train_large_batch<float>(model, sgd, setup.train, setup.test, loader,
                                                     options);
      };
      if (!skip) {
        CHECK_THROWS_WITH_AS(run(),
                             doctest::Contains("large-batch training (BL): epoch 1/1, step 2: the "
                                               "loss is nan"),
                             soda::train::NonFiniteError);
        continue;
      }
      model->optimizer = &sgd;
      const auto result = run();
      REQUIRE(result.epochs.size() == 1);
      CHECK(result.epochs[0].steps == 5);
      CHECK(result.epochs[0].skipped_steps == 1);
      CHECK(result.to_json()["epochs"][0]["skipped_steps"] == 1);
      CHECK(sgd.step_count() == 4);
      REQUIRE(model->before_call.size() == 5);
      CHECK(identical(model->before_call[1], model->before_call[2]));
    }
  }
}
