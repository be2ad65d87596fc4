// Supervised classification training: train_step (forward, cross-entropy, one optimizer step),
// evaluate, and Trainer, the epoch loop with a progress line, a JSON-lines log and checkpoints
// from which a resumed run continues bit for bit (model, optimizer, schedule position, data order).
// Every file is written atomically, the log line of an epoch before its checkpoint, and a step
// whose loss or update is not finite stops the run (or is skipped, when asked) before it is saved.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <concepts>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "soda/autodiff/functional.hpp"
#include "soda/data/data_loader.hpp"
#include "soda/io/atomic_file.hpp"
#include "soda/io/state_dict.hpp"
#include "soda/nn/loss.hpp"
#include "soda/optim/lr_schedule.hpp"
#include "soda/optim/optimizer.hpp"
#include "soda/train/checkpoint_position.hpp"
#include "soda/train/nonfinite_step.hpp"
#include "soda/train/progress.hpp"
#include "soda/train/training_snapshot.hpp"

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

struct EpochRecord;

struct TrainerOptions {
  std::int64_t epochs = 1;
  std::int64_t max_steps = -1;     // stop after this many steps in all (< 0: no limit)
  double time_budget_seconds = 0;  // > 0: stop (and checkpoint) once this much is spent
  double label_smoothing = 0;
  std::filesystem::path out_dir;  // checkpoint.safetensors, log.jsonl, summary.json; empty: none
  std::int64_t eval_max_batches = -1;   // < 0: the whole test set (0 is refused: it tests nothing)
  std::ostream* progress = &std::cerr;  // null: silent
  // A step whose loss, or whose update of a parameter, is not finite: false stops training with
  // NonFiniteError (naming epoch and step); true puts model and optimizer back as they were
  // before the step (at the cost of a copy of both per step) and counts it in the log's
  // "skipped_steps".
  bool skip_nonfinite_steps = false;
  // Called after an epoch's log line is written and before its checkpoint is (with no out_dir:
  // after each epoch). A callback that throws ends fit() with the previous checkpoint in place.
  std::function<void(const EpochRecord&)> on_epoch_logged;
};

// What one epoch (or the part of it run before a stop) did.
struct EpochRecord {
  std::int64_t epoch = 0;
  std::int64_t steps = 0;          // batches taken, skipped ones included
  std::int64_t skipped_steps = 0;  // of those, the non-finite steps skipped
  // train_loss and train_accuracy are NaN (null in the log) when every step was skipped.
  double learning_rate = 0, train_loss = 0, train_accuracy = 0, seconds = 0, images_per_second = 0;
  std::optional<Evaluation> test;
  bool complete = true;  // false when a step limit or time budget cut the epoch short

  nlohmann::ordered_json to_json() const {
    nlohmann::ordered_json line{{"epoch", epoch},
                                {"steps", steps},
                                {"skipped_steps", skipped_steps},
                                {"complete", complete},
                                {"learning_rate", learning_rate},
                                {"train_loss", train_loss},
                                {"train_accuracy", train_accuracy},
                                {"seconds", seconds},
                                {"images_per_second", images_per_second}};
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
    check_options();
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
  // a stop; writes a log line and then a checkpoint after each epoch and at a stop. The output
  // folder is checked before the first step, and what a killed run left half-written is removed.
  std::vector<EpochRecord> fit() {
    prepare_outputs();
    std::vector<EpochRecord> records;
    const auto started = ProgressLine::Clock::now();
    while (epoch_ < options_.epochs && !out_of_budget(started)) {
      records.push_back(run_epoch(started));
      if (!records.back().complete) break;
    }
    return records;
  }

  // The whole training state, written atomically: model ("model." + state-dict names), optimizer
  // ("optimizer." + its buffers, hyperparameters in metadata), epoch, position, step count and
  // the run's log lines so far (so that a resumed run's log and summary hold every epoch).
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
    file.metadata["train.history"] = history_.dump();
    save_safetensors(path, file);
  }

  // Restores a checkpoint of save_checkpoint; fit() then continues exactly where it stopped.
  // Everything is read and checked before anything changes, and a model or optimizer state that
  // fails to load is put back: a failed resume leaves the trainer as it was.
  void resume(const std::filesystem::path& path) {
    const auto file = load_safetensors(path);
    const auto where = "Trainer::resume: '" + path.string() + "': ";
    check_written_by_this_setup(file, where);
    auto point = read_checkpoint_position(file, where, train_loader_.size());
    nn::NamedTensors<T> optimizer_state;
    for (const auto& [name, tensor] : file.tensors) {
      if (name.rfind("optimizer.", 0) == 0) {
        optimizer_state.emplace_back(name.substr(10), soda::detail::values_as<T>(tensor));
      }
    }
    const TrainingSnapshot<T> before(*model_, *optimizer_);
    try {
      load_state_dict(*model_, file, path.string(), "model.");
      optimizer_->load_state_dict(optimizer_state, file.metadata);
    } catch (...) {
      before.restore(*model_, *optimizer_);
      throw;
    }
    train_loader_.set_seed(point.data_seed);
    train_loader_.seek(point.epoch, point.position);
    epoch_ = point.epoch;
    step_ = point.step;
    history_ = point.history ? std::move(*point.history) : read_log_lines();
  }

  // Every log line of the run, those from before a resume included, in order (an epoch cut by a
  // stop and finished after the resume has two lines, the first with "complete": false).
  const nlohmann::ordered_json& history() const { return history_; }

  // Non-finite steps skipped in the whole run.
  std::int64_t skipped_steps() const {
    std::int64_t skipped = 0;
    for (const auto& line : history_) {
      const auto count = line.find("skipped_steps");  // absent from older lines
      if (count != line.end() && count->is_number_integer()) skipped += count->get<std::int64_t>();
    }
    return skipped;
  }

  // `fields` (what the caller knows: data, model, ...) with the run's epochs, the steps skipped
  // and the last test accuracy, as summary.json holds them.
  nlohmann::ordered_json summary(nlohmann::ordered_json fields = {}) const {
    if (fields.is_null()) fields = nlohmann::ordered_json::object();
    fields["epochs"] = history_;
    fields["skipped_steps"] = skipped_steps();
    for (auto line = history_.rbegin(); line != history_.rend(); ++line) {
      if (line->contains("test_accuracy")) {
        fields["test_accuracy"] = (*line)["test_accuracy"];
        break;
      }
    }
    return fields;
  }

  // Writes summary(fields) to out_dir/summary.json, atomically.
  void write_summary(const nlohmann::ordered_json& fields = {}) const {
    if (options_.out_dir.empty()) {
      throw ValueError("Trainer::write_summary: no out_dir was given to write it in");
    }
    write_file_atomically(summary_path(), summary(fields).dump(2) + "\n");
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
  std::filesystem::path summary_path() const { return options_.out_dir / "summary.json"; }

 private:
  void check_options() const {
    const auto fail = [](const std::string& what) { throw ValueError("TrainerOptions: " + what); };
    if (options_.epochs < 0) fail("epochs = " + std::to_string(options_.epochs) + " is negative");
    if (options_.eval_max_batches == 0) {
      fail("eval_max_batches = 0 would test on nothing; give a count >= 1, or -1 for all");
    }
    if (!(options_.time_budget_seconds >= 0)) {
      fail("time_budget_seconds = " + std::to_string(options_.time_budget_seconds) +
           " must be >= 0 (0: no budget)");
    }
    if (!(options_.label_smoothing >= 0 && options_.label_smoothing <= 1)) {
      fail("label_smoothing = " + std::to_string(options_.label_smoothing) + " must be in [0, 1]");
    }
  }

  void check_written_by_this_setup(const TensorFile& file, const std::string& where) const {
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
  }

  // Checkpoints from before the log lines were kept in them: the output folder's log goes on.
  nlohmann::ordered_json read_log_lines() const {
    auto lines = nlohmann::ordered_json::array();
    if (options_.out_dir.empty()) return lines;
    std::ifstream log(log_path());
    std::string text;
    while (std::getline(log, text)) {
      auto line = nlohmann::ordered_json::parse(text, nullptr, false);
      if (line.is_object()) lines.push_back(std::move(line));
    }
    return lines;
  }

  // Before the first epoch: the folder exists and takes files, a killed writer's temporary files
  // are gone, and a resumed run's log holds the lines its checkpoint knows (a line written after
  // that checkpoint by a run killed before the next one is dropped: its epoch runs again).
  void prepare_outputs() const {
    if (options_.out_dir.empty()) return;
    prepare_output_folder(options_.out_dir);
    remove_stale_temporary_files(
        options_.out_dir, {checkpoint_path().filename().string(), log_path().filename().string(),
                           summary_path().filename().string()});
    if (!history_.empty()) write_log();
  }

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
      NonFiniteStepGuard<T> guard(*model_, *optimizer_, options_.skip_nonfinite_steps);
      const auto result = train_step(*model_, *optimizer_, detail::images_as<T>(batch->images),
                                     batch->labels, options_.label_smoothing);
      ++step_;
      ++record.steps;
      if (guard.step_kept(result.loss, {"Trainer", epoch_, options_.epochs, step_})) {
        loss_sum += result.loss * static_cast<double>(result.samples);
        correct += result.correct;
        samples += result.samples;
      } else {
        ++record.skipped_steps;
      }
      progress.update(first_step + record.steps,
                      figures(loss_sum, correct, samples, record, progress));
    }
    record.complete = train_loader_.epoch_finished();
    progress.update(first_step + record.steps,
                    figures(loss_sum, correct, samples, record, progress), true);
    progress.finish();
    record.seconds = progress.elapsed_seconds();
    if (samples > 0) {
      record.train_loss = loss_sum / static_cast<double>(samples);
      record.train_accuracy = static_cast<double>(correct) / static_cast<double>(samples);
      record.images_per_second = static_cast<double>(samples) / record.seconds;
    } else if (record.skipped_steps > 0) {  // every step skipped: no figure (null in the log)
      record.train_loss = record.train_accuracy = std::numeric_limits<double>::quiet_NaN();
    }
    if (test_loader_) {
      const auto test = evaluate(*model_, *test_loader_, options_.eval_max_batches);
      if (test.samples > 0) record.test = test;  // an empty test set gives no accuracy, not 0%
    }
    if (record.complete) train_loader_.start_epoch(++epoch_);
    write_outputs(record);
    return record;
  }

  static std::string figures(double loss_sum, std::int64_t correct, std::int64_t samples,
                             const EpochRecord& record, const ProgressLine& progress) {
    std::string text;
    if (samples > 0) {
      char line[128];
      std::snprintf(line, sizeof line, "loss %.4f acc %.2f%% %.0f img/s", loss_sum / samples,
                    100.0 * static_cast<double>(correct) / static_cast<double>(samples),
                    static_cast<double>(samples) / std::max(1e-9, progress.elapsed_seconds()));
      text = line;
    }
    if (record.skipped_steps > 0) {
      text += (text.empty() ? "(" : " (") + std::to_string(record.skipped_steps) +
              " non-finite skipped)";
    }
    return text;
  }

  // The log line first, then the checkpoint: a run killed between the two keeps the line, and
  // its resume (from the checkpoint before) rewrites the log from the checkpoint's history.
  void write_outputs(const EpochRecord& record) {
    history_.push_back(record.to_json());
    if (!options_.out_dir.empty()) write_log();
    if (options_.on_epoch_logged) options_.on_epoch_logged(record);
    if (!options_.out_dir.empty()) save_checkpoint(checkpoint_path());
  }

  void write_log() const {
    std::string text;
    for (const auto& line : history_) text += line.dump() + "\n";
    write_file_atomically(log_path(), text);
  }

  std::shared_ptr<nn::Module<T>> model_;
  std::unique_ptr<optim::Optimizer<T>> optimizer_;
  optim::LrSchedule schedule_;
  DataLoader train_loader_;
  std::optional<DataLoader> test_loader_;
  TrainerOptions options_;
  std::int64_t epoch_ = 0;  // the epoch being (or next to be) trained
  std::int64_t step_ = 0;   // batches taken in all (optimizer steps and skipped ones)
  nlohmann::ordered_json history_ = nlohmann::ordered_json::array();  // the run's log lines
};

}  // namespace soda::train
