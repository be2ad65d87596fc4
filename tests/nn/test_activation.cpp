// Activation modules (nn/activation.hpp): ReLU, Tanh and Sigmoid compute their functions (checked
// against std:: formulas), carry exact derivatives, hold no parameters and ignore train/eval.
#include <doctest/doctest.h>
#include <soda/nn/activation.hpp>
#include <soda/soda.hpp>

#include <cmath>
#include <memory>

#include "../autodiff/checks.hpp"

using namespace soda_test;

namespace {

// Applies `module` and compares every element with `expected(x)` from the standard library.
template <class Module, class Formula>
void check_values(Module& module, const Tensor& x, Formula expected) {
  const auto y = module(x);
  REQUIRE(y.shape() == x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    CHECK(y.data()[i] == doctest::Approx(expected(x.data()[i])).epsilon(1e-14));
  }
}

}  // namespace

TEST_CASE("ReLU, Tanh and Sigmoid compute max(0, x), tanh x and 1 / (1 + exp(−x))") {
  const auto x = normal({3, 5}, 1) * 3.0;
  soda::nn::ReLU<double> relu;
  soda::nn::Tanh<double> tanh;
  soda::nn::Sigmoid<double> sigmoid;
  check_values(relu, x, [](double v) { return std::max(0.0, v); });
  check_values(tanh, x, [](double v) { return std::tanh(v); });
  check_values(sigmoid, x, [](double v) { return 1 / (1 + std::exp(-v)); });
}

TEST_CASE("activation modules have exact first and second derivatives") {
  soda::Generator gen(2);
  const Params away_from_kink{randn_avoiding({4, 3}, gen, {0.0})};
  soda::nn::ReLU<double> relu;
  soda::nn::Tanh<double> tanh;
  soda::nn::Sigmoid<double> sigmoid;
  SODA_CHECK_OP([&](const Params& q) { return relu(q[0]); }, away_from_kink);
  SODA_CHECK_OP([&](const Params& q) { return tanh(q[0]); }, {normal({4, 3}, 3)});
  SODA_CHECK_OP([&](const Params& q) { return sigmoid(q[0]); }, {normal({4, 3}, 4)});
}

TEST_CASE("activation modules hold no parameters, name their type and ignore eval mode") {
  const std::vector<std::pair<std::shared_ptr<soda::nn::Module<float>>, std::string>> modules{
      {std::make_shared<soda::nn::ReLU<>>(), "ReLU"},
      {std::make_shared<soda::nn::Tanh<>>(), "Tanh"},
      {std::make_shared<soda::nn::Sigmoid<>>(), "Sigmoid"}};
  soda::Generator gen(5);
  const auto x = soda::randn<float>({2, 6}, gen);
  for (const auto& [module, name] : modules) {
    INFO(name);
    CHECK(module->type_name() == name);
    CHECK(module->state_dict().empty());
    CHECK(module->parameter_count() == 0);
    const auto in_training = copy_of((*module)(x));
    module->eval();
    CHECK(soda::max_abs_difference(in_training, (*module)(x)) == 0);
  }
}
