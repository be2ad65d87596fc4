// soda's demo: value, gradient and Hessian-vector products of a small tanh MLP with softmax
// cross-entropy on a seeded synthetic batch (no download). Shows the one-pass value_grad_hvp,
// checks H·v against finite differences of the gradient, and runs power iteration on a kept
// linearization (hessian_at) to find the top Hessian eigenvalue. Prints timings; --json writes
// the figures for scripts.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <iostream>
#include <soda/soda.hpp>

#include "common/cli_checks.hpp"
#include "common/guarded_main.hpp"

namespace {

using Vector = std::vector<soda::Tensor<double>>;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double dot(const Vector& a, const Vector& b) {
  double total = 0;
  for (std::size_t i = 0; i < a.size(); ++i) total += soda::sum(a[i] * b[i]).item();
  return total;
}

Vector axpy(double alpha, const Vector& x, const Vector& y) {
  Vector out;
  for (std::size_t i = 0; i < x.size(); ++i) out.push_back(x[i] * alpha + y[i]);
  return out;
}

Vector scaled(const Vector& x, double alpha) {
  Vector out;
  for (const auto& t : x) out.push_back(t * alpha);
  return out;
}

int run(int argc, char** argv) {
  CLI::App app{"soda demo: value, gradient and exact Hessian-vector products of a tanh MLP"};
  std::int64_t batch = 128, inputs = 64, hidden = 128, classes = 10;
  std::uint64_t seed = 0;
  int power_iterations = 20, threads = 0;
  std::string json_path;
  using namespace examples;
  app.add_option("--batch", batch, "batch size")->check(whole_number_in(1));
  app.add_option("--inputs", inputs, "input features")->check(whole_number_in(1));
  app.add_option("--hidden", hidden, "hidden width")->check(whole_number_in(1));
  app.add_option("--classes", classes, "classes")->check(whole_number_in(2, 1000));
  app.add_option("--seed", seed, "seed for data, weights and probe vectors")->check(seed_number());
  app.add_option("--power-iterations", power_iterations, "power iterations for the top eigenvalue")
      ->check(whole_number_in(1, 1000000));
  app.add_option("--threads", threads, "OpenMP threads (0: all)")->check(thread_count());
  app.add_option("--json", json_path, "write the figures as JSON to this file")
      ->check(output_file());
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) soda::set_num_threads(threads);

  // Synthetic classification data: class-dependent means plus noise, all from the seed.
  soda::Generator gen(seed);
  const auto centers = soda::randn<double>({classes, inputs}, gen);
  const auto labels = soda::randint<std::int64_t>({batch, 1}, gen, 0, classes);
  std::vector<std::int64_t> label_list(labels.data(), labels.data() + batch);
  const auto x = soda::index_select(centers, 0, label_list) +
                 soda::randn<double>({batch, inputs}, gen, 0.0, 0.5);
  Vector params;
  for (const auto& [in, out] :
       {std::pair{inputs, hidden}, std::pair{hidden, hidden}, std::pair{hidden, classes}}) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    params.push_back(soda::rand<double>({in, out}, gen, -bound, bound));
    params.push_back(soda::rand<double>({out}, gen, -bound, bound));
  }
  auto loss = [&](const Vector& p) {
    auto h = soda::tanh(soda::matmul(x, p[0]) + p[1]);
    h = soda::tanh(soda::matmul(h, p[2]) + p[3]);
    const auto logits = soda::matmul(h, p[4]) + p[5];
    return -soda::mean(soda::gather(soda::log_softmax(logits, -1), 1, labels));
  };
  std::int64_t parameter_count = 0;
  for (const auto& p : params) parameter_count += p.numel();
  std::cout << "tanh MLP " << inputs << "-" << hidden << "-" << hidden << "-" << classes
            << ", batch " << batch << ", " << parameter_count << " parameters, float64, "
            << soda::max_threads() << " threads\n";

  Vector v;
  for (const auto& p : params) v.push_back(soda::randn<double>(p.shape(), gen));

  soda::value_grad_hvp(loss, params, v);  // warm-up: thread pool and buffer cache
  auto start = std::chrono::steady_clock::now();
  const auto [value, grads] = soda::value_and_grad(loss, params);
  const double grad_seconds = seconds_since(start);
  start = std::chrono::steady_clock::now();
  const auto [value2, grads2, hv] = soda::value_grad_hvp(loss, params, v);
  const double hvp_seconds = seconds_since(start);
  std::cout << "loss " << value.item() << ", |gradient| " << std::sqrt(dot(grads, grads)) << "\n"
            << "value+gradient " << grad_seconds * 1e3 << " ms, value+gradient+HVP (one pass) "
            << hvp_seconds * 1e3 << " ms\n";

  // H·v against central differences of the gradient along v.
  const double h = 1e-5;
  const auto g_plus = soda::grad(loss, axpy(h, v, params));
  const auto g_minus = soda::grad(loss, axpy(-h, v, params));
  const auto finite_difference = scaled(axpy(-1.0, g_minus, g_plus), 1.0 / (2 * h));
  const auto error = axpy(-1.0, finite_difference, hv);
  const double relative_error = std::sqrt(dot(error, error) / dot(hv, hv));
  std::cout << "|H·v − finite difference| / |H·v| = " << relative_error << "\n";

  // Power iteration on a kept linearization: each step is a tangent pass only.
  start = std::chrono::steady_clock::now();
  const auto hessian = soda::hessian_at(loss, params);
  const double linearize_seconds = seconds_since(start);
  auto q = scaled(v, 1.0 / std::sqrt(dot(v, v)));
  double eigenvalue = 0;
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < power_iterations; ++i) {
    const auto hq = hessian.apply(q);
    eigenvalue = dot(q, hq);
    q = scaled(hq, 1.0 / std::sqrt(dot(hq, hq)));
  }
  const double apply_seconds = seconds_since(start) / power_iterations;
  std::cout << "top Hessian eigenvalue ≈ " << eigenvalue << " after " << power_iterations
            << " power iterations\n"
            << "hessian_at " << linearize_seconds * 1e3 << " ms, then H.apply(v) "
            << apply_seconds * 1e3
            << " ms each (HVP / gradient time = " << hvp_seconds / grad_seconds
            << ", apply / gradient = " << apply_seconds / grad_seconds << ")\n";

  if (!json_path.empty()) {
    const nlohmann::json figures = {{"loss", value.item()},
                                    {"parameters", parameter_count},
                                    {"threads", soda::max_threads()},
                                    {"hvp_relative_error_vs_finite_difference", relative_error},
                                    {"top_eigenvalue", eigenvalue},
                                    {"seconds",
                                     {{"value_and_grad", grad_seconds},
                                      {"value_grad_hvp", hvp_seconds},
                                      {"hessian_at", linearize_seconds},
                                      {"apply", apply_seconds}}}};
    soda::write_file_atomically(json_path, figures.dump(2) + "\n");
    std::cout << "figures written to " << json_path << "\n";
  }
  return relative_error < 1e-6 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::guarded_main([&] { return run(argc, argv); });
}
