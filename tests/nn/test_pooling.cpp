// Pooling modules (nn/pooling.hpp): MaxPool2d, AvgPool2d and AdaptiveAvgPool2d give PyTorch's
// shapes and values on [N, C, H, W] and [C, H, W], pass exact derivatives, and reject bad windows,
// ranks and output sizes.
#include <doctest/doctest.h>
#include <soda/nn/pooling.hpp>
#include <soda/soda.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../autodiff/checks.hpp"

using namespace soda_test;

namespace {

using ModulePtr = std::shared_ptr<soda::nn::Module<double>>;
// The 4x4 plane PyTorch pooled below: ((arange(16) * 7) % 11 − 5).reshape(1, 1, 4, 4).
Tensor example_plane() {
  return Tensor({1, 1, 4, 4}, {-5, 2, -2, 5, 1, -3, 4, 0, -4, 3, -1, -5, 2, -2, 5, 1});
}

void check_values(const std::vector<double>& expected, const Tensor& actual) {
  const auto got = values_of(actual);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-15));
  }
}

}  // namespace

TEST_CASE("pooling modules give torch.nn's output shapes, batched and unbatched") {
  // torch.nn.<Module>(...)(torch.zeros(2, 3, 8, 6)).shape and on torch.zeros(3, 8, 6), torch 1.13.
  struct Case {
    ModulePtr module;
    soda::Shape batched, single;
  };
  const std::vector<Case> cases{
      {std::make_shared<soda::nn::MaxPool2d<double>>(3, 2, 1), {2, 3, 4, 3}, {3, 4, 3}},
      {std::make_shared<soda::nn::MaxPool2d<double>>(soda::Size2d(2, 3)), {2, 3, 4, 2}, {3, 4, 2}},
      {std::make_shared<soda::nn::AvgPool2d<double>>(3, 2, 1), {2, 3, 4, 3}, {3, 4, 3}},
      {std::make_shared<soda::nn::AvgPool2d<double>>(2, soda::Size2d(1, 2)),
       {2, 3, 7, 3},
       {3, 7, 3}},
      {std::make_shared<soda::nn::AdaptiveAvgPool2d<double>>(2), {2, 3, 2, 2}, {3, 2, 2}},
      {std::make_shared<soda::nn::AdaptiveAvgPool2d<double>>(), {2, 3, 1, 1}, {3, 1, 1}}};
  for (const auto& c : cases) {
    INFO(c.module->type_name());
    CHECK((*c.module)(soda::zeros<double>({2, 3, 8, 6})).shape() == c.batched);
    CHECK((*c.module)(soda::zeros<double>({3, 8, 6})).shape() == c.single);
    CHECK(c.module->state_dict().empty());
  }
}

TEST_CASE("MaxPool2d and AvgPool2d match torch.nn on a small plane") {
  const auto x = example_plane();
  // torch.nn.MaxPool2d(3, 2, 1)(x), torch.nn.MaxPool2d(2)(x), torch.nn.AvgPool2d(3, 2, 1)(x),
  // torch.nn.AvgPool2d((2, 1))(x), flattened, torch 1.13 in float64.
  check_values({2, 5, 3, 5}, soda::nn::MaxPool2d<double>(3, 2, 1)(x));
  check_values({2, 5, 3, 5}, soda::nn::MaxPool2d<double>(2)(x));
  check_values({-0.5555555555555556, 0.6666666666666666, -0.3333333333333333, 0.2222222222222222},
               soda::nn::AvgPool2d<double>(3, 2, 1)(x));
  check_values({-2.0, -0.5, 1.0, 2.5, -1.0, 0.5, 2.0, -2.0},
               soda::nn::AvgPool2d<double>(soda::Size2d(2, 1))(x));
}

TEST_CASE("AdaptiveAvgPool2d matches torch.nn and a hand-written average") {
  // torch.nn.AdaptiveAvgPool2d((2, 3))(torch.arange(24.).reshape(1, 1, 4, 6)) and with output 1.
  const auto ramp = soda::reshape(soda::arange<double>(24.0), {1, 1, 4, 6});
  check_values({3.5, 5.5, 7.5, 15.5, 17.5, 19.5},
               soda::nn::AdaptiveAvgPool2d<double>(soda::Size2d(2, 3))(ramp));
  check_values({11.5}, soda::nn::AdaptiveAvgPool2d<double>()(ramp));

  // Output (3, 2) on [2, 3, 6, 8]: windows of 2 x 4 cells.
  const auto x = normal({2, 3, 6, 8}, 1);
  const auto y = soda::nn::AdaptiveAvgPool2d<double>(soda::Size2d(3, 2))(x);
  REQUIRE(y.shape() == soda::Shape{2, 3, 3, 2});
  const auto global = soda::nn::AdaptiveAvgPool2d<double>(1)(x);
  REQUIRE(global.shape() == soda::Shape{2, 3, 1, 1});
  for (std::int64_t n = 0; n < 2; ++n) {
    for (std::int64_t c = 0; c < 3; ++c) {
      double total = 0;
      for (std::int64_t h = 0; h < 6; ++h) {
        for (std::int64_t w = 0; w < 8; ++w) total += x.at({n, c, h, w});
      }
      CHECK(global.at({n, c, 0, 0}) == doctest::Approx(total / 48).epsilon(1e-14));
      for (std::int64_t i = 0; i < 3; ++i) {
        for (std::int64_t j = 0; j < 2; ++j) {
          double window = 0;
          for (std::int64_t h = 2 * i; h < 2 * i + 2; ++h) {
            for (std::int64_t w = 4 * j; w < 4 * j + 4; ++w) window += x.at({n, c, h, w});
          }
          CHECK(y.at({n, c, i, j}) == doctest::Approx(window / 8).epsilon(1e-14));
        }
      }
    }
  }
}

TEST_CASE("pooling modules call the pooling ops with their window, stride defaulting to kernel") {
  const auto x = normal({2, 2, 7, 9}, 2);
  soda::nn::MaxPool2d<double> max_pool(soda::Size2d(3, 2), soda::Size2d(2, 1), soda::Size2d(1, 0));
  CHECK(max_pool.kernel() == soda::Size2d(3, 2));
  CHECK(max_pool.stride() == soda::Size2d(2, 1));
  CHECK(max_pool.padding() == soda::Size2d(1, 0));
  CHECK(soda::max_abs_difference(max_pool(x),
                                 soda::max_pool2d(x, {3, 2}, soda::Size2d(2, 1), {1, 0})) == 0);
  soda::nn::AvgPool2d<double> avg_pool(3);
  CHECK(avg_pool.stride() == soda::Size2d(3));
  CHECK(avg_pool.padding() == soda::Size2d(0));
  CHECK(soda::max_abs_difference(avg_pool(x), soda::avg_pool2d(x, 3, soda::Size2d(3), 0)) == 0);
  CHECK(max_pool.type_name() == "MaxPool2d");
  CHECK(avg_pool.type_name() == "AvgPool2d");
  CHECK(soda::nn::AdaptiveAvgPool2d<double>(soda::Size2d(2, 3)).output_size() ==
        soda::Size2d(2, 3));
}

TEST_CASE("an unbatched [C, H, W] input pools as a batch of one") {
  const auto x = normal({3, 6, 6}, 3);
  const auto batch = soda::unsqueeze(x, 0);
  const std::vector<ModulePtr> modules{std::make_shared<soda::nn::MaxPool2d<double>>(2),
                                       std::make_shared<soda::nn::AvgPool2d<double>>(3, 1, 1),
                                       std::make_shared<soda::nn::AdaptiveAvgPool2d<double>>(3),
                                       std::make_shared<soda::nn::AdaptiveAvgPool2d<double>>(1)};
  for (const auto& m : modules) {
    INFO(m->type_name());
    CHECK(soda::max_abs_difference((*m)(x), soda::squeeze((*m)(batch), 0)) == 0);
  }
}

TEST_CASE("pooling modules have exact first and second derivatives") {
  const std::vector<ModulePtr> modules{
      std::make_shared<soda::nn::MaxPool2d<double>>(2),
      std::make_shared<soda::nn::MaxPool2d<double>>(3, 2, 1),
      std::make_shared<soda::nn::AvgPool2d<double>>(3, 2, 1),
      std::make_shared<soda::nn::AdaptiveAvgPool2d<double>>(soda::Size2d(2, 3)),
      std::make_shared<soda::nn::AdaptiveAvgPool2d<double>>(1)};
  for (const auto& m : modules) {
    INFO(m->type_name());
    // Squared inside, so second derivatives are not zero even for the linear poolings.
    SODA_CHECK_OP([&](const Params& q) { return (*m)(q[0] * q[0]); }, {normal({2, 2, 6, 6}, 4)});
    SODA_CHECK_OP([&](const Params& q) { return (*m)(soda::tanh(q[0])); }, {normal({2, 6, 6}, 5)});
  }
}

TEST_CASE("pooling modules reject bad windows when built") {
  using Build = std::function<void(soda::Size2d, soda::Size2d, soda::Size2d)>;
  const std::vector<std::pair<std::string, Build>> builders{
      {"MaxPool2d",
       [](soda::Size2d k, soda::Size2d s, soda::Size2d p) { soda::nn::MaxPool2d<> m(k, s, p); }},
      {"AvgPool2d",
       [](soda::Size2d k, soda::Size2d s, soda::Size2d p) { soda::nn::AvgPool2d<> m(k, s, p); }}};
  for (const auto& [name, build] : builders) {
    INFO(name);
    auto message = message_of<soda::ValueError>([&] { build({0, 2}, 1, 0); });
    CHECK(contains(message, name + ": kernel (0, 2) must be positive"));
    message = message_of<soda::ValueError>([&] { build(2, {1, -1}, 0); });
    CHECK(contains(message, name + ": stride (1, -1) must be positive"));
    message = message_of<soda::ValueError>([&] { build(3, 1, {2, 1}); });
    CHECK(contains(message, name + ": padding (2, 1) must be non-negative and at most half of "
                                   "kernel (3, 3)"));
    message = message_of<soda::ValueError>([&] { build(3, 1, -1); });
    CHECK(contains(message, name + ": padding (-1, -1)"));
  }
  const auto message =
      message_of<soda::ValueError>([] { soda::nn::AdaptiveAvgPool2d<> m(soda::Size2d(0, 2)); });
  CHECK(contains(message, "AdaptiveAvgPool2d: output size (0, 2) must be positive"));
}

TEST_CASE("pooling modules reject inputs of the wrong rank, naming the module and shape") {
  const std::vector<ModulePtr> modules{std::make_shared<soda::nn::MaxPool2d<double>>(2),
                                       std::make_shared<soda::nn::AvgPool2d<double>>(2),
                                       std::make_shared<soda::nn::AdaptiveAvgPool2d<double>>(1)};
  for (const auto& m : modules) {
    INFO(m->type_name());
    for (const soda::Shape& shape : {soda::Shape{4, 4}, soda::Shape{1, 2, 3, 4, 4}}) {
      const auto message =
          message_of<soda::ShapeError>([&] { (void)(*m)(soda::zeros<double>(shape)); });
      CHECK(contains(message, m->type_name() +
                                  ": expected an input of shape [N, C, H, W] or [C, H, W], got " +
                                  soda::to_string(shape)));
    }
  }
}

TEST_CASE("AdaptiveAvgPool2d rejects output sizes that do not divide the input") {
  soda::nn::AdaptiveAvgPool2d<double> pool(soda::Size2d(4, 3));
  auto message = message_of<soda::ValueError>([&] {
    (void)pool(soda::zeros<double>({1, 2, 6, 6}));
  });
  CHECK(contains(message,
                 "AdaptiveAvgPool2d: output size (4, 3) does not evenly divide the "
                 "input's spatial size (6, 6)"));
  message = message_of<soda::ValueError>([&] { (void)pool(soda::zeros<double>({2, 2, 3})); });
  CHECK(contains(message, "spatial size (2, 3)"));
  message = message_of<soda::ValueError>([&] { (void)pool(soda::zeros<double>({1, 1, 0, 3})); });
  CHECK(contains(message, "spatial size (0, 3)"));
}

TEST_CASE("a pooling window larger than the padded input is the op's error, named by the op") {
  const auto message = message_of<soda::ShapeError>([] {
    (void)soda::nn::MaxPool2d<double>(5)(soda::zeros<double>({1, 1, 3, 3}));
  });
  CHECK(
      contains(message, "max_pool2d: input of shape [1, 1, 3, 3] is too small for kernel (5, 5)"));
}
