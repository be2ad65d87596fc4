// soda/train/trainer.hpp: learning happens, a stopped and resumed run ends bit-identical to an
// uninterrupted one, the log and checkpoint hold what they should, and bad checkpoints are refused.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <fstream>
#include <string>

#include "trainer_fixture.hpp"

TEST_SUITE("train/trainer") {
  using trainer_fixture::identical;
  using trainer_fixture::Setup;
  using trainer_fixture::snapshot;
  using trainer_fixture::TempDir;

  TEST_CASE("training lowers the loss and beats chance on held-out data") {
    const Setup setup;
    soda::train::TrainerOptions options;
    options.epochs = 4;
    auto trainer = setup.make(1, options);
    const auto records = trainer.fit();
    REQUIRE(records.size() == 4);
    CHECK(records.back().train_loss < records.front().train_loss);
    REQUIRE(records.back().test);
    CHECK(records.back().test->accuracy > 0.5);  // 4 classes: chance is 0.25
    CHECK(records.back().learning_rate == doctest::Approx(0.005));
    CHECK(trainer.epoch() == 4);
    CHECK(trainer.step() == 4 * 8);
  }

  TEST_CASE("a run stopped mid-epoch and resumed from its checkpoint ends bit-identical") {
    for (const std::string optimizer : {"sgd", "adam", "adahessian"}) {
      CAPTURE(optimizer);
      const Setup setup;
      const TempDir dir;
      soda::train::TrainerOptions options;
      options.epochs = 3;
      auto whole = setup.make(7, options, optimizer);
      whole.fit();

      options.out_dir = dir.path;
      options.max_steps = 11;  // epoch 1, 3 batches in
      auto first = setup.make(7, options, optimizer);
      const auto partial = first.fit();
      REQUIRE(partial.size() == 2);
      CHECK(!partial.back().complete);

      options.max_steps = -1;
      // Another seed: everything must come from the file.
      auto second = setup.make(99, options, optimizer);
      second.resume(dir.path / "checkpoint.safetensors");
      CHECK(second.epoch() == 1);
      CHECK(second.step() == 11);
      CHECK(second.train_loader().position() == 3 * 32);
      second.fit();
      CHECK(identical(snapshot(whole.model()), snapshot(second.model())));
      CHECK(second.optimizer().step_count() == whole.optimizer().step_count());
    }
  }

  TEST_CASE("AdaHessian trains through the Trainer: one H·z per curvature step") {
    const Setup setup;
    soda::train::TrainerOptions options;
    options.epochs = 3;
    auto trainer = setup.make(1, options, "adahessian");
    const auto records = trainer.fit();
    // 24 steps on this set are too few for adaptive methods to beat chance reliably (Adam neither);
    // tests/train/test_fashion_mnist.cpp checks that AdaHessian learns on real data.
    CHECK(records.back().train_loss < records.front().train_loss);
    const auto& adahessian =
        dynamic_cast<const soda::optim::AdaHessian<float>&>(trainer.optimizer());
    CHECK(adahessian.hvp_count() == 3 * 8 / 2);  // update_each = 2
  }

  TEST_CASE("a checkpoint of one optimizer is refused by a run with another") {
    const Setup setup;
    const TempDir dir;
    soda::train::TrainerOptions options;
    options.out_dir = dir.path;
    options.max_steps = 2;
    setup.make(1, options, "sgd").fit();
    auto adam = setup.make(1, options, "adam");
    CHECK_THROWS_WITH_AS(
        adam.resume(dir.path / "checkpoint.safetensors"),
        doctest::Contains("it was written by the sgd optimizer; this run uses adam"),
        soda::ValueError);
  }

  TEST_CASE("the log has a JSON line per epoch and the checkpoint PyTorch names under model.") {
    const Setup setup;
    const TempDir dir;
    soda::train::TrainerOptions options;
    options.epochs = 2;
    options.out_dir = dir.path;
    auto trainer = setup.make(3, options);
    trainer.fit();
    std::ifstream log(dir.path / "log.jsonl");
    std::string line;
    std::vector<nlohmann::json> lines;
    while (std::getline(log, line)) lines.push_back(nlohmann::json::parse(line));
    REQUIRE(lines.size() == 2);
    CHECK(lines[1]["epoch"] == 1);
    CHECK(lines[1]["steps"] == 8);
    CHECK(lines[1].contains("test_accuracy"));
    CHECK(lines[1]["images_per_second"].get<double>() > 0);
    const auto file = soda::load_safetensors(dir.path / "checkpoint.safetensors");
    CHECK(file.contains("model.0.weight"));
    CHECK(file.contains("model.9.bias"));
    CHECK(file.contains("optimizer.momentum_buffer.0"));
    CHECK(file.metadata.at("train.epoch") == "2");
    CHECK(file.metadata.at("sgd.momentum") == "0.9");
  }

  TEST_CASE("resuming from a checkpoint of another model or a foreign file is refused") {
    const Setup setup;
    const TempDir dir;
    soda::Generator gen(0);
    const auto other = soda::models::mlp<float>(64, {8}, 4, gen);
    soda::save_state_dict(dir.path / "weights.safetensors", *other);
    soda::train::TrainerOptions options;
    auto trainer = setup.make(1, options);
    CHECK_THROWS_WITH_AS(trainer.resume(dir.path / "weights.safetensors"),
                         doctest::Contains("metadata entry 'train.epoch' is missing"),
                         soda::ValueError);
    CHECK_THROWS_AS(trainer.resume(dir.path / "absent.safetensors"), soda::Error);
  }

  TEST_CASE("evaluate restores the model's mode and counts every sample") {
    const Setup setup;
    soda::Generator gen(2);
    auto model = soda::models::small_cnn<float>(1, 8, 8, 4, gen);
    soda::DataLoaderOptions loader;
    loader.batch_size = 30;
    loader.shuffle = false;
    soda::DataLoader test(setup.test, loader);
    const auto result = soda::train::evaluate(*model, test);
    CHECK(result.samples == 80);
    CHECK(model->is_training());
    CHECK(result.accuracy >= 0);
    CHECK(result.loss > 0);
  }
}
