#include <iostream>
#include <soda/soda.hpp>

int main() {
  soda::Generator gen(0);                             // seeded, counter-based
  const auto x = soda::randn<double>({64, 10}, gen);  // a batch of inputs
  const auto y = soda::randn<double>({64, 1}, gen);   // targets
  std::vector params{soda::randn<double>({10, 32}, gen), soda::zeros<double>({32}),
                     soda::randn<double>({32, 1}, gen)};
  auto loss = [&](const std::vector<soda::Tensor<double>>& p) {
    const auto h = soda::tanh(soda::matmul(x, p[0]) + p[1]);
    return soda::mean(soda::square(soda::matmul(h, p[2]) - y));
  };
  std::vector<soda::Tensor<double>> v;  // a direction, shaped like params
  for (const auto& p : params) v.push_back(soda::randn<double>(p.shape(), gen));

  auto [value, grads, hv] = soda::value_grad_hvp(loss, params, v);  // one pass: f, ∇f, H·v
  auto H = soda::hessian_at(loss, params);                          // linearize once...
  auto hv_again = H.apply(v);                                       // ...apply many times
  std::cout << value << "\n" << hv[2] << "\n";

  // Check H·v against central differences of the gradient: (∇f(p + εv) − ∇f(p − εv)) / 2ε.
  using soda::hessian::linear_combination, soda::hessian::norm;  // parameter-vector algebra
  const double eps = 1e-5;
  const auto fd =
      linear_combination(0.5 / eps, soda::grad(loss, linear_combination(1.0, params, eps, v)),
                         -0.5 / eps, soda::grad(loss, linear_combination(1.0, params, -eps, v)));
  const double error = norm(linear_combination(1.0, hv, -1.0, fd)) / norm(fd);
  std::cout << "relative error of H·v against finite differences: " << error << "\n";
  return error < 1e-6 ? 0 : 1;  // exit status 1: H·v is wrong
}
