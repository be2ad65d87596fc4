// Learning on real data: a CIFAR ResNet trained for a few SGD or AdaHessian steps on a
// Fashion-MNIST subset (from Debian's dataset-fashion-mnist, which scripts/install_deps.sh
// installs) lowers its loss.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <filesystem>
#include <numeric>
#include <utility>

namespace {

// The train-mode cross-entropy on the subset's first 256 images before and after `steps` steps
// (batches of `batch_size`) of the optimizer make_optimizer(parameters) returns, on a ResNet of
// the given depth.
template <class MakeOptimizer>
std::pair<double, double> loss_before_and_after(int depth, std::int64_t batch_size, int steps,
                                                MakeOptimizer make_optimizer) {
  const auto root = soda::fashion_mnist_default_root();
  REQUIRE_MESSAGE(std::filesystem::exists(root), "Fashion-MNIST is missing under "
                                                     << root
                                                     << ": apt-get install dataset-fashion-mnist");
  const auto all = soda::load_fashion_mnist(true);
  std::vector<std::int64_t> first(256);
  std::iota(first.begin(), first.end(), std::int64_t{0});
  const auto data = soda::subset(all, first);

  soda::Generator gen(0);
  auto model = soda::models::resnet_cifar<float>(depth, gen, 1, 10);
  auto optimizer = make_optimizer(model->parameters());
  soda::DataLoaderOptions options;
  options.batch_size = batch_size;
  options.mean = {0.2860f};
  options.stddev = {0.3530f};
  options.prefetch = false;
  soda::DataLoader loader(data, options);

  soda::DataLoaderOptions whole = options;
  whole.batch_size = 256;
  whole.shuffle = false;
  soda::DataLoader fixed(data, whole);
  const double before = soda::train::evaluate(*model, fixed).loss;
  for (int step = 0; step < steps; ++step) {
    auto batch = loader.next();
    if (!batch) {
      loader.start_epoch(loader.epoch() + 1);
      batch = loader.next();
    }
    soda::train::train_step(*model, optimizer, batch->images, batch->labels);
  }
  // Evaluation uses running statistics, which 12 steps have only begun to settle; train mode
  // (batch statistics) shows what the weights learned.
  model->train();
  soda::NoGradGuard no_grad;
  fixed.start_epoch(0);
  const auto batch = fixed.next();
  REQUIRE(batch);
  const double after = soda::nn::cross_entropy((*model)(batch->images), batch->labels).item();
  MESSAGE("cross-entropy before " << before << ", after " << steps << " steps " << after);
  return {before, after};
}

}  // namespace

TEST_CASE("ResNet-20 lowers its Fashion-MNIST loss within a dozen SGD steps") {
  const auto [before, after] = loss_before_and_after(20, 64, 12, [](const auto& parameters) {
    return soda::optim::SGD<float>(parameters, {.lr = 0.1, .momentum = 0.9});
  });
  CHECK(after < 0.8 * before);
}

// ResNet-8 and batches of 32: an AdaHessian step costs three SGD steps, and this area also runs
// under the sanitizers.
TEST_CASE("ResNet-8 lowers its Fashion-MNIST loss within a dozen AdaHessian steps") {
  const auto [before, after] = loss_before_and_after(8, 32, 12, [](const auto& parameters) {
    return soda::optim::AdaHessian<float>(parameters, {.lr = 0.15, .weight_decay = 5e-4 / 0.15});
  });
  CHECK(after < 0.8 * before);
}
