#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <memory>
#include <stdexcept>

TEST_CASE("ModeGuard switches the mode for a scope and restores mode and running statistics") {
  soda::Generator gen(3);
  auto bn = std::make_shared<soda::nn::BatchNorm2d<double>>(2);
  const auto x = soda::randn<double>({4, 2, 3, 3}, gen, 1.0, 2.0);
  bn->eval();
  const auto mean_before = bn->running_mean().template to<double>();
  const auto count_before = bn->num_batches_tracked().item();
  try {
    const soda::nn::ModeGuard<double> guard(*bn, true);
    CHECK(bn->is_training());
    (void)(*bn)(x);  // a train-mode pass moves the running statistics...
    CHECK(bn->running_mean().data()[0] != mean_before.data()[0]);
    throw std::runtime_error("leaving the scope by an exception");
  } catch (const std::runtime_error&) {
  }
  CHECK_FALSE(bn->is_training());  // ...and the guard puts everything back
  CHECK(bn->running_mean().data()[0] == mean_before.data()[0]);
  CHECK(bn->running_mean().data()[1] == mean_before.data()[1]);
  CHECK(bn->num_batches_tracked().item() == count_before);
  {
    const soda::nn::ModeGuard<double> guard(*bn, false);
    CHECK_FALSE(bn->is_training());
  }
  bn->train();
  { const soda::nn::ModeGuard<double> guard(*bn, false); }
  CHECK(bn->is_training());
}
