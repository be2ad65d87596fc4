// soda/nn/batch_norm.hpp: batch_norm and BatchNorm1d/2d against a naive per-channel loop and
// against numbers printed by PyTorch, running statistics (momentum and cumulative), exact
// gradients and H·v through batch statistics (train) and running ones (eval), names, errors.
#include <doctest/doctest.h>
#include <soda/nn/batch_norm.hpp>
#include <soda/soda.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "../autodiff/checks.hpp"

using namespace soda_test;
using soda::Shape;
using soda::nn::BatchNorm1d;
using soda::nn::BatchNorm2d;
using soda::nn::BatchNormOptions;

namespace {

// The oracle: batch normalisation by loops over x viewed as [N, C, S].
struct NaiveBatchNorm {
  Tensor y;
  std::vector<double> mean, biased_var, unbiased_var;
};

NaiveBatchNorm naive_batch_norm(const Tensor& x, const std::vector<double>& weight,
                                const std::vector<double>& bias, double eps,
                                const std::vector<double>* use_mean = nullptr,
                                const std::vector<double>* use_var = nullptr) {
  const auto xc = copy_of(x);
  const std::int64_t n = x.shape()[0], c = x.shape()[1], s = x.numel() / (n * c);
  NaiveBatchNorm out{soda::zeros<double>(x.shape()), {}, {}, {}};
  for (std::int64_t ch = 0; ch < c; ++ch) {
    auto at = [&](std::int64_t i, std::int64_t k) -> double& {
      return xc.data()[(i * c + ch) * s + k];
    };
    double sum = 0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < s; ++k) sum += at(i, k);
    const double mean = sum / static_cast<double>(n * s);
    double squares = 0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < s; ++k) squares += (at(i, k) - mean) * (at(i, k) - mean);
    out.mean.push_back(mean);
    out.biased_var.push_back(squares / static_cast<double>(n * s));
    out.unbiased_var.push_back(squares / static_cast<double>(n * s - 1));
    const double m = use_mean ? (*use_mean)[ch] : mean;
    const double v = use_var ? (*use_var)[ch] : out.biased_var.back();
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t k = 0; k < s; ++k) {
        const double w = weight.empty() ? 1.0 : weight[ch], b = bias.empty() ? 0.0 : bias[ch];
        out.y.data()[(i * c + ch) * s + k] = (at(i, k) - m) / std::sqrt(v + eps) * w + b;
      }
    }
  }
  return out;
}

std::vector<double> values_of(const Tensor& t) {
  const auto c = copy_of(t);
  return {c.data(), c.data() + c.numel()};
}

Tensor channel_tensor(const std::vector<double>& values) {
  return Tensor({static_cast<std::int64_t>(values.size())}, values);
}

void check_close(const std::vector<double>& expected, const Tensor& actual, double tolerance) {
  REQUIRE(static_cast<std::int64_t>(expected.size()) == actual.numel());
  CHECK(relative_error(Tensor(actual.shape(), expected), actual) < tolerance);
}

// The inputs the PyTorch reference numbers were printed for (see the comment at their use).
Tensor pattern(const Shape& shape, double (*f)(double)) {
  auto t = soda::zeros<double>(shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = f(static_cast<double>(i));
  return t;
}
}  // namespace

TEST_SUITE("nn/batch_norm") {
  TEST_CASE("in training each channel is normalised with its batch mean and biased variance") {
    const std::vector<double> weight{0.5, 1.5, -2.0}, bias{0.1, -0.2, 0.3};
    for (const Shape& shape : {Shape{6, 3}, Shape{4, 3, 5}, Shape{2, 3, 4, 5}}) {
      INFO("input shape " << soda::to_string(shape));
      const auto x = normal(shape, 1) * 2.0 + 0.7;
      const auto expected = naive_batch_norm(x, weight, bias, 1e-5);
      const auto y = soda::nn::batch_norm(x, channel_tensor(weight), channel_tensor(bias), Tensor{},
                                          Tensor{}, true);
      CHECK(y.shape() == shape);
      CHECK(relative_error(expected.y, y) < 1e-13);
      const auto plain = naive_batch_norm(x, {}, {}, 1e-5);
      CHECK(relative_error(plain.y, soda::nn::batch_norm(x, Tensor{}, Tensor{}, Tensor{}, Tensor{},
                                                         true)) < 1e-13);
    }
  }

  TEST_CASE("running statistics move by momentum towards the batch mean and unbiased variance") {
    const auto x = normal({4, 3, 2, 3}, 2) * 3.0 - 1.0;
    const auto expected = naive_batch_norm(x, {}, {}, 1e-5);
    const std::vector<double> start_mean{0.5, -0.5, 2.0}, start_var{1.0, 2.0, 0.5};
    const auto running_mean = channel_tensor(start_mean), running_var = channel_tensor(start_var);
    soda::nn::batch_norm(x, Tensor{}, Tensor{}, running_mean, running_var, true, 0.3);
    std::vector<double> mean, var;
    for (std::size_t c = 0; c < 3; ++c) {
      mean.push_back(0.7 * start_mean[c] + 0.3 * expected.mean[c]);
      var.push_back(0.7 * start_var[c] + 0.3 * expected.unbiased_var[c]);
    }
    check_close(mean, running_mean, 1e-15);
    check_close(var, running_var, 1e-15);
  }

  TEST_CASE("evaluation normalises with the running statistics and leaves them unchanged") {
    const std::vector<double> weight{0.5, 1.5, -2.0}, bias{0.1, -0.2, 0.3};
    const std::vector<double> mean{0.3, -1.0, 2.0}, var{0.5, 2.0, 1.5};
    for (const Shape& shape : {Shape{5, 3}, Shape{2, 3, 4}, Shape{2, 3, 3, 2}}) {
      INFO("input shape " << soda::to_string(shape));
      const auto x = normal(shape, 3);
      const auto running_mean = channel_tensor(mean), running_var = channel_tensor(var);
      const auto y = soda::nn::batch_norm(x, channel_tensor(weight), channel_tensor(bias),
                                          running_mean, running_var, false, 0.1, 1e-3);
      CHECK(relative_error(naive_batch_norm(x, weight, bias, 1e-3, &mean, &var).y, y) < 1e-14);
      CHECK(values_of(running_mean) == mean);
      CHECK(values_of(running_var) == var);
    }
  }

  TEST_CASE("BatchNorm2d matches PyTorch over two training steps and in evaluation") {
    // x1[i] = 1.5 sin(0.7 i + 0.3) + 0.1 i and x2[i] = 2 cos(0.3 i) − 0.5 over [2, 3, 2, 2];
    // weight {0.5, 1.5, −2}, bias {0.1, −0.2, 0.3}. Numbers printed by torch 1.13 in float64:
    // bn = torch.nn.BatchNorm2d(3, momentum=m); y1 = bn(x1); y2 = bn(x2); bn.eval(); bn(x1).
    const auto x1 =
        pattern({2, 3, 2, 2}, [](double i) { return 1.5 * std::sin(0.7 * i + 0.3) + 0.1 * i; });
    const auto x2 = pattern({2, 3, 2, 2}, [](double i) { return 2.0 * std::cos(0.3 * i) - 0.5; });
    const std::vector<double> y1{
        -0.38553187346726603, 0.29015473738187253, 0.5293410882072737,   0.25411641900479787,
        -0.4473434256285129,  -1.4238169074369804, -1.9214055051884584,  -1.653907300939226,
        4.036359874418773,    1.7366588420775853,  -0.1150094480856728,  -0.7436508923373929,
        0.9021064082255887,   0.27174036473869995, -0.37147755343886146, -0.6904495906521054,
        -0.6421030324512864,  0.3295738384044049,  1.581627232680407,    2.577375100559652,
        -2.5704038529179054,  -1.7453644796131935, 0.014864497232057605, 1.7865454592257506};
    const std::vector<double> y2{
        0.6799676584138425,  0.6500278802753829,   0.5628829770729324,   0.42631734347015215,
        0.37466483788799154, -0.6868900793219286,  -1.771446438725863,   -2.7821240508195526,
        1.9280752370062393,  2.289521874572823,    2.475842467581295,    2.4703935523677396,
        -0.5915070880969083, -0.47699535810928717, -0.31901512385908015, -0.13167828916703445,
        -0.6258739688674307, 0.4315246002034216,   1.3660170746781342,   2.094128024965228,
        -1.7531378246928957, -1.8392030753968234,  -1.7315876672581616,  -1.4399045641802175};
    struct Reference {
      std::optional<double> momentum;
      std::vector<double> running_mean, running_var, y_eval;
    };
    const std::vector<Reference> references{
        {0.1,
         {0.07628720445895683, 0.05257679451320684, 0.13916255511295744},
         {1.1118898909280786, 1.0756456845812628, 1.2978554480845528},
         {0.2740183578420573,  0.7097486758964644,  0.8639928817842357,  0.6865086298803761,
          0.3926802114246028,  -0.8802810210873989, -1.5289530090911465, -1.1802340217150604,
          0.12440480073400359, -1.8560875537171735, -3.450736092842559,  -3.9921193233245655,
          1.104378215522184,   0.6978737914163671,  0.28308157329976663, 0.07738593719603376,
          0.13878552430467167, 1.4054937454404524,  3.0377095317786593,  4.3357974540632584,
          -5.56531089084655,   -4.8547906327903485, -3.3388892257381335, -1.8131254197432665}},
        {std::nullopt,
         {0.43661593128586873, 0.2971498425207928, 0.7994162993629572},
         {1.5358713019449854, 1.4326865657469694, 2.494280786613309},
         {0.1026887526149793,   0.4734307593392762,  0.6046697483354188,  0.4536569200185665,
          0.007052173010457499, -1.0959457788950953, -1.6580083586130452, -1.3558496447083193,
          1.0094533126097016,   -0.4191592483139016, -1.569446412075412,  -1.9599689412847308,
          0.8092020870880523,   0.46332699028912544, 0.11040020749186087, -0.06461633311527341,
          -0.2129429947452462,  0.8846368355670796,  2.298922379712258,   3.423692155181244,
          -3.0947782875817573,  -2.5822500957064314, -1.4887665554295555, -0.38816885135464935}}};
    for (const auto& ref : references) {
      INFO("momentum " << (ref.momentum ? std::to_string(*ref.momentum) : "None"));
      BatchNorm2d<double> bn(3, {.momentum = ref.momentum});
      overwrite_values({bn.weight(), bn.bias()},
                       {channel_tensor({0.5, 1.5, -2.0}), channel_tensor({0.1, -0.2, 0.3})});
      check_close(y1, bn(x1), 1e-13);
      check_close(y2, bn(x2), 1e-13);
      check_close(ref.running_mean, bn.running_mean(), 1e-14);
      check_close(ref.running_var, bn.running_var(), 1e-14);
      CHECK(bn.num_batches_tracked().item() == 2.0);
      bn.eval();
      check_close(ref.y_eval, bn(x1), 1e-13);
      CHECK(bn.num_batches_tracked().item() == 2.0);
    }
  }

  TEST_CASE("BatchNorm1d without affine matches PyTorch on [N, C, L] and then on [N, C]") {
    // Printed by torch 1.13 in float64: b = torch.nn.BatchNorm1d(3, affine=False);
    // b(x3) with x3[i] = sin(1.3 i)·(1 + i mod 3) over [2, 3, 4]; then b.eval(); b(x4) with
    // x4[i] = cos(0.9 i) + 0.25 i over [4, 3].
    const auto x3 =
        pattern({2, 3, 4}, [](double i) { return std::sin(1.3 * i) * (1.0 + std::fmod(i, 3.0)); });
    const auto x4 = pattern({4, 3}, [](double i) { return std::cos(0.9 * i) + 0.25 * i; });
    BatchNorm1d<double> bn(3, {.affine = false});
    check_close(
        {0.016583025048344493, 1.4892866542666294,   1.198422512229554,   -0.5090083372652937,
         -1.5915469348220523,  0.5478254732244253,   0.8610536804316579,  0.5414726015813681,
         -1.2533885978068569,  -0.38608616276355884, 0.42117342351343035, 1.4892360752421048,
         0.09892843874757326,  -1.403491368233175,   -1.3700579263370798, 0.47933700154344766,
         1.622917925935849,    -0.3135658009566154,  -0.8997928545012056, -0.768364090893427,
         1.1503547538103054,   0.41462081652432836,  -0.3245694281071788, -1.5113408804125743},
        bn(x3), 1e-13);
    check_close({-0.0021699830444218055, 0.00276542518139474, 0.00043531514469344893},
                bn.running_mean(), 1e-15);
    check_close({1.0956926787082335, 1.045300571084795, 1.3502582301646933}, bn.running_var(),
                1e-15);
    bn.eval();
    check_close({0.9574035399636566, 0.8498052438076136, 0.23438911051473896, -0.14511676381159455,
                 0.09827438871186484, 0.8939411060088208, 2.0414102400035508, 2.6868951812797595,
                 2.2443137694847723, 1.9189014957328623, 1.5513474453837204, 1.6009955595767664},
                bn(x4), 1e-13);
  }

  TEST_CASE("num_batches_tracked is a scalar counting training batches only") {
    BatchNorm1d<double> bn(2);
    CHECK(bn.num_batches_tracked().shape() == Shape{});
    CHECK(bn.num_batches_tracked().item() == 0.0);
    for (int i = 1; i <= 3; ++i) {
      bn(normal({4, 2}, static_cast<std::uint64_t>(i)));
      CHECK(bn.num_batches_tracked().item() == static_cast<double>(i));
    }
    bn.eval();
    const auto mean = values_of(bn.running_mean()), var = values_of(bn.running_var());
    bn(normal({4, 2}, 9));
    CHECK(bn.num_batches_tracked().item() == 3.0);
    CHECK(values_of(bn.running_mean()) == mean);
    CHECK(values_of(bn.running_var()) == var);
  }

  TEST_CASE("the cumulative moving average (momentum = nullopt) is the mean of batch statistics") {
    BatchNorm1d<double> bn(2, {.momentum = std::nullopt});
    std::vector<double> mean_sum(2, 0.0), var_sum(2, 0.0);
    for (std::uint64_t i = 0; i < 4; ++i) {
      const auto x = normal({5, 2, 3}, 20 + i) + static_cast<double>(i);
      const auto stats = naive_batch_norm(x, {}, {}, 1e-5);
      for (std::size_t c = 0; c < 2; ++c) {
        mean_sum[c] += stats.mean[c];
        var_sum[c] += stats.unbiased_var[c];
      }
      bn(x);
    }
    check_close({mean_sum[0] / 4, mean_sum[1] / 4}, bn.running_mean(), 1e-14);
    check_close({var_sum[0] / 4, var_sum[1] / 4}, bn.running_var(), 1e-14);
  }

  TEST_CASE("a non-contiguous input gives the values of its contiguous copy") {
    const auto x = soda::permute(normal({3, 4, 5, 2}, 4), {3, 1, 0, 2});  // [2, 4, 3, 5]
    REQUIRE_FALSE(x.is_contiguous());
    BatchNorm2d<double> strided(4), contiguous(4);
    CHECK(relative_error(contiguous(copy_of(x)), strided(x)) < 1e-14);
    CHECK(relative_error(contiguous.running_var(), strided.running_var()) < 1e-14);
    strided.eval();
    contiguous.eval();
    CHECK(relative_error(contiguous(copy_of(x)), strided(x)) < 1e-14);
  }

  TEST_CASE("in float, a channel whose mean dwarfs its spread still normalises accurately") {
    // E[x²] − E[x]² would cancel to noise here: E[x²] ≈ 10⁸ carries an error of ~10 in float,
    // against a variance of 1. The inputs themselves are only known to 10⁴·ε ≈ 10⁻³, which bounds
    // how close to 0 the normalised mean can come.
    soda::Generator gen(5);
    const auto x = soda::randn<float>({64, 2, 8, 8}, gen, 1e4f, 1.0f);
    BatchNorm2d<float> bn(2);
    const auto y = bn(x).to<double>();
    const auto stats = naive_batch_norm(y, {}, {}, 0.0);
    for (std::size_t c = 0; c < 2; ++c) {
      CHECK(std::abs(stats.mean[c]) < 4 * 1e4 * std::numeric_limits<float>::epsilon());
      CHECK(stats.biased_var[c] == doctest::Approx(1.0).epsilon(1e-3));
    }
  }

  TEST_CASE("batch_norm passes SODA_CHECK_OP through batch statistics and running ones") {
    for (const Shape& shape : {Shape{5, 3}, Shape{3, 2, 4}, Shape{2, 3, 3, 2}}) {
      INFO("input shape " << soda::to_string(shape));
      const auto x = normal(shape, 6);
      const auto weight = normal({shape[1]}, 7), bias = normal({shape[1]}, 8);
      // Training: the running statistics (undefined here) play no part in the derivative.
      SODA_CHECK_OP(
          [](const Params& q) {
            return soda::nn::batch_norm(q[0], q[1], q[2], Tensor{}, Tensor{}, true);
          },
          {x, weight, bias});
      SODA_CHECK_OP(
          [](const Params& q) {
            return soda::nn::batch_norm(q[0], Tensor{}, Tensor{}, Tensor{}, Tensor{}, true);
          },
          {x});
      // Evaluation: an affine map of x with constant running statistics.
      const auto running_mean = normal({shape[1]}, 9);
      const auto running_var = soda::exp(normal({shape[1]}, 10));
      SODA_CHECK_OP(
          [&](const Params& q) {
            return soda::nn::batch_norm(q[0], q[1], q[2], running_mean, running_var, false);
          },
          {x, weight, bias});
    }
  }

  TEST_CASE("BatchNorm1d and BatchNorm2d have exact gradients and H·v in train and eval mode") {
    auto check_module = [](soda::nn::BatchNormBase<double>& bn, const Shape& shape) {
      // Non-trivial parameters and running statistics (a few training batches).
      overwrite_values(bn.parameters(),
                       {soda::exp(normal({shape[1]}, 11) * 0.3), normal({shape[1]}, 12)});
      for (std::uint64_t i = 0; i < 3; ++i) bn(normal(shape, 13 + i) * 2.0 + 1.0);
      const auto x = normal(shape, 16);
      const CurvedLoss loss(shape, 17);
      for (const bool training : {true, false}) {
        INFO(bn.type_name() << " on " << soda::to_string(shape) << ", training " << training);
        bn.train(training);
        auto f = [&] { return loss(bn(x)); };
        Params params = bn.parameters();
        params.push_back(x);
        check_closure_derivatives(f, params, 18, 1e-7, 1e-6);
      }
    };
    BatchNorm1d<double> bn1(3), bn1_seq(2);
    BatchNorm2d<double> bn2(3);
    check_module(bn1, {6, 3});
    check_module(bn1_seq, {3, 2, 4});
    check_module(bn2, {2, 3, 3, 2});
  }

  TEST_CASE("state-dict names and order are PyTorch's, with and without affine and tracking") {
    BatchNorm2d<double> bn(4);
    CHECK(bn.type_name() == "BatchNorm2d");
    CHECK(names_of(bn.state_dict()) == std::vector<std::string>{"weight", "bias", "running_mean",
                                                                "running_var",
                                                                "num_batches_tracked"});
    CHECK(names_of(bn.named_parameters()) == std::vector<std::string>{"weight", "bias"});
    CHECK(values_of(bn.weight()) == std::vector<double>(4, 1.0));
    CHECK(values_of(bn.bias()) == std::vector<double>(4, 0.0));
    CHECK(values_of(bn.running_mean()) == std::vector<double>(4, 0.0));
    CHECK(values_of(bn.running_var()) == std::vector<double>(4, 1.0));
    CHECK(bn.weight().requires_grad());
    CHECK_FALSE(bn.running_mean().requires_grad());
    CHECK(bn.num_features() == 4);
    CHECK(bn.options().eps == 1e-5);
    CHECK(bn.options().momentum == 0.1);

    BatchNorm1d<double> plain(4, {.affine = false});
    CHECK(names_of(plain.state_dict()) ==
          std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});
    CHECK(plain.parameters().empty());
    CHECK_FALSE(plain.weight().defined());

    BatchNorm1d<double> untracked(4, {.track_running_stats = false});
    CHECK(names_of(untracked.state_dict()) == std::vector<std::string>{"weight", "bias"});
  }

  TEST_CASE("without running statistics evaluation uses the batch's, as PyTorch") {
    BatchNorm1d<double> bn(3, {.track_running_stats = false});
    bn.eval();
    const auto x = normal({5, 3}, 19);
    CHECK(relative_error(naive_batch_norm(x, {}, {}, 1e-5).y, bn(x)) < 1e-13);
  }

  TEST_CASE("module errors name the module and the input shape; rejected batches change nothing") {
    BatchNorm1d<double> bn1(3);
    BatchNorm2d<double> bn2(3);
    CHECK_THROWS_WITH_AS(bn1(normal({2, 3, 4, 5}, 1)),
                         "BatchNorm1d(3): expected an input [N, 3] or [N, 3, L], got shape "
                         "[2, 3, 4, 5]",
                         soda::ShapeError);
    CHECK_THROWS_AS(bn1(normal({3}, 1)), soda::ShapeError);
    CHECK_THROWS_WITH_AS(bn1(normal({2, 4}, 1)),
                         "BatchNorm1d(3): input of shape [2, 4] has 4 channels; expected [N, 3] "
                         "or [N, 3, L]",
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(bn2(normal({2, 3, 4}, 1)),
                         "BatchNorm2d(3): expected an input [N, 3, H, W], got shape [2, 3, 4]",
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(bn2(normal({2, 5, 4, 4}, 1)),
                         "BatchNorm2d(3): input of shape [2, 5, 4, 4] has 5 channels; expected "
                         "[N, 3, H, W]",
                         soda::ShapeError);
    // PyTorch: "Expected more than 1 value per channel when training".
    CHECK_THROWS_WITH_AS(bn1(normal({1, 3}, 1)),
                         "batch_norm: training needs more than one value per channel, got input "
                         "of shape [1, 3]",
                         soda::ValueError);
    CHECK(bn1.num_batches_tracked().item() == 0.0);
    CHECK(values_of(bn1.running_mean()) == std::vector<double>(3, 0.0));
    bn1.eval();
    CHECK(bn1(normal({1, 3}, 1)).shape() == Shape{1, 3});  // evaluation needs no batch statistics

    CHECK_THROWS_WITH_AS(BatchNorm2d<double>(0),
                         "BatchNorm2d: num_features must be positive, got 0", soda::ValueError);
    CHECK_THROWS_WITH_AS(BatchNorm1d<double>(3, {.eps = -1.0}),
                         doctest::Contains("BatchNorm1d: eps must be non-negative"),
                         soda::ValueError);
  }

  TEST_CASE("batch_norm errors say which argument does not fit") {
    const auto x = normal({4, 3, 2}, 1);
    const auto three = soda::ones<double>({3}), four = soda::ones<double>({4});
    CHECK_THROWS_WITH_AS(
        soda::nn::batch_norm(normal({4}, 1), Tensor{}, Tensor{}, Tensor{}, Tensor{}, true),
        "batch_norm: expects an input [N, C, ...] of rank >= 2, got shape [4]", soda::ShapeError);
    CHECK_THROWS_WITH_AS(soda::nn::batch_norm(x, four, Tensor{}, Tensor{}, Tensor{}, true),
                         "batch_norm: weight of shape [4] does not match input of shape [4, 3, 2] "
                         "(expected [3], one value per channel)",
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(soda::nn::batch_norm(x, three, four, Tensor{}, Tensor{}, true),
                         doctest::Contains("batch_norm: bias of shape [4]"), soda::ShapeError);
    CHECK_THROWS_WITH_AS(soda::nn::batch_norm(x, three, three, four, three, true),
                         doctest::Contains("batch_norm: running_mean of shape [4]"),
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(soda::nn::batch_norm(x, three, three, three, four, false),
                         doctest::Contains("batch_norm: running_var of shape [4]"),
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(soda::nn::batch_norm(x, three, three, three, Tensor{}, true),
                         "batch_norm: give both running_mean and running_var, or neither",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(soda::nn::batch_norm(x, three, three, Tensor{}, Tensor{}, false),
                         doctest::Contains("batch_norm: evaluation mode normalises with "
                                           "running_mean and running_var, which are undefined"),
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(
        soda::nn::batch_norm(x, Tensor{}, Tensor{}, Tensor{}, Tensor{}, true, 0.1, -1e-5),
        doctest::Contains("batch_norm: eps must be non-negative"), soda::ValueError);
  }
}
