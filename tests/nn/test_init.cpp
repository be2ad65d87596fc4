// soda/nn/init.hpp: fans and gains as PyTorch computes them, the distributions of every
// initialiser (bounds, mean and variance on large tensors), determinism from the seed, in-place
// writes into views, and every error path.
#include <doctest/doctest.h>
#include <soda/nn/init.hpp>
#include <soda/soda.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

using soda::Shape;
using namespace soda::nn;

namespace {

struct Moments {
  double mean, variance, min, max;
};

template <class T>
Moments moments_of(const soda::Tensor<T>& t) {
  const auto values = t.template to<double>();
  const double* p = values.data();
  const auto n = static_cast<double>(values.numel());
  double sum = 0, lo = p[0], hi = p[0];
  for (std::int64_t i = 0; i < values.numel(); ++i) {
    sum += p[i];
    lo = std::min(lo, p[i]);
    hi = std::max(hi, p[i]);
  }
  const double mean = sum / n;
  double squares = 0;
  for (std::int64_t i = 0; i < values.numel(); ++i) squares += (p[i] - mean) * (p[i] - mean);
  return {mean, squares / n, lo, hi};
}

// Checks mean and variance of U(−bound, bound) on a large tensor: the sample mean's standard
// error is bound/√(3n), so 5 standard errors leave the test deterministic-looking yet meaningful.
template <class T>
void check_uniform(const soda::Tensor<T>& t, double bound) {
  const auto m = moments_of(t);
  const auto n = static_cast<double>(t.numel());
  CHECK(m.min >= -bound);
  CHECK(m.max < bound);
  CHECK(m.min < -0.99 * bound);  // the whole interval is used
  CHECK(m.max > 0.99 * bound);
  CHECK(std::abs(m.mean) < 5 * bound / std::sqrt(3 * n));
  CHECK(m.variance == doctest::Approx(bound * bound / 3).epsilon(0.02));
}

template <class T>
void check_normal(const soda::Tensor<T>& t, double mean, double std) {
  const auto m = moments_of(t);
  const auto n = static_cast<double>(t.numel());
  CHECK(std::abs(m.mean - mean) < 5 * std / std::sqrt(n));
  CHECK(m.variance == doctest::Approx(std * std).epsilon(0.02));
}

bool same_values(const soda::Tensor<float>& a, const soda::Tensor<float>& b) {
  return a.shape() == b.shape() && soda::max_abs_difference(a, b) == 0.0;
}

}  // namespace

TEST_SUITE("nn/init") {
  TEST_CASE("fans are computed as torch.nn.init._calculate_fan_in_and_fan_out") {
    // (5, 3) (45, 240) (6, 12): printed by torch 1.13 for shapes [3, 5], [16, 3, 3, 5], [4, 2, 3].
    const auto linear = calculate_fan_in_and_fan_out({3, 5});
    CHECK(linear.fan_in == 5);
    CHECK(linear.fan_out == 3);
    const auto conv = calculate_fan_in_and_fan_out({16, 3, 3, 5});
    CHECK(conv.fan_in == 45);
    CHECK(conv.fan_out == 240);
    const auto conv1d = calculate_fan_in_and_fan_out({4, 2, 3});
    CHECK(conv1d.fan_in == 6);
    CHECK(conv1d.fan_out == 12);
  }

  TEST_CASE("gains are torch.nn.init.calculate_gain's") {
    // Printed by torch 1.13: calculate_gain for each name, leaky_relu with 0.2 and with √5.
    CHECK(calculate_gain(Nonlinearity::linear) == 1.0);
    CHECK(calculate_gain(Nonlinearity::conv1d) == 1.0);
    CHECK(calculate_gain(Nonlinearity::conv2d) == 1.0);
    CHECK(calculate_gain(Nonlinearity::conv3d) == 1.0);
    CHECK(calculate_gain(Nonlinearity::sigmoid) == 1.0);
    CHECK(calculate_gain(Nonlinearity::tanh) == doctest::Approx(1.6666666666666667).epsilon(1e-15));
    CHECK(calculate_gain(Nonlinearity::relu) == doctest::Approx(1.4142135623730951).epsilon(1e-15));
    CHECK(calculate_gain(Nonlinearity::leaky_relu) ==
          doctest::Approx(1.4141428569978354).epsilon(1e-15));
    CHECK(calculate_gain(Nonlinearity::leaky_relu, 0.2) ==
          doctest::Approx(1.3867504905630728).epsilon(1e-15));
    CHECK(calculate_gain(Nonlinearity::leaky_relu, std::sqrt(5.0)) ==
          doctest::Approx(0.5773502691896257).epsilon(1e-15));
    CHECK(calculate_gain(Nonlinearity::selu) == 0.75);
  }

  TEST_CASE("uniform_ fills U(low, high) in place and returns the same tensor") {
    soda::Generator gen(1);
    const auto t = soda::Tensor<float>::empty({400, 500});
    const auto returned = uniform_(t, gen, -0.5, 1.5);
    CHECK(returned.impl() == t.impl());
    const auto m = moments_of(t);
    CHECK(m.min >= -0.5);
    CHECK(m.max < 1.5);
    CHECK(m.mean == doctest::Approx(0.5).epsilon(0.01));
    CHECK(m.variance == doctest::Approx(4.0 / 12).epsilon(0.02));
    check_uniform(uniform_(soda::Tensor<double>::empty({1000, 200}), gen, -3.0, 3.0), 3.0);
  }

  TEST_CASE("uniform_ with low == high fills a constant") {
    soda::Generator gen(1);
    const auto t = uniform_(soda::Tensor<double>::empty({10}), gen, 0.25, 0.25);
    for (std::int64_t i = 0; i < 10; ++i) CHECK(t.data()[i] == 0.25);
  }

  TEST_CASE("normal_ fills N(mean, std²)") {
    soda::Generator gen(2);
    check_normal(normal_(soda::Tensor<float>::empty({500, 400}), gen, 1.5, 0.3), 1.5, 0.3);
    check_normal(normal_(soda::Tensor<double>::empty({200000}), gen), 0.0, 1.0);
  }

  TEST_CASE("constant_, zeros_ and ones_ set every element") {
    const auto t = soda::Tensor<float>::empty({3, 4});
    constant_(t, 2.5);
    for (std::int64_t i = 0; i < 12; ++i) CHECK(t.data()[i] == 2.5f);
    zeros_(t);
    for (std::int64_t i = 0; i < 12; ++i) CHECK(t.data()[i] == 0.0f);
    ones_(t);
    for (std::int64_t i = 0; i < 12; ++i) CHECK(t.data()[i] == 1.0f);
  }

  TEST_CASE("kaiming_uniform_ with a = √5 draws U(±1/√fan_in), nn.Linear's default") {
    soda::Generator gen(3);
    const auto w = kaiming_uniform_(soda::Tensor<float>::empty({512, 256}), gen, std::sqrt(5.0));
    check_uniform(w, 1.0 / std::sqrt(256.0));
    // Conv weights: fan_in = C·kh·kw = 32·3·3.
    const auto conv =
        kaiming_uniform_(soda::Tensor<double>::empty({256, 32, 3, 3}), gen, std::sqrt(5.0));
    check_uniform(conv, 1.0 / std::sqrt(288.0));
  }

  TEST_CASE("kaiming_uniform_ defaults (a = 0, fan_in, leaky_relu) and fan_out with relu") {
    soda::Generator gen(4);
    const double leaky_gain = calculate_gain(Nonlinearity::leaky_relu, 0.0);  // √2
    check_uniform(kaiming_uniform_(soda::Tensor<float>::empty({300, 400}), gen),
                  std::sqrt(3.0) * leaky_gain / std::sqrt(400.0));
    check_uniform(kaiming_uniform_(soda::Tensor<float>::empty({128, 64, 3, 3}), gen,
                                   FanMode::fan_out, Nonlinearity::relu),
                  std::sqrt(3.0) * std::sqrt(2.0) / std::sqrt(128.0 * 9));
    check_uniform(kaiming_uniform_(soda::Tensor<float>::empty({300, 400}), gen, 0.0,
                                   FanMode::fan_in, Nonlinearity::tanh),
                  std::sqrt(3.0) * (5.0 / 3.0) / std::sqrt(400.0));
  }

  TEST_CASE("kaiming_normal_ with fan_out and relu has std √2/√fan_out (torchvision's ResNet)") {
    soda::Generator gen(5);
    const auto w = kaiming_normal_(soda::Tensor<float>::empty({256, 64, 3, 3}), gen,
                                   FanMode::fan_out, Nonlinearity::relu);
    check_normal(w, 0.0, std::sqrt(2.0) / std::sqrt(256.0 * 9));
    const auto d = kaiming_normal_(soda::Tensor<double>::empty({400, 500}), gen);
    check_normal(d, 0.0, std::sqrt(2.0) / std::sqrt(500.0));
    const auto a = kaiming_normal_(soda::Tensor<double>::empty({400, 500}), gen, 0.5);
    check_normal(a, 0.0, std::sqrt(2.0 / 1.25) / std::sqrt(500.0));
  }

  TEST_CASE("xavier_uniform_ and xavier_normal_ use √(2/(fan_in + fan_out)) times the gain") {
    soda::Generator gen(6);
    check_uniform(xavier_uniform_(soda::Tensor<float>::empty({300, 500}), gen),
                  std::sqrt(6.0 / 800));
    check_uniform(xavier_uniform_(soda::Tensor<float>::empty({300, 500}), gen, 2.0),
                  2.0 * std::sqrt(6.0 / 800));
    check_normal(xavier_normal_(soda::Tensor<double>::empty({128, 64, 5, 5}), gen, 0.5), 0.0,
                 0.5 * std::sqrt(2.0 / (64 * 25 + 128 * 25)));
  }

  TEST_CASE("draws depend only on the seed and the generator's position") {
    auto draw = [](std::uint64_t seed) {
      soda::Generator gen(seed);
      const auto w = kaiming_uniform_(soda::Tensor<float>::empty({20, 30}), gen, std::sqrt(5.0));
      const auto b = normal_(soda::Tensor<float>::empty({30}), gen);
      return std::pair{w, b};
    };
    const auto [w1, b1] = draw(11);
    const auto [w2, b2] = draw(11);
    const auto [w3, b3] = draw(12);
    CHECK(same_values(w1, w2));
    CHECK(same_values(b1, b2));
    CHECK_FALSE(same_values(w1, w3));
    CHECK_FALSE(same_values(b1, b3));
    // The second draw continues the stream instead of repeating the first.
    soda::Generator gen(11);
    const auto first = uniform_(soda::Tensor<float>::empty({30}), gen);
    const auto second = uniform_(soda::Tensor<float>::empty({30}), gen);
    CHECK_FALSE(same_values(first, second));
  }

  TEST_CASE("a view is filled in its logical order and nothing outside it is touched") {
    soda::Generator gen(7);
    const auto base = soda::zeros<float>({6, 8});
    const auto view = soda::transpose(soda::slice(base, 1, 0, 8, 2), 0, 1);  // [4, 6], strided
    REQUIRE_FALSE(view.is_contiguous());
    uniform_(view, gen, 1.0, 2.0);
    soda::Generator same(7);
    const auto expected = uniform_(soda::Tensor<float>::empty({4, 6}), same, 1.0, 2.0);
    CHECK(same_values(view.to<float>(), expected));
    for (std::int64_t r = 0; r < 6; ++r) {
      for (std::int64_t c = 0; c < 8; ++c) {
        if (c % 2 == 1) CHECK(base.at({r, c}) == 0.0f);
      }
    }
  }

  TEST_CASE("kaiming initialisers leave zero-element tensors alone, as PyTorch") {
    soda::Generator gen(8);
    const auto empty = soda::Tensor<float>::empty({0, 5});
    CHECK(kaiming_uniform_(empty, gen).numel() == 0);
    CHECK(kaiming_normal_(empty, gen).numel() == 0);
    CHECK(gen.offset() == 0);
  }

  TEST_CASE("errors name the initialiser and what to change") {
    soda::Generator gen(9);
    const auto vector = soda::Tensor<float>::empty({5});
    CHECK_THROWS_WITH_AS(calculate_fan_in_and_fan_out({5}),
                         "calculate_fan_in_and_fan_out: a tensor of shape [5] has fewer than 2 "
                         "dimensions; fans are defined for weights [out, in, ...]",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(kaiming_uniform_(vector, gen),
                         doctest::Contains("kaiming_uniform_: a tensor of shape [5]"),
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(kaiming_normal_(vector, gen),
                         doctest::Contains("kaiming_normal_: a tensor of shape [5]"),
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(xavier_uniform_(vector, gen),
                         doctest::Contains("xavier_uniform_: a tensor of shape [5]"),
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(xavier_normal_(soda::Tensor<float>::empty({}), gen),
                         doctest::Contains("xavier_normal_: a tensor of shape []"),
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(uniform_(vector, gen, 1.0, 0.0),
                         doctest::Contains("uniform_: low = 1.000000 must not exceed high"),
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(normal_(vector, gen, 0.0, -1.0),
                         doctest::Contains("normal_: the standard deviation must be non-negative"),
                         soda::ValueError);
    const auto broadcast = soda::broadcast_to(soda::zeros<float>({1, 3}), {4, 3});
    CHECK_THROWS_WITH_AS(constant_(broadcast, 1.0),
                         doctest::Contains("constant_: the tensor of shape [4, 3] is a broadcast"),
                         soda::ValueError);
    CHECK_THROWS_AS(uniform_(broadcast, gen), soda::Error);
    CHECK(gen.offset() == 0);  // nothing was drawn by a rejected call
  }
}
