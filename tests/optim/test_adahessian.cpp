// AdaHessian (optim/adahessian.hpp): the Newton step on a diagonal quadratic, spatial averaging,
// bias correction, Hessian power and weight decay against hand-computed values, curvature reuse
// (update_each), the optimizer's own probes, checkpointed state and refused input.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace {

using soda::Tensor;
using soda::optim::AdaHessian;
using soda::optim::AdaHessianOptions;

Tensor<double> tensor(const soda::Shape& shape, std::vector<double> values) {
  return Tensor<double>(shape, std::move(values));
}

std::vector<double> values(const Tensor<double>& t) {
  const auto c = t.to<double>();
  return {c.data(), c.data() + c.numel()};
}

// f = ½ Σ d ⊙ (x − c)² over a vector and a matrix: a diagonal Hessian, so z ⊙ Hz = d exactly.
struct DiagonalQuadratic {
  std::vector<Tensor<double>> params{tensor({4}, {1.5, -2.0, 0.25, 3.0}),
                                     tensor({2, 3}, {0.5, -1.0, 2.0, -0.75, 1.25, 0.0})};
  std::vector<Tensor<double>> curvature{tensor({4}, {2.0, 0.5, 8.0, 1.25}),
                                        tensor({2, 3}, {3.0, 0.1, 1.0, 6.0, 0.4, 2.5})};
  std::vector<Tensor<double>> minimum{tensor({4}, {0.3, -0.1, 1.0, -2.0}),
                                      tensor({2, 3}, {-1.0, 0.5, 0.25, 2.0, -0.5, 1.5})};

  Tensor<double> operator()() const {
    Tensor<double> total = soda::zeros<double>({});
    for (std::size_t i = 0; i < params.size(); ++i) {
      total = total + soda::sum(curvature[i] * soda::square(params[i] - minimum[i]));
    }
    return total * 0.5;
  }
};

// One parameter shaped like a convolution kernel [out 2, in 1, 2, 2].
Tensor<double> kernel() {
  return tensor({2, 1, 2, 2}, {0.5, -0.25, 1.0, 0.75, -1.5, 2.0, 0.0, 1.0});
}

}  // namespace

TEST_SUITE("optim.adahessian") {
  TEST_CASE("with betas 0, power 1, lr 1 and eps 0 one step is Newton's: it lands on the minimum") {
    for (const std::int64_t samples : {1, 3}) {
      CAPTURE(samples);
      DiagonalQuadratic f;
      AdaHessian<double> opt(
          f.params, {.lr = 1, .beta1 = 0, .beta2 = 0, .eps = 0, .samples = samples, .seed = 7});
      const auto loss_before = opt.step([&] { return f(); });
      CHECK(loss_before.item() > 1);
      for (std::size_t i = 0; i < f.params.size(); ++i) {
        const auto got = values(f.params[i]), want = values(f.minimum[i]);
        for (std::size_t j = 0; j < got.size(); ++j)
          CHECK(got[j] == doctest::Approx(want[j]).epsilon(1e-14));
        // The curvature it used is the exact diagonal (z ⊙ Dz = D for any ±1 probe).
        CHECK(values(opt.hessian_diagonal(i)) == values(f.curvature[i]));
      }
      CHECK(f().item() < 1e-28);
      CHECK(opt.hvp_count() == samples);
    }
  }

  TEST_CASE(
      "a kernel's curvature is |D| averaged over each (out, in) window; bias-corrected step") {
    const auto diagonal = tensor({2, 1, 2, 2}, {1.0, -3.0, 2.0, -2.0, 0.5, 0.5, -0.5, 0.5});
    const auto grad = tensor({2, 1, 2, 2}, {0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8});
    const auto p0 = values(kernel());
    AdaHessian<double> opt({kernel()}, {.lr = 0.15});
    opt.step({grad}, {diagonal});
    CHECK(values(opt.hessian_diagonal(0)) ==
          std::vector<double>{2.0, 2.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0.5});
    // Step 1: m/(1 − β1) = g and √(v/(1 − β2)) = D̄, so p1 = p0 − lr·g/(D̄ + eps).
    const auto p1 = values(opt.parameters()[0]);
    const auto g = values(grad);
    for (std::size_t j = 0; j < 8; ++j) {
      const double mean_abs = j < 4 ? 2.0 : 0.5;
      CHECK(p1[j] == doctest::Approx(p0[j] - 0.15 * g[j] / (mean_abs + 1e-4)).epsilon(1e-14));
    }
    // Step 2 with new values, the formula written out: bias corrections 1 − 0.9², 1 − 0.999².
    const auto diagonal2 = tensor({2, 1, 2, 2}, {4.0, 4.0, -4.0, 0.0, 1.0, 1.0, 1.0, 1.0});
    const auto grad2 = tensor({2, 1, 2, 2}, {0.3, 0.3, 0.3, 0.3, -0.1, -0.1, -0.1, -0.1});
    opt.step({grad2}, {diagonal2});
    const auto p2 = values(opt.parameters()[0]);
    for (std::size_t j = 0; j < 8; ++j) {
      const double d1 = j < 4 ? 2.0 : 0.5, d2 = j < 4 ? 3.0 : 1.0;
      const double m = 0.9 * (0.1 * g[j]) + 0.1 * values(grad2)[j];
      const double v = 0.999 * (0.001 * d1 * d1) + 0.001 * d2 * d2;
      const double denominator = std::sqrt(v) / std::sqrt(1 - 0.999 * 0.999) + 1e-4;
      CHECK(p2[j] == doctest::Approx(p1[j] - 0.15 * (m / (1 - 0.81) / denominator)).epsilon(1e-13));
    }
    CHECK(opt.parameter_steps(0) == 2);
  }

  TEST_CASE("without averaging a kernel keeps its signed diagonal; vectors are never averaged") {
    const auto diagonal = tensor({2, 1, 2, 2}, {1.0, -3.0, 2.0, -2.0, 0.5, 0.5, -0.5, 0.5});
    AdaHessian<double> plain({kernel()}, {.average_conv_kernel = false});
    plain.step({soda::zeros<double>({2, 1, 2, 2})}, {diagonal});
    CHECK(values(plain.hessian_diagonal(0)) == values(diagonal));
    AdaHessian<double> vector({tensor({3}, {1, 2, 3})}, {});
    vector.step({soda::zeros<double>({3})}, {tensor({3}, {-1.0, 2.0, -3.0})});
    CHECK(values(vector.hessian_diagonal(0)) == std::vector<double>{-1.0, 2.0, -3.0});
  }

  TEST_CASE("Hessian power k and the official weight decay, one step by hand") {
    const auto g = 0.2, d = 4.0, p0 = 1.5;
    for (const double k : {0.0, 0.5, 1.0}) {
      CAPTURE(k);
      AdaHessian<double> opt({tensor({1}, {p0})},
                             {.lr = 0.1, .weight_decay = 0.01, .hessian_power = k});
      opt.step({tensor({1}, {g})}, {tensor({1}, {d})});
      // m̂ = g; (√v)^k / √(1 − β2)^k = |d|^k.
      const double expected = p0 - 0.1 * (g / (std::pow(d, k) + 1e-4) + 0.01 * p0);
      CHECK(opt.parameters()[0].at({0}) == doctest::Approx(expected).epsilon(1e-14));
    }
  }

  TEST_CASE("closure steps use the optimizer's own probes: the spatially averaged z ⊙ Hz") {
    soda::Generator gen(3);
    auto model = soda::models::small_cnn<double>(2, 4, 4, 3, gen);
    const auto images = soda::randn<double>({5, 2, 4, 4}, gen);
    const auto labels = Tensor<std::int64_t>({5}, {0, 2, 1, 1, 0});
    const auto params = model->parameters();
    auto loss = [&] { return soda::nn::cross_entropy((*model)(images), labels); };

    // What the first step will see, computed independently before it changes the parameters.
    soda::Generator probes(11);
    const auto z =
        soda::hessian::rademacher_vector<double>(soda::hessian::shapes_of(params), probes);
    const auto [value, grads, hz] = soda::value_grad_hvp(loss, params, z);
    const auto expected = soda::hessian::diagonal_from_probe(z, hz);

    AdaHessian<double> opt(params, {.seed = 11});
    const auto reported = opt.step(loss);
    CHECK(reported.item() == value.item());
    CHECK(opt.generator().offset() == probes.offset());
    for (std::size_t i = 0; i < params.size(); ++i) {
      CAPTURE(i);
      const auto want = soda::optim::detail::spatially_averaged(expected[i]);
      CHECK(values(opt.hessian_diagonal(i)) == values(want));
      CHECK(values(opt.exp_avg(i)) == values(grads[i] * (1 - 0.9)));  // (1 − β1)·g, bit for bit
    }
  }

  TEST_CASE("update_each reuses the curvature between estimates and draws no probes there") {
    DiagonalQuadratic f;
    AdaHessian<double> opt(f.params, {.samples = 2, .update_each = 3, .seed = 5});
    std::vector<std::uint64_t> offsets;
    for (int step = 0; step < 7; ++step) {
      opt.step([&] { return f(); });
      offsets.push_back(opt.generator().offset());
    }
    CHECK(opt.hvp_count() == 3 * 2);  // estimates at steps 0, 3 and 6
    CHECK(offsets[0] == offsets[1]);
    CHECK(offsets[1] == offsets[2]);
    CHECK(offsets[3] > offsets[2]);
    CHECK(offsets[6] > offsets[5]);
    // The diagonal is exact here, so reuse changes nothing: v follows (1 − β2^t)·D².
    const double d = f.curvature[0].at({0});
    CHECK(opt.exp_hessian_diag_sq(0).at({0}) ==
          doctest::Approx((1 - std::pow(0.999, 7)) * d * d).epsilon(1e-13));
  }

  TEST_CASE("a run resumed from its state (through a safetensors file) continues bit for bit") {
    auto run = [](int first, int second, bool through_file) {
      soda::Generator gen(4);
      auto model = soda::models::small_cnn<double>(1, 4, 4, 3, gen);
      const auto images = soda::randn<double>({6, 1, 4, 4}, gen);
      const auto labels = Tensor<std::int64_t>({6}, {0, 1, 2, 2, 1, 0});
      auto loss = [&] { return soda::nn::cross_entropy((*model)(images), labels); };
      const AdaHessianOptions options{
          .lr = 0.05, .weight_decay = 1e-3, .update_each = 2, .seed = 9};
      AdaHessian<double> opt(model->parameters(), options);
      for (int s = 0; s < first; ++s) opt.step(loss);
      if (second > 0) {
        auto tensors = opt.state_dict();
        auto metadata = opt.state_metadata();
        if (through_file) {
          soda::TensorFile file;
          for (const auto& [name, t] : tensors) file.tensors.emplace_back(name, t);
          file.metadata = metadata;
          const auto path =
              std::filesystem::temp_directory_path() /
              ("soda_test_adahessian_" + std::to_string(images.id()) + ".safetensors");
          soda::save_safetensors(path, file);
          const auto loaded = soda::load_safetensors(path);
          std::filesystem::remove(path);
          tensors.clear();
          for (const auto& [name, any] : loaded.tensors) {
            tensors.emplace_back(name, loaded.get<double>(name));
          }
          metadata = loaded.metadata;
        }
        AdaHessian<double> resumed(model->parameters(), {.lr = 1, .seed = 123});
        resumed.load_state_dict(tensors, metadata);
        CHECK(resumed.options() == options);
        for (int s = 0; s < second; ++s) resumed.step(loss);
        CHECK(resumed.step_count() == first + second);
      }
      std::vector<double> out;
      for (const auto& p : model->parameters()) {
        const auto v = values(p);
        out.insert(out.end(), v.begin(), v.end());
      }
      return out;
    };
    const auto whole = run(5, 0, false);
    CHECK(run(3, 2, false) == whole);
    CHECK(run(3, 2, true) == whole);
  }

  TEST_CASE(
      "refused: bad options, a first step without curvature, mismatched input, foreign state") {
    DiagonalQuadratic f;
    auto make = [&](AdaHessianOptions o) { return AdaHessian<double>(f.params, o); };
    CHECK_THROWS_WITH_AS(make({.lr = -1}),
                         "AdaHessian: invalid learning rate (must be finite and >= 0) -1",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(make({.beta2 = 1}), "AdaHessian: invalid beta2 (must be in [0, 1)) 1",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(make({.hessian_power = 1.5}),
                         "AdaHessian: invalid hessian_power (must be in [0, 1]) 1.5",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(make({.samples = 0}), "AdaHessian: invalid samples (must be at least 1) 0",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(make({.update_each = 0}),
                         "AdaHessian: invalid update_each (must be at least 1) 0",
                         soda::ValueError);

    AdaHessian<double> opt(f.params, {});
    const std::vector<Tensor<double>> grads{soda::zeros<double>({4}), soda::zeros<double>({2, 3})};
    CHECK_THROWS_WITH_AS(opt.step(grads),
                         "AdaHessian.step: parameter 0 has no Hessian-diagonal estimate yet; the "
                         "first step needs one",
                         soda::ValueError);
    CHECK_THROWS_AS(opt.step(grads, {soda::zeros<double>({4}), soda::zeros<double>({3, 2})}),
                    soda::ShapeError);
    CHECK_THROWS_WITH_AS(
        opt.step({grads[0]}, grads),
        "AdaHessian.step: expected 2 gradients (one per parameter, in order), got 1",
        soda::ShapeError);
    CHECK(opt.step_count() == 0);

    soda::optim::Adam<double> adam(f.params, {});
    adam.step(grads);
    CHECK_THROWS_WITH_AS(opt.load_state_dict(adam.state_dict(), adam.state_metadata()),
                         "AdaHessian.load_state_dict: metadata entry 'adahessian.lr' is missing",
                         soda::ValueError);
    opt.step(grads, grads);
    auto metadata = opt.state_metadata();
    metadata["adahessian.parameter_steps"] = "1";
    CHECK_THROWS_WITH_AS(opt.load_state_dict(opt.state_dict(), metadata),
                         "AdaHessian.load_state_dict: metadata entry 'adahessian.parameter_steps' "
                         "is '1', not 2 comma-separated non-negative integers",
                         soda::ValueError);
    auto tensors = opt.state_dict();
    tensors.pop_back();
    CHECK_THROWS_WITH_AS(opt.load_state_dict(tensors, opt.state_metadata()),
                         "AdaHessian.load_state_dict: entry 'hessian_diagonal.1' is missing",
                         soda::ValueError);
  }
}
