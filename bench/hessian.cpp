// Hessian spectra of ResNet-20 (PyHessian's CIFAR definition) on one batch of 128 3×32×32 float
// images, BatchNorm on running statistics (eval mode, PyHessian's default), as the issue times
// them: the gradient, one H·v on a kept linearization, the top eigenvalue (power iteration),
// Hutchinson's trace and the SLQ density, each with its count of Hessian-vector products.
// bench/compare/hessian.py runs the same stages in PyTorch (PyHessian's algorithms on a kept
// double-backward graph) on the same weights and batch, and prints soda / PyTorch ratios.
//
// Stages (each a benchmark; the estimators run on one HessianOperator, linearized once):
//   gradient       soda::value_and_grad of the mean cross-entropy
//   linearize      HessianOperator's construction: hessian_at's recorded forward and backward
//   hvp            one op.apply(v) replaying that linearization (no primal pass)
//   top_eigenvalue top_eigenvalues(op, 1) from the direction v, tolerance 0: exactly
//                  --power_iterations products (starting both sides from v makes the eigenvalue
//                  sequences identical in exact arithmetic)
//   trace          hutchinson_trace, tolerance 0: exactly --trace_samples products
//   density        spectral_density, --density_runs × --lanczos_steps products
// Counters: hvp_count (products per run of the stage), hvps_per_second, and the estimate.
//
// Flags besides Google Benchmark's: --input=FILE.safetensors (the model's state dict under
// "model.", "images", "labels" and the direction "v.<name>", as hessian.py writes them, with
// BatchNorm statistics from the batch; without it the bench draws its own from a seed and
// BatchNorm keeps its initial μ = 0, σ² = 1, a far wider spectrum), --threads=N (default 2),
// --repeats=N (runs of the cheap stages, median reported; default 5), --stage_repeats=N (runs of
// each estimator; default 1), --power_iterations=N (20), --trace_samples=N (20),
// --lanczos_steps=N (30), --density_runs=N (1).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <soda/hessian/density.hpp>
#include <soda/hessian/eigenvalues.hpp>
#include <soda/hessian/hessian_operator.hpp>
#include <soda/hessian/trace.hpp>
#include <soda/soda.hpp>
#include <string>
#include <vector>

#include "flags.hpp"
#include "ratio_reporter.hpp"

namespace {

constexpr std::int64_t kBatch = 128;
constexpr std::int64_t kClasses = 10;

struct Settings {
  std::string input;
  int threads = 2;
  int repeats = 5;
  int stage_repeats = 1;
  std::int64_t power_iterations = 20;
  std::int64_t trace_samples = 20;
  std::int64_t lanczos_steps = 30;
  std::int64_t density_runs = 1;
};

Settings g_settings;

struct HessianProblem {
  std::shared_ptr<soda::models::ResNetCifar<float>> model;
  std::vector<soda::Tensor<float>> params;
  soda::Tensor<float> images;
  soda::Tensor<std::int64_t> labels;
  soda::hessian::ParameterVector<float> v;  // the H·v direction and the power iteration's start
  std::unique_ptr<soda::hessian::HessianOperator<float>> op;

  soda::Tensor<float> loss() const { return soda::nn::cross_entropy((*model)(images), labels); }
};

// The problem from --input, or drawn from a seed. Built once: the estimators share the operator.
HessianProblem& problem() {
  static HessianProblem p = [] {
    HessianProblem p;
    soda::Generator gen(0);
    p.model = soda::models::resnet_cifar<float>(20, gen, 3, kClasses);
    if (g_settings.input.empty()) {
      p.images = soda::randn<float>({kBatch, 3, 32, 32}, gen);
      p.labels = soda::randint<std::int64_t>({kBatch}, gen, 0, kClasses);
      for (const auto& param : p.model->parameters()) {
        p.v.push_back(soda::randn<float>(param.shape(), gen));
      }
    } else {
      const auto file = soda::load_safetensors(g_settings.input);
      soda::load_state_dict(*p.model, file, g_settings.input, "model.");
      p.images = file.get<float>("images");
      p.labels = file.get<std::int64_t>("labels");
      for (const auto& [name, param] : p.model->named_parameters()) {
        p.v.push_back(file.get<float>("v." + name));
      }
    }
    p.model->eval();
    p.params = p.model->parameters();
    p.op = std::make_unique<soda::hessian::HessianOperator<float>>(
        p.model, std::vector<soda::hessian::LabeledBatch<float>>{{p.images, p.labels}});
    return p;
  }();
  return p;
}

void set_hvp_counters(benchmark::State& state, std::int64_t products, double estimate) {
  using benchmark::Counter;
  state.counters["hvp_count"] = static_cast<double>(products);
  state.counters["hvps_per_second"] =
      Counter(static_cast<double>(products), Counter::kIsIterationInvariantRate);
  state.counters["estimate"] = estimate;
}

void BM_gradient(benchmark::State& state) {
  auto& p = problem();
  const auto step = [&] { return soda::value_and_grad([&] { return p.loss(); }, p.params); };
  auto [value, grads] = step();  // warm-up: thread pools, storage cache
  for (auto _ : state) {
    auto result = step();
    value = result.first;
    benchmark::DoNotOptimize(result);
  }
  state.counters["loss"] = static_cast<double>(value.item());
}

void BM_linearize(benchmark::State& state) {
  auto& p = problem();
  for (auto _ : state) {
    soda::hessian::HessianOperator<float> op(
        p.model, std::vector<soda::hessian::LabeledBatch<float>>{{p.images, p.labels}});
    benchmark::DoNotOptimize(op.loss());
  }
  state.counters["kept_bytes"] =
      benchmark::Counter(static_cast<double>(p.op->kept_bytes()), benchmark::Counter::kDefaults,
                         benchmark::Counter::kIs1024);
}

void BM_hvp(benchmark::State& state) {
  auto& p = problem();
  benchmark::DoNotOptimize(p.op->apply(p.v));  // warm-up
  double vhv = 0;
  for (auto _ : state) {
    const auto hv = p.op->apply(p.v);
    vhv = soda::hessian::dot(p.v, hv);
  }
  set_hvp_counters(state, 1, vhv);
}

void BM_top_eigenvalue(benchmark::State& state) {
  auto& p = problem();
  const soda::hessian::EigenOptions options{.max_iterations = g_settings.power_iterations,
                                            .tolerance = 0};
  soda::hessian::EigenResult<float> result;
  for (auto _ : state) result = soda::hessian::top_eigenvalues(*p.op, 1, options, {p.v});
  set_hvp_counters(state, result.hvp_count, result.eigenvalues.front());
  state.counters["residual_norm"] = result.residual_norms.front();
}

void BM_trace(benchmark::State& state) {
  auto& p = problem();
  const soda::hessian::TraceOptions options{.max_samples = g_settings.trace_samples,
                                            .tolerance = 0};
  soda::hessian::TraceEstimate result;
  for (auto _ : state) result = soda::hessian::hutchinson_trace(*p.op, options);
  set_hvp_counters(state, result.hvp_count, result.trace);
  state.counters["standard_error"] = result.standard_error;
}

void BM_density(benchmark::State& state) {
  auto& p = problem();
  const soda::hessian::DensityOptions options{.lanczos_steps = g_settings.lanczos_steps,
                                              .runs = g_settings.density_runs};
  soda::hessian::SpectralDensity result;
  for (auto _ : state) result = soda::hessian::spectral_density(*p.op, options);
  // The largest Ritz value over the runs: SLQ's estimate of the top eigenvalue.
  double top = result.ritz_values.front().back();
  for (const auto& values : result.ritz_values) top = std::max(top, values.back());
  set_hvp_counters(state, result.hvp_count, top);
  state.counters["trace_per_parameter"] = result.moment(1);
}

void register_benchmarks() {
  const auto cheap = [](const char* name, void (*function)(benchmark::State&)) {
    auto* b = benchmark::RegisterBenchmark(name, function)
                  ->Unit(benchmark::kMillisecond)
                  ->UseRealTime()
                  ->Iterations(1)
                  ->Repetitions(g_settings.repeats);
    if (g_settings.repeats > 1) b->ReportAggregatesOnly(true);
  };
  const auto estimator = [](const char* name, void (*function)(benchmark::State&)) {
    auto* b = benchmark::RegisterBenchmark(name, function)
                  ->Unit(benchmark::kMillisecond)
                  ->UseRealTime()
                  ->Iterations(1)
                  ->Repetitions(g_settings.stage_repeats);
    if (g_settings.stage_repeats > 1) b->ReportAggregatesOnly(true);
  };
  cheap("BM_gradient", BM_gradient);
  cheap("BM_linearize", BM_linearize);
  cheap("BM_hvp", BM_hvp);
  estimator("BM_top_eigenvalue", BM_top_eigenvalue);
  estimator("BM_trace", BM_trace);
  estimator("BM_density", BM_density);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args{argv[0]};
  std::string format = "console";
  try {
    std::int64_t threads = g_settings.threads, repeats = g_settings.repeats,
                 stage_repeats = g_settings.stage_repeats;
    for (int i = 1; i < argc; ++i) {
      const char* arg = argv[i];
      using soda::bench::flag_value;
      const auto parse_count = [&](const char* a, const char* name, std::int64_t& out) {
        return soda::bench::parse_count("bench_hessian", a, name, out);
      };
      if (const char* value = flag_value(arg, "input")) {
        g_settings.input = value;
        continue;
      }
      const bool ours = parse_count(arg, "threads", threads) ||
                        parse_count(arg, "repeats", repeats) ||
                        parse_count(arg, "stage_repeats", stage_repeats) ||
                        parse_count(arg, "power_iterations", g_settings.power_iterations) ||
                        parse_count(arg, "trace_samples", g_settings.trace_samples) ||
                        parse_count(arg, "lanczos_steps", g_settings.lanczos_steps) ||
                        parse_count(arg, "density_runs", g_settings.density_runs);
      if (ours) continue;
      if (const char* value = flag_value(arg, "benchmark_format")) format = value;
      args.push_back(argv[i]);  // Google Benchmark's
    }
    g_settings.threads = static_cast<int>(threads);
    g_settings.repeats = static_cast<int>(repeats);
    g_settings.stage_repeats = static_cast<int>(stage_repeats);
  } catch (const soda::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  soda::set_num_threads(g_settings.threads);
  if (!soda::bench::initialize_benchmark(args)) return 1;
  try {
    problem();  // loads and linearizes before any timing; reports a bad --input here
  } catch (const soda::Error& e) {
    std::fprintf(stderr, "bench_hessian: %s\n", e.what());
    return 1;
  }
  benchmark::AddCustomContext("model", "ResNet-20 (PyHessian), eval mode");
  benchmark::AddCustomContext("batch", std::to_string(kBatch) + "x3x32x32 float32");
  benchmark::AddCustomContext("input", g_settings.input.empty() ? "seeded" : g_settings.input);
  benchmark::AddCustomContext("soda_threads", std::to_string(g_settings.threads));
  benchmark::AddCustomContext("parameters", std::to_string(problem().op->parameter_count()));
  register_benchmarks();

  if (format != "console") {  // a plain machine-readable report, nothing else on stdout
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }
  soda::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  // The reporter keeps a median under the run's name, which carries the repetitions asked.
  const auto seconds = [&](const char* name) {
    return reporter.seconds(std::string(name) + "/iterations:1/repeats:" +
                            std::to_string(g_settings.repeats) + "/real_time");
  };
  const double gradient = seconds("BM_gradient"), hvp = seconds("BM_hvp");
  std::printf("\nwithin soda (%d threads)\n", g_settings.threads);
  if (gradient > 0 && hvp > 0) {
    std::printf("%-58s %7.3f\n", "H·v on the kept linearization / gradient time", hvp / gradient);
  }
  std::printf("(soda / PyTorch ratios: bench/compare/hessian.py)\n");
  benchmark::Shutdown();
}
