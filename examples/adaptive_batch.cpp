// Runs the large-batch methods BL, FB, GG, ABS and ABSA (soda/train/large_batch.hpp) on the same
// data, model, seed and epoch budget, and prints the table of Yao et al. (arXiv:1810.01021): final
// batch, test accuracy, iterations, wall time and the share of it spent on the Hessian.
// Writes OUT/summary.json, OUT/schedule.csv (per method and epoch: batch size, learning rate,
// iterations, eigenvalue, accuracy) and, with gnuplot, batch_size.svg, learning_rate.svg,
// eigenvalue.svg and accuracy.svg. Data and models as train_cifar10 (CIFAR-10 with --data,
// else Fashion-MNIST).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <numeric>
#include <optional>
#include <soda/soda.hpp>
#include <sstream>

#include "common/cli_checks.hpp"
#include "common/data_and_models.hpp"
#include "common/gnuplot.hpp"
#include "common/guarded_main.hpp"
#include "common/optimizers.hpp"

namespace {

namespace fs = std::filesystem;
using soda::train::LargeBatchResult;

std::string optional_number(const std::optional<double>& value) {
  if (!value) return "";
  std::ostringstream text;
  text.precision(10);
  text << *value;
  return text.str();
}

void write_schedule_csv(const fs::path& path, const std::vector<LargeBatchResult>& results) {
  std::ostringstream csv;
  csv << "method,epoch,batch_size,learning_rate,iterations,adversarial_fraction,eigenvalue,"
         "hvp_count,train_loss,train_accuracy,test_accuracy,train_seconds,hessian_seconds,"
         "growth\n";
  for (const auto& r : results) {
    for (const auto& e : r.epochs) {
      csv << r.method << "," << e.epoch + 1 << "," << e.batch_size << "," << e.learning_rate << ","
          << e.iterations << "," << e.adversarial_fraction << "," << optional_number(e.eigenvalue)
          << "," << e.hvp_count << "," << e.train_loss << "," << e.train_accuracy << ","
          << e.test_accuracy << "," << e.train_seconds << "," << e.hessian_seconds << ","
          << e.growth << "\n";
    }
  }
  soda::write_file_atomically(path, csv.str());
}

// One gnuplot line per method: column `column` of schedule.csv (whose values `value_of` reads
// from an epoch's record, empty where there is none) against the epoch. A column without values
// is not plotted; one whose values are all equal gets a range around them, where gnuplot would
// warn of an empty range.
template <class ValueOf>
void plot_schedule(const fs::path& out, const std::vector<LargeBatchResult>& results,
                   const std::string& name, int column, const std::string& ylabel, bool log_y,
                   ValueOf value_of) {
  using examples::gnuplot_text;
  double low = std::numeric_limits<double>::infinity(), high = -low;
  for (const auto& r : results) {
    for (const auto& e : r.epochs) {
      const std::optional<double> value = value_of(e);
      if (value && std::isfinite(*value)) {
        low = std::min(low, *value);
        high = std::max(high, *value);
      }
    }
  }
  if (low > high) {
    std::cerr << "plots: no " << ylabel << " to plot (" << name << ".svg skipped)\n";
    return;
  }
  std::string script = "set datafile separator ','\nset key top left\nset grid\n";
  if (log_y) script += "set logscale y 2\n";
  if (low == high) {
    const double margin = log_y ? 0 : std::max(1e-3, std::abs(low) * 0.1);
    script += "set yrange [" + optional_number(log_y ? low / 2 : low - margin) + ":" +
              optional_number(log_y ? high * 2 : high + margin) + "]\n";
  }
  script += "plot ";
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i > 0) script += ", ";
    script += gnuplot_text("schedule.csv") + " using (strcol(1) eq " +
              gnuplot_text(results[i].method) + " ? $2 : 1/0):" + std::to_string(column) +
              " with linespoints title " + gnuplot_text(results[i].method);
  }
  examples::plot_with_gnuplot(out, name, {.x = "epoch", .y = ylabel}, script + "\n");
}

void print_table(const std::vector<LargeBatchResult>& results) {
  const auto baseline_iterations = results.front().iterations();
  std::printf(
      "\n| method | final batch | test accuracy | iterations | %s iterations / these | wall time | "
      "Hessian share |\n| --- | --- | --- | --- | --- | --- | --- |\n",
      results.front().method.c_str());
  for (const auto& r : results) {
    std::printf("| %s | %lld | %.2f%% | %lld | %.2f | %s | %.1f%% |\n", r.method.c_str(),
                static_cast<long long>(r.final_batch()), 100 * r.test_accuracy(),
                static_cast<long long>(r.iterations()),
                static_cast<double>(baseline_iterations) /
                    static_cast<double>(std::max<std::int64_t>(1, r.iterations())),
                soda::train::duration_text(r.wall_seconds()).c_str(), 100 * r.hessian_share());
  }
}

// Decay epochs at 1/3, 2/3 and 8/9 of the budget: the authors' 30, 60 and 80 of 90.
std::vector<std::int64_t> default_decay_epochs(std::int64_t epochs) {
  std::vector<std::int64_t> out;
  for (const double at : {1.0 / 3, 2.0 / 3, 8.0 / 9}) {
    const auto e = static_cast<std::int64_t>(std::lround(at * static_cast<double>(epochs)));
    if (e >= 1 && e < epochs && (out.empty() || e > out.back())) out.push_back(e);
  }
  return out;
}

int run(int argc, char** argv) {
  CLI::App app{"soda: large-batch training by BL, FB, GG, ABS and ABSA on the same budget"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string data_dir, model_name = "resnet20", optimizer_name = "sgd", out_dir;
  std::vector<std::string> methods{"BL", "FB", "GG", "ABS", "ABSA"};
  std::int64_t train_subset = 0, eval_batches = -1, synthetic_count = 5000;
  std::optional<double> lr;
  std::optional<std::vector<std::int64_t>> decay_epochs;
  std::optional<std::int64_t> warmup;
  double momentum = 0.9, weight_decay = 5e-4;
  std::uint64_t seed = 0;
  int threads = 0;
  bool quiet = false;
  std::optional<bool> augment;
  soda::train::LargeBatchOptions o;
  o.large_batch = 4096;
  using namespace examples;
  app.add_option("--data", data_dir, "folder with CIFAR-10 binaries (default: Fashion-MNIST)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--model", model_name, model_names_help)->check(examples::model_name());
  app.add_option("--methods", methods, "which of BL FB GG ABS ABSA to run, in order")
      ->delimiter(',')
      ->check(CLI::IsMember({"BL", "FB", "GG", "ABS", "ABSA"}));
  app.add_option("--epochs", o.epochs, "the epoch budget of every method")
      ->check(whole_number_in(1));
  app.add_option("--batch", o.batch, "BL's batch; where GG, ABS and ABSA start")
      ->check(whole_number_in(1));
  app.add_option("--max-batch", o.large_batch, "FB's batch; the largest GG, ABS and ABSA reach")
      ->check(whole_number_in(1));
  app.add_option("--micro-batch", o.micro_batch, "largest batch per pass (beyond: accumulation)")
      ->check(whole_number_in(1));
  app.add_option("--lr", lr, "learning rate at --batch (default: sgd 0.1, adahessian 0.15)")
      ->check(finite_number_above(0));
  app.add_option("--decay", o.decay, "learning-rate decay factor (GG: batch x 1/decay instead)")
      ->check(finite_number_in(0, 1, true));
  app.add_option("--decay-epochs", decay_epochs, "decay epochs (default: 1/3, 2/3, 8/9 of them)")
      ->delimiter(',')
      ->check(whole_number_in(1));
  app.add_option("--warmup", warmup, "FB's warm-up epochs (default: 5/90 of the budget, >= 1)")
      ->check(whole_number_in(0));
  app.add_option("--optimizer", optimizer_name, "sgd or adahessian")
      ->check(CLI::IsMember({"sgd", "adahessian"}));
  app.add_option("--momentum", momentum, "SGD momentum")
      ->check(finite_number_in(0, 1, false, true));
  app.add_option("--weight-decay", weight_decay, "weight decay (adahessian: decoupled, wd / lr)")
      ->check(finite_number_at_least(0));
  app.add_option("--eigenvalue-drop", o.adaptive.eigenvalue_drop,
                 "ABS: grow once the eigenvalue falls by this factor")
      ->check(finite_number_above(1));
  app.add_option("--growth", o.adaptive.growth, "ABS: the batch's factor per growth")
      ->check(finite_number_above(1));
  app.add_option("--duration", o.adaptive.duration,
                 "ABS: epochs at one batch size before growing anyway (0: never)")
      ->check(whole_number_in(0));
  app.add_option("--eigen-interval", o.adaptive.interval, "ABS: estimate every N epochs")
      ->check(whole_number_in(1));
  app.add_option("--hessian-samples", o.hessian_samples,
                 "training images in the eigenvalue's fixed sub-sample")
      ->check(whole_number_in(1));
  app.add_option("--power-iterations", o.power_iterations, "power iterations per estimate")
      ->check(whole_number_in(1));
  app.add_option("--track-eigenvalue", o.track_eigenvalue,
                 "estimate the eigenvalue every epoch for BL, FB and GG too");
  app.add_option("--epsilon", o.attack.epsilon, "ABSA: FGSM's epsilon in pixel units (0..1)")
      ->check(finite_number_in(0, 1));
  app.add_option("--adversarial-fraction", o.adaptive.adversarial_fraction,
                 "ABSA: the share of each batch replaced at the start")
      ->check(finite_number_in(0, 1));
  app.add_option("--attack-steps", o.attack.steps, "ABSA: 1 = FGSM, more = PGD steps")
      ->check(whole_number_in(1));
  app.add_option("--adversarial-until", o.adversarial_until,
                 "ABSA: adversarial inputs in this fraction of the epochs")
      ->check(finite_number_in(0, 1));
  app.add_option("--augment", augment, "random crop and flip (default: on for CIFAR-10)");
  app.add_option("--train-subset", train_subset, "train on the first N images only (0: all)")
      ->check(whole_number_in(0));
  app.add_option("--eval-batches", eval_batches,
                 "test batches after each epoch but the last, which sees all (-1: all)")
      ->check(count_or_all());
  app.add_option("--synthetic-count", synthetic_count, "images in the synthetic set")
      ->check(whole_number_in(10));
  app.add_option("--threads", threads, "OpenMP threads (0: all)")->check(thread_count());
  app.add_option("--seed", seed, "seed for weights, data order, probes and attacks")
      ->check(seed_number());
  app.add_option("--out", out_dir, "folder for summary.json, schedule.csv and the plots")
      ->check(output_folder());
  app.add_flag("--skip-nonfinite-steps", o.skip_nonfinite_steps,
               "skip a step whose loss or update is not finite (counted per epoch) instead of "
               "stopping");
  app.add_flag("--quiet", quiet, "no progress line");
  CLI11_PARSE(app, argc, argv);
  require(!methods.empty(), "--methods is empty; give some of BL, FB, GG, ABS, ABSA");
  require(o.large_batch >= o.batch, "--max-batch (" + std::to_string(o.large_batch) +
                                        ") is below --batch (" + std::to_string(o.batch) + ")");
  if (!out_dir.empty()) soda::prepare_output_folder(out_dir);  // before any training
  if (threads > 0) soda::set_num_threads(threads);

  auto data = examples::choose_data(data_dir, synthetic_count, seed);
  examples::keep_first_training_images(data, train_subset);
  o.learning_rate = lr.value_or(examples::default_learning_rate(optimizer_name));
  o.decay_epochs = decay_epochs.value_or(default_decay_epochs(o.epochs));
  o.warmup_epochs = warmup.value_or(std::max<std::int64_t>(1, std::lround(o.epochs * 5.0 / 90)));
  o.input_space = soda::train::InputSpace::normalized_pixels(data.mean, data.stddev);
  o.seed = seed;
  o.eval_max_batches = eval_batches;
  o.progress = quiet ? nullptr : &std::cerr;
  soda::DataLoaderOptions loader;
  loader.seed = seed;
  loader.mean = data.mean;
  loader.stddev = data.stddev;
  loader.random_crop = loader.horizontal_flip = augment.value_or(data.augment);

  std::vector<LargeBatchResult> results;
  for (const auto& method : methods) {
    o.method = soda::train::parse_method(method);
    soda::Generator gen(seed);  // every method starts from the same weights
    auto model = examples::make_model(model_name, data.train, gen);
    if (results.empty()) {
      std::cerr << "data: " << data.name << " (" << data.train.size() << " train, "
                << data.test.size() << " test); model: " << model->type_name() << " ("
                << model->parameter_count() << " parameters); optimizer: " << optimizer_name
                << "; threads: " << soda::max_threads() << "\n";
    }
    auto optimizer = examples::make_optimizer({.name = optimizer_name,
                                               .lr = o.learning_rate,
                                               .momentum = momentum,
                                               .weight_decay = weight_decay,
                                               .seed = seed},
                                              model->parameters());
    results.push_back(
        soda::train::train_large_batch<float>(model, *optimizer, data.train, data.test, loader, o));
    const auto& r = results.back();
    std::cerr << r.method << ": test accuracy " << 100 * r.test_accuracy() << "% after "
              << r.iterations() << " iterations (final batch " << r.final_batch() << ")\n";
  }
  print_table(results);

  if (!out_dir.empty()) {
    const fs::path out(out_dir);
    nlohmann::ordered_json summary{{"data", data.name},
                                   {"model", model_name},
                                   {"optimizer", optimizer_name},
                                   {"epochs", o.epochs},
                                   {"batch", o.batch},
                                   {"max_batch", o.large_batch},
                                   {"decay_epochs", o.decay_epochs},
                                   {"seed", seed},
                                   {"methods", nlohmann::ordered_json::array()}};
    for (const auto& r : results) summary["methods"].push_back(r.to_json());
    soda::write_file_atomically(out / "summary.json", summary.dump(2) + "\n");
    write_schedule_csv(out / "schedule.csv", results);
    using Epoch = const soda::train::LargeBatchEpoch&;
    plot_schedule(out, results, "batch_size", 3, "batch size", true,
                  [](Epoch e) { return std::optional<double>(e.batch_size); });
    plot_schedule(out, results, "learning_rate", 4, "learning rate (at the epoch's end)", true,
                  [](Epoch e) { return std::optional<double>(e.learning_rate); });
    plot_schedule(out, results, "eigenvalue", 7, "top Hessian eigenvalue", false,
                  [](Epoch e) { return e.eigenvalue; });
    plot_schedule(out, results, "accuracy", 11, "test accuracy", false,
                  [](Epoch e) { return std::optional<double>(e.test_accuracy); });
    std::cerr << "wrote " << (out / "summary.json").string() << " and schedule.csv"
              << (examples::gnuplot_available() ? " with plots" : "") << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::guarded_main([&] { return run(argc, argv); });
}
