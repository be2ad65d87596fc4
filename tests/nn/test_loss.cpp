// Losses (nn/loss.hpp): cross_entropy with and without label smoothing and mse_loss against values
// printed by PyTorch and against hand-written oracles, exact gradients and Hessian-vector products
// in double, count_correct, and every error path.
#include <doctest/doctest.h>
#include <soda/nn/loss.hpp>
#include <soda/soda.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "../autodiff/checks.hpp"

using namespace soda_test;

namespace {

// The batch whose losses PyTorch printed below.
template <class T>
soda::Tensor<T> example_logits() {
  return soda::Tensor<T>({3, 4}, {T(1.5), T(-0.3), T(0.2), T(2.1), T(-1.0), T(0.5), T(0.0), T(0.25),
                                  T(3.0), T(-2.0), T(1.0), T(0.5)});
}

Index example_labels() {
  return Index({3}, {3, 1, 2});
}

Index random_labels(std::int64_t n, std::int64_t classes, std::uint64_t seed) {
  soda::Generator gen(seed);
  return soda::randint<std::int64_t>({n}, gen, 0, classes);
}

// Cross-entropy written out with std::exp and std::log, row by row: an oracle sharing no code with
// log_softmax or gather.
double cross_entropy_by_hand(const Tensor& logits, const Index& labels, double smoothing) {
  const auto rows = logits.size(0), classes = logits.size(1);
  double total = 0;
  for (std::int64_t i = 0; i < rows; ++i) {
    double largest = -std::numeric_limits<double>::infinity();
    for (std::int64_t j = 0; j < classes; ++j) largest = std::max(largest, logits.at({i, j}));
    double normalizer = 0;
    for (std::int64_t j = 0; j < classes; ++j) normalizer += std::exp(logits.at({i, j}) - largest);
    const double log_normalizer = largest + std::log(normalizer);
    double mean_negative_log_p = 0;
    for (std::int64_t j = 0; j < classes; ++j)
      mean_negative_log_p += (log_normalizer - logits.at({i, j})) / static_cast<double>(classes);
    const double nll = log_normalizer - logits.at({i, labels.at({i})});
    total += (1 - smoothing) * nll + smoothing * mean_negative_log_p;
  }
  return total / static_cast<double>(rows);
}

}  // namespace

TEST_CASE("cross_entropy matches torch.nn.functional.cross_entropy, with and without smoothing") {
  // torch.nn.functional.cross_entropy(logits, torch.tensor([3, 1, 2]), label_smoothing=eps) on
  // the example logits, torch 1.13, float64 then float32.
  struct Expected {
    double smoothing, in_double, in_float;
  };
  const std::vector<Expected> expected{{0.0, 1.2475752566341358, 1.247575283050537},
                                       {0.1, 1.3196585899674693, 1.319658637046814},
                                       {0.25, 1.4277835899674691, 1.4277836084365845},
                                       {1.0, 1.968408589967469, 1.9684085845947266}};
  for (const auto& e : expected) {
    INFO("label_smoothing " << e.smoothing);
    const double in_double =
        soda::nn::cross_entropy(example_logits<double>(), example_labels(), e.smoothing).item();
    const float in_float =
        soda::nn::cross_entropy(example_logits<float>(), example_labels(), e.smoothing).item();
    CHECK(in_double == doctest::Approx(e.in_double).epsilon(1e-14));
    CHECK(in_float == doctest::Approx(e.in_float).epsilon(1e-6));
  }
}

TEST_CASE("cross_entropy equals the loss written out by hand, for any smoothing") {
  const auto logits = normal({6, 5}, 11) * 2.0;
  const auto labels = random_labels(6, 5, 12);
  for (const double smoothing : {0.0, 0.05, 0.3, 0.5, 1.0}) {
    INFO("label_smoothing " << smoothing);
    CHECK(soda::nn::cross_entropy(logits, labels, smoothing).item() ==
          doctest::Approx(cross_entropy_by_hand(logits, labels, smoothing)).epsilon(1e-13));
  }
}

TEST_CASE(
    "cross_entropy has exact gradients and Hessian-vector products, with and without "
    "smoothing") {
  const Params p{normal({5, 7}, 21)};
  const auto labels = random_labels(5, 7, 22);
  for (const double smoothing : {0.0, 0.1, 0.7, 1.0}) {
    INFO("label_smoothing " << smoothing);
    SODA_CHECK_OP([&labels, smoothing](
                      const Params& q) { return soda::nn::cross_entropy(q[0], labels, smoothing); },
                  p);
  }
}

TEST_CASE("the gradient of cross_entropy is (softmax − smoothed one-hot) / N") {
  const auto logits = normal({4, 6}, 31);
  const auto labels = random_labels(4, 6, 32);
  const double smoothing = 0.2;
  const auto gradient =
      soda::grad([&](const Params& q) { return soda::nn::cross_entropy(q[0], labels, smoothing); },
                 Params{logits})[0];
  for (std::int64_t i = 0; i < 4; ++i) {
    double normalizer = 0;
    for (std::int64_t j = 0; j < 6; ++j) normalizer += std::exp(logits.at({i, j}));
    for (std::int64_t j = 0; j < 6; ++j) {
      const double target = (j == labels.at({i}) ? 1 - smoothing : 0.0) + smoothing / 6;
      const double expected = (std::exp(logits.at({i, j})) / normalizer - target) / 4;
      CHECK(gradient.at({i, j}) == doctest::Approx(expected).epsilon(1e-13));
    }
  }
}

TEST_CASE("cross_entropy behind a linear layer has exact Hessian-vector products") {
  // The Hessian with respect to weights mixes the softmax curvature with the inputs: the case
  // that second-order training uses.
  const auto x = normal({8, 3}, 41);
  const auto labels = random_labels(8, 4, 42);
  const Params p{normal({3, 4}, 43), normal({4}, 44)};
  soda::Generator gen(45);
  const auto v = random_like(p, gen);
  for (const double smoothing : {0.0, 0.1}) {
    INFO("label_smoothing " << smoothing);
    auto loss = [&](const Params& q) {
      return soda::nn::cross_entropy(soda::matmul(x, q[0]) + q[1], labels, smoothing);
    };
    CHECK(gradient_error(loss, p) < 1e-7);
    CHECK(hvp_error(loss, p, v) < 1e-6);
  }
}

TEST_CASE("cross_entropy accepts non-contiguous logits and labels") {
  const auto base = normal({5, 6}, 51);
  const auto logits = soda::transpose(base, 0, 1);  // [6, 5], strided
  REQUIRE_FALSE(logits.is_contiguous());
  const auto every_label = Index({12}, {0, 9, 4, 9, 1, 9, 3, 9, 2, 9, 4, 9});
  const auto labels = every_label.view_with({6}, {2}, 0);  // 0, 4, 1, 3, 2, 4
  REQUIRE_FALSE(labels.is_contiguous());
  const auto contiguous_labels = Index({6}, {0, 4, 1, 3, 2, 4});
  CHECK(soda::nn::cross_entropy(logits, labels, 0.1).item() ==
        doctest::Approx(cross_entropy_by_hand(copy_of(logits), contiguous_labels, 0.1))
            .epsilon(1e-13));
}

TEST_CASE("mse_loss matches torch.nn.functional.mse_loss and has exact derivatives") {
  const Tensor prediction({2, 3}, {0.5, -1.25, 2.0, 3.5, 0.0, -0.75});
  const Tensor target({2, 3}, {1.0, -1.0, 0.5, 3.0, 0.25, -2.0});
  // torch.nn.functional.mse_loss(prediction, target) in float64, torch 1.13.
  CHECK(soda::nn::mse_loss(prediction, target).item() ==
        doctest::Approx(0.7395833333333334).epsilon(1e-15));
  CHECK(soda::nn::mse_loss(prediction.to<float>(), target.to<float>()).item() ==
        doctest::Approx(0.7395833333333334).epsilon(1e-6));
  SODA_CHECK_OP([](const Params& q) { return soda::nn::mse_loss(q[0], q[1]); },
                {normal({3, 4}, 61), normal({3, 4}, 62)});
}

TEST_CASE("count_correct counts rows whose first largest logit is at the label") {
  const Tensor logits({4, 3}, {0.1, 0.9, 0.3,   //
                               2.0, -1.0, 0.5,  //
                               0.7, 0.7, 0.1,   // a tie: the first largest (0) counts
                               -3.0, -2.0, -1.0});
  CHECK(soda::nn::count_correct(logits, Index({4}, {1, 0, 0, 2})) == 4);
  CHECK(soda::nn::count_correct(logits, Index({4}, {1, 0, 1, 2})) == 3);
  CHECK(soda::nn::count_correct(logits, Index({4}, {0, 1, 2, 0})) == 0);
  // Strided logits read the same values.
  const auto transposed = soda::transpose(copy_of(soda::transpose(logits, 0, 1)), 0, 1);
  REQUIRE_FALSE(transposed.is_contiguous());
  CHECK(soda::nn::count_correct(transposed, Index({4}, {1, 0, 1, 2})) == 3);
  CHECK(soda::nn::count_correct(logits.to<float>(), Index({4}, {1, 0, 0, 2})) == 4);
}

TEST_CASE("cross_entropy and count_correct reject bad shapes and labels, naming op and shapes") {
  const auto logits = soda::zeros<double>({3, 4});
  const auto labels = example_labels();
  using Check = std::function<void(const Tensor&, const Index&)>;
  const std::vector<std::pair<std::string, Check>> ops{
      {"cross_entropy",
       [](const Tensor& x, const Index& y) { (void)soda::nn::cross_entropy(x, y); }},
      {"count_correct",
       [](const Tensor& x, const Index& y) { (void)soda::nn::count_correct(x, y); }}};
  for (const auto& [name, call] : ops) {
    INFO("op " << name);
    auto message = message_of<soda::ShapeError>([&] { call(soda::zeros<double>({4}), labels); });
    CHECK(contains(message, name + ": logits must have shape [N, C], got [4]"));
    message = message_of<soda::ShapeError>([&] { call(soda::zeros<double>({3, 4, 2}), labels); });
    CHECK(contains(message, "[3, 4, 2]"));
    message = message_of<soda::ShapeError>([&] { call(logits, Index({3, 1}, {3, 1, 2})); });
    CHECK(contains(message, name + ": labels must have shape [N]"));
    CHECK(contains(message, "[3, 1]"));
    message = message_of<soda::ShapeError>([&] { call(logits, Index({2}, {0, 1})); });
    CHECK(contains(message, name + ": logits [3, 4] and labels [2] disagree on the batch size"));
    message = message_of<soda::IndexError>([&] { call(logits, Index({3}, {0, 4, 1})); });
    CHECK(contains(message, name + ": label 4 at position 1 is outside [0, 4)"));
    message = message_of<soda::IndexError>([&] { call(logits, Index({3}, {0, 1, -1})); });
    CHECK(contains(message, name + ": label -1 at position 2 is outside [0, 4)"));
    message = message_of<soda::ValueError>([&] {
      call(soda::zeros<double>({0, 4}), Index({0}, std::vector<std::int64_t>{}));
    });
    CHECK(contains(message, name + ": the batch is empty"));
  }
}

TEST_CASE("cross_entropy rejects label_smoothing outside [0, 1]") {
  for (const double smoothing : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    INFO("label_smoothing " << smoothing);
    const auto message = message_of<soda::ValueError>([&] {
      (void)soda::nn::cross_entropy(example_logits<double>(), example_labels(), smoothing);
    });
    CHECK(contains(message, "cross_entropy: label_smoothing"));
    CHECK(contains(message, "must lie in [0, 1]"));
  }
}

TEST_CASE("mse_loss rejects shapes that differ and empty inputs") {
  auto message = message_of<soda::ShapeError>([] {
    (void)soda::nn::mse_loss(soda::zeros<double>({4}), soda::zeros<double>({4, 1}));
  });
  CHECK(contains(message, "mse_loss: prediction [4] and target [4, 1] must have the same shape"));
  message = message_of<soda::ValueError>([] {
    (void)soda::nn::mse_loss(soda::zeros<double>({0, 2}), soda::zeros<double>({0, 2}));
  });
  CHECK(contains(message, "mse_loss: prediction of shape [0, 2] is empty"));
}
