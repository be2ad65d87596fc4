// Supervised classification training: train_step (forward, cross-entropy, one optimizer step),
// evaluate, and Trainer, the epoch loop with a progress line, a JSON-lines log and checkpoints
// from which a resumed run continues bit for bit (model, optimizer, schedule position, data order).
#pragma once

#include <nlohmann/json.hpp>

#include <concepts>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "soda/autodiff/functional.hpp"
#include "soda/data/data_loader.hpp"
#include "soda/io/state_dict.hpp"
#include "soda/nn/loss.hpp"
#include "soda/optim/lr_schedule.hpp"
#include "soda/optim/optimizer.hpp"
#include "soda/train/progress.hpp"

namespace soda::train {

namespace detail {

// A loader's float batch as the model's type: the batch itself when that is float (no copy).
template <class T>
Tensor<T> images_as(const Tensor<float>& images) {
  if constexpr (std::is_same_v<T, float>) {
    return images;
  } else {
    return images.template to<T>();
  }
}

}  // namespace detail

struct StepResult {
  double loss = 0;
  std::int64_t correct = 0, samples = 0;
};

// One optimisation step on a batch (the optimizer differentiates the loss as it needs: SGD and
// Adam once, AdaHessian forward-over-reverse); the model stays in whatever mode it is in.
template <class T>
StepResult train_step(nn::Module<T>& model, optim::Optimizer<T>& optimizer, const Tensor<T>& images,
                      const Tensor<std::int64_t>& labels, double label_smoothing = 0) {
  Tensor<T> logits;
  const auto loss = optimizer.step([&] {
    logits = model(images);
    return nn::cross_entropy(logits, labels, label_smoothing);
  });
  return {static_cast<double>(loss.item()), nn::count_correct(logits.detach(), labels),
          labels.numel()};
}

struct Evaluation {
  double loss = 0;      // mean cross-entropy over the samples
  double accuracy = 0;  // fraction of argmax hits
  std::int64_t samples = 0;
};

// Mean loss and accuracy over one pass of `loader` (from its start) in evaluation mode; the
// model's mode is restored afterwards. max_batches < 0: the whole data set.
template <class T>
Evaluation evaluate(nn::Module<T>& model, DataLoader& loader, std::int64_t max_batches = -1) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  loader.start_epoch(0);
  double loss_sum = 0;
  std::int64_t correct = 0, samples = 0, batches = 0;
  while (auto batch = loader.next()) {
    if (max_batches >= 0 && batches++ >= max_batches) break;
    const auto images = detail::images_as<T>(batch->images);
    const auto logits = model(images);
    const auto n = batch->labels.numel();
    loss_sum += static_cast<double>(nn::cross_entropy(logits, batch->labels).item()) * n;
    correct += nn::count_correct(logits, batch->labels);
    samples += n;
  }
  model.train(was_training);
  if (samples == 0) return {};
  return {loss_sum / samples, static_cast<double>(correct) / samples, samples};
}

struct TrainerOptions {
  std::int64_t epochs = 1;
  std::int64_t max_steps = -1;     // stop after this many steps in all (< 0: no limit)
  double time_budget_seconds = 0;  // > 0: stop (and checkpoint) once this much is spent
  double label_smoothing = 0;
  std::filesystem::path out_dir;        // checkpoint.safetensors and log.jsonl; empty: none
  std::int64_t eval_max_batches = -1;   // < 0: the whole test set
  std::ostream* progress = &std::cerr;  // null: silent
};

// What one epoch (or the part of it run before a stop) did.
struct EpochRecord {
  std::int64_t epoch = 0, steps = 0;
  double learning_rate = 0, train_loss = 0, train_accuracy = 0, seconds = 0, images_per_second = 0;
  std::optional<Evaluation> test;
  bool complete = true;  // false when a step limit or time budget cut the epoch short

  nlohmann::ordered_json to_json() const {
    nlohmann::ordered_json line{
        {"epoch", epoch},           {"steps", steps},
        {"complete", complete},     {"learning_rate", learning_rate},
        {"train_loss", train_loss}, {"train_accuracy", train_accuracy},
        {"seconds", seconds},       {"images_per_second", images_per_second}};
    if (test) {
      line["test_loss"] = test->loss;
      line["test_accuracy"] = test->accuracy;
    }
    return line;
  }
};

template <class T = float>
class Trainer {
 public:
  // The learning rate follows `schedule` per epoch: epoch e trains at learning_rate_at(e).
  Trainer(std::shared_ptr<nn::Module<T>> model, std::unique_ptr<optim::Optimizer<T>> optimizer,
          optim::LrSchedule schedule, DataLoader train_loader,
          std::optional<DataLoader> test_loader, TrainerOptions options)
      : model_(std::move(model)),
        optimizer_(std::move(optimizer)),
        schedule_(std::move(schedule)),
        train_loader_(std::move(train_loader)),
        test_loader_(std::move(test_loader)),
        options_(std::move(options)) {
    if (!model_) throw ValueError("Trainer: the model is null");
    if (!optimizer_) throw ValueError("Trainer: the optimizer is null");
  }

  // Any optimizer by value: Trainer(model, optim::SGD<float>(...), schedule, ...).
  template <std::derived_from<optim::Optimizer<T>> ConcreteOptimizer>
  Trainer(std::shared_ptr<nn::Module<T>> model, ConcreteOptimizer optimizer,
          optim::LrSchedule schedule, DataLoader train_loader,
          std::optional<DataLoader> test_loader, TrainerOptions options)
      : Trainer(std::move(model), std::make_unique<ConcreteOptimizer>(std::move(optimizer)),
                std::move(schedule), std::move(train_loader), std::move(test_loader),
                std::move(options)) {}

  // Trains from the current position (epoch 0, or where resume() left off) to the last epoch or
  // a stop; writes a checkpoint after each epoch and at a stop, and a log line per epoch.
  std::vector<EpochRecord> fit() {
    std::vector<EpochRecord> records;
    const auto started = ProgressLine::Clock::now();
    while (epoch_ < options_.epochs && !out_of_budget(started)) {
      records.push_back(run_epoch(started));
      if (!records.back().complete) break;
    }
    return records;
  }

  // The whole training state, written atomically: model ("model." + state-dict names), optimizer
  // ("optimizer." + its buffers, hyperparameters in metadata), epoch, position and step count.
  void save_checkpoint(const std::filesystem::path& path) const {
    auto file = state_dict_file(*model_, "model.");
    for (const auto& [name, tensor] : optimizer_->state_dict()) {
      file.tensors.emplace_back("optimizer." + name, tensor);
    }
    file.metadata = optimizer_->state_metadata();
    file.metadata["train.model"] = model_->type_name();
    file.metadata["train.optimizer"] = optimizer_->name();
    file.metadata["train.epoch"] = std::to_string(epoch_);
    file.metadata["train.position"] = std::to_string(train_loader_.position());
    file.metadata["train.step"] = std::to_string(step_);
    file.metadata["train.data_seed"] = std::to_string(train_loader_.seed());
    save_safetensors(path, file);
  }

  // Restores a checkpoint of save_checkpoint; fit() then continues exactly where it stopped.
  void resume(const std::filesystem::path& path) {
    const auto file = load_safetensors(path);
    const auto where = "Trainer::resume: '" + path.string() + "': ";
    const auto number = [&](const std::string& key) {
      const auto found = file.metadata.find(key);
      if (found == file.metadata.end()) {
        throw ValueError(where + "metadata entry '" + key + "' is missing; not a soda checkpoint?");
      }
      try {
        std::size_t used = 0;
        const auto value = std::stoull(found->second, &used);
        if (used == found->second.size() && found->second[0] != '-') return value;
      } catch (const std::exception&) {
      }
      throw ValueError(where + "metadata entry '" + key + "' is '" + found->second +
                       "', not a non-negative integer");
    };
    const auto model_name = file.metadata.find("train.model");
    if (model_name != file.metadata.end() && model_name->second != model_->type_name()) {
      throw ValueError(where + "it holds a " + model_name->second + ", not a " +
                       model_->type_name());
    }
    // Checkpoints from before optimizers were recorded are SGD's.
    const auto optimizer_name = file.metadata.find("train.optimizer");
    const std::string saved_optimizer =
        optimizer_name == file.metadata.end() ? "sgd" : optimizer_name->second;
    if (saved_optimizer != optimizer_->name()) {
      throw ValueError(where + "it was written by the " + saved_optimizer +
                       " optimizer; this run uses " + optimizer_->name());
    }
    const auto epoch = static_cast<std::int64_t>(number("train.epoch"));
    const auto position = static_cast<std::int64_t>(number("train.position"));
    const auto step = static_cast<std::int64_t>(number("train.step"));
    const auto data_seed = number("train.data_seed");
    load_state_dict(*model_, file, path.string(), "model.");
    nn::NamedTensors<T> optimizer_state;
    for (const auto& [name, tensor] : file.tensors) {
      if (name.rfind("optimizer.", 0) == 0) {
        optimizer_state.emplace_back(name.substr(10), soda::detail::values_as<T>(tensor));
      }
    }
    optimizer_->load_state_dict(optimizer_state, file.metadata);
    train_loader_.set_seed(data_seed);
    train_loader_.seek(epoch, position);
    epoch_ = epoch;
    step_ = step;
  }

  nn::Module<T>& model() { return *model_; }
  optim::Optimizer<T>& optimizer() { return *optimizer_; }
  DataLoader& train_loader() { return train_loader_; }
  std::int64_t epoch() const { return epoch_; }
  std::int64_t step() const { return step_; }

  std::filesystem::path checkpoint_path() const {
    return options_.out_dir / "checkpoint.safetensors";
  }
  std::filesystem::path log_path() const { return options_.out_dir / "log.jsonl"; }

 private:
  bool out_of_budget(ProgressLine::Clock::time_point started) const {
    if (options_.max_steps >= 0 && step_ >= options_.max_steps) return true;
    if (options_.time_budget_seconds <= 0) return false;
    return std::chrono::duration<double>(ProgressLine::Clock::now() - started).count() >=
           options_.time_budget_seconds;
  }

  EpochRecord run_epoch(ProgressLine::Clock::time_point started) {
    EpochRecord record;
    record.epoch = epoch_;
    record.learning_rate = schedule_.learning_rate_at(epoch_);
    optimizer_->set_learning_rate(record.learning_rate);
    if (train_loader_.epoch() != epoch_) train_loader_.start_epoch(epoch_);
    model_->train();
    ProgressLine progress(
        "epoch " + std::to_string(epoch_ + 1) + "/" + std::to_string(options_.epochs) + " step",
        train_loader_.batches_per_epoch(), "step", options_.progress);
    const std::int64_t first_step =
        train_loader_.position() / std::max<std::int64_t>(1, train_loader_.batch_size());
    double loss_sum = 0;
    std::int64_t correct = 0, samples = 0;
    while (!out_of_budget(started)) {
      auto batch = train_loader_.next();
      if (!batch) break;
      const auto result = train_step(*model_, *optimizer_, detail::images_as<T>(batch->images),
                                     batch->labels, options_.label_smoothing);
      ++step_;
      ++record.steps;
      loss_sum += result.loss * static_cast<double>(result.samples);
      correct += result.correct;
      samples += result.samples;
      progress.update(first_step + record.steps, figures(loss_sum, correct, samples, progress));
    }
    record.complete = train_loader_.epoch_finished();
    progress.update(first_step + record.steps, figures(loss_sum, correct, samples, progress), true);
    progress.finish();
    record.seconds = progress.elapsed_seconds();
    if (samples > 0) {
      record.train_loss = loss_sum / static_cast<double>(samples);
      record.train_accuracy = static_cast<double>(correct) / static_cast<double>(samples);
      record.images_per_second = static_cast<double>(samples) / record.seconds;
    }
    if (test_loader_) record.test = evaluate(*model_, *test_loader_, options_.eval_max_batches);
    if (record.complete) train_loader_.start_epoch(++epoch_);
    write_outputs(record);
    return record;
  }

  static std::string figures(double loss_sum, std::int64_t correct, std::int64_t samples,
                             const ProgressLine& progress) {
    if (samples == 0) return "";
    char text[128];
    std::snprintf(text, sizeof text, "loss %.4f acc %.2f%% %.0f img/s", loss_sum / samples,
                  100.0 * static_cast<double>(correct) / static_cast<double>(samples),
                  static_cast<double>(samples) / std::max(1e-9, progress.elapsed_seconds()));
    return text;
  }

  void write_outputs(const EpochRecord& record) const {
    if (options_.out_dir.empty()) return;
    std::filesystem::create_directories(options_.out_dir);
    save_checkpoint(checkpoint_path());
    std::ofstream log(log_path(), std::ios::app);
    if (!log) throw IoError("Trainer: cannot append to '" + log_path().string() + "'");
    log << record.to_json().dump() << "\n";
  }

  std::shared_ptr<nn::Module<T>> model_;
  std::unique_ptr<optim::Optimizer<T>> optimizer_;
  optim::LrSchedule schedule_;
  DataLoader train_loader_;
  std::optional<DataLoader> test_loader_;
  TrainerOptions options_;
  std::int64_t epoch_ = 0;  // the epoch being (or next to be) trained
  std::int64_t step_ = 0;   // optimisation steps taken in all
};

}  // namespace soda::train
