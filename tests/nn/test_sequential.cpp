// Sequential (nn/sequential.hpp): children named "0", "1", ... so parameters carry PyTorch's
// state-dict names, applied in order, indexed like a Python list, switched to eval as a whole, and
// differentiated exactly through the chain.
#include <doctest/doctest.h>
#include <soda/nn/activation.hpp>
#include <soda/nn/dropout.hpp>
#include <soda/nn/flatten.hpp>
#include <soda/nn/sequential.hpp>
#include <soda/soda.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../autodiff/checks.hpp"

using namespace soda_test;

namespace {

// x·weight + bias with a buffer, standing in for Linear so this test depends on nothing else.
class Affine : public soda::nn::Module<double> {
 public:
  Affine(std::int64_t in, std::int64_t out, std::uint64_t seed) {
    soda::Generator gen(seed);
    weight = register_parameter("weight", soda::randn<double>({in, out}, gen, 0.0, 0.5));
    bias = register_parameter("bias", soda::randn<double>({out}, gen, 0.0, 0.5));
    calls = register_buffer("calls", soda::zeros<double>({1}));
  }
  soda::Tensor<double> forward(const soda::Tensor<double>& x) override {
    return soda::matmul(x, weight) + bias;
  }
  std::string type_name() const override { return "Affine"; }

  soda::Tensor<double> weight, bias, calls;
};

// Appends its tag to a shared log, to observe the order in which children run.
class Tagger : public soda::nn::Module<double> {
 public:
  Tagger(std::string tag, std::shared_ptr<std::string> log) : tag_(std::move(tag)), log_(log) {}
  soda::Tensor<double> forward(const soda::Tensor<double>& x) override {
    *log_ += tag_;
    return x;
  }
  std::string type_name() const override { return "Tagger"; }

 private:
  std::string tag_;
  std::shared_ptr<std::string> log_;
};
using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("Sequential names its children 0, 1, ... and their tensors as PyTorch's state dict") {
  soda::nn::Sequential<double> net{std::make_shared<Affine>(3, 4, 1),
                                   std::make_shared<soda::nn::Tanh<double>>(),
                                   std::make_shared<Affine>(4, 2, 2)};
  CHECK(net.size() == 3);
  CHECK(net.type_name() == "Sequential");
  CHECK(names_of(net.named_parameters()) == Strings{"0.weight", "0.bias", "2.weight", "2.bias"});
  CHECK(names_of(net.named_buffers()) == Strings{"0.calls", "2.calls"});
  CHECK(names_of(net.state_dict()) ==
        Strings{"0.weight", "0.bias", "0.calls", "2.weight", "2.bias", "2.calls"});
  CHECK(net.parameter_count() == 3 * 4 + 4 + 4 * 2 + 2);
  Strings child_names;
  for (const auto& [name, child] : net.children()) child_names.push_back(name);
  CHECK(child_names == Strings{"0", "1", "2"});
}

TEST_CASE("nested Sequentials join names with dots, as torch.nn.Sequential") {
  auto block = std::make_shared<soda::nn::Sequential<double>>(
      std::make_shared<Affine>(2, 2, 3), std::make_shared<soda::nn::ReLU<double>>());
  soda::nn::Sequential<double> net;
  net.push_back(std::make_shared<Affine>(2, 2, 4));
  net.push_back(block);
  CHECK(names_of(net.named_parameters()) ==
        Strings{"0.weight", "0.bias", "1.0.weight", "1.0.bias"});
}

TEST_CASE("Sequential applies its children in order, and an empty one is the identity") {
  auto log = std::make_shared<std::string>();
  soda::nn::Sequential<double> net;
  for (const char* tag : {"a", "b", "c"}) net.push_back(std::make_shared<Tagger>(tag, log));
  (void)net(soda::zeros<double>({1}));
  CHECK(*log == "abc");

  // Non-commuting children: ReLU after the affine map, not before.
  auto affine = std::make_shared<Affine>(3, 2, 5);
  soda::nn::Sequential<double> affine_then_relu{affine, std::make_shared<soda::nn::ReLU<double>>()};
  const auto x = normal({5, 3}, 6);
  const auto expected = soda::relu(soda::matmul(x, affine->weight) + affine->bias);
  CHECK(soda::max_abs_difference(affine_then_relu(x), expected) == 0);

  soda::nn::Sequential<double> empty;
  CHECK(empty.size() == 0);
  CHECK(soda::max_abs_difference(empty(x), x) == 0);
}

TEST_CASE("Sequential indexes like a Python list and push_back returns the typed module") {
  soda::nn::Sequential<double> net;
  const auto first = net.push_back(std::make_shared<Affine>(2, 3, 7));
  const std::shared_ptr<Affine> typed = first;  // push_back keeps the concrete type
  net.push_back(std::make_shared<soda::nn::Flatten<double>>());
  CHECK(net[0] == first);
  CHECK(net[-2] == first);
  CHECK(net[1]->type_name() == "Flatten");
  CHECK(net[-1]->type_name() == "Flatten");
  CHECK(std::dynamic_pointer_cast<Affine>(net[0])->weight.shape() == soda::Shape{2, 3});
}

TEST_CASE("train() and eval() on a Sequential reach every child") {
  auto dropout = std::make_shared<soda::nn::Dropout<double>>(0.5, 1);
  auto inner = std::make_shared<soda::nn::Sequential<double>>(dropout);
  soda::nn::Sequential<double> net{std::make_shared<soda::nn::Tanh<double>>(), inner};
  net.eval();
  CHECK_FALSE(dropout->is_training());
  CHECK_FALSE(inner->is_training());
  const auto x = normal({4, 4}, 8);
  CHECK(soda::max_abs_difference(net(x), soda::tanh(x)) == 0);
  net.train();
  CHECK(dropout->is_training());
}

TEST_CASE("gradients and Hessian-vector products through a Sequential match central differences") {
  // The closure form reads the parameters by handle, so the differences perturb them in place.
  soda::nn::Sequential<double> net{std::make_shared<Affine>(3, 5, 9),
                                   std::make_shared<soda::nn::Tanh<double>>(),
                                   std::make_shared<Affine>(5, 2, 10)};
  const auto x = normal({4, 3}, 11);
  auto loss = [&] { return soda::sum(soda::square(net(x))); };
  const auto params = net.parameters();
  soda::Generator gen(12);
  const auto v = random_like(params, gen);
  const auto [value, gradient, hessian_v] = soda::value_grad_hvp(loss, params, v);

  const double h = 1e-6;
  auto shift_all = [&](double step) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      for (std::int64_t j = 0; j < params[i].numel(); ++j)
        params[i].data()[j] += step * v[i].data()[j];
    }
  };
  Params numerical_gradient;
  for (const auto& p : params) {
    auto g = soda::zeros<double>(p.shape());
    for (std::int64_t j = 0; j < p.numel(); ++j) {
      soda::NoGradGuard no_grad;
      const double saved = p.data()[j];
      p.data()[j] = saved + h;
      const double plus = loss().item();
      p.data()[j] = saved - h;
      const double minus = loss().item();
      p.data()[j] = saved;
      g.data()[j] = (plus - minus) / (2 * h);
    }
    numerical_gradient.push_back(g);
  }
  CHECK(relative_error(numerical_gradient, gradient) < 1e-7);

  const double step = 1e-5;
  shift_all(step);
  const auto gradient_plus = soda::grad(loss, params);
  shift_all(-2 * step);
  const auto gradient_minus = soda::grad(loss, params);
  shift_all(step);
  Params numerical_hvp;
  for (std::size_t i = 0; i < params.size(); ++i)
    numerical_hvp.push_back(copy_of((gradient_plus[i] - gradient_minus[i]) / (2 * step)));
  CHECK(relative_error(numerical_hvp, hessian_v) < 1e-6);
}

TEST_CASE("Sequential rejects null modules and indices out of range") {
  soda::nn::Sequential<double> net{std::make_shared<soda::nn::ReLU<double>>()};
  auto message = message_of<soda::ValueError>(
      [&] { net.push_back(std::shared_ptr<soda::nn::Tanh<double>>()); });
  CHECK(contains(message, "Sequential: push_back got a null module at position 1"));
  CHECK(net.size() == 1);
  message = message_of<soda::ValueError>([] {
    soda::nn::Sequential<double> bad{std::make_shared<soda::nn::ReLU<double>>(), nullptr};
  });
  CHECK(contains(message, "at position 1"));
  for (const std::int64_t index : {1, -2, 100}) {
    INFO("index " << index);
    message = message_of<soda::IndexError>([&] { (void)net[index]; });
    CHECK(contains(message, "Sequential: index " + std::to_string(index) +
                                " is out of range for a Sequential of 1 modules"));
  }
}
