// Integer GEMM (soda/quant/integer_gemm.hpp), prepacked weights, int32 output: uint8 × int8 at
// M = N = K = 256 … 2048 beside soda's float SGEMM and oneDNN's dnnl_gemm_u8s8s32 in the same run,
// the same with the fused requantization to uint8, and int4 against int8 weights at M = 1, 4, 16
// with N = K = 1024 … 4096 (weight-bound).
#include <benchmark/benchmark.h>

#include <soda/quant/integer_gemm.hpp>
#include <soda/soda.hpp>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#if defined(SODA_HAVE_DNNL)
#include <dnnl.h>
#endif

#include "ratio_reporter.hpp"

namespace {

using soda::quant::IntegerFormat;
using soda::quant::IntegerMatrix;

IntegerMatrix random_matrix(std::int64_t rows, std::int64_t cols, IntegerFormat format,
                            unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<std::int32_t> value(soda::quant::format_min(format),
                                                    soda::quant::format_max(format));
  std::vector<std::int32_t> values(static_cast<std::size_t>(rows * cols));
  for (auto& v : values) v = value(gen);
  return IntegerMatrix::from_values(values, rows, cols, format);
}

void set_ops(benchmark::State& state, double m, double n, double k) {
  state.counters["GOP/s"] =
      benchmark::Counter(2.0 * m * n * k * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// C[M, N] = A·Bᵀ with B packed once (as inference does); A's packing is in the timing.
void BM_soda_u8s8s32(benchmark::State& state) {
  const auto n = state.range(0);
  const auto a = random_matrix(n, n, IntegerFormat::uint8, 1);
  const auto packed = soda::quant::pack_weights(random_matrix(n, n, IntegerFormat::int8, 2));
  std::vector<std::int32_t> c(static_cast<std::size_t>(n * n));
  for (auto _ : state) {
    soda::quant::integer_gemm(a, packed, {}, c);
    benchmark::DoNotOptimize(c.data());
  }
  set_ops(state, n, n, n);
  state.SetLabel(soda::quant::kernel_name(packed.kernel));
}

// The same product with the fused epilogue of inference: bias, per-channel dyadic
// requantization and a ReLU into uint8 outputs.
void BM_soda_u8s8_requantized(benchmark::State& state) {
  const auto n = state.range(0);
  const auto a = random_matrix(n, n, IntegerFormat::uint8, 1);
  const auto packed = soda::quant::pack_weights(random_matrix(n, n, IntegerFormat::int8, 2));
  const std::vector<std::int32_t> bias(static_cast<std::size_t>(n), 1000);
  const std::vector<soda::quant::DyadicFactor> factors(static_cast<std::size_t>(n),
                                                       soda::quant::dyadic_factor(1.0 / 4096));
  auto out = IntegerMatrix::zeros(n, n, IntegerFormat::uint8);
  for (auto _ : state) {
    soda::quant::integer_gemm(a, packed, bias, soda::quant::Requantization{factors, true}, out);
    benchmark::DoNotOptimize(out.bytes.data());
  }
  set_ops(state, n, n, n);
}

void BM_soda_sgemm(benchmark::State& state) {
  const auto n = state.range(0);
  soda::Generator gen(1);
  const auto a = soda::randn<float>({n, n}, gen);
  const auto b = soda::randn<float>({n, n}, gen);
  for (auto _ : state) benchmark::DoNotOptimize(soda::matmul(a, b).raw_data());
  set_ops(state, n, n, n);
}

#if defined(SODA_HAVE_DNNL)
// oneDNN's C = A·Bᵀ with A uint8 [M, K] and B int8 [N, K] (transb = 'T'), zero offsets.
void BM_dnnl_u8s8s32(benchmark::State& state) {
  const auto n = state.range(0);
  const auto a = random_matrix(n, n, IntegerFormat::uint8, 1);
  const auto b = random_matrix(n, n, IntegerFormat::int8, 2);
  std::vector<std::int32_t> c(static_cast<std::size_t>(n * n));
  const std::int32_t offset = 0;
  for (auto _ : state) {
    dnnl_gemm_u8s8s32('N', 'T', 'F', n, n, n, 1.0f, a.bytes.data(), n, 0,
                      reinterpret_cast<const std::int8_t*>(b.bytes.data()), n, 0, 0.0f, c.data(), n,
                      &offset);
    benchmark::DoNotOptimize(c.data());
  }
  set_ops(state, n, n, n);
}

// Prints one uint8 × int8 sum at the extremes (K = 64 products of 255 · 127) from oneDNN beside
// the exact value and soda's: where oneDNN's int16 pair sums saturate, the two differ.
void print_extreme_sums() {
  constexpr std::int64_t m = 4, n = 4, k = 64;
  const std::vector<std::int32_t> a_values(m * k, 255), b_values(n * k, 127);
  const auto a = IntegerMatrix::from_values(a_values, m, k, IntegerFormat::uint8);
  const auto b = IntegerMatrix::from_values(b_values, n, k, IntegerFormat::int8);
  std::vector<std::int32_t> dnnl(m * n), soda_sum(m * n);
  const std::int32_t offset = 0;
  dnnl_gemm_u8s8s32('N', 'T', 'F', m, n, k, 1.0f, a.bytes.data(), k, 0,
                    reinterpret_cast<const std::int8_t*>(b.bytes.data()), k, 0, 0.0f, dnnl.data(),
                    n, &offset);
  soda::quant::integer_gemm(a, b, {}, soda_sum);
  std::printf("64 products of 255 · 127: exact %lld, soda %d, oneDNN %d%s\n",
              static_cast<long long>(k) * 255 * 127, soda_sum[0], dnnl[0],
              dnnl[0] == k * 255 * 127 ? "" : " (oneDNN saturates: not exact)");
}
#endif

// uint8 activations [M, K] times int8 or int4 weights [N, K] (args: M, N = K, weight bits).
void BM_soda_weight_bits(benchmark::State& state) {
  const auto m = state.range(0), nk = state.range(1);
  const auto format = state.range(2) == 4 ? IntegerFormat::int4 : IntegerFormat::int8;
  const auto a = random_matrix(m, nk, IntegerFormat::uint8, 3);
  const auto packed = soda::quant::pack_weights(random_matrix(nk, nk, format, 4));
  std::vector<std::int32_t> c(static_cast<std::size_t>(m * nk));
  for (auto _ : state) {
    soda::quant::integer_gemm(a, packed, {}, c);
    benchmark::DoNotOptimize(c.data());
  }
  set_ops(state, m, nk, nk);
  state.counters["weight GB/s"] =
      benchmark::Counter(static_cast<double>(packed.panels.size()) * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_soda_u8s8s32)
    ->RangeMultiplier(2)
    ->Range(256, 2048)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_soda_u8s8_requantized)
    ->RangeMultiplier(2)
    ->Range(256, 2048)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#if defined(SODA_HAVE_DNNL)
BENCHMARK(BM_dnnl_u8s8s32)
    ->RangeMultiplier(2)
    ->Range(256, 2048)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif
BENCHMARK(BM_soda_sgemm)
    ->RangeMultiplier(2)
    ->Range(256, 2048)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_soda_weight_bits)
    ->ArgsProduct({{1, 4, 16}, {1024, 2048, 4096}, {8, 4}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  soda::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nkernel %s, %d threads\n",
              soda::quant::kernel_name(soda::quant::best_integer_gemm_kernel()),
              soda::max_threads());
#if defined(SODA_HAVE_DNNL)
  print_extreme_sums();
#endif
  std::printf("soda u8s8 throughput / oneDNN u8s8s32:\n");
  for (const int n : {256, 512, 1024, 2048}) {
    const auto s = std::to_string(n);
    reporter.print_ratio(("  n = " + s).c_str(), "BM_dnnl_u8s8s32/" + s + "/real_time",
                         "BM_soda_u8s8s32/" + s + "/real_time");
  }
  std::printf("soda u8s8 throughput / soda float SGEMM:\n");
  for (const int n : {256, 512, 1024, 2048}) {
    const auto s = std::to_string(n);
    reporter.print_ratio(("  n = " + s).c_str(), "BM_soda_sgemm/" + s + "/real_time",
                         "BM_soda_u8s8s32/" + s + "/real_time");
  }
  std::printf("soda u8s8 with the fused requantization to uint8, time / int32 output time:\n");
  for (const int n : {256, 512, 1024, 2048}) {
    const auto s = std::to_string(n);
    reporter.print_ratio(("  n = " + s).c_str(), "BM_soda_u8s8_requantized/" + s + "/real_time",
                         "BM_soda_u8s8s32/" + s + "/real_time");
  }
  std::printf("int4-weight time / int8-weight time:\n");
  for (const int m : {1, 4, 16}) {
    for (const int nk : {1024, 2048, 4096}) {
      const auto prefix = "BM_soda_weight_bits/" + std::to_string(m) + "/" + std::to_string(nk);
      reporter.print_ratio(
          ("  M = " + std::to_string(m) + ", N = K = " + std::to_string(nk)).c_str(),
          prefix + "/4/real_time", prefix + "/8/real_time");
    }
  }
  benchmark::Shutdown();
}
