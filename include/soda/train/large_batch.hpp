// Large-batch training methods in one harness, on the same data and epoch budget:
//   BL   a fixed small batch (the baseline);
//   FB   a fixed large batch with the learning rate scaled linearly by B / B₀ and a linear warm-up
//        from the base rate (Goyal et al., "Accurate, large minibatch SGD", 2017);
//   GG   the batch multiplied by 1/decay at each decay epoch instead of decaying the rate, until
//        the largest batch (Smith et al., "Don't decay the learning rate, increase the batch
//        size");
//   ABS  the batch grown as the Hessian's top eigenvalue falls (adaptive_batch_size.hpp);
//   ABSA ABS with FGSM inputs replacing a share of each batch (Yao et al., arXiv:1810.01021).
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "soda/data/data_loader.hpp"
#include "soda/hessian/eigenvalues.hpp"
#include "soda/hessian/hessian_operator.hpp"
#include "soda/nn/loss.hpp"
#include "soda/optim/lr_schedule.hpp"
#include "soda/optim/optimizer.hpp"
#include "soda/train/adaptive_batch_size.hpp"
#include "soda/train/adversarial.hpp"
#include "soda/train/nonfinite_step.hpp"
#include "soda/train/progress.hpp"
#include "soda/train/trainer.hpp"

namespace soda::train {

enum class BatchMethod { small_batch, fixed_large, grow_on_decay, adaptive, adaptive_adversarial };

inline std::string method_name(BatchMethod method) {
  switch (method) {
    case BatchMethod::small_batch:
      return "BL";
    case BatchMethod::fixed_large:
      return "FB";
    case BatchMethod::grow_on_decay:
      return "GG";
    case BatchMethod::adaptive:
      return "ABS";
    case BatchMethod::adaptive_adversarial:
      return "ABSA";
  }
  return "?";
}

inline BatchMethod parse_method(const std::string& name) {
  for (auto m : {BatchMethod::small_batch, BatchMethod::fixed_large, BatchMethod::grow_on_decay,
                 BatchMethod::adaptive, BatchMethod::adaptive_adversarial}) {
    if (method_name(m) == name) return m;
  }
  throw ValueError("unknown large-batch method '" + name + "' (BL, FB, GG, ABS or ABSA)");
}

struct LargeBatchOptions {
  BatchMethod method = BatchMethod::adaptive;
  std::int64_t epochs = 10;
  std::int64_t batch = 128;         // BL's batch, where GG, ABS and ABSA start
  std::int64_t large_batch = 4096;  // FB's batch; the largest GG, ABS and ABSA reach
  // The largest batch one pass holds; a larger batch is split into micro-batches whose gradients
  // (and AdaHessian's H·z) are summed, as the authors' code accumulates 128-image batches.
  std::int64_t micro_batch = 512;
  double learning_rate = 0.1;  // at `batch`; FB, ABS and ABSA scale it by B / batch
  std::vector<std::int64_t> decay_epochs{};
  double decay = 0.2;              // lr ×decay at each decay epoch (GG: batch ×1/decay instead)
  std::int64_t warmup_epochs = 5;  // FB's linear warm-up, per iteration
  // ABS and ABSA (their initial and max batch come from above); ABSA starts with the authors' 0.2
  // of each batch adversarial, ABS with none.
  AdaptiveBatchOptions adaptive{.adversarial_fraction = 0.2};
  // The top eigenvalue: power iteration (warm-started from the last eigenvector) on a fixed
  // random sub-sample of the training set in eval mode, the authors' 10 iterations and 1e-2.
  std::int64_t hessian_samples = 256;
  std::int64_t power_iterations = 10;
  double power_tolerance = 1e-2;
  bool track_eigenvalue = false;  // also estimate it each epoch for BL, FB and GG (for the trace)
  // ABSA's FGSM: ε = 0.005 of the pixel range in eval mode, as the authors; none in the second
  // half of training (adversarial_until = 0.5 of the epochs).
  AttackOptions attack{.epsilon = 0.005, .train_mode = false};
  InputSpace input_space{};
  double adversarial_until = 0.5;
  std::uint64_t seed = 0;
  std::int64_t eval_max_batches = -1;  // test batches after each epoch but the last (< 0: all)
  std::ostream* progress = &std::cerr;
  // A step whose loss or update is not finite: false stops with NonFiniteError (naming method,
  // epoch and step); true undoes it (model and optimizer as before) and counts it per epoch.
  bool skip_nonfinite_steps = false;
};

struct LargeBatchEpoch {
  std::int64_t epoch = 0, batch_size = 0, steps = 0, iterations = 0;  // iterations: so far
  std::int64_t skipped_steps = 0;  // non-finite steps skipped (counted in steps and iterations)
  double learning_rate = 0, adversarial_fraction = 0;  // at the epoch's end
  double train_loss = 0, train_accuracy = 0, test_accuracy = 0;
  std::optional<double> eigenvalue;
  std::int64_t hvp_count = 0;
  double train_seconds = 0, hessian_seconds = 0;
  std::string growth;  // why the batch grew after this epoch ("eigenvalue", "duration", "decay")

  nlohmann::ordered_json to_json() const {
    nlohmann::ordered_json line{
        {"epoch", epoch},
        {"batch_size", batch_size},
        {"steps", steps},
        {"skipped_steps", skipped_steps},
        {"iterations", iterations},
        {"learning_rate", learning_rate},
        {"adversarial_fraction", adversarial_fraction},
        {"train_loss", train_loss},
        {"train_accuracy", train_accuracy},
        {"test_accuracy", test_accuracy},
        {"eigenvalue", eigenvalue ? nlohmann::ordered_json(*eigenvalue) : nlohmann::ordered_json()},
        {"hvp_count", hvp_count},
        {"train_seconds", train_seconds},
        {"hessian_seconds", hessian_seconds},
        {"growth", growth}};
    return line;
  }
};

struct LargeBatchResult {
  std::string method;
  std::vector<LargeBatchEpoch> epochs;

  double test_accuracy() const { return epochs.empty() ? 0 : epochs.back().test_accuracy; }
  std::int64_t iterations() const { return epochs.empty() ? 0 : epochs.back().iterations; }
  std::int64_t final_batch() const { return epochs.empty() ? 0 : epochs.back().batch_size; }
  // Training wall time: the steps, adversarial inputs and eigenvalue estimates (not evaluation).
  double wall_seconds() const {
    double s = 0;
    for (const auto& e : epochs) s += e.train_seconds + e.hessian_seconds;
    return s;
  }
  double hessian_share() const {
    double h = 0;
    for (const auto& e : epochs) h += e.hessian_seconds;
    const double wall = wall_seconds();
    return wall > 0 ? h / wall : 0;
  }

  nlohmann::ordered_json to_json() const {
    nlohmann::ordered_json out{{"method", method},
                               {"test_accuracy", test_accuracy()},
                               {"iterations", iterations()},
                               {"final_batch", final_batch()},
                               {"wall_seconds", wall_seconds()},
                               {"hessian_share", hessian_share()},
                               {"epochs", nlohmann::ordered_json::array()}};
    for (const auto& e : epochs) out["epochs"].push_back(e.to_json());
    return out;
  }
};

namespace detail {

// Rows [start, stop) of a tensor of any element type, as a view (no copy, no autodiff record).
template <class U>
Tensor<U> rows_of(const Tensor<U>& t, std::int64_t start, std::int64_t stop) {
  return soda::detail::slice_view(
      t, soda::detail::normalize_slice(t.shape(), 0, start, stop, 1, "rows"));
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The batch size and learning rate of one method through training; GG's growth at decay epochs
// and ABS's at the eigenvalue rule both happen at epoch boundaries, as in the authors' code.
class MethodSchedule {
 public:
  explicit MethodSchedule(const LargeBatchOptions& o)
      : options_(o), decay_(1.0, optim::MultiStepLR{o.decay_epochs, o.decay}), adaptive_([&] {
          auto a = o.adaptive;
          a.initial_batch = o.batch;
          a.max_batch = o.large_batch;
          if (o.method != BatchMethod::adaptive_adversarial) a.adversarial_fraction = 0;
          return a;
        }()) {
    if (o.batch < 1 || o.large_batch < o.batch || o.micro_batch < 1 || o.epochs < 1) {
      throw ValueError("large-batch training: need 1 <= batch (" + std::to_string(o.batch) +
                       ") <= large_batch (" + std::to_string(o.large_batch) +
                       "), micro_batch >= 1 and epochs >= 1");
    }
    if (!(o.learning_rate > 0) || !(o.decay > 0 && o.decay <= 1) || o.warmup_epochs < 0) {
      throw ValueError(
          "large-batch training: need learning_rate > 0, decay in (0, 1] and "
          "warmup_epochs >= 0");
    }
    if (o.eval_max_batches == 0) {
      throw ValueError(
          "large-batch training: eval_max_batches = 0 would test on nothing; give a count >= 1, "
          "or -1 for all");
    }
    batch_ = o.method == BatchMethod::fixed_large ? o.large_batch : o.batch;
  }

  std::int64_t batch_size() const { return adaptive() ? adaptive_.batch_size() : batch_; }

  // The rate of iteration `step` (0-based within the epoch) of `epoch`, of `steps` per epoch.
  double learning_rate(std::int64_t epoch, std::int64_t step, std::int64_t steps) const {
    const double base = options_.learning_rate;
    switch (options_.method) {
      case BatchMethod::small_batch:
        return base * decay_.learning_rate_at(epoch);
      case BatchMethod::grow_on_decay:
        return base * grow_on_decay_factor_;
      case BatchMethod::fixed_large: {
        const double target =
            base * static_cast<double>(options_.large_batch) / static_cast<double>(options_.batch);
        const auto warm = options_.warmup_epochs * steps, done = epoch * steps + step;
        if (done < warm) return base + (target - base) * static_cast<double>(done) / warm;
        return target * decay_.learning_rate_at(epoch);
      }
      default:
        return base * adaptive_.learning_rate_factor() * decay_.learning_rate_at(epoch);
    }
  }

  bool adaptive() const {
    return options_.method == BatchMethod::adaptive ||
           options_.method == BatchMethod::adaptive_adversarial;
  }
  bool wants_estimate(std::int64_t epoch) const {
    return adaptive() ? adaptive_.wants_estimate(epoch) : options_.track_eigenvalue;
  }
  double adversarial_fraction(std::int64_t epoch) const {
    const bool on = static_cast<double>(epoch) <
                    options_.adversarial_until * static_cast<double>(options_.epochs);
    return adaptive() && on ? adaptive_.adversarial_fraction() : 0.0;
  }

  // After `epoch` (0-based): the adaptive rule, or GG's growth before a decay epoch. Returns why
  // the batch grew ("" if it did not).
  std::string end_epoch(std::int64_t epoch, std::optional<double> eigenvalue) {
    if (adaptive()) return adaptive_.end_epoch(eigenvalue).reason;
    if (options_.method != BatchMethod::grow_on_decay) return "";
    std::string reason;
    for (const auto milestone : options_.decay_epochs) {
      if (milestone != epoch + 1) continue;
      const auto grown = static_cast<std::int64_t>(static_cast<double>(batch_) / options_.decay);
      if (grown <= options_.large_batch) {
        batch_ = grown;
        reason = "decay";
      } else {
        grow_on_decay_factor_ *= options_.decay;  // at the largest batch, decay as usual
      }
    }
    return reason;
  }

 private:
  LargeBatchOptions options_;
  optim::LrSchedule decay_;
  AdaptiveBatchSchedule adaptive_;
  std::int64_t batch_ = 0;
  double grow_on_decay_factor_ = 1;
};

// The first `count` images of one seeded permutation of the training set, unaugmented, in
// batches of at most micro_batch: the fixed sub-sample every eigenvalue estimate sees.
template <class T>
std::vector<hessian::LabeledBatch<T>> hessian_subsample(const ImageDataset& train,
                                                        const DataLoaderOptions& loader_options,
                                                        const LargeBatchOptions& o) {
  auto options = loader_options;
  options.random_crop = options.horizontal_flip = false;
  options.shuffle = true;
  options.prefetch = false;
  options.seed = o.seed + 0x5eed;
  options.batch_size = std::max<std::int64_t>(1, std::min(o.hessian_samples, o.micro_batch));
  options.drop_last = false;
  DataLoader loader(train, options);
  auto batches = hessian::collect_batches<T>(
      loader, (o.hessian_samples + options.batch_size - 1) / options.batch_size);
  const auto excess = static_cast<std::int64_t>(batches.size()) * options.batch_size -
                      std::min(o.hessian_samples, loader.size());
  if (excess > 0 && !batches.empty()) {
    auto& last = batches.back();
    const auto keep = last.labels.size(0) - excess;
    last = {soda::detail::copy_contiguous(rows_of(last.inputs, 0, keep)),
            soda::detail::copy_contiguous(rows_of(last.labels, 0, keep))};
  }
  return batches;
}

// One optimizer step on a batch split into micro-batches of at most micro_batch rows, each part's
// loss weighted by its share of the batch (one part when the batch fits).
template <class T>
StepResult accumulated_step(nn::Module<T>& model, optim::Optimizer<T>& optimizer,
                            const Tensor<T>& images, const Tensor<std::int64_t>& labels,
                            std::int64_t micro_batch) {
  const auto n = labels.numel();
  std::vector<optim::LossClosure<T>> parts;
  std::vector<Tensor<T>> logits;
  for (std::int64_t start = 0; start < n; start += micro_batch) {
    const auto stop = std::min(n, start + micro_batch);
    const auto weight = static_cast<double>(stop - start) / static_cast<double>(n);
    logits.emplace_back();
    parts.push_back([&, start, stop, weight, slot = logits.size() - 1] {
      logits[slot] = model(rows_of(images, start, stop));
      const auto loss = nn::cross_entropy(logits[slot], rows_of(labels, start, stop));
      return weight == 1.0 ? loss : mul(loss, Tensor<T>::scalar(static_cast<T>(weight)));
    });
  }
  StepResult result{static_cast<double>(optimizer.step_accumulated(parts).item()), 0, n};
  for (std::size_t p = 0; p < logits.size(); ++p) {
    const auto start = static_cast<std::int64_t>(p) * micro_batch;
    result.correct += nn::count_correct(logits[p].detach(),
                                        rows_of(labels, start, std::min(n, start + micro_batch)));
  }
  return result;
}

// ABSA: the first share of the batch replaced in place by its adversarial version (the authors'
// layout; at least one input while the share is positive).
template <class T>
void replace_by_adversarial(nn::Module<T>& model, Tensor<T>& images,
                            const Tensor<std::int64_t>& labels, double fraction,
                            const LargeBatchOptions& o, std::uint64_t seed) {
  const auto n = labels.numel();
  const auto k =
      std::max<std::int64_t>(1, static_cast<std::int64_t>(fraction * static_cast<double>(n)));
  const auto adversarial = adversarial_inputs(
      model, soda::detail::copy_contiguous(rows_of(images, 0, k)),
      soda::detail::copy_contiguous(rows_of(labels, 0, k)), o.attack, o.input_space, seed);
  std::copy_n(adversarial.data(), adversarial.numel(), images.data());
}

// The top eigenvalue on the fixed sub-sample in eval mode, warm-started from `start`.
template <class T>
hessian::EigenResult<T> top_eigenvalue(const std::shared_ptr<nn::Module<T>>& model,
                                       const std::vector<hessian::LabeledBatch<T>>& batches,
                                       const LargeBatchOptions& o,
                                       const std::vector<hessian::ParameterVector<T>>& start) {
  hessian::HessianOperator<T> op(model, batches);
  return hessian::top_eigenvalues(
      op, 1,
      {.max_iterations = o.power_iterations, .tolerance = o.power_tolerance, .seed = o.seed + 1},
      start);
}

}  // namespace detail

// Trains `model` with `optimizer` by one method for options.epochs epochs and evaluates it on
// `test` after each. The loader options give normalisation, augmentation and the data seed (their
// batch size is the method's own). The model and optimizer are the caller's: give each run fresh
// ones built from the same seed so that methods start from the same weights.
template <class T>
LargeBatchResult train_large_batch(std::shared_ptr<nn::Module<T>> model,
                                   optim::Optimizer<T>& optimizer, const ImageDataset& train,
                                   const ImageDataset& test, DataLoaderOptions loader_options,
                                   const LargeBatchOptions& options) {
  if (!model) throw ValueError("train_large_batch: the model is null");
  detail::MethodSchedule schedule(options);
  loader_options.batch_size = schedule.batch_size();
  DataLoader loader(train, loader_options);
  auto test_options = loader_options;
  test_options.shuffle = test_options.random_crop = test_options.horizontal_flip = false;
  test_options.batch_size = std::min<std::int64_t>(500, options.micro_batch);
  DataLoader test_loader(test, test_options);
  std::vector<hessian::LabeledBatch<T>> hessian_batches;
  std::vector<hessian::ParameterVector<T>> eigenvector;  // the warm start

  LargeBatchResult result{method_name(options.method), {}};
  std::int64_t iterations = 0;
  for (std::int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    LargeBatchEpoch record;
    record.epoch = epoch;
    record.batch_size = schedule.batch_size();
    record.adversarial_fraction = schedule.adversarial_fraction(epoch);
    loader.set_batch_size(record.batch_size);
    loader.start_epoch(epoch);
    model->train();
    const auto steps = loader.batches_per_epoch();
    ProgressLine progress(method_name(options.method) + " epoch " + std::to_string(epoch + 1) +
                              "/" + std::to_string(options.epochs) +
                              " B=" + std::to_string(record.batch_size) + " step",
                          steps, "step", options.progress);
    double loss_sum = 0;
    std::int64_t correct = 0, samples = 0;
    while (auto batch = loader.next()) {
      auto images = train::detail::images_as<T>(batch->images);
      const auto& labels = batch->labels;
      if (record.adversarial_fraction > 0) {
        detail::replace_by_adversarial(*model, images, labels, record.adversarial_fraction, options,
                                       options.seed + static_cast<std::uint64_t>(iterations));
      }
      optimizer.set_learning_rate(schedule.learning_rate(epoch, record.steps, steps));
      record.learning_rate = optimizer.learning_rate();
      NonFiniteStepGuard<T> guard(*model, optimizer, options.skip_nonfinite_steps);
      const auto step =
          detail::accumulated_step(*model, optimizer, images, labels, options.micro_batch);
      ++record.steps;
      ++iterations;
      const StepPlace place{"large-batch training (" + method_name(options.method) + ")", epoch,
                            options.epochs, iterations};
      if (guard.step_kept(step.loss, place)) {
        loss_sum += step.loss * static_cast<double>(step.samples);
        correct += step.correct;
        samples += step.samples;
      } else {
        ++record.skipped_steps;
      }
      char text[96];
      std::snprintf(
          text, sizeof text, "loss %.4f acc %.2f%% lr %.4g", samples > 0 ? loss_sum / samples : 0.0,
          samples > 0 ? 100.0 * static_cast<double>(correct) / samples : 0.0, record.learning_rate);
      const auto skipped = record.skipped_steps > 0 ? " (" + std::to_string(record.skipped_steps) +
                                                          " non-finite skipped)"
                                                    : std::string();
      progress.update(record.steps, text + skipped, record.steps == steps);
    }
    progress.finish();
    record.train_seconds = progress.elapsed_seconds();
    record.iterations = iterations;
    if (samples > 0) {
      record.train_loss = loss_sum / static_cast<double>(samples);
      record.train_accuracy = static_cast<double>(correct) / static_cast<double>(samples);
    } else if (record.skipped_steps > 0) {  // every step skipped: no figure (null in JSON)
      record.train_loss = record.train_accuracy = std::numeric_limits<double>::quiet_NaN();
    }
    if (schedule.wants_estimate(epoch)) {
      const auto started = std::chrono::steady_clock::now();
      if (hessian_batches.empty()) {
        hessian_batches = detail::hessian_subsample<T>(train, loader_options, options);
      }
      auto top = detail::top_eigenvalue(model, hessian_batches, options, eigenvector);
      record.eigenvalue = top.eigenvalues.front();
      record.hvp_count = top.hvp_count;
      eigenvector = std::move(top.eigenvectors);
      record.hessian_seconds = detail::seconds_since(started);
    }
    record.growth = schedule.end_epoch(epoch, record.eigenvalue);
    const bool last = epoch + 1 == options.epochs;
    record.test_accuracy =
        evaluate(*model, test_loader, last ? -1 : options.eval_max_batches).accuracy;
    result.epochs.push_back(record);
  }
  return result;
}

}  // namespace soda::train
