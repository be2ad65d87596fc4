// Gradient vs Hessian-vector product on the tanh MLP 784-1024-1024-10, batch 256, float:
// value+gradient, value+gradient+HVP in one pass, H.apply(v) on a kept linearization, and
// apply_many of 8 vectors against 8 single applies. Prints the ratios the issue sets goals for.
#include <benchmark/benchmark.h>

#include "mlp_problem.hpp"
#include "ratio_reporter.hpp"

namespace {

const soda::bench::MlpProblem& problem() {
  static const auto p = soda::bench::make_mlp_problem();
  return p;
}

auto loss_fn() {
  return [](const std::vector<soda::Tensor<float>>& p) { return problem().loss(p); };
}

void BM_value_and_grad(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(soda::value_and_grad(loss_fn(), problem().params));
}

void BM_value_grad_hvp(benchmark::State& state) {
  soda::Generator gen(7);
  const auto v = problem().random_direction(gen);
  for (auto _ : state)
    benchmark::DoNotOptimize(soda::value_grad_hvp(loss_fn(), problem().params, v));
}

void BM_hessian_at(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(soda::hessian_at(loss_fn(), problem().params));
}

void BM_apply(benchmark::State& state) {
  soda::Generator gen(7);
  const auto v = problem().random_direction(gen);
  const auto hessian = soda::hessian_at(loss_fn(), problem().params);
  for (auto _ : state) benchmark::DoNotOptimize(hessian.apply(v));
}

void BM_apply_8_single(benchmark::State& state) {
  soda::Generator gen(7);
  std::vector<std::vector<soda::Tensor<float>>> vs;
  for (int i = 0; i < 8; ++i) vs.push_back(problem().random_direction(gen));
  const auto hessian = soda::hessian_at(loss_fn(), problem().params);
  for (auto _ : state) {
    for (const auto& v : vs) benchmark::DoNotOptimize(hessian.apply(v));
  }
}

void BM_apply_many_8(benchmark::State& state) {
  soda::Generator gen(7);
  std::vector<std::vector<soda::Tensor<float>>> vs;
  for (int i = 0; i < 8; ++i) vs.push_back(problem().random_direction(gen));
  const auto hessian = soda::hessian_at(loss_fn(), problem().params);
  for (auto _ : state) benchmark::DoNotOptimize(hessian.apply_many(vs));
}

BENCHMARK(BM_value_and_grad)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_value_grad_hvp)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_hessian_at)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_apply)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_apply_8_single)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_apply_many_8)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  soda::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nratios (%d threads)                                         measured   goal\n",
              soda::max_threads());
  reporter.print_ratio("value+grad+HVP / value+grad                 (goal <= 2.5)",
                       "BM_value_grad_hvp/min_time:2.000/real_time",
                       "BM_value_and_grad/min_time:2.000/real_time");
  reporter.print_ratio("H.apply(v) / value+grad                     (goal <= 2.0)",
                       "BM_apply/min_time:2.000/real_time",
                       "BM_value_and_grad/min_time:2.000/real_time");
  reporter.print_ratio("apply_many(8) / 8 x apply                   (goal <= 0.7)",
                       "BM_apply_many_8/min_time:2.000/real_time",
                       "BM_apply_8_single/min_time:2.000/real_time");
  benchmark::Shutdown();
}
