// What the analysis examples share about their input model: loading a checkpoint that
// train_cifar10 wrote (or a plain state dict), or, without one, a short seeded SGD run.
#pragma once

#include <iostream>
#include <memory>
#include <soda/soda.hpp>
#include <string>

#include "common/data_and_models.hpp"

namespace examples {

// Loads a checkpoint written by train_cifar10 (tensors under "model.") or a plain state dict.
inline void load_checkpoint(soda::nn::Module<float>& model, const std::string& path) {
  const auto file = soda::load_safetensors(path);
  const std::string prefix =
      file.contains("model." + model.state_dict().front().first) ? "model." : "";
  soda::load_state_dict(model, file, path, prefix);
}

struct BriefTraining {
  std::int64_t epochs = 1, batch = 128;
  double time_budget_seconds = 120, lr = 0.1;
  std::uint64_t seed = 0;
  bool quiet = false;
};

// A short SGD run when no checkpoint is given, so the analysis is of a trained model.
inline void train_briefly(const std::shared_ptr<soda::nn::Module<float>>& model,
                          const DataChoice& data, const BriefTraining& settings) {
  std::cerr << "no --checkpoint: training " << settings.epochs << " epoch(s), at most "
            << settings.time_budget_seconds << " s, first\n";
  auto train_options = plain_loader_options(data, settings.batch, settings.seed);
  train_options.shuffle = true;
  train_options.random_crop = train_options.horizontal_flip = data.augment;
  auto test_options = plain_loader_options(data, 500, settings.seed);
  soda::optim::SGD<float> optimizer(model->parameters(),
                                    {.lr = settings.lr, .momentum = 0.9, .weight_decay = 5e-4});
  soda::train::TrainerOptions options;
  options.epochs = settings.epochs;
  options.time_budget_seconds = settings.time_budget_seconds;
  options.eval_max_batches = 4;
  options.progress = settings.quiet ? nullptr : &std::cerr;
  soda::train::Trainer<float> trainer(model, optimizer, soda::optim::LrSchedule(settings.lr),
                                      soda::DataLoader(data.train, train_options),
                                      soda::DataLoader(data.test, test_options), options);
  const auto records = trainer.fit();
  if (!records.empty() && records.back().test) {
    std::cerr << "trained: test accuracy on 2000 images " << 100 * records.back().test->accuracy
              << "%\n";
  }
}

}  // namespace examples
