// soda's Hessian spectra of a ResNet-8 against PyHessian's algorithms written with torch.autograd
// in PyTorch 1.13 (tests/parity/hessian_parity.py), both in float64 on the same weights and batch.
//
// The check: top eigenvalue within 1%, trace within its error bars. The two sides draw
// different random vectors, so those agree only statistically; the strong checks share vectors:
// one H·v for a direction written to both (to 1e-10), zᵀHz for soda's first Hutchinson probes,
// and the top eigenvalue by Lanczos on each side, run to a residual far below its gap. BatchNorm
// runs on its running statistics (eval mode, PyHessian's default). Needs Debian's python3-torch.
#include <doctest/doctest.h>
#include <soda/hessian/eigenvalues.hpp>
#include <soda/hessian/hessian_operator.hpp>
#include <soda/hessian/trace.hpp>
#include <soda/io/state_dict.hpp>
#include <soda/soda.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "parity_support.hpp"

namespace {
// Named, since the parity area is one unity file with test_resnet_parity.cpp's helpers.
namespace hessian_parity {

namespace fs = std::filesystem;
using Vector = soda::hessian::ParameterVector<double>;

constexpr const char* script_name = "hessian_parity.py";
constexpr std::int64_t depth = 8, batch_size = 16, image_size = 8, classes = 10;
constexpr std::int64_t shared_probes = 2;  // soda's first Hutchinson probes sent to PyTorch

// PyHessian's defaults (eigenvalues(maxIter=100, tol=1e-3), trace(maxIter=100, tol=1e-3)).
const soda::hessian::EigenOptions power_options{
    .max_iterations = 100, .tolerance = 1e-3, .seed = 1};
const soda::hessian::TraceOptions trace_options{.max_samples = 100, .tolerance = 1e-3, .seed = 2};
// Lanczos to a residual of 1e-9·λ: the Ritz value's error is then below (1e-9·λ)² / gap.
const soda::hessian::EigenOptions lanczos_options{
    .max_iterations = 80, .tolerance = 1e-9, .seed = 3};

// Tolerances. In float64 the two libraries differ only by rounding, summed in other orders.
constexpr double derivative_tolerance = 1e-10;  // loss, gradient, H·v, zᵀHz: relative
constexpr double power_tolerance = 0.01;        // the issue's: top eigenvalues within 1%
constexpr double lanczos_tolerance = 1e-8;      // the two Lanczos top eigenvalues, relative
constexpr double trace_standard_errors = 3;     // |Δtrace| within 3 combined standard errors

// The test's model, batch and shared vectors; soda's estimates; PyTorch's answer.
struct HessianParityRun {
  std::shared_ptr<soda::models::ResNetCifar<double>> model;
  std::unique_ptr<soda::hessian::HessianOperator<double>> op;
  Vector direction;            // the shared H·v direction, N(0, I)
  std::vector<Vector> probes;  // soda's first Hutchinson probes, drawn again here
  Vector hv;
  soda::hessian::EigenResult<double> power, lanczos;
  soda::hessian::TraceEstimate trace;
  double seconds_linearize = 0, seconds_hvp = 0, seconds_power = 0, seconds_lanczos = 0,
         seconds_trace = 0, script_seconds = 0;
  soda::TensorFile answer;  // loss, grad.<name>, hv.<name>
  nlohmann::json figures;   // PyTorch's estimates
  std::string failure;      // empty when the script ran and its output loaded
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ResNet-8 with BatchNorm's affine values and running statistics away from their defaults, so
// that every one the two sides load matters in eval mode.
std::shared_ptr<soda::models::ResNetCifar<double>> seeded_resnet8(soda::Generator& gen) {
  soda::models::ResNetCifarOptions options;
  options.depth = depth;
  options.num_classes = classes;
  auto model = std::make_shared<soda::models::ResNetCifar<double>>(options, gen);
  for (const auto& [name, tensor] : model->state_dict()) {
    const bool batch_norm_vector = tensor.ndim() == 1 && name != "fc.bias";
    if (name.ends_with("running_mean") || (batch_norm_vector && name.ends_with(".bias"))) {
      soda::nn::normal_(tensor, gen, 0.0, 0.1);
    } else if (name.ends_with("running_var") || (batch_norm_vector && name.ends_with(".weight"))) {
      soda::nn::uniform_(tensor, gen, 0.5, 1.5);
    }
  }
  model->eval();
  return model;
}

// soda on one thread while it lives, as the script runs PyTorch: on a busy machine (ctest -j,
// builds beside it) OpenMP's spinning workers made soda's products 10 to 30 times slower, and one
// thread on each side keeps the timings in the messages comparable.
class OneThread {
 public:
  OneThread() : before_(soda::max_threads()) { soda::set_num_threads(1); }
  ~OneThread() { soda::set_num_threads(before_); }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int before_;
};

// Runs soda's estimators and the script; failures land in run.failure.
HessianParityRun run_both() {
  using Clock = std::chrono::steady_clock;
  const OneThread one_thread;
  HessianParityRun run;
  soda::Generator gen(2025);
  run.model = seeded_resnet8(gen);
  const auto images = soda::randn<double>({batch_size, 3, image_size, image_size}, gen);
  const auto labels = soda::randint<std::int64_t>({batch_size}, gen, 0, classes);

  auto start = Clock::now();
  run.op = std::make_unique<soda::hessian::HessianOperator<double>>(
      run.model, std::vector<soda::hessian::LabeledBatch<double>>{{images, labels}});
  run.seconds_linearize = seconds_since(start);
  const auto& shapes = run.op->shapes();
  run.direction = soda::hessian::gaussian_vector<double>(shapes, gen);
  // hutchinson_trace draws its probes in order from Generator(seed), one Rademacher tensor per
  // parameter: the same draws here give its first probes.
  soda::Generator probe_gen(trace_options.seed);
  for (std::int64_t i = 0; i < shared_probes; ++i) {
    run.probes.push_back(soda::hessian::rademacher_vector<double>(shapes, probe_gen));
  }

  start = Clock::now();
  run.hv = run.op->apply(run.direction);
  run.seconds_hvp = seconds_since(start);
  start = Clock::now();
  run.power = soda::hessian::top_eigenvalues(*run.op, 1, power_options);
  run.seconds_power = seconds_since(start);
  start = Clock::now();
  run.lanczos = soda::hessian::top_eigenvalues_lanczos(*run.op, 1, lanczos_options);
  run.seconds_lanczos = seconds_since(start);
  start = Clock::now();
  run.trace = soda::hessian::hutchinson_trace(*run.op, trace_options);
  run.seconds_trace = seconds_since(start);

  const soda_parity::TempFolder folder;
  const fs::path input = folder.path() / "input.safetensors",
                 output = folder.path() / "output.safetensors",
                 json = folder.path() / "output.json", log = folder.path() / "log.txt";
  run.failure = soda_parity::python_torch_problem(log);
  if (!run.failure.empty()) return run;
  const fs::path script = soda_parity::parity_script(script_name);
  run.failure = soda_parity::missing_script_problem(script, script_name);
  if (!run.failure.empty()) return run;

  auto file = soda::state_dict_file(*run.model, "model.");
  file.tensors.emplace_back("images", images);
  file.tensors.emplace_back("labels", labels);
  const auto& names = run.op->parameter_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    file.tensors.emplace_back("v." + names[i], run.direction[i]);
    for (std::size_t p = 0; p < run.probes.size(); ++p) {
      file.tensors.emplace_back("probe." + std::to_string(p) + "." + names[i], run.probes[p][i]);
    }
  }
  soda::save_safetensors(input, file);

  const auto number = [](double x) {
    std::ostringstream out;
    out << x;
    return out.str();
  };
  run.failure = soda_parity::run_parity_script(
      script,
      {input.string(), output.string(), json.string(), "--depth=" + std::to_string(depth),
       "--max-iterations=" + std::to_string(power_options.max_iterations),
       "--tolerance=" + number(power_options.tolerance),
       "--trace-samples=" + std::to_string(trace_options.max_samples),
       "--trace-tolerance=" + number(trace_options.tolerance)},
      log, run.script_seconds);
  if (!run.failure.empty()) return run;
  try {
    run.answer = soda::load_safetensors(output);
    run.figures = nlohmann::json::parse(soda_parity::read_text(json));
  } catch (const soda::Error& e) {
    run.failure = std::string(script_name) + " wrote an unreadable answer: " + e.what();
  } catch (const nlohmann::json::exception& e) {
    run.failure = std::string(script_name) + " wrote unreadable JSON: " + e.what();
  }
  return run;
}

HessianParityRun& parity_run() {
  static HessianParityRun run = run_both();
  return run;
}

void require_answer(const HessianParityRun& run) {
  REQUIRE_MESSAGE(run.failure.empty(), run.failure);
}

double relative_difference(double actual, double reference) {
  return std::abs(actual - reference) / std::abs(reference);
}

// ‖ours − reference‖ / ‖reference‖ over all parameters, PyTorch's tensors read as
// <prefix><name> from the answer.
double vector_difference(const HessianParityRun& run, const std::string& prefix,
                         const Vector& ours) {
  const auto& names = run.op->parameter_names();
  double difference = 0, norm = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto reference = run.answer.get<double>(prefix + names[i]);
    REQUIRE_MESSAGE(reference.shape() == ours[i].shape(),
                    prefix << names[i] << ": PyTorch's shape " << soda::to_string(reference.shape())
                           << " differs from soda's " << soda::to_string(ours[i].shape()));
    const auto a = ours[i].to<double>();
    for (std::int64_t j = 0; j < a.numel(); ++j) {
      const double r = reference.data()[j];
      difference += (a.data()[j] - r) * (a.data()[j] - r);
      norm += r * r;
    }
  }
  return std::sqrt(difference / norm);
}

void check_loss_gradient_and_hvp() {
  const HessianParityRun& run = parity_run();
  require_answer(run);
  MESSAGE(std::string(script_name)
          << " ran in " << run.script_seconds << " s; soda: linearization " << run.seconds_linearize
          << " s, one H·v " << run.seconds_hvp
          << " s (PyTorch: " << run.figures["seconds"]["linearize"].get<double>() << " s and "
          << run.figures["seconds"]["hvp"].get<double>() << " s)");
  CHECK(run.figures["parameters"].get<std::int64_t>() == run.op->parameter_count());
  // The operator counts every product the estimators asked for, and they count their own.
  CHECK(run.op->products() ==
        1 + run.power.hvp_count + run.lanczos.hvp_count + run.trace.hvp_count);

  const double loss = run.answer.get<double>("loss").item();
  const double loss_error = relative_difference(run.op->loss(), loss);
  CHECK(loss_error <= derivative_tolerance);
  const double gradient_error = vector_difference(run, "grad.", run.op->gradient());
  CHECK(gradient_error <= derivative_tolerance);
  const double hv_error = vector_difference(run, "hv.", run.hv);
  CHECK(hv_error <= derivative_tolerance);
  MESSAGE("relative differences: loss " << loss_error << ", gradient " << gradient_error << ", H·v "
                                        << hv_error << " (" << run.op->parameter_count()
                                        << " parameters)");
}

void check_top_eigenvalue() {
  const HessianParityRun& run = parity_run();
  require_answer(run);
  const auto& torch_power = run.figures["top_eigenvalue"];
  const auto& torch_lanczos = run.figures["lanczos_top_eigenvalue"];
  const double pytorch = torch_power["eigenvalue"].get<double>();
  const double reference = torch_lanczos["eigenvalue"].get<double>();
  REQUIRE(run.power.eigenvalues.size() == 1);
  REQUIRE(run.lanczos.eigenvalues.size() == 1);
  const double ours = run.power.eigenvalues.front();

  CHECK(run.power.converged);
  const double power_difference = relative_difference(ours, pytorch);
  CHECK(power_difference <= power_tolerance);
  MESSAGE("power iteration (tolerance "
          << power_options.tolerance << "): soda " << ours << " in " << run.power.hvp_count
          << " H·v, " << run.seconds_power << " s; PyTorch " << pytorch << " in "
          << torch_power["hvp_count"].get<std::int64_t>() << " H·v, "
          << run.figures["seconds"]["top_eigenvalue"].get<double>() << " s: relative difference "
          << power_difference);
  MESSAGE("against the Lanczos reference "
          << reference << ": soda's power iteration off by " << relative_difference(ours, reference)
          << ", PyHessian's by " << relative_difference(pytorch, reference));

  CHECK(run.lanczos.converged);
  const double lanczos_difference = relative_difference(run.lanczos.eigenvalues.front(), reference);
  CHECK(lanczos_difference <= lanczos_tolerance);
  MESSAGE("Lanczos: soda " << run.lanczos.eigenvalues.front() << " in " << run.lanczos.hvp_count
                           << " H·v (residual " << run.lanczos.residual_norms.front() << ", "
                           << run.seconds_lanczos << " s); PyTorch " << reference << " in "
                           << torch_lanczos["hvp_count"].get<std::int64_t>() << " H·v (residual "
                           << torch_lanczos["residual_norm"].get<double>() << ", "
                           << run.figures["seconds"]["lanczos_top_eigenvalue"].get<double>()
                           << " s): relative difference " << lanczos_difference);
}

void check_trace() {
  const HessianParityRun& run = parity_run();
  require_answer(run);
  const auto& torch_trace = run.figures["trace"];
  const double pytorch = torch_trace["trace"].get<double>();
  const double pytorch_error = torch_trace["standard_error"].get<double>();

  // The shared probes first: soda's samples are zᵀHz for the very vectors PyTorch got.
  REQUIRE(static_cast<std::int64_t>(run.trace.samples.size()) >= shared_probes);
  double worst = 0;
  for (std::int64_t p = 0; p < shared_probes; ++p) {
    const double reference = run.figures["probe_quadratic_forms"][std::to_string(p)].get<double>();
    const double difference =
        relative_difference(run.trace.samples[static_cast<std::size_t>(p)], reference);
    CHECK_MESSAGE(difference <= derivative_tolerance,
                  "probe " << p << ": soda's sample "
                           << run.trace.samples[static_cast<std::size_t>(p)] << ", PyTorch's zᵀHz "
                           << reference);
    worst = std::max(worst, difference);
  }
  MESSAGE("soda's first " << shared_probes << " Hutchinson samples against PyTorch's zᵀHz for "
                          << "the same probes: largest relative difference " << worst);

  const double combined = std::sqrt(run.trace.standard_error * run.trace.standard_error +
                                    pytorch_error * pytorch_error);
  const double difference = std::abs(run.trace.trace - pytorch);
  CHECK(std::isfinite(combined));
  CHECK(difference <= trace_standard_errors * combined);
  MESSAGE("trace: soda " << run.trace.trace << " ± " << run.trace.standard_error << " ("
                         << run.trace.samples.size() << " samples, " << run.trace.hvp_count
                         << " H·v, " << run.seconds_trace << " s); PyTorch " << pytorch << " ± "
                         << pytorch_error << " (" << torch_trace["samples_used"].get<std::int64_t>()
                         << " samples, " << torch_trace["hvp_count"].get<std::int64_t>() << " H·v, "
                         << run.figures["seconds"]["trace"].get<double>() << " s): difference "
                         << difference / combined << " combined standard errors");
}

}  // namespace hessian_parity
}  // namespace

TEST_SUITE("parity/hessian") {
  TEST_CASE("ResNet-8 in float64: loss, gradient and H·v match PyTorch's double backward") {
    hessian_parity::check_loss_gradient_and_hvp();
  }

  TEST_CASE(
      "ResNet-8's top eigenvalue: power iteration within 1% of PyHessian's, Lanczos to 1e-8") {
    hessian_parity::check_top_eigenvalue();
  }

  TEST_CASE("ResNet-8's Hutchinson trace agrees with PyHessian's within its error bars") {
    hessian_parity::check_trace();
  }
}
