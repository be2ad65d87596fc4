// A large element-wise add (2^24 floats: two 64 MiB inputs, one output) beside std::memcpy of
// the same bytes. Both are memory-bound; prints add bandwidth / memcpy bandwidth, counting the
// bytes each reads and writes.
#include <benchmark/benchmark.h>

#include <cstring>
#include <soda/soda.hpp>

#include "ratio_reporter.hpp"

namespace {

constexpr std::int64_t count = std::int64_t{1} << 24;

void BM_soda_add(benchmark::State& state) {
  soda::Generator gen(2);
  const auto a = soda::rand<float>({count}, gen);
  const auto b = soda::rand<float>({count}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(soda::add(a, b).raw_data());
  state.SetBytesProcessed(state.iterations() * 3 * count *
                          static_cast<std::int64_t>(sizeof(float)));
}

void BM_memcpy(benchmark::State& state) {
  // Copies 1.5 × count floats: read + write = the 3 × count floats the add touches.
  const std::int64_t n = count * 3 / 2;
  soda::Generator gen(2);
  const auto src = soda::rand<float>({n}, gen);
  auto dst = soda::zeros<float>({n});
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), static_cast<std::size_t>(n) * sizeof(float));
    benchmark::DoNotOptimize(dst.data());
  }
  state.SetBytesProcessed(state.iterations() * 2 * n * static_cast<std::int64_t>(sizeof(float)));
}

BENCHMARK(BM_soda_add)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  soda::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\n");
  // Same byte count on both sides, so the time ratio is the bandwidth ratio.
  reporter.print_ratio("soda add bandwidth / memcpy bandwidth", "BM_memcpy/real_time",
                       "BM_soda_add/real_time");
  benchmark::Shutdown();
}
