#include <iostream>
#include <soda/soda.hpp>

int main() {
  soda::Generator gen(0);
  auto model = soda::models::mlp<float>(8 * 8, {32}, 10, gen);  // or a trained ResNet (above)
  const auto data = soda::make_synthetic_images(256, 10, 1, 8, 8, /*seed=*/1);  // no download
  soda::DataLoader loader(data, {.batch_size = 128, .shuffle = false});

  auto batches = soda::hessian::collect_batches<float>(loader, /*max_batches=*/1);
  const soda::hessian::HessianOperator<float> H(model, batches);  // eval-mode BN; all parameters
  auto top = soda::hessian::top_eigenvalues(H, 3);                // PyHessian's power iteration
  auto fast = soda::hessian::top_eigenvalues_lanczos(H, 3);       // largest 3, fewer HVPs
  auto trace = soda::hessian::hutchinson_trace(H);                // trace ± standard error
  auto esd = soda::hessian::spectral_density(H);                  // Ritz values, weights, grid
  auto layers = soda::hessian::layer_report(H);                   // per-layer λ_max and trace
  std::cout << "top eigenvalues " << top.to_json()["eigenvalues"] << " in " << top.hvp_count
            << " HVPs; Lanczos " << fast.to_json()["eigenvalues"] << " in " << fast.hvp_count
            << "\ntrace " << trace.trace << " ± " << trace.standard_error << "; density from "
            << esd.ritz_values.front().size() << " Ritz values\n";
  for (const auto& layer : layers.layers) {
    std::cout << "layer " << layer.name << ": λ_max " << layer.top_eigenvalue << ", trace "
              << layer.trace << "\n";
  }
}
