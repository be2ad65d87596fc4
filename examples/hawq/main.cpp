// HAWQ end to end on a trained CIFAR ResNet: per-layer Hessian sensitivities (V1 top eigenvalue,
// V2 trace × ‖Q(W) − W‖²), the V2 Pareto frontier and the V3 integer program at size budgets,
// quantization-aware fine-tuning of each configuration, and integer-only inference, in one table
// (fp32 / uniform 8 / uniform 4 / mixed: size, BOPS, accuracy, integer throughput).
// Writes OUT/results.json, table.csv, sensitivity.csv, frontier.csv (+ frontier.svg with
// gnuplot), latency.json and one integer model file per configuration (OUT/<name>.safetensors).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <soda/soda.hpp>
#include <sstream>

#include "common/checkpoint.hpp"
#include "common/cli_checks.hpp"
#include "common/data_and_models.hpp"
#include "common/gnuplot.hpp"
#include "common/guarded_main.hpp"
#include "common/stage_progress.hpp"
#include "hawq/allocation.hpp"
#include "hawq/evaluation.hpp"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using hawq::Batches;

struct Settings {
  std::string data_dir, model_name = "resnet20", checkpoint, out_dir = "runs/hawq";
  std::int64_t synthetic_count = 5000;
  examples::BriefTraining training{1, 128, 300, 0.1, 0, false};
  std::int64_t eval_images = -1, eval_batch = 250;
  std::int64_t calibration_images = 512;
  double calibration_percentile = 99.99;
  std::int64_t hessian_images = 256, eigen_iterations = 20, trace_samples = 32;
  std::int64_t latency_batch = 8, latency_repetitions = 5;
  double size_fraction = 0.6;
  std::optional<double> bops_fraction, latency_fraction;
  std::string mixed_pairs = "8:8,4:8", low_bit_pairs = "8:8,4:8,2:8";
  std::int64_t qat_steps = 300, qat_batch = 128;
  double qat_lr = 0.002;
  std::uint64_t seed = 0;
  int threads = 0;
  bool quiet = false;
};

struct Configuration {
  std::string name, description;
  soda::quant::BitConfiguration bits;
  soda::quant::BitAllocation totals;
};

// The first `images` images of a loader's epoch 0 (all when negative) as labeled batches.
Batches first_images(const soda::ImageDataset& set, const soda::DataLoaderOptions& options,
                     std::int64_t images) {
  soda::DataLoader loader(set, options);
  const std::int64_t batches =
      images < 0 ? -1 : (images + options.batch_size - 1) / options.batch_size;
  return soda::hessian::collect_batches<float>(loader, batches);
}

// SGD on the fake-quantized model (straight-through gradients), a progress line with the loss.
void fine_tune(soda::quant::QuantizedResNet<float>& model, const examples::DataChoice& data,
               const Settings& s, const std::string& name) {
  if (s.qat_steps <= 0) return;
  auto options = examples::plain_loader_options(data, s.qat_batch, s.seed);
  options.shuffle = true;
  options.random_crop = options.horizontal_flip = data.augment;
  soda::DataLoader loader(data.train, options);
  soda::optim::SGD<float> sgd(model.parameters(), {.lr = s.qat_lr, .momentum = 0.9});
  soda::train::ProgressLine progress("fine-tune " + name, s.qat_steps, "step",
                                     s.quiet ? nullptr : &std::cerr);
  model.train();
  std::int64_t step = 0, epoch = 0;
  double loss_sum = 0;
  loader.start_epoch(epoch);
  while (step < s.qat_steps) {
    auto batch = loader.next();
    if (!batch) {
      loader.start_epoch(++epoch);
      continue;
    }
    soda::train::NonFiniteStepGuard<float> guard(model, sgd, false);
    const auto loss = soda::train::train_step(model, sgd, batch->images, batch->labels).loss;
    ++step;
    guard.step_kept(loss, {"hawq fine-tuning of " + name, epoch, 0, step});
    loss_sum += loss;
    std::ostringstream figures;
    figures << "loss " << std::fixed << std::setprecision(4) << loss_sum / step;
    progress.update(step, figures.str(), step == s.qat_steps);
  }
  progress.finish();
  model.eval();
}

Json run_configuration(const Configuration& config, const soda::models::ResNetCifar<float>& model,
                       const examples::DataChoice& data, const Batches& calibration,
                       const Batches& test, const Settings& s, const fs::path& out) {
  soda::quant::QuantizedResNet<float> quantized(model, config.bits);
  std::vector<soda::Tensor<float>> calibration_images;
  for (const auto& batch : calibration) calibration_images.push_back(batch.inputs);
  quantized.calibrate(calibration_images, {s.calibration_percentile});
  const auto before = hawq::evaluate_module(quantized, test);
  fine_tune(quantized, data, s, config.name);
  const auto after = hawq::evaluate_module(quantized, test);
  const auto height = data.train.images.shape()[2], width = data.train.images.shape()[3];
  const auto network = soda::quant::IntegerResNet::compile(quantized.plan(), height, width);
  const auto integer = hawq::evaluate_integer(network, quantized, test);
  const fs::path file = out / (config.name + ".safetensors");
  soda::quant::save_integer_resnet(file, network);
  const auto reloaded = soda::quant::load_integer_resnet(file);
  const bool identical = reloaded.forward_codes(test.front().inputs).bytes ==
                         network.forward_codes(test.front().inputs).bytes;
  if (!identical) throw soda::Error("hawq: " + file.string() + " does not reload bit for bit");
  std::cerr << config.name << ": simulated accuracy " << 100 * before.accuracy << "% -> "
            << 100 * after.accuracy << "% after fine-tuning; integer-only "
            << 100 * integer.accuracy << "%, argmax agreement " << 100 * integer.argmax_agreement
            << "%\n";
  return {{"name", config.name},
          {"description", config.description},
          {"size_bits", config.totals.size_bits},
          {"bops", config.totals.bops},
          {"sensitivity", config.totals.sensitivity},
          {"latency_seconds_table", config.totals.latency_seconds},
          {"bits", config.totals.to_json()["layers"]},
          {"simulated_accuracy_before_fine_tuning", before.accuracy},
          {"simulated_accuracy", after.accuracy},
          {"integer", integer.to_json()},
          {"model_file", file.string()},
          {"model_file_bytes", static_cast<std::int64_t>(fs::file_size(file))},
          {"reloads_bit_for_bit", identical}};
}

std::string markdown_table(const Json& fp32, const Json& rows) {
  std::ostringstream out;
  out << std::fixed;
  out << "| model | weights (MB) | size ÷ INT8 | GBOPs | accuracy (%) | integer-only (%) | argmax "
         "agreement (%) | integer images/s ÷ fp32 |\n|---|---|---|---|---|---|---|---|\n";
  const double int8_bits = rows.front()["size_bits"].get<double>();
  out << "| fp32 | " << std::setprecision(3) << fp32["size_bits"].get<double>() / 8e6 << " | "
      << std::setprecision(2) << fp32["size_bits"].get<double>() / int8_bits << " | "
      << std::setprecision(2) << fp32["bops"].get<double>() / 1e9 << " | " << std::setprecision(2)
      << 100 * fp32["accuracy"].get<double>() << " | | | 1 |\n";
  for (const auto& row : rows) {
    out << "| " << row["name"].get<std::string>() << " | " << std::setprecision(3)
        << row["size_bits"].get<double>() / 8e6 << " | " << std::setprecision(2)
        << row["size_bits"].get<double>() / int8_bits << " | " << row["bops"].get<double>() / 1e9
        << " | " << 100 * row["simulated_accuracy"].get<double>() << " | "
        << 100 * row["integer"]["accuracy"].get<double>() << " | "
        << 100 * row["integer"]["argmax_agreement_with_simulation"].get<double>() << " | "
        << row["integer"]["images_per_second"].get<double>() /
               fp32["images_per_second"].get<double>()
        << " |\n";
  }
  return out.str();
}

std::string table_csv(const Json& fp32, const Json& rows) {
  std::ostringstream out;
  out.precision(10);
  out << "model,size_bits,bops,accuracy,integer_accuracy,argmax_agreement,images_per_second\n";
  out << "fp32," << fp32["size_bits"] << ',' << fp32["bops"] << ',' << fp32["accuracy"] << ",,,"
      << fp32["images_per_second"] << '\n';
  for (const auto& row : rows) {
    out << row["name"].get<std::string>() << ',' << row["size_bits"] << ',' << row["bops"] << ','
        << row["simulated_accuracy"] << ',' << row["integer"]["accuracy"] << ','
        << row["integer"]["argmax_agreement_with_simulation"] << ','
        << row["integer"]["images_per_second"] << '\n';
  }
  return out.str();
}

void write_text(const fs::path& path, const std::string& text) {
  soda::write_file_atomically(path, text);
}

int run(const Settings& s) {
  const fs::path out(s.out_dir);
  auto data = examples::choose_data(s.data_dir, s.synthetic_count, s.seed);
  soda::Generator gen(s.seed);
  const auto any_model = examples::make_model(s.model_name, data.train, gen);
  const auto model = std::dynamic_pointer_cast<soda::models::ResNetCifar<float>>(any_model);
  if (!model) throw soda::ValueError("hawq: --model must be a CIFAR ResNet (resnet20, ...)");
  if (!s.checkpoint.empty()) {
    examples::load_checkpoint(*model, s.checkpoint);
  } else {
    examples::train_briefly(model, data, s.training);
  }
  model->eval();
  const auto height = data.train.images.shape()[2], width = data.train.images.shape()[3];
  std::cerr << "data: " << data.name << "; model: " << model->type_name() << " ("
            << model->parameter_count() << " parameters); threads: " << soda::max_threads() << "\n";

  const Batches test = first_images(
      data.test, examples::plain_loader_options(data, s.eval_batch, s.seed), s.eval_images);
  auto calibration_options = examples::plain_loader_options(data, 128, s.seed + 1);
  calibration_options.shuffle = true;
  const Batches calibration = first_images(data.train, calibration_options, s.calibration_images);
  const Batches hessian_batches =
      first_images(data.train, examples::plain_loader_options(data, 128, s.seed), s.hessian_images);

  Json timings;
  auto start = std::chrono::steady_clock::now();
  const auto fp32 = hawq::evaluate_module(*model, test);
  std::cerr << "fp32: accuracy " << 100 * fp32.accuracy << "% on " << fp32.images << " images, "
            << fp32.images_per_second << " images/s\n";

  // Sensitivities: the Hessian with respect to the quantized weights only (BN is folded away).
  const auto geometry = soda::quant::resnet_layer_geometry(*model, height, width);
  soda::hessian::HessianOperatorOptions operator_options;
  for (const auto& layer : geometry) operator_options.parameters.push_back(layer.name + ".weight");
  start = std::chrono::steady_clock::now();
  const soda::hessian::HessianOperator<float> hessian(model, hessian_batches, operator_options);
  examples::StageProgress progress(s.quiet);
  soda::hessian::LayerReportOptions report_options;
  report_options.max_iterations = s.eigen_iterations;
  report_options.max_trace_samples = s.trace_samples;
  report_options.seed = s.seed;
  report_options.progress = progress.callback();
  const auto report = soda::hessian::layer_report(hessian, report_options);
  progress.finish();
  timings["hessian_seconds"] = hawq::seconds_since(start);
  const auto sensitivities = soda::quant::layer_sensitivities(*model, report);

  start = std::chrono::steady_clock::now();
  const auto mixed_pairs = hawq::parse_bit_pairs(s.mixed_pairs);
  const auto low_bit_pairs = hawq::parse_bit_pairs(s.low_bit_pairs);
  hawq::BitPairs all_pairs = low_bit_pairs;
  for (const auto& pair : mixed_pairs) {
    if (std::find(all_pairs.begin(), all_pairs.end(), pair) == all_pairs.end())
      all_pairs.push_back(pair);
  }
  for (const auto& pair : {std::pair{8, 8}, std::pair{4, 4}, std::pair{4, 8}}) {
    if (std::find(all_pairs.begin(), all_pairs.end(), pair) == all_pairs.end())
      all_pairs.push_back(pair);
  }
  const auto latency = soda::quant::measure_layer_latency(geometry, all_pairs, s.latency_batch,
                                                          s.latency_repetitions, s.seed);
  timings["latency_table_seconds"] = hawq::seconds_since(start);

  const auto all_candidates =
      soda::quant::layer_candidates(sensitivities, geometry, all_pairs, &latency);
  const auto mixed_candidates =
      soda::quant::layer_candidates(sensitivities, geometry, mixed_pairs, &latency);
  const auto low_bit_candidates =
      soda::quant::layer_candidates(sensitivities, geometry, low_bit_pairs, &latency);
  const std::int64_t int8_bits = hawq::total_size_bits(mixed_candidates, 8);
  const std::int64_t int4_bits = hawq::total_size_bits(mixed_candidates, 4);
  const auto int8 = hawq::uniform_allocation(all_candidates, 8, 8);

  start = std::chrono::steady_clock::now();
  const auto frontier = soda::quant::pareto_frontier(mixed_candidates);
  const auto frontier_choice = soda::quant::choose_at_size_budget(
      frontier, s.size_fraction * static_cast<double>(int8_bits));
  soda::quant::AllocationLimits limits;
  limits.size_bits = s.size_fraction * static_cast<double>(int8_bits);
  if (s.bops_fraction) limits.bops = *s.bops_fraction * static_cast<double>(int8.bops);
  if (s.latency_fraction) limits.latency_seconds = *s.latency_fraction * int8.latency_seconds;
  const auto mixed = soda::quant::optimal_bit_allocation(mixed_candidates, limits);
  const auto low_bit = soda::quant::optimal_bit_allocation(
      low_bit_candidates, {.size_bits = static_cast<double>(int4_bits)});
  timings["allocation_seconds"] = hawq::seconds_since(start);
  write_text(out / "frontier.csv", hawq::frontier_csv(frontier));
  examples::plot_with_gnuplot(
      out, "frontier",
      {.title = "HAWQ-V2 Pareto frontier", .x = "weights (MB)", .y = "Σ tr(H)/n · ‖Q(W) − W‖²"},
      "set datafile separator ','\nset logscale y\nplot " + examples::gnuplot_text("frontier.csv") +
          " every ::1 using 2:3 with linespoints pt 7 ps 0.5 notitle\n");

  const std::vector<Configuration> configurations{
      {"uniform_w8a8", "uniform INT8", soda::quant::BitConfiguration::uniform(8, 8), int8},
      {"uniform_w4a8", "uniform INT4 weights, INT8 activations",
       soda::quant::BitConfiguration::uniform(4, 8),
       hawq::uniform_allocation(all_candidates, 4, 8)},
      {"uniform_w4a4", "uniform INT4", soda::quant::BitConfiguration::uniform(4, 4),
       hawq::uniform_allocation(all_candidates, 4, 4)},
      {"mixed",
       "HAWQ-V3 ILP over " + s.mixed_pairs + " at size <= " + std::to_string(s.size_fraction) +
           " x INT8",
       hawq::configuration_of(mixed), mixed},
      {"mixed_low_bit", "HAWQ-V3 ILP over " + s.low_bit_pairs + " at the uniform INT4 size",
       hawq::configuration_of(low_bit), low_bit}};
  Json rows = Json::array();
  for (const auto& config : configurations) {
    start = std::chrono::steady_clock::now();
    rows.push_back(run_configuration(config, *model, data, calibration, test, s, out));
    timings[config.name + "_seconds"] = hawq::seconds_since(start);
  }

  Json fp32_json{{"accuracy", fp32.accuracy},
                 {"images_per_second", fp32.images_per_second},
                 {"size_bits", 32 * int8_bits / 8},
                 {"bops", int8.bops / 64 * 32 * 32}};
  Json sensitivity_json = Json::array();
  for (const auto& layer : sensitivities) sensitivity_json.push_back(layer.to_json());
  Json v1_order = Json::array();
  for (const auto index : soda::quant::hawq_v1_order(sensitivities)) {
    v1_order.push_back(sensitivities[index].name);
  }
  const Json results{
      {"data", data.name},
      {"model", model->type_name()},
      {"checkpoint", s.checkpoint},
      {"seed", s.seed},
      {"threads", soda::max_threads()},
      {"test_images", fp32.images},
      {"fp32", fp32_json},
      {"layer_report", report.to_json()},
      {"sensitivities", sensitivity_json},
      {"hawq_v1_fine_tuning_order", v1_order},
      {"latency_table", latency.to_json()},
      {"pareto_frontier", hawq::frontier_json(frontier)},
      {"frontier_choice_at_budget",
       soda::quant::describe_allocation(mixed_candidates, frontier_choice.choices).to_json()},
      {"ilp_choice_at_budget", mixed.to_json()},
      {"ilp_choice_at_int4_size", low_bit.to_json()},
      {"configurations", rows},
      {"timings", timings}};
  write_text(out / "results.json", results.dump(2) + "\n");
  write_text(out / "table.csv", table_csv(fp32_json, rows));
  write_text(out / "latency.json", latency.to_json().dump(2) + "\n");
  write_text(out / "sensitivity.csv", soda::quant::sensitivities_to_csv(sensitivities));
  std::cout << markdown_table(fp32_json, rows);
  std::cout << "V2 frontier and V3 ILP at the budget agree: "
            << (std::abs(frontier_choice.sensitivity - mixed.sensitivity) <=
                        1e-9 * std::abs(mixed.sensitivity)
                    ? "yes"
                    : "no")
            << " (sensitivity " << frontier_choice.sensitivity << " vs " << mixed.sensitivity
            << ")\nresults: " << (out / "results.json").string() << "\n";
  return 0;
}

int parse_and_run(int argc, char** argv) {
  CLI::App app{"soda: HAWQ mixed-precision quantization (V1-V3) with integer-only inference"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  Settings s;
  using namespace examples;
  // A list of weight:activation bit pairs that hawq::parse_bit_pairs takes.
  const CLI::Validator bit_pairs(
      [](std::string& text) -> std::string {
        try {
          hawq::parse_bit_pairs(text);
          return "";
        } catch (const std::exception& error) {
          return "'" + text + "': " + error.what();
        }
      },
      "W:A,...");
  app.add_option("--checkpoint", s.checkpoint, "a trained model (train_cifar10's checkpoint)")
      ->check(CLI::ExistingFile);
  app.add_option("--data", s.data_dir, "CIFAR-10 binaries (default: Fashion-MNIST, else synthetic)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--model", s.model_name, resnet_names_help)->check(model_name(true));
  app.add_option("--out", s.out_dir, "output folder")->check(output_folder());
  app.add_option("--train-epochs", s.training.epochs, "without --checkpoint: epochs to train first")
      ->check(whole_number_in(1));
  app.add_option("--train-time-budget", s.training.time_budget_seconds,
                 "... and at most these seconds (0: no limit)")
      ->check(finite_number_at_least(0));
  app.add_option("--eval-images", s.eval_images, "test images to evaluate on (-1: all)")
      ->check(count_or_all());
  app.add_option("--calibration-images", s.calibration_images, "training images for calibration")
      ->check(whole_number_in(1));
  app.add_option("--calibration-percentile", s.calibration_percentile,
                 "activation range percentile (100: running max)")
      ->check(finite_number_in(0, 100, true));
  app.add_option("--hessian-images", s.hessian_images, "training images the Hessian is taken on")
      ->check(whole_number_in(1));
  app.add_option("--eigen-iterations", s.eigen_iterations, "power iterations per layer (HAWQ-V1)")
      ->check(whole_number_in(1));
  app.add_option("--trace-samples", s.trace_samples, "Hutchinson probes (HAWQ-V2)")
      ->check(whole_number_in(1));
  app.add_option("--latency-batch", s.latency_batch, "images per timed layer in the latency table")
      ->check(whole_number_in(1));
  app.add_option("--size-fraction", s.size_fraction, "mixed: size limit as a fraction of INT8")
      ->check(finite_number_above(0));
  app.add_option("--bops-fraction", s.bops_fraction, "mixed: BOPS limit as a fraction of INT8")
      ->check(finite_number_above(0));
  app.add_option("--latency-fraction", s.latency_fraction,
                 "mixed: latency limit as a fraction of INT8's (from the measured table)")
      ->check(finite_number_above(0));
  app.add_option("--mixed-bits", s.mixed_pairs, "mixed: candidate weight:activation bits")
      ->check(bit_pairs);
  app.add_option("--low-bit-bits", s.low_bit_pairs, "mixed at INT4 size: candidate bits")
      ->check(bit_pairs);
  app.add_option("--qat-steps", s.qat_steps,
                 "quantization-aware fine-tuning steps per configuration (0: none)")
      ->check(whole_number_in(0));
  app.add_option("--qat-lr", s.qat_lr, "fine-tuning SGD learning rate")
      ->check(finite_number_above(0));
  app.add_option("--seed", s.seed, "seed for data order, probes and the short training")
      ->check(seed_number());
  app.add_option("--threads", s.threads, "OpenMP threads (0: all)")->check(thread_count());
  app.add_flag("--quiet", s.quiet, "no progress lines");
  CLI11_PARSE(app, argc, argv);
  soda::prepare_output_folder(s.out_dir);
  if (s.threads > 0) soda::set_num_threads(s.threads);
  s.training.seed = s.seed;
  s.training.quiet = s.quiet;
  return run(s);
}

}  // namespace

int main(int argc, char** argv) {
  return examples::guarded_main([&] { return parse_and_run(argc, argv); });
}
