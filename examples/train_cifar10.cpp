// Trains a CIFAR ResNet (or an MLP / small CNN) with SGD, Adam, AdamW or AdaHessian and reports
// test accuracy per epoch.
// Data: CIFAR-10 binaries with --data DIR; without it Fashion-MNIST from Debian's
// dataset-fashion-mnist package; without that a synthetic image set (with a notice). Writes
// OUT/checkpoint.safetensors (PyTorch state-dict names under "model."), OUT/log.jsonl and
// OUT/summary.json; --resume continues a run bit for bit.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <numeric>
#include <soda/soda.hpp>

#include "common/cli_checks.hpp"
#include "common/data_and_models.hpp"
#include "common/guarded_main.hpp"
#include "common/optimizers.hpp"

namespace {

// Milestones at 50% and 75% of the epochs (He et al.'s 80/120 of 160), each used once.
soda::optim::LrSchedule make_schedule(const std::string& kind, double lr, std::int64_t epochs,
                                      std::int64_t warmup) {
  soda::optim::LrDecay decay = soda::optim::Constant{};
  if (kind == "multistep") {
    std::vector<std::int64_t> milestones{std::max<std::int64_t>(1, epochs / 2)};
    const std::int64_t later = std::max<std::int64_t>(1, epochs * 3 / 4);
    if (later > milestones[0]) milestones.push_back(later);
    decay = soda::optim::MultiStepLR{milestones, 0.1};
  } else if (kind == "cosine") {
    decay = soda::optim::CosineAnnealingLR{std::max<std::int64_t>(1, epochs - warmup), 0.0};
  }
  soda::optim::LrSchedule schedule(lr, decay);
  return warmup > 0 ? schedule.with_linear_warmup(0.1, warmup) : schedule;
}

int run(int argc, char** argv) {
  CLI::App app{
      "soda: train a CIFAR ResNet (or MLP / small CNN) with SGD, Adam, AdamW or AdaHessian"};
  // A repeated option keeps its last value, so scripts/demo.sh's defaults can be overridden.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string data_dir, model_name = "resnet20", optimizer_name = "sgd",
                        schedule_name = "multistep";
  std::string out_dir, resume_path;
  std::int64_t epochs = 2, batch = 128, train_subset = 0, eval_batches = -1, warmup = 0;
  std::int64_t synthetic_count = 5000, max_steps = -1;
  std::optional<double> lr;
  double momentum = 0.9, weight_decay = 5e-4, time_budget = 0, label_smoothing = 0;
  double hessian_power = 1;
  std::int64_t hessian_samples = 1, update_each = 1;
  std::uint64_t seed = 0;
  int threads = 0;
  bool nesterov = false, quiet = false, skip_nonfinite = false;
  std::optional<bool> augment;
  using namespace examples;
  app.add_option("--data", data_dir, "folder with CIFAR-10 binaries (data_batch_1.bin ...)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--model", model_name, model_names_help)->check(examples::model_name());
  app.add_option("--epochs", epochs, "epochs")->check(whole_number_in(1));
  app.add_option("--batch", batch, "batch size")->check(whole_number_in(1));
  app.add_option(
         "--lr", lr,
         "initial learning rate (default: sgd 0.1, adam 0.001, adamw 0.01, adahessian 0.15)")
      ->check(finite_number_above(0));
  app.add_option("--momentum", momentum, "SGD momentum")
      ->check(finite_number_in(0, 1, false, true));
  app.add_option("--weight-decay", weight_decay,
                 "L2 weight decay (adamw, adahessian: decoupled, weight_decay / lr per unit lr)")
      ->check(finite_number_at_least(0));
  app.add_flag("--nesterov", nesterov, "Nesterov momentum");
  app.add_option("--optimizer", optimizer_name, "sgd, adam, adamw or adahessian")
      ->check(CLI::IsMember({"sgd", "adam", "adamw", "adahessian"}));
  app.add_option("--hessian-power", hessian_power, "AdaHessian's Hessian power k")
      ->check(finite_number_in(0, 1));
  app.add_option("--hessian-samples", hessian_samples, "AdaHessian's probes per estimate")
      ->check(whole_number_in(1));
  app.add_option("--update-each", update_each, "AdaHessian: estimate the curvature every N steps")
      ->check(whole_number_in(1));
  app.add_option("--schedule", schedule_name, "multistep (x0.1 at 50% and 75%), cosine, constant")
      ->check(CLI::IsMember({"multistep", "cosine", "constant"}));
  app.add_option("--warmup", warmup, "epochs of linear warm-up from lr/10")
      ->check(whole_number_in(0));
  app.add_option("--label-smoothing", label_smoothing, "cross-entropy label smoothing")
      ->check(finite_number_in(0, 1));
  app.add_option("--augment", augment, "random crop (pad 4) and flip (default: on for CIFAR-10)");
  app.add_option("--train-subset", train_subset, "train on the first N images only (0: all)")
      ->check(whole_number_in(0));
  app.add_option("--eval-batches", eval_batches, "evaluate on this many test batches (-1: all)")
      ->check(count_or_all());
  app.add_option("--synthetic-count", synthetic_count, "images in the synthetic set")
      ->check(whole_number_in(10));
  app.add_option("--time-budget", time_budget, "stop training after this many seconds (0: none)")
      ->check(finite_number_at_least(0));
  app.add_option("--max-steps", max_steps, "stop after this many steps (-1: no limit)")
      ->check(count_or_all("no limit"));
  app.add_option("--threads", threads, "OpenMP threads (0: all)")->check(thread_count());
  app.add_option("--seed", seed, "seed for weights, data order and augmentation")
      ->check(seed_number());
  app.add_option("--out", out_dir, "folder for checkpoint.safetensors, log.jsonl, summary.json")
      ->check(output_folder());
  app.add_option("--resume", resume_path, "a checkpoint.safetensors to continue from")
      ->check(CLI::ExistingFile);
  app.add_flag("--skip-nonfinite-steps", skip_nonfinite,
               "skip a step whose loss or update is not finite (counted in the log) instead of "
               "stopping");
  app.add_flag("--quiet", quiet, "no progress line");
  CLI11_PARSE(app, argc, argv);
  require(warmup <= epochs, "--warmup (" + std::to_string(warmup) + ") exceeds --epochs (" +
                                std::to_string(epochs) + ")");
  if (!out_dir.empty()) soda::prepare_output_folder(out_dir);  // before minutes of loading
  if (threads > 0) soda::set_num_threads(threads);

  auto data = examples::choose_data(data_dir, synthetic_count, seed);
  examples::keep_first_training_images(data, train_subset);
  soda::Generator gen(seed);
  auto model = examples::make_model(model_name, data.train, gen);
  std::cerr << "data: " << data.name << " (" << data.train.size() << " train, " << data.test.size()
            << " test, " << soda::to_string(data.train.images.shape())
            << "); model: " << model->type_name() << " (" << model->parameter_count()
            << " parameters); threads: " << soda::max_threads() << "\n";

  soda::DataLoaderOptions train_options;
  train_options.batch_size = batch;
  train_options.seed = seed;
  train_options.mean = data.mean;
  train_options.stddev = data.stddev;
  train_options.random_crop = train_options.horizontal_flip = augment.value_or(data.augment);
  auto test_options = train_options;
  test_options.shuffle = test_options.random_crop = test_options.horizontal_flip = false;
  test_options.batch_size = 500;

  const double learning_rate = lr.value_or(examples::default_learning_rate(optimizer_name));
  if ((optimizer_name == "adamw" || optimizer_name == "adahessian") && weight_decay > 0) {
    std::cerr << optimizer_name << ": decoupled weight decay " << weight_decay << " / "
              << learning_rate << " (as the official AdaHessian script sets it)\n";
  }
  auto optimizer = examples::make_optimizer({.name = optimizer_name,
                                             .lr = learning_rate,
                                             .momentum = momentum,
                                             .weight_decay = weight_decay,
                                             .hessian_power = hessian_power,
                                             .nesterov = nesterov,
                                             .hessian_samples = hessian_samples,
                                             .update_each = update_each,
                                             .seed = seed},
                                            model->parameters());
  soda::train::TrainerOptions options;
  options.epochs = epochs;
  options.max_steps = max_steps;
  options.time_budget_seconds = time_budget;
  options.label_smoothing = label_smoothing;
  options.out_dir = out_dir;
  options.eval_max_batches = eval_batches;
  options.progress = quiet ? nullptr : &std::cerr;
  options.skip_nonfinite_steps = skip_nonfinite;
  soda::train::Trainer<float> trainer(model, std::move(optimizer),
                                      make_schedule(schedule_name, learning_rate, epochs, warmup),
                                      soda::DataLoader(data.train, train_options),
                                      soda::DataLoader(data.test, test_options), options);
  if (!resume_path.empty()) {
    trainer.resume(resume_path);
    std::cerr << "resumed at epoch " << trainer.epoch() + 1 << ", step " << trainer.step() << "\n";
  }
  const auto records = trainer.fit();

  for (const auto& record : records) {
    if (record.steps > 0 && record.skipped_steps == record.steps) {
      std::cout << "epoch " << record.epoch + 1 << ": all " << record.steps
                << " steps skipped: not finite\n";
      continue;
    }
    std::cout << "epoch " << record.epoch + 1 << ": train loss " << record.train_loss
              << ", train accuracy " << 100 * record.train_accuracy << "%";
    if (record.test) std::cout << ", test accuracy " << 100 * record.test->accuracy << "%";
    std::cout << " (" << record.images_per_second << " img/s";
    if (record.skipped_steps > 0) {
      std::cout << "; " << record.skipped_steps << " of " << record.steps
                << " steps skipped: not finite";
    }
    std::cout << ")\n";
  }
  if (!records.empty() && records.back().test) {
    std::cout << "test accuracy: " << 100 * records.back().test->accuracy << "%\n";
  }
  if (!out_dir.empty()) {
    // Every epoch of the run, those before a --resume included.
    trainer.write_summary({{"data", data.name},
                           {"model", model->type_name()},
                           {"optimizer", optimizer_name},
                           {"parameters", model->parameter_count()}});
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::guarded_main([&] { return run(argc, argv); });
}
