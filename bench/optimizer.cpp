// Optimizer step times on ResNet-20 (PyHessian's CIFAR definition), batch 128 of 3×32×32 float
// images, train mode (BatchNorm on batch statistics), as the AdaHessian issue times them: one
// full step each (forward, cross-entropy, backward, update), AdaHessian's with the H·z of its
// Rademacher probe from the same forward-over-reverse pass.
//   sgd_step         SGD lr 0.1, momentum 0.9, weight decay 5e-4 (the CIFAR recipe)
//   adam_step        Adam at PyTorch's defaults
//   adahessian_step  AdaHessian lr 0.15, weight decay 5e-4, Hessian power 1, one probe
// Each starts from the same weights. bench/compare/adahessian.py runs the same steps in PyTorch
// (the official AdaHessian step: backward with create_graph, then autograd.grad for H·z) on the
// same weights and batch, and prints the ratios.
//
// Flags besides Google Benchmark's: --input=FILE.safetensors (the model's state dict under
// "model.", "images" and "labels", as adahessian.py writes them; without it the bench draws its
// own from a seed), --threads=N (default 2), --repeats=N (steps timed per optimizer, median
// reported; default 5).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <soda/soda.hpp>
#include <string>
#include <utility>
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
};

Settings g_settings;

struct StepProblem {
  std::shared_ptr<soda::models::ResNetCifar<float>> model;
  soda::nn::NamedTensors<float> initial_state;  // copies: every optimizer starts from here
  soda::Tensor<float> images;
  soda::Tensor<std::int64_t> labels;

  soda::Tensor<float> loss() const { return soda::nn::cross_entropy((*model)(images), labels); }

  void restore_initial_state() const {
    const auto state = model->state_dict();
    for (std::size_t i = 0; i < state.size(); ++i) {
      const auto& saved = initial_state[i].second;
      std::copy(saved.data(), saved.data() + saved.numel(), state[i].second.raw_data());
    }
  }
};

StepProblem& problem() {
  static StepProblem p = [] {
    StepProblem p;
    soda::Generator gen(0);
    p.model = soda::models::resnet_cifar<float>(20, gen, 3, kClasses);
    if (g_settings.input.empty()) {
      p.images = soda::randn<float>({kBatch, 3, 32, 32}, gen);
      p.labels = soda::randint<std::int64_t>({kBatch}, gen, 0, kClasses);
    } else {
      const auto file = soda::load_safetensors(g_settings.input);
      soda::load_state_dict(*p.model, file, g_settings.input, "model.");
      p.images = file.get<float>("images");
      p.labels = file.get<std::int64_t>("labels");
    }
    p.model->train();
    for (const auto& [name, tensor] : p.model->state_dict()) {
      p.initial_state.emplace_back(name, tensor.to<float>());
    }
    return p;
  }();
  return p;
}

// Times optimizer.step(loss) after one untimed warm-up step from the initial weights; the counter
// "loss" is that first step's loss, the figure PyTorch's first step must reproduce.
void time_steps(benchmark::State& state, soda::optim::Optimizer<float>& optimizer) {
  auto& p = problem();
  p.restore_initial_state();
  const soda::optim::LossClosure<float> loss = [&] { return p.loss(); };
  state.counters["loss"] = static_cast<double>(optimizer.step(loss).item());
  for (auto _ : state) benchmark::DoNotOptimize(optimizer.step(loss));
}

void BM_sgd_step(benchmark::State& state) {
  soda::optim::SGD<float> sgd(problem().model->parameters(),
                              {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
  time_steps(state, sgd);
}

void BM_adam_step(benchmark::State& state) {
  soda::optim::Adam<float> adam(problem().model->parameters());
  time_steps(state, adam);
}

void BM_adahessian_step(benchmark::State& state) {
  // The official script's decoupled weight decay: 5e-4 / lr.
  soda::optim::AdaHessian<float> adahessian(problem().model->parameters(),
                                            {.lr = 0.15, .weight_decay = 5e-4 / 0.15});
  time_steps(state, adahessian);
  state.counters["hvp_count"] = static_cast<double>(adahessian.hvp_count());
}

void register_benchmarks() {
  using Function = void (*)(benchmark::State&);
  const std::vector<std::pair<const char*, Function>> steps{
      {"BM_sgd_step", BM_sgd_step},
      {"BM_adam_step", BM_adam_step},
      {"BM_adahessian_step", BM_adahessian_step}};
  for (const auto& [name, function] : steps) {
    auto* b = benchmark::RegisterBenchmark(name, function)
                  ->Unit(benchmark::kMillisecond)
                  ->UseRealTime()
                  ->Iterations(1)
                  ->Repetitions(g_settings.repeats);
    if (g_settings.repeats > 1) b->ReportAggregatesOnly(true);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args{argv[0]};
  std::string format = "console";
  try {
    std::int64_t threads = g_settings.threads, repeats = g_settings.repeats;
    for (int i = 1; i < argc; ++i) {
      const char* arg = argv[i];
      if (const char* value = soda::bench::flag_value(arg, "input")) {
        g_settings.input = value;
        continue;
      }
      if (soda::bench::parse_count("bench_optimizer", arg, "threads", threads) ||
          soda::bench::parse_count("bench_optimizer", arg, "repeats", repeats)) {
        continue;
      }
      if (const char* value = soda::bench::flag_value(arg, "benchmark_format")) format = value;
      args.push_back(argv[i]);  // Google Benchmark's
    }
    g_settings.threads = static_cast<int>(threads);
    g_settings.repeats = static_cast<int>(repeats);
  } catch (const soda::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  soda::set_num_threads(g_settings.threads);
  if (!soda::bench::initialize_benchmark(args)) return 1;
  try {
    problem();  // loads before any timing; reports a bad --input here
  } catch (const soda::Error& e) {
    std::fprintf(stderr, "bench_optimizer: %s\n", e.what());
    return 1;
  }
  benchmark::AddCustomContext("model", "ResNet-20 (PyHessian), train mode");
  benchmark::AddCustomContext("batch", std::to_string(kBatch) + "x3x32x32 float32");
  benchmark::AddCustomContext("input", g_settings.input.empty() ? "seeded" : g_settings.input);
  benchmark::AddCustomContext("soda_threads", std::to_string(g_settings.threads));
  register_benchmarks();

  if (format != "console") {  // a plain machine-readable report, nothing else on stdout
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }
  soda::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const auto name = [](const char* benchmark) {
    return std::string(benchmark) + "/iterations:1/repeats:" + std::to_string(g_settings.repeats) +
           "/real_time";
  };
  std::printf("\nwithin soda (%d threads)\n", g_settings.threads);
  reporter.print_ratio("AdaHessian step / SGD step (goal <= 2.5)", name("BM_adahessian_step"),
                       name("BM_sgd_step"));
  reporter.print_ratio("Adam step / SGD step", name("BM_adam_step"), name("BM_sgd_step"));
  std::printf("(soda / PyTorch ratios: bench/compare/adahessian.py)\n");
  benchmark::Shutdown();
}
