// Tests of soda/quant/fake_quantize.hpp: the values equal the spec's quantizer, and gradients and
// Hessian-vector products follow the straight-through estimator with the clipping mask.
#include <doctest/doctest.h>

#include <soda/quant/fake_quantize.hpp>
#include <soda/soda.hpp>

#include <vector>

namespace {

using soda::quant::FakeQuantizer;

soda::Tensor<double> fake_tensor(std::vector<double> values) {
  const auto n = static_cast<std::int64_t>(values.size());
  return soda::Tensor<double>({n}, std::move(values));
}

std::vector<double> fake_values(const soda::Tensor<double>& x) {
  const auto c = soda::contiguous(x);
  return {c.data(), c.data() + c.numel()};
}

TEST_CASE("fake_quantize of weights equals the spec's quantizer, scales and values, 8 and 4 bits") {
  soda::Generator gen(11);
  const auto w = soda::randn<float>({6, 10}, gen);
  const std::vector<float> flat(w.data(), w.data() + w.numel());
  for (const int bits : {8, 4}) {
    CAPTURE(bits);
    const auto quantizer = soda::quant::weight_fake_quantizer(w, bits);
    const auto expected = soda::quant::quantize_weights(flat, 6, 10, bits);
    REQUIRE(quantizer.scales == expected.scales);
    CHECK(quantizer.hi == (1 << (bits - 1)) - 1);
    CHECK(quantizer.lo == -quantizer.hi);
    const auto y = soda::contiguous(soda::quant::fake_quantize(w, quantizer));
    for (std::int64_t n = 0; n < 6; ++n) {
      for (std::int64_t k = 0; k < 10; ++k) {
        CHECK(y.data()[n * 10 + k] ==
              static_cast<float>(expected.values.at(n, k)) * expected.scales[n]);
      }
    }
  }
}

TEST_CASE("fake_quantize rounds half to even, clamps to the grid, and passes gradients inside it") {
  // x / s = -6, -0.52, 0.5, 1.5, 2.5, 18 on the grid [-4, 4] with s = 0.5.
  const auto x = fake_tensor({-3.0, -0.26, 0.25, 0.75, 1.25, 9.0});
  const FakeQuantizer<double> quantizer{{0.5}, -4, 4};
  CHECK(fake_values(soda::quant::fake_quantize(x, quantizer)) ==
        std::vector<double>{-2.0, -0.5, 0.0, 1.0, 1.0, 2.0});
  const auto weights = fake_tensor({1, 2, 3, 4, 5, 6});
  const auto g = soda::grad(
      [&](const std::vector<soda::Tensor<double>>& p) {
        return soda::sum(soda::mul(soda::quant::fake_quantize(p[0], quantizer), weights));
      },
      std::vector<soda::Tensor<double>>{x});
  CHECK(fake_values(g[0]) == std::vector<double>{0, 2, 3, 4, 5, 0});
}

TEST_CASE("H·v through fake_quantize treats it as the masked identity") {
  // f = Σ c·Q(x)²: ∇f = 2·c·Q(x)·m and H = diag(2·c·m), m the clipping mask.
  const auto x = fake_tensor({-3.0, -0.26, 0.75, 1.25, 9.0});
  const FakeQuantizer<double> quantizer{{0.5}, -4, 4};
  const auto c = fake_tensor({1, 2, 3, 4, 5});
  const auto v = fake_tensor({0.5, -1, 2, 0.25, 3});
  const auto [value, gradient, hv] = soda::value_grad_hvp(
      [&](const std::vector<soda::Tensor<double>>& p) {
        const auto q = soda::quant::fake_quantize(p[0], quantizer);
        return soda::sum(soda::mul(c, soda::mul(q, q)));
      },
      std::vector<soda::Tensor<double>>{x}, std::vector<soda::Tensor<double>>{v});
  CHECK(value.item() == doctest::Approx(1 * 4.0 + 2 * 0.25 + 3 * 1.0 + 4 * 1.0 + 5 * 4.0));
  CHECK(fake_values(gradient[0]) ==
        std::vector<double>{0, 2 * 2 * -0.5, 2 * 3 * 1.0, 2 * 4 * 1.0, 0});
  CHECK(fake_values(hv[0]) == std::vector<double>{0, 2 * 2 * -1.0, 2 * 3 * 2.0, 2 * 4 * 0.25, 0});
}

TEST_CASE("fake_quantize per output channel uses each slice's scale") {
  const soda::Tensor<double> w({2, 3}, {0.3, -0.6, 0.9, 3.0, -6.0, 9.0});
  const FakeQuantizer<double> quantizer{{0.3, 3.0}, -2, 2};
  CHECK(fake_values(soda::quant::fake_quantize(w, quantizer)) ==
        std::vector<double>{0.3, -0.6, 0.6, 3.0, -6.0, 6.0});
}

TEST_CASE("fake_quantize names what does not fit: scale count, grid, scale values, weights") {
  const soda::Tensor<double> w({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK_THROWS_WITH_AS(soda::quant::fake_quantize(w, FakeQuantizer<double>{{1, 2, 3}, -1, 1}),
                       doctest::Contains("3 scales do not fit a tensor of shape [2, 3]"),
                       soda::ShapeError);
  CHECK_THROWS_WITH_AS(soda::quant::fake_quantize(w, FakeQuantizer<double>{{}, -1, 1}),
                       doctest::Contains("holds no scale"), soda::ValueError);
  CHECK_THROWS_WITH_AS(soda::quant::fake_quantize(w, FakeQuantizer<double>{{1}, 2, 1}),
                       doctest::Contains("lo 2 exceeds its hi 1"), soda::ValueError);
  CHECK_THROWS_AS(soda::quant::fake_quantize(w, FakeQuantizer<double>{{0}, -1, 1}),
                  soda::ValueError);
  CHECK_THROWS_WITH_AS(soda::quant::weight_fake_quantizer(w, 3), doctest::Contains("got 3"),
                       soda::ValueError);
  const soda::Tensor<double> bad({2, 1}, {1, std::nan("")});
  CHECK_THROWS_WITH_AS(soda::quant::weight_fake_quantizer(bad, 8),
                       doctest::Contains("output channel 1 holds a non-finite weight"),
                       soda::ValueError);
}

}  // namespace
