// SGEMM: soda::matmul (Eigen's GEMM, OpenBLAS behind it when built with SODA_USE_BLAS) beside
// OpenBLAS's cblas_sgemm on the same threads, n = 256 … 2048. Prints ours / OpenBLAS throughput.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <soda/soda.hpp>

#include "ratio_reporter.hpp"

namespace {

void BM_soda_matmul(benchmark::State& state) {
  const auto n = state.range(0);
  soda::Generator gen(1);
  const auto a = soda::randn<float>({n, n}, gen);
  const auto b = soda::randn<float>({n, n}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(soda::matmul(a, b).raw_data());
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * n * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_openblas_sgemm(benchmark::State& state) {
  const auto n = state.range(0);
  soda::Generator gen(1);
  const auto a = soda::randn<float>({n, n}, gen);
  const auto b = soda::randn<float>({n, n}, gen);
  auto c = soda::zeros<float>({n, n});
  const int ni = static_cast<int>(n);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0f, a.data(), ni, b.data(),
                ni, 0.0f, c.data(), ni);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * n * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_soda_matmul)
    ->RangeMultiplier(2)
    ->Range(256, 2048)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_openblas_sgemm)
    ->RangeMultiplier(2)
    ->Range(256, 2048)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  soda::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nsoda SGEMM throughput / OpenBLAS (%d threads):\n", soda::max_threads());
  for (const int n : {256, 512, 1024, 2048}) {
    const auto s = std::to_string(n);
    // Time ratio OpenBLAS / ours = our throughput as a fraction of OpenBLAS's.
    reporter.print_ratio(("  n = " + s).c_str(), "BM_openblas_sgemm/" + s + "/real_time",
                         "BM_soda_matmul/" + s + "/real_time");
  }
  benchmark::Shutdown();
}
