// soda/train/large_batch.hpp: each method's batch sizes and learning rates through a short run,
// the eigenvalue it acts on against an independent Lanczos estimate, micro-batch accumulation
// against one whole batch, and reproducibility by seed.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <cmath>
#include <memory>
#include <vector>

namespace {

using soda::train::BatchMethod;
using soda::train::LargeBatchOptions;
using soda::train::LargeBatchResult;

struct LargeBatchSetup {
  soda::ImageDataset train = soda::make_synthetic_images(192, 4, 1, 8, 8, 3);
  soda::ImageDataset test = soda::make_synthetic_images(64, 4, 1, 8, 8, 4);

  soda::DataLoaderOptions loader() const {
    soda::DataLoaderOptions options;
    options.seed = 9;
    options.mean = {0.5f};
    options.stddev = {0.25f};
    return options;
  }

  template <class T = float>
  LargeBatchResult run(LargeBatchOptions options,
                       std::shared_ptr<soda::nn::Module<T>>* trained = nullptr,
                       bool adahessian = false) const {
    soda::Generator gen(1);
    std::shared_ptr<soda::nn::Module<T>> model = soda::models::small_cnn<T>(1, 8, 8, 4, gen);
    std::unique_ptr<soda::optim::Optimizer<T>> optimizer;
    if (adahessian) {
      optimizer = std::make_unique<soda::optim::AdaHessian<T>>(
          model->parameters(), soda::optim::AdaHessianOptions{.lr = options.learning_rate});
    } else {
      optimizer = std::make_unique<soda::optim::SGD<T>>(
          model->parameters(),
          soda::optim::SgdOptions{.lr = options.learning_rate, .momentum = 0.9});
    }
    options.progress = nullptr;
    options.input_space = soda::train::InputSpace::normalized_pixels({0.5f}, {0.25f});
    auto result =
        soda::train::train_large_batch<T>(model, *optimizer, train, test, loader(), options);
    if (trained != nullptr) *trained = model;
    return result;
  }
};

std::vector<std::int64_t> batch_sizes_of(const LargeBatchResult& r) {
  std::vector<std::int64_t> out;
  for (const auto& e : r.epochs) out.push_back(e.batch_size);
  return out;
}

std::vector<std::int64_t> iterations_of(const LargeBatchResult& r) {
  std::vector<std::int64_t> out;
  for (const auto& e : r.epochs) out.push_back(e.iterations);
  return out;
}

}  // namespace

TEST_CASE("BL keeps its batch and decays the rate at the decay epochs") {
  const auto r = LargeBatchSetup{}.run({.method = BatchMethod::small_batch,
                                        .epochs = 3,
                                        .batch = 32,
                                        .learning_rate = 0.05,
                                        .decay_epochs = {2}});
  CHECK(r.method == "BL");
  CHECK(batch_sizes_of(r) == std::vector<std::int64_t>{32, 32, 32});
  CHECK(iterations_of(r) == std::vector<std::int64_t>{6, 12, 18});
  CHECK(r.epochs[1].learning_rate == doctest::Approx(0.05));
  CHECK(r.epochs[2].learning_rate == doctest::Approx(0.01));
  CHECK_FALSE(r.epochs[0].eigenvalue.has_value());
  CHECK(r.test_accuracy() > 0.25);  // better than chance on 4 classes
}

TEST_CASE("FB scales the rate by B / B0 after a linear warm-up from the base rate") {
  const auto r = LargeBatchSetup{}.run({.method = BatchMethod::fixed_large,
                                        .epochs = 2,
                                        .batch = 16,
                                        .large_batch = 64,
                                        .learning_rate = 0.01,
                                        .warmup_epochs = 1});
  CHECK(batch_sizes_of(r) == std::vector<std::int64_t>{64, 64});
  // Three steps per epoch: the warm-up's last is base + (4·base − base)·2/3 = 3·base.
  CHECK(r.epochs[0].learning_rate == doctest::Approx(0.03));
  CHECK(r.epochs[1].learning_rate == doctest::Approx(0.04));
  CHECK(r.iterations() == 6);
}

TEST_CASE("GG grows the batch by 1/decay at each decay epoch, and decays the rate at the cap") {
  const auto r = LargeBatchSetup{}.run({.method = BatchMethod::grow_on_decay,
                                        .epochs = 5,
                                        .batch = 16,
                                        .large_batch = 64,
                                        .learning_rate = 0.02,
                                        .decay_epochs = {1, 2, 3},
                                        .decay = 0.5});
  CHECK(batch_sizes_of(r) == std::vector<std::int64_t>{16, 32, 64, 64, 64});
  CHECK(r.epochs[2].learning_rate == doctest::Approx(0.02));
  CHECK(r.epochs[3].learning_rate == doctest::Approx(0.01));  // 128 > 64: the rate decays
  CHECK(r.epochs[0].growth == "decay");
  CHECK(r.epochs[2].growth == "");
  CHECK(iterations_of(r) == std::vector<std::int64_t>{12, 18, 21, 24, 27});
}

TEST_CASE("ABS grows on its rule, scales the rate, and stops estimating at the largest batch") {
  LargeBatchOptions options{.method = BatchMethod::adaptive,
                            .epochs = 4,
                            .batch = 16,
                            .large_batch = 64,
                            .learning_rate = 0.01,
                            .hessian_samples = 40};
  options.adaptive.duration = 1;  // grow after every epoch: a deterministic schedule to check
  const auto r = LargeBatchSetup{}.run(options);
  CHECK(batch_sizes_of(r) == std::vector<std::int64_t>{16, 32, 64, 64});
  CHECK(r.epochs[1].learning_rate == doctest::Approx(0.02));
  CHECK(r.epochs[3].learning_rate == doctest::Approx(0.04));
  CHECK(r.epochs[0].eigenvalue.has_value());
  CHECK(r.epochs[1].eigenvalue.has_value());
  CHECK_FALSE(r.epochs[2].eigenvalue.has_value());  // at 64 = the largest batch
  CHECK(r.epochs[0].hvp_count > 0);
  CHECK(r.epochs[0].hessian_seconds > 0);
  CHECK(r.hessian_share() > 0);
  CHECK(r.hessian_share() < 1);
}

TEST_CASE("the eigenvalue ABS acts on agrees with Lanczos on the same fixed sub-sample") {
  LargeBatchOptions options{.method = BatchMethod::small_batch,
                            .epochs = 2,
                            .batch = 32,
                            .learning_rate = 0.05,
                            .hessian_samples = 48,
                            .power_iterations = 100,
                            .power_tolerance = 1e-6,
                            .track_eigenvalue = true};
  std::shared_ptr<soda::nn::Module<double>> model;
  const LargeBatchSetup setup;
  const auto r = setup.run<double>(options, &model);
  REQUIRE(r.epochs[1].eigenvalue.has_value());
  const auto batches =
      soda::train::detail::hessian_subsample<double>(setup.train, setup.loader(), options);
  std::int64_t samples = 0;
  for (const auto& b : batches) samples += b.labels.numel();
  CHECK(samples == 48);
  soda::hessian::HessianOperator<double> op(model, batches);
  const auto lanczos = soda::hessian::top_eigenvalues_lanczos(op, 1, {.tolerance = 1e-8});
  // Power iteration ranks by magnitude and Lanczos is algebraically largest: equal here, where
  // the top eigenvalue is positive and dominant.
  CHECK(*r.epochs[1].eigenvalue == doctest::Approx(lanczos.eigenvalues[0]).epsilon(1e-4));
}

TEST_CASE("ABSA replaces a shrinking share of each batch, and none in the second half") {
  LargeBatchOptions options{.method = BatchMethod::adaptive_adversarial,
                            .epochs = 4,
                            .batch = 16,
                            .large_batch = 256,
                            .learning_rate = 0.01,
                            .hessian_samples = 32};
  options.adaptive.duration = 1;
  options.adaptive.adversarial_fraction = 0.2;
  const auto r = LargeBatchSetup{}.run(options);
  CHECK(r.method == "ABSA");
  CHECK(r.epochs[0].adversarial_fraction == doctest::Approx(0.2));
  CHECK(r.epochs[1].adversarial_fraction == doctest::Approx(0.1));
  CHECK(r.epochs[2].adversarial_fraction == 0.0);  // epochs 2 and 3: the second half
  CHECK(r.epochs[3].adversarial_fraction == 0.0);
  const auto again = LargeBatchSetup{}.run(options);  // the same seed: the same run
  for (std::size_t e = 0; e < r.epochs.size(); ++e) {
    CAPTURE(e);
    CHECK(again.epochs[e].train_loss == r.epochs[e].train_loss);
    CHECK(again.epochs[e].eigenvalue == r.epochs[e].eigenvalue);
    CHECK(again.epochs[e].test_accuracy == r.epochs[e].test_accuracy);
  }
}

TEST_CASE("micro-batches accumulate to the whole batch's step (a model without BatchNorm)") {
  for (const bool adahessian : {false, true}) {  // AdaHessian sums H·z over the parts too
    CAPTURE(adahessian);
    const LargeBatchOptions whole{.method = BatchMethod::small_batch,
                                  .epochs = 1,
                                  .batch = 48,
                                  .learning_rate = adahessian ? 0.01 : 0.05};
    auto split = whole;
    split.micro_batch = 20;  // 48 = 20 + 20 + 8: unequal parts, weighted by size
    std::shared_ptr<soda::nn::Module<double>> a, b;
    const LargeBatchSetup setup;
    const auto ra = setup.run<double>(whole, &a, adahessian);
    const auto rb = setup.run<double>(split, &b, adahessian);
    CHECK(ra.epochs[0].train_loss == doctest::Approx(rb.epochs[0].train_loss).epsilon(1e-12));
    const auto pa = a->parameters(), pb = b->parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) {
      for (std::int64_t j = 0; j < pa[i].numel(); ++j) {
        CHECK(pa[i].data()[j] == doctest::Approx(pb[i].data()[j]).epsilon(1e-10));
      }
    }
  }
}

TEST_CASE("bad large-batch options are refused") {
  CHECK_THROWS_AS(LargeBatchSetup{}.run({.batch = 64, .large_batch = 32}), soda::ValueError);
  CHECK_THROWS_AS(LargeBatchSetup{}.run({.micro_batch = 0}), soda::ValueError);
  CHECK_THROWS_AS(LargeBatchSetup{}.run({.learning_rate = 0}), soda::ValueError);
  CHECK_THROWS_AS(soda::train::parse_method("XL"), soda::ValueError);
  CHECK(soda::train::parse_method("ABSA") == BatchMethod::adaptive_adversarial);
}
