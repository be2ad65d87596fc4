// soda/models/resnet_cifar.hpp: PyHessian's CIFAR ResNet — parameter counts, state-dict names,
// output shapes for CIFAR and MNIST-sized inputs, and exact gradients and HVPs through a small
// ResNet end to end (BatchNorm in training and evaluation mode, and the no-BN variant).
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "../autodiff/checks.hpp"

using namespace soda_test;

namespace {

bool has(const std::vector<std::string>& list, const std::string& name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

// A ResNet-8 of width 4 on 3×3×8×8 images: small enough for finite differences in double. The
// differences of the gradient use h = 1e-6: with thousands of parameters moved at once, a step of
// 1e-5 already pushes some ReLU input across zero in the no-BN network (a kink, not an error).
struct TinyResNet {
  std::shared_ptr<soda::models::ResNetCifar<double>> model;
  Tensor images;
  Index labels;

  explicit TinyResNet(bool batch_norm) {
    soda::Generator gen(11);
    soda::models::ResNetCifarOptions options;
    options.depth = 8;
    options.base_channels = 4;
    options.num_classes = 3;
    options.batch_norm = batch_norm;
    model = std::make_shared<soda::models::ResNetCifar<double>>(options, gen);
    images = soda::randn<double>({3, 3, 8, 8}, gen);
    labels = soda::randint<std::int64_t>({3}, gen, 0, 3);
  }

  auto loss() {
    return [this] { return soda::nn::cross_entropy((*model)(images), labels); };
  }

  // Gradient and H·v of the loss against central differences in place.
  void check_exact_derivatives(std::uint64_t seed) {
    const auto params = model->parameters();
    soda::Generator gen(seed);
    const auto v = random_like(params, gen);
    CHECK(closure_gradient_error(loss(), params) < 1e-6);
    CHECK(closure_hvp_error(loss(), params, v, 1e-6) < 1e-5);
  }
};

}  // namespace

TEST_CASE("CIFAR ResNets have PyHessian's parameter counts (checked against PyTorch)") {
  soda::Generator gen(0);
  // From torch.nn modules built as PyHessian's models/resnet.py (option-B shortcuts).
  const std::vector<std::pair<std::int64_t, std::int64_t>> expected{
      {20, 272474}, {32, 466906}, {44, 661338}, {56, 855770}};
  for (const auto& [depth, count] : expected) {
    CHECK(soda::models::resnet_cifar<float>(depth, gen)->parameter_count() == count);
  }
}

TEST_CASE("ResNet-20 uses PyTorch state-dict names") {
  soda::Generator gen(0);
  soda::models::ResNetCifarOptions options;
  const soda::models::ResNetCifar<double> model(options, gen);
  const auto all = names_of(model.state_dict());
  CHECK(all.front() == "conv1.weight");
  CHECK(all.back() == "fc.bias");
  for (const char* name :
       {"bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.2.bn2.bias",
        "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
        "layer3.2.conv2.weight", "fc.weight"}) {
    CHECK_MESSAGE(has(all, name), name);
  }
  CHECK(!has(all, "layer1.0.downsample.0.weight"));  // same shape: identity shortcut
  CHECK(model.type_name() == "ResNet-20");
}

TEST_CASE("logits for CIFAR-sized and MNIST-sized inputs") {
  soda::Generator gen(1);
  soda::NoGradGuard no_grad;
  const auto cifar = soda::models::resnet_cifar<float>(20, gen);
  CHECK((*cifar)(soda::randn<float>({2, 3, 32, 32}, gen)).shape() == soda::Shape{2, 10});
  const auto mnist = soda::models::resnet_cifar<float>(20, gen, 1, 10);
  CHECK((*mnist)(soda::randn<float>({2, 1, 28, 28}, gen)).shape() == soda::Shape{2, 10});
}

TEST_CASE("convolutions start He-normal with variance 2 / (k·k·out), BatchNorm at γ=1, β=0") {
  soda::Generator gen(2);
  const auto model = soda::models::resnet_cifar<double>(20, gen);
  for (const auto& [name, p] : model->named_parameters()) {
    if (name == "layer3.1.conv1.weight") {
      const double variance = soda::mean(soda::square(p)).item();
      CHECK(variance == doctest::Approx(2.0 / (9 * 64)).epsilon(0.05));
    }
    if (name == "layer2.0.bn1.weight") CHECK(soda::sum(p).item() == 32.0);
    if (name == "layer2.0.bn1.bias") CHECK(soda::sum(soda::abs(p)).item() == 0.0);
  }
}

TEST_CASE("bad depths and options are refused") {
  soda::Generator gen(0);
  CHECK_THROWS_WITH_AS(
      soda::models::resnet_cifar<float>(21, gen),
      "ResNetCifar: depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110), got 21",
      soda::ValueError);
  const auto model = soda::models::resnet_cifar<float>(20, gen);
  CHECK_THROWS_AS((*model)(soda::zeros<float>({2, 1, 32, 32})), soda::ShapeError);
}

TEST_CASE("a tiny ResNet in training mode has exact gradients and HVPs end to end") {
  TinyResNet net(true);
  net.check_exact_derivatives(5);
}

TEST_CASE("a tiny ResNet in evaluation mode has exact gradients and HVPs") {
  TinyResNet net(true);
  {  // give the running statistics values other than 0 and 1
    soda::NoGradGuard no_grad;
    (*net.model)(net.images);
  }
  net.model->eval();
  net.check_exact_derivatives(6);
}

TEST_CASE("the no-BN ResNet has exact gradients and HVPs and no BatchNorm entries") {
  TinyResNet net(false);
  for (const auto& name : names_of(net.model->state_dict()))
    CHECK(name.find("bn") == std::string::npos);
  net.check_exact_derivatives(7);
}

TEST_CASE("the HVP of a tiny ResNet is symmetric: <u, Hv> = <v, Hu>") {
  TinyResNet net(true);
  const auto params = net.model->parameters();
  soda::Generator gen(8);
  const auto u = random_like(params, gen), v = random_like(params, gen);
  const auto hu = soda::hvp(net.loss(), params, u), hv = soda::hvp(net.loss(), params, v);
  double uhv = 0, vhu = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    uhv += soda::sum(u[i] * hv[i]).item();
    vhu += soda::sum(v[i] * hu[i]).item();
  }
  CHECK(uhv == doctest::Approx(vhu).epsilon(1e-10));
}
