// ResNet-20 (PyHessian's CIFAR definition) on a batch of 128 3×32×32 float images, 10 classes, in
// training mode (BatchNorm on batch statistics): a full SGD training step (soda::train::train_step:
// forward, cross-entropy, gradient, momentum update), value + gradient, value + gradient + HVP in
// one forward-over-reverse pass, and the forward alone under NoGradGuard. bench/compare/resnet.py
// runs the same workload in PyTorch and prints soda / PyTorch ratios.
//
// Peak memory (BM_peak_memory/<step>): each figure comes from a fresh child process (this binary
// run again with --soda_memory_child=<step>), so nothing the timing runs left behind (the storage
// cache, the C allocator's free lists) counts. The child builds the problem, runs the step once
// (thread pools, BLAS buffers, momentum buffers), empties soda's storage cache and malloc_trim()s,
// reads VmRSS, resets the kernel's peak-RSS mark (writing 5 to /proc/self/clear_refs), runs the
// step again and reads VmHWM. Counters, in bytes, on top of the model, data and optimizer state:
//   peak_rss             VmHWM − VmRSS: resident memory the step needed (what the OS sees)
//   peak_alloc           peak of malloc's bytes in use (mallinfo2 uordblks + hblkhd, sampled every
//                        0.5 ms on a helper thread) minus their number before the step
//   *_no_cache           the same in a child run with SODA_STORAGE_CACHE_MB=0, where freed
//                        buffers go straight back to malloc: peak_alloc_no_cache is the closest to
//                        the peak of live tensor bytes (cached blocks count as allocated otherwise)
//   baseline_rss, hwm_reset (1 when the peak-RSS mark could be reset; 0: VmHWM includes set-up)
// The PyTorch script measures its own steps the same way.
//
// Flags besides Google Benchmark's: --threads=N (default 2) sets soda's (OpenMP's, and with it the
// OpenMP build of OpenBLAS's) thread count. Without --benchmark_min_time each benchmark runs for 3
// seconds. The console output ends with the ratios the issue sets goals for; --benchmark_format=
// json (or csv) prints the plain report only, for scripts.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <soda/soda.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ratio_reporter.hpp"

extern char** environ;

namespace {

constexpr std::int64_t kBatch = 128;
constexpr std::int64_t kClasses = 10;
int g_threads = 2;

struct ResNetProblem {
  std::shared_ptr<soda::models::ResNetCifar<float>> model;
  std::vector<soda::Tensor<float>> params;
  soda::Tensor<float> images;
  soda::Tensor<std::int64_t> labels;
  std::vector<soda::Tensor<float>> v;  // the HVP's direction, one N(0, 1) tensor per parameter

  soda::Tensor<float> loss() const { return soda::nn::cross_entropy((*model)(images), labels); }
};

ResNetProblem make_problem(std::uint64_t seed = 0) {
  soda::Generator gen(seed);
  ResNetProblem p;
  p.model = soda::models::resnet_cifar<float>(20, gen, 3, kClasses);
  p.model->train();
  p.params = p.model->parameters();
  p.images = soda::randn<float>({kBatch, 3, 32, 32}, gen);
  p.labels = soda::randint<std::int64_t>({kBatch}, gen, 0, kClasses);
  for (const auto& param : p.params) p.v.push_back(soda::randn<float>(param.shape(), gen));
  return p;
}

// The same model and data, for the benchmarks that only read the parameters.
ResNetProblem& problem() {
  static ResNetProblem p = make_problem();
  return p;
}

// PyHessian's CIFAR training recipe: lr 0.1, momentum 0.9, weight decay 5e-4.
soda::optim::SgdOptions sgd_options() {
  return soda::optim::SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4};
}

// A step of each kind on `p`; the train step owns its optimizer (momentum buffers) in the closure.
std::function<void()> make_step(ResNetProblem& p, const std::string& kind) {
  if (kind == "train") {
    auto optimizer = std::make_shared<soda::optim::SGD<float>>(p.params, sgd_options());
    return [&p, optimizer] {
      benchmark::DoNotOptimize(soda::train::train_step(*p.model, *optimizer, p.images, p.labels));
    };
  }
  if (kind == "grad") {
    return [&p] {
      benchmark::DoNotOptimize(soda::value_and_grad([&] { return p.loss(); }, p.params));
    };
  }
  if (kind == "hvp") {
    return [&p] {
      benchmark::DoNotOptimize(soda::value_grad_hvp([&] { return p.loss(); }, p.params, p.v));
    };
  }
  if (kind == "forward") {
    return [&p] {
      soda::NoGradGuard no_grad;
      benchmark::DoNotOptimize((*p.model)(p.images));
    };
  }
  throw soda::ValueError("bench_resnet: unknown step '" + kind + "'");
}

void time_step(benchmark::State& state, ResNetProblem& p, const std::string& kind) {
  const auto step = make_step(p, kind);
  step();  // warm-up: thread pools, storage cache, momentum buffers
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * kBatch);  // images per second
}

void BM_train_step(benchmark::State& state) {
  // Its own model (same seed): the updates must not move the parameters the others read.
  static ResNetProblem trained = make_problem();
  time_step(state, trained, "train");
}

void BM_value_and_grad(benchmark::State& state) {
  time_step(state, problem(), "grad");
  soda::NoGradGuard no_grad;
  state.counters["loss"] = static_cast<double>(problem().loss().item());
}

void BM_value_grad_hvp(benchmark::State& state) {
  time_step(state, problem(), "hvp");
}

void BM_forward(benchmark::State& state) {
  time_step(state, problem(), "forward");
}

// ---------------------------------------------------------------------------------------------
// Peak memory, measured in a fresh child process
// ---------------------------------------------------------------------------------------------

// A field of /proc/self/status in bytes ("VmRSS", "VmHWM"); -1 when absent.
double proc_status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::strtod(line.c_str() + field.size() + 1, nullptr) * 1024.0;  // kB
    }
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false where /proc/self/clear_refs is not
// writable.
bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  if (!clear) return false;
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

// Bytes the C allocator has handed out and not taken back (all arenas, mmapped blocks included).
std::size_t malloc_live_bytes() {
  const auto info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// Samples malloc_live_bytes() every 0.5 ms on a thread of its own until finish().
class AllocationSampler {
 public:
  AllocationSampler() : peak_(malloc_live_bytes()) {
    thread_ = std::thread([this] {
      while (!stop_.load(std::memory_order_relaxed)) {
        note(malloc_live_bytes());
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
    });
  }
  ~AllocationSampler() { finish(); }
  AllocationSampler(const AllocationSampler&) = delete;
  AllocationSampler& operator=(const AllocationSampler&) = delete;

  std::size_t finish() {
    if (thread_.joinable()) {
      stop_ = true;
      thread_.join();
    }
    note(malloc_live_bytes());
    return peak_;
  }

 private:
  void note(std::size_t live) {
    std::size_t seen = peak_.load(std::memory_order_relaxed);
    while (live > seen && !peak_.compare_exchange_weak(seen, live)) {
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> peak_;
  std::thread thread_;
};

// The child's side: prints "<peak RSS growth> <peak allocated growth> <baseline RSS> <1 if VmHWM
// was reset>", in bytes.
int memory_child(const std::string& kind) {
  auto p = make_problem();
  const auto step = make_step(p, kind);
  step();
  soda::detail::StoragePool::instance().clear();
  malloc_trim(0);
  const std::size_t live_before = malloc_live_bytes();
  AllocationSampler sampler;
  const double baseline = proc_status_bytes("VmRSS");
  const bool reset = reset_peak_rss();
  step();
  const double peak = proc_status_bytes("VmHWM");
  const std::size_t peak_live = sampler.finish();
  std::printf("%.0f %.0f %.0f %d\n", peak - baseline,
              static_cast<double>(peak_live) - static_cast<double>(live_before), baseline,
              reset ? 1 : 0);
  return peak > 0 && baseline > 0 ? 0 : 1;
}

struct ChildFigures {
  double growth = -1, allocated = -1, baseline = -1;
  bool reset = false;
  std::string error;
};

ChildFigures measure_in_child(const std::string& kind, bool storage_cache) {
  ChildFigures out;
  char exe[4096];
  const auto length = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (length <= 0) return {.error = "cannot read /proc/self/exe"};
  exe[length] = '\0';

  std::vector<std::string> args{exe, "--soda_memory_child=" + kind,
                                "--threads=" + std::to_string(g_threads)};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "SODA_STORAGE_CACHE_MB=", 22) != 0 || storage_cache) env.emplace_back(*e);
  }
  if (!storage_cache) env.emplace_back("SODA_STORAGE_CACHE_MB=0");
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  for (auto& e : env) envp.push_back(e.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);

  int fds[2];
  if (pipe(fds) != 0) return {.error = "pipe failed"};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, exe, &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  std::string text;
  if (spawned == 0) {
    char buffer[256];
    ssize_t n = 0;
    while ((n = read(fds[0], buffer, sizeof buffer)) > 0) text.append(buffer, n);
  }
  close(fds[0]);
  if (spawned != 0) return {.error = std::string("posix_spawn: ") + std::strerror(spawned)};
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return {.error = "the measuring child failed (status " + std::to_string(status) + ")"};
  }
  int reset = 0;
  std::istringstream(text) >> out.growth >> out.allocated >> out.baseline >> reset;
  out.reset = reset == 1;
  if (out.baseline <= 0) return {.error = "unreadable child output '" + text + "'"};
  return out;
}

void BM_peak_memory(benchmark::State& state, const char* kind) {
  ChildFigures cached, uncached;
  for (auto _ : state) {
    cached = measure_in_child(kind, true);
    uncached = measure_in_child(kind, false);
  }
  for (const auto* f : {&cached, &uncached}) {
    if (!f->error.empty()) {
      state.SkipWithError(f->error.c_str());
      return;
    }
  }
  using benchmark::Counter;
  const auto bytes = [](double value) {
    return Counter(value, Counter::kDefaults, Counter::kIs1024);
  };
  state.counters["peak_rss"] = bytes(cached.growth);
  state.counters["peak_rss_no_cache"] = bytes(uncached.growth);
  state.counters["peak_alloc"] = bytes(cached.allocated);
  state.counters["peak_alloc_no_cache"] = bytes(uncached.allocated);
  state.counters["baseline_rss"] = bytes(cached.baseline);
  state.counters["hwm_reset"] = cached.reset && uncached.reset ? 1 : 0;
}

BENCHMARK(BM_train_step)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_value_and_grad)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_value_grad_hvp)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_forward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_peak_memory, train, "train")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK_CAPTURE(BM_peak_memory, grad, "grad")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK_CAPTURE(BM_peak_memory, hvp, "hvp")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK_CAPTURE(BM_peak_memory, forward, "forward")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

// Remembers the memory counters too, for the closing ratios.
class ResNetReporter : public soda::bench::RatioReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs) {
      for (const auto& [name, counter] : run.counters) {
        counters_[run.benchmark_name() + "#" + name] = counter.value;
      }
    }
    RatioReporter::ReportRuns(runs);
  }

  // The HVP step's peak memory over the gradient step's, by one counter.
  void print_memory_ratio(const char* label, const std::string& counter) const {
    const auto a = counters_.find("BM_peak_memory/hvp/iterations:1/real_time#" + counter);
    const auto b = counters_.find("BM_peak_memory/grad/iterations:1/real_time#" + counter);
    if (a == counters_.end() || b == counters_.end() || b->second <= 0) return;
    std::printf("%-58s %7.3f\n", label, a->second / b->second);
  }

 private:
  std::map<std::string, double> counters_;
};

bool starts_with(const char* arg, const char* prefix) {
  return std::strncmp(arg, prefix, std::strlen(prefix)) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Our flags first (Google Benchmark refuses ones it does not know).
  std::string child_kind, format = "console";
  bool has_min_time = false;
  std::vector<char*> args{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (starts_with(argv[i], "--threads=")) {
      g_threads = std::atoi(argv[i] + 10);
    } else if (starts_with(argv[i], "--soda_memory_child=")) {
      child_kind = argv[i] + 20;
    } else {
      if (starts_with(argv[i], "--benchmark_min_time=")) has_min_time = true;
      if (starts_with(argv[i], "--benchmark_format=")) format = argv[i] + 19;
      args.push_back(argv[i]);
    }
  }
  if (g_threads < 1) {
    std::fprintf(stderr, "bench_resnet: --threads must be at least 1\n");
    return 2;
  }
  soda::set_num_threads(g_threads);
  if (!child_kind.empty()) return memory_child(child_kind);

  std::string min_time = "--benchmark_min_time=3";
  if (!has_min_time) args.push_back(min_time.data());
  int count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  benchmark::AddCustomContext("model", "ResNet-20 (PyHessian), train mode");
  benchmark::AddCustomContext("batch", std::to_string(kBatch) + "x3x32x32 float32");
  benchmark::AddCustomContext("soda_threads", std::to_string(g_threads));
  benchmark::AddCustomContext("parameters", std::to_string(problem().model->parameter_count()));

  if (format != "console") {  // a plain machine-readable report, nothing else on stdout
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }
  ResNetReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nratios (%d threads)                                         measured   goal\n",
              g_threads);
  reporter.print_ratio("value+grad+HVP / value+grad time          (goal <= 3)",
                       "BM_value_grad_hvp/real_time", "BM_value_and_grad/real_time");
  reporter.print_ratio("train step / value+grad time", "BM_train_step/real_time",
                       "BM_value_and_grad/real_time");
  reporter.print_memory_ratio("HVP / gradient step peak RSS growth      (goal <= 2.5)", "peak_rss");
  reporter.print_memory_ratio("  the same without the storage cache", "peak_rss_no_cache");
  reporter.print_memory_ratio("  peak bytes allocated, without the cache", "peak_alloc_no_cache");
  std::printf("(soda / PyTorch ratios: bench/compare/resnet.py)\n");
  benchmark::Shutdown();
}
