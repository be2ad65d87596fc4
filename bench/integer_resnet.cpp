// ResNet-20 inference on 64 images (Fashion-MNIST's 1×28×28 and CIFAR's 3×32×32): soda's fp32
// forward (eval mode, no gradients), the fake-quantized simulation, and the integer-only network
// (HAWQ-V3: W8A8, W4A8 and W4A4), all from one model with BatchNorm statistics set, so every figure
// is of the same network. The console output ends with integer throughput ÷ fp32 throughput.
//
// Flags besides Google Benchmark's: --threads=N (default 2).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <soda/soda.hpp>
#include <string>

#include "ratio_reporter.hpp"

namespace {

constexpr std::int64_t batch_size = 64;

struct Problem {
  std::shared_ptr<soda::models::ResNetCifar<float>> model;
  soda::Tensor<float> images;
};

// A ResNet-20 with non-trivial BatchNorm statistics, in eval mode, and one batch of images.
Problem make_problem(std::int64_t channels, std::int64_t size) {
  soda::Generator gen(7);
  soda::models::ResNetCifarOptions options;
  options.depth = 20;
  options.in_channels = channels;
  Problem p{std::make_shared<soda::models::ResNetCifar<float>>(options, gen),
            soda::randn<float>({batch_size, channels, size, size}, gen)};
  for (const auto& [name, buffer] : p.model->named_buffers()) {
    if (name.ends_with("running_var")) {
      for (std::int64_t i = 0; i < buffer.numel(); ++i) buffer.data()[i] = 0.5f;
    }
  }
  p.model->eval();
  return p;
}

const Problem& problem(std::int64_t channels) {
  static std::map<std::int64_t, Problem> problems;
  auto found = problems.find(channels);
  if (found == problems.end()) {
    found = problems.emplace(channels, make_problem(channels, channels == 1 ? 28 : 32)).first;
  }
  return found->second;
}

std::unique_ptr<soda::quant::QuantizedResNet<float>> simulation(std::int64_t channels,
                                                                int weight_bits,
                                                                int activation_bits) {
  const auto& p = problem(channels);
  auto quantized = std::make_unique<soda::quant::QuantizedResNet<float>>(
      *p.model, soda::quant::BitConfiguration::uniform(weight_bits, activation_bits));
  quantized->calibrate({p.images});
  return quantized;
}

void BM_fp32(benchmark::State& state) {
  const auto& p = problem(state.range(0));
  soda::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(p.model->forward(p.images));
  state.SetItemsProcessed(state.iterations() * batch_size);
}

void BM_simulated(benchmark::State& state) {
  const auto quantized = simulation(state.range(0), static_cast<int>(state.range(1)),
                                    static_cast<int>(state.range(2)));
  const auto& p = problem(state.range(0));
  soda::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(quantized->forward(p.images));
  state.SetItemsProcessed(state.iterations() * batch_size);
}

void BM_integer(benchmark::State& state) {
  const auto& p = problem(state.range(0));
  const auto network = soda::quant::IntegerResNet::compile(
      simulation(state.range(0), static_cast<int>(state.range(1)), static_cast<int>(state.range(2)))
          ->plan(),
      p.images.shape()[2], p.images.shape()[3]);
  for (auto _ : state) benchmark::DoNotOptimize(network.forward_codes(p.images));
  state.SetItemsProcessed(state.iterations() * batch_size);
}

BENCHMARK(BM_fp32)
    ->ArgName("channels")
    ->Arg(1)
    ->Arg(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_simulated)
    ->ArgNames({"channels", "w", "a"})
    ->Args({1, 8, 8})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_integer)
    ->ArgNames({"channels", "w", "a"})
    ->Args({1, 8, 8})
    ->Args({1, 4, 8})
    ->Args({1, 4, 4})
    ->Args({3, 8, 8})
    ->Args({3, 4, 8})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
      for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
      --argc;
      --i;
    }
  }
  soda::set_num_threads(threads);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  soda::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf(
      "\nResNet-20, %lld images, kernel %s, %d threads\n", static_cast<long long>(batch_size),
      soda::quant::kernel_name(soda::quant::best_integer_gemm_kernel()), soda::max_threads());
  std::printf("integer-only throughput / fp32 throughput (goal >= 1.5):\n");
  for (const char* config : {"1/w:8/a:8", "1/w:4/a:8", "1/w:4/a:4", "3/w:8/a:8", "3/w:4/a:8"}) {
    const std::string channels = std::string(config).substr(0, 1);
    reporter.print_ratio(("  channels:" + std::string(config)).c_str(),
                         "BM_fp32/channels:" + channels + "/real_time",
                         "BM_integer/channels:" + std::string(config) + "/real_time");
  }
  reporter.print_ratio("simulated (fake-quantized) time / fp32 time, w8a8:",
                       "BM_simulated/channels:1/w:8/a:8/real_time", "BM_fp32/channels:1/real_time");
  return 0;
}
