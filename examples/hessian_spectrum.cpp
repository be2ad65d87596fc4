// The Hessian of a trained model's loss, PyHessian style: top-k eigenvalues (power iteration and
// Lanczos), trace (Hutchinson ± standard error), eigenvalue density (stochastic Lanczos
// quadrature), per-layer top eigenvalue and trace, and the loss along the top eigenvectors.
// Loads a checkpoint (--checkpoint, as train_cifar10 writes it) or first trains a short model.
// Writes OUT/spectrum.json, density.csv, layers.csv, landscape_1d.csv, landscape_2d.csv and,
// with gnuplot installed, esd.svg, landscape_1d.svg and landscape_2d.svg.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <soda/hessian/density.hpp>
#include <soda/hessian/eigenvalues.hpp>
#include <soda/hessian/hessian_operator.hpp>
#include <soda/hessian/landscape.hpp>
#include <soda/hessian/layer_report.hpp>
#include <soda/hessian/trace.hpp>
#include <soda/soda.hpp>
#include <sstream>

#include "common/checkpoint.hpp"
#include "common/cli_checks.hpp"
#include "common/data_and_models.hpp"
#include "common/gnuplot.hpp"
#include "common/guarded_main.hpp"
#include "common/stage_progress.hpp"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

struct Settings {
  std::string data_dir, model_name = "resnet20", checkpoint, out_dir = "runs/spectrum";
  std::string split = "train";
  std::int64_t synthetic_count = 5000, train_epochs = 1, train_batch = 128;
  double train_time_budget = 120, train_lr = 0.1;
  std::int64_t batch = 128, batches = 1;
  bool train_mode = false;
  double memory_budget_mib = 2048;
  std::int64_t top_k = 3, max_iterations = 100, trace_samples = 100, density_steps = 100,
               density_runs = 1, grid_points = 10000, layer_iterations = 20,
               layer_trace_samples = 30, landscape_points = 21, landscape_2d_points = 11;
  double tolerance = 1e-3, trace_tolerance = 1e-3, landscape_range = 0.5;
  bool lanczos = true, hutch_plus_plus = false, density = true, layers = true, landscape = true;
  std::uint64_t seed = 0;
  int threads = 0;
  bool quiet = false;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs one estimator stage, ends its progress line and records its time under `name`.
template <class Run>
auto timed_stage(Json& timings, const std::string& name, examples::StageProgress& progress,
                 Run&& run) {
  const auto start = std::chrono::steady_clock::now();
  auto result = run();
  progress.finish();
  timings[name] = seconds_since(start);
  return result;
}

std::string density_csv(const soda::hessian::SpectralDensity& density) {
  std::ostringstream out;
  out << "eigenvalue,density\n" << std::setprecision(9);
  for (std::size_t i = 0; i < density.grid.size(); ++i) {
    out << density.grid[i] << "," << density.density[i] << "\n";
  }
  return out.str();
}

void write_text(const fs::path& path, const std::string& text) {
  soda::write_file_atomically(path, text);
}

void plot_all(const fs::path& out, const Settings& s) {
  if (!examples::gnuplot_available()) {
    std::cerr << "plots: gnuplot not found (apt-get install gnuplot-nox); the .gp scripts in "
              << out << " draw them\n";
  }
  using examples::gnuplot_text;
  if (s.density) {
    examples::plot_with_gnuplot(
        out, "esd",
        {.title = "Hessian eigenvalue density (SLQ)",
         .x = "eigenvalue",
         .y = "density (log scale)"},
        "set datafile separator ','\nset logscale y\nset yrange [1e-10:*]\nplot " +
            gnuplot_text("density.csv") +
            " every ::1 using 1:($2 + 1e-12) with lines lw 2 notitle\n");
  }
  if (s.landscape) {
    examples::plot_with_gnuplot(out, "landscape_1d",
                                {.title = "Loss along the top eigenvector",
                                 .x = "α (along the top eigenvector)",
                                 .y = "loss"},
                                "set datafile separator ','\nplot " +
                                    gnuplot_text("landscape_1d.csv") +
                                    " every ::1 using 1:2 with linespoints lw 2 pt 7 notitle\n");
  }
  if (s.landscape && s.top_k >= 2) {  // the plane needs the top two eigenvectors
    examples::plot_with_gnuplot(
        out, "landscape_2d",
        {.title = "Loss in the plane of the top two eigenvectors",
         .x = "α (top eigenvector)",
         .y = "β (second eigenvector)"},
        "set datafile separator ','\nset view map\nset dgrid3d " +
            std::to_string(s.landscape_2d_points) + "," + std::to_string(s.landscape_2d_points) +
            "\nset pm3d at b\nset contour base\nunset surface\nsplot " +
            gnuplot_text("landscape_2d.csv") + " every ::1 using 1:2:3 with pm3d notitle\n");
  }
}

// The figures a reader wants first; the rest is in spectrum.json and the CSVs.
void print_summary(const Json& spectrum, const Settings& s) {
  std::cout << std::setprecision(6) << "top eigenvalues (power, "
            << spectrum["top_eigenvalues"]["hvp_count"] << " HVPs):";
  for (const auto& e : spectrum["top_eigenvalues"]["eigenvalues"])
    std::cout << " " << e.get<double>();
  std::cout << "\ntrace: " << spectrum["trace"]["trace"].get<double>() << " ± "
            << spectrum["trace"]["standard_error"].get<double>() << " ("
            << spectrum["trace"]["hvp_count"] << " HVPs)\n";
  if (spectrum.contains("top_eigenvalues_lanczos")) {
    std::cout << "top eigenvalues (Lanczos, " << spectrum["top_eigenvalues_lanczos"]["hvp_count"]
              << " HVPs):";
    for (const auto& e : spectrum["top_eigenvalues_lanczos"]["eigenvalues"])
      std::cout << " " << e.get<double>();
    std::cout << "\n";
  }
  if (spectrum.contains("density")) {
    const auto& ritz = spectrum["density"]["ritz_values"];
    double lowest = 0, highest = 0;
    for (const auto& run : ritz) {
      for (const auto& value : run) {
        lowest = std::min(lowest, value.get<double>());
        highest = std::max(highest, value.get<double>());
      }
    }
    std::cout << "density: Ritz values in [" << lowest << ", " << highest << "] ("
              << spectrum["density"]["hvp_count"] << " HVPs), plotted in esd.svg\n";
  }
  if (spectrum.contains("layers")) {
    auto layers = spectrum["layers"]["layers"];
    std::sort(layers.begin(), layers.end(), [](const Json& a, const Json& b) {
      return a["top_eigenvalue"].get<double>() > b["top_eigenvalue"].get<double>();
    });
    std::cout << "layers with the largest top eigenvalue (of " << layers.size() << "):";
    const auto shown = std::min<std::size_t>(5, layers.size());
    for (std::size_t i = 0; i < shown; ++i) {
      std::cout << " " << layers[i]["name"].get<std::string>() << " "
                << layers[i]["top_eigenvalue"].get<double>() << (i + 1 < shown ? "," : "");
    }
    std::cout << " (all in layers.csv)\n";
  }
  if (spectrum.contains("landscape_1d")) {
    const auto& losses = spectrum["landscape_1d"]["losses"];
    std::cout << "loss along the top eigenvector: " << losses.front().get<double>() << " at -"
              << s.landscape_range << ", " << spectrum["loss"].get<double>() << " at 0, "
              << losses.back().get<double>() << " at +" << s.landscape_range << "\n";
  }
}

int run(int argc, char** argv) {
  CLI::App app{"soda: Hessian spectrum of a trained model (PyHessian-style)"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  Settings s;
  using namespace examples;
  app.add_option("--data", s.data_dir, "folder with CIFAR-10 binaries (default: Fashion-MNIST)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--model", s.model_name, model_names_help)->check(examples::model_name());
  app.add_option("--checkpoint", s.checkpoint, "checkpoint.safetensors from train_cifar10")
      ->check(CLI::ExistingFile);
  app.add_option("--synthetic-count", s.synthetic_count, "images in the synthetic fallback set")
      ->check(whole_number_in(10));
  app.add_option("--train-epochs", s.train_epochs, "without --checkpoint: epochs to train first")
      ->check(whole_number_in(1));
  app.add_option("--train-time-budget", s.train_time_budget,
                 "... and at most these seconds (0: no limit)")
      ->check(finite_number_at_least(0));
  app.add_option("--train-lr", s.train_lr, "... at this SGD learning rate")
      ->check(finite_number_above(0));
  app.add_option("--split", s.split, "data the Hessian is taken on")
      ->check(CLI::IsMember({"train", "test"}));
  app.add_option("--batch", s.batch, "Hessian batch size")->check(whole_number_in(1));
  app.add_option("--batches", s.batches,
                 "batches summed (-1: the whole split, PyHessian's full-dataset mode)")
      ->check(count_or_all("the whole split"));
  app.add_flag("--train-mode", s.train_mode, "BatchNorm with batch statistics (default: eval)");
  app.add_option("--memory-budget-mib", s.memory_budget_mib, "linearizations kept in memory")
      ->check(finite_number_in(0, 1 << 30));
  app.add_option("--top-k", s.top_k, "top eigenvalues")->check(whole_number_in(1));
  app.add_option("--max-iterations", s.max_iterations, "power iteration steps per eigenvalue")
      ->check(whole_number_in(1));
  app.add_option("--tolerance", s.tolerance, "relative change that stops power iteration")
      ->check(finite_number_at_least(0));
  app.add_option("--trace-samples", s.trace_samples, "most Hutchinson probes")
      ->check(whole_number_in(1));
  app.add_option("--trace-tolerance", s.trace_tolerance, "relative change that stops Hutchinson")
      ->check(finite_number_at_least(0));
  app.add_flag("--hutch-plus-plus", s.hutch_plus_plus, "trace by Hutch++ instead of Hutchinson");
  app.add_option("--density-steps", s.density_steps, "Lanczos steps per SLQ run")
      ->check(whole_number_in(1));
  app.add_option("--density-runs", s.density_runs, "SLQ runs (random start vectors)")
      ->check(whole_number_in(1));
  app.add_option("--grid-points", s.grid_points, "points of the density grid")
      ->check(whole_number_in(2));
  app.add_option("--layer-iterations", s.layer_iterations, "per-layer power iteration steps")
      ->check(whole_number_in(1));
  app.add_option("--layer-trace-samples", s.layer_trace_samples, "per-layer Hutchinson probes")
      ->check(whole_number_in(1));
  app.add_option("--landscape-points", s.landscape_points, "points of the 1-D landscape")
      ->check(whole_number_in(1));
  app.add_option("--landscape-2d-points", s.landscape_2d_points, "points per axis in 2-D")
      ->check(whole_number_in(1));
  app.add_option("--landscape-range", s.landscape_range, "α and β from -range to range")
      ->check(finite_number_above(0));
  app.add_flag("!--no-lanczos", s.lanczos, "skip the Lanczos top-k");
  app.add_flag("!--no-density", s.density, "skip the density");
  app.add_flag("!--no-layers", s.layers, "skip the per-layer report");
  app.add_flag("!--no-landscape", s.landscape, "skip the loss landscape");
  app.add_option("--threads", s.threads, "OpenMP threads (0: all)")->check(thread_count());
  app.add_option("--seed", s.seed, "seed for weights, training and every random probe")
      ->check(seed_number());
  app.add_option("--out", s.out_dir, "folder for spectrum.json, CSVs and plots")
      ->check(output_folder());
  app.add_flag("--quiet", s.quiet, "no progress lines");
  CLI11_PARSE(app, argc, argv);
  // Checked before any work is done.
  require(!s.lanczos || s.max_iterations >= s.top_k,
          "Lanczos needs --max-iterations (its Krylov dimension, " +
              std::to_string(s.max_iterations) + ") at least --top-k (" + std::to_string(s.top_k) +
              "); raise it or pass --no-lanczos");
  soda::prepare_output_folder(s.out_dir);
  if (s.threads > 0) soda::set_num_threads(s.threads);

  const auto data = examples::choose_data(s.data_dir, s.synthetic_count, s.seed);
  soda::Generator gen(s.seed);
  const auto model = examples::make_model(s.model_name, data.train, gen);
  if (!s.checkpoint.empty()) {
    examples::load_checkpoint(*model, s.checkpoint);
  } else {
    examples::train_briefly(
        model, data,
        {s.train_epochs, s.train_batch, s.train_time_budget, s.train_lr, s.seed, s.quiet});
  }
  soda::DataLoader loader(s.split == "train" ? data.train : data.test,
                          examples::plain_loader_options(data, s.batch, s.seed));
  auto batches = soda::hessian::collect_batches<float>(loader, s.batches);

  soda::hessian::HessianOperatorOptions operator_options;
  operator_options.train_mode = s.train_mode;
  operator_options.memory_budget_bytes =
      static_cast<std::size_t>(s.memory_budget_mib * 1024 * 1024);
  auto start = std::chrono::steady_clock::now();
  const soda::hessian::HessianOperator<float> op(model, std::move(batches), operator_options);
  const double linearize_seconds = seconds_since(start);
  std::cerr << "data: " << data.name << " (" << op.samples() << " " << s.split
            << " images); model: " << model->type_name() << " (" << op.parameter_count()
            << " parameters); loss " << op.loss() << "; linearized in " << linearize_seconds
            << " s, " << op.kept_batches() << " batch(es) kept (" << op.kept_bytes() / (1024 * 1024)
            << " MiB); threads " << soda::max_threads() << "\n";

  examples::StageProgress progress(s.quiet);
  Json spectrum{{"data", data.name},
                {"split", s.split},
                {"model", model->type_name()},
                {"parameters", op.parameter_count()},
                {"samples", op.samples()},
                {"batch_norm", s.train_mode ? "train" : "eval"},
                {"seed", s.seed},
                {"threads", soda::max_threads()},
                {"loss", op.loss()}};
  Json timings{{"linearize", linearize_seconds}};
  const fs::path out(s.out_dir);
  fs::create_directories(out);

  soda::hessian::EigenOptions eigen_options{.max_iterations = s.max_iterations,
                                            .tolerance = s.tolerance,
                                            .seed = s.seed,
                                            .progress = progress.callback()};
  const auto top = timed_stage(timings, "top_eigenvalues", progress, [&] {
    return soda::hessian::top_eigenvalues(op, s.top_k, eigen_options);
  });
  spectrum["top_eigenvalues"] = top.to_json();

  if (s.lanczos) {
    const auto lanczos = timed_stage(timings, "top_eigenvalues_lanczos", progress, [&] {
      return soda::hessian::top_eigenvalues_lanczos(op, s.top_k, eigen_options);
    });
    spectrum["top_eigenvalues_lanczos"] = lanczos.to_json();
  }

  soda::hessian::TraceOptions trace_options;
  trace_options.max_samples = s.trace_samples;
  trace_options.tolerance = s.trace_tolerance;
  trace_options.seed = s.seed;
  trace_options.progress = progress.callback();
  if (s.hutch_plus_plus) trace_options.method = soda::hessian::TraceMethod::hutch_plus_plus;
  const auto trace = timed_stage(timings, "trace", progress,
                                 [&] { return soda::hessian::estimate_trace(op, trace_options); });
  spectrum["trace"] = trace.to_json();

  if (s.density) {
    soda::hessian::DensityOptions density_options;
    density_options.lanczos_steps = s.density_steps;
    density_options.runs = s.density_runs;
    density_options.grid_points = s.grid_points;
    density_options.seed = s.seed;
    density_options.progress = progress.callback();
    const auto density = timed_stage(timings, "density", progress, [&] {
      return soda::hessian::spectral_density(op, density_options);
    });
    spectrum["density"] = density.to_json();
    write_text(out / "density.csv", density_csv(density));
  }

  if (s.layers) {
    soda::hessian::LayerReportOptions layer_options;
    layer_options.max_iterations = s.layer_iterations;
    layer_options.eigen_tolerance = s.tolerance;
    layer_options.max_trace_samples = s.layer_trace_samples;
    layer_options.trace_tolerance = s.trace_tolerance;
    layer_options.seed = s.seed;
    layer_options.progress = progress.callback();
    const auto layers = timed_stage(timings, "layers", progress,
                                    [&] { return soda::hessian::layer_report(op, layer_options); });
    spectrum["layers"] = layers.to_json();
    write_text(out / "layers.csv", layers.to_csv());
  }

  if (s.landscape) {
    const auto alphas =
        soda::hessian::linspace(-s.landscape_range, s.landscape_range, s.landscape_points);
    start = std::chrono::steady_clock::now();
    const auto line = soda::hessian::loss_landscape_1d(op, top.eigenvectors.at(0), alphas);
    write_text(out / "landscape_1d.csv", line.to_csv());
    spectrum["landscape_1d"] = line.to_json();
    if (top.eigenvectors.size() >= 2) {
      const auto grid =
          soda::hessian::linspace(-s.landscape_range, s.landscape_range, s.landscape_2d_points);
      const auto plane = soda::hessian::loss_landscape_2d(op, top.eigenvectors[0],
                                                          top.eigenvectors[1], grid, grid);
      write_text(out / "landscape_2d.csv", plane.to_csv());
      spectrum["landscape_2d"] = plane.to_json();
    }
    timings["landscape"] = seconds_since(start);
  }

  spectrum["hvp_count"] = op.products();
  spectrum["timings_seconds"] = timings;
  write_text(out / "spectrum.json", spectrum.dump(2) + "\n");
  plot_all(out, s);

  print_summary(spectrum, s);
  std::cout << "HVPs in all: " << op.products() << "; results in " << out << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::guarded_main([&] { return run(argc, argv); });
}
