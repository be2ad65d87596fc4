// Dropout (nn/dropout.hpp): masks replay from (seed, offset) whatever the thread count, drop at
// rate p and scale the kept elements by 1/(1 − p), vanish in eval mode and at p = 0, and let
// gradients and Hessian-vector products through the kept elements.
#include <doctest/doctest.h>
#include <soda/nn/dropout.hpp>
#include <soda/soda.hpp>

#include <functional>
#include <limits>
#include <string>

#include "../autodiff/checks.hpp"

using namespace soda_test;

namespace {

template <class T>
bool identical(const soda::Tensor<T>& a, const soda::Tensor<T>& b) {
  return a.shape() == b.shape() && soda::max_abs_difference(a, b) == 0;
}

template <class T>
std::int64_t count_zeros(const soda::Tensor<T>& x) {
  const auto values = x.template to<T>();
  std::int64_t zeros = 0;
  for (std::int64_t i = 0; i < values.numel(); ++i) zeros += values.data()[i] == T(0) ? 1 : 0;
  return zeros;
}

// Restores OpenMP's thread count when a test changes it.
class ThreadCountScope {
 public:
  ThreadCountScope() : saved_(soda::max_threads()) {}
  ~ThreadCountScope() { soda::set_num_threads(saved_); }
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int saved_;
};

}  // namespace

TEST_CASE("Dropout with the same seed draws the same masks; each forward draws a new one") {
  const auto x = soda::ones<float>({1001});
  soda::nn::Dropout<float> a(0.5, 42), b(0.5, 42), other_seed(0.5, 43);
  const auto first = a(x);
  CHECK(identical(first, b(x)));
  CHECK_FALSE(identical(first, other_seed(x)));
  // Two values per Philox block: 1001 elements take 501 blocks of the counter.
  CHECK(a.seed() == 42);
  CHECK(a.offset() == 501);
  const auto second = a(x);
  CHECK_FALSE(identical(first, second));
  CHECK(a.offset() == 1002);
  CHECK(identical(second, b(x)));
}

TEST_CASE("restoring the generator state replays the masks, as a checkpoint resume does") {
  const auto x = soda::ones<double>({64, 8});
  soda::nn::Dropout<double> dropout(0.3, 7);
  (void)dropout(x);
  const auto seed = dropout.seed();
  const auto offset = dropout.offset();
  const auto third = copy_of(dropout(x));
  dropout.set_offset(offset);
  CHECK(identical(third, dropout(x)));

  soda::nn::Dropout<double> resumed(0.3, 999);
  resumed.set_generator_state(seed, offset);
  CHECK(resumed.seed() == 7);
  CHECK(resumed.offset() == offset);
  CHECK(identical(third, resumed(x)));
}

TEST_CASE("Dropout drops element i exactly when soda::rand's element i is below p") {
  // The mask is the uniform stream of the module's generator: the same numbers soda::rand draws
  // from a generator with that seed and offset.
  const double p = 0.4;
  soda::nn::Dropout<double> dropout(p, 11);
  const auto y = dropout(soda::ones<double>({3, 333}));
  soda::Generator gen(11);
  const auto uniform = soda::rand<double>({3, 333}, gen);
  for (std::int64_t i = 0; i < y.numel(); ++i) {
    CHECK((y.data()[i] == 0) == (uniform.data()[i] < p));
  }
}

TEST_CASE("Dropout masks do not depend on the thread count") {
  ThreadCountScope restore_threads;
  const auto x = soda::ones<float>({200001});  // large enough to be filled in parallel
  soda::set_num_threads(1);
  const auto serial = soda::nn::Dropout<float>(0.5, 3)(x);
  soda::set_num_threads(4);
  const auto parallel = soda::nn::Dropout<float>(0.5, 3)(x);
  CHECK(identical(serial, parallel));
}

TEST_CASE("Dropout drops a fraction p and scales the kept elements by 1/(1 − p), as PyTorch") {
  const std::int64_t n = 200000;
  for (const double p : {0.1, 0.3, 0.5, 0.9}) {
    INFO("p " << p);
    soda::nn::Dropout<float> dropout(p, 5);
    const auto y = dropout(soda::full<float>({n}, 2.0f));
    // The dropped fraction has standard deviation sqrt(p(1 − p)/n) <= 0.0012: allow 5 of them.
    const double dropped = static_cast<double>(count_zeros(y)) / static_cast<double>(n);
    CHECK(std::abs(dropped - p) < 0.006);
    const float kept_value = 2.0f * static_cast<float>(1.0 / (1.0 - p));
    for (std::int64_t i = 0; i < n; ++i) {
      const float v = y.data()[i];
      if (v != 0.0f && v != kept_value) {
        FAIL("element " << i << " is " << v << ", neither 0 nor " << kept_value);
        break;
      }
    }
    // Inverted dropout keeps the expected value: the mean stays near 2.
    CHECK(soda::mean(y).item() == doctest::Approx(2.0).epsilon(0.02));
  }
}

TEST_CASE("Dropout is the identity in eval mode and at p = 0, and draws nothing there") {
  const auto x = normal({10, 10}, 1);
  soda::nn::Dropout<double> dropout(0.5, 9);
  dropout.eval();
  CHECK_FALSE(dropout.is_training());
  CHECK(identical(dropout(x), x));
  CHECK(dropout.offset() == 0);
  dropout.train();
  CHECK_FALSE(identical(dropout(x), x));

  soda::nn::Dropout<double> no_drop(0.0, 9);
  CHECK(identical(no_drop(x), x));
  CHECK(no_drop.offset() == 0);
  CHECK(no_drop.type_name() == "Dropout");
  CHECK(no_drop.state_dict().empty());
}

TEST_CASE("Dropout with p = 1 zeroes everything, as PyTorch") {
  soda::nn::Dropout<double> dropout(1.0, 2);
  const auto y = dropout(normal({7, 3}, 3));
  CHECK(count_zeros(y) == 21);
  CHECK(dropout.p() == 1.0);
}

TEST_CASE("the gradient through Dropout is the output gradient times the mask") {
  const auto x = normal({6, 5}, 4);
  const auto w = normal({6, 5}, 5);
  const double p = 0.35;
  soda::nn::Dropout<double> dropout(p, 17);
  const auto gradient =
      soda::grad([&](const Params& q) { return soda::sum(dropout(q[0]) * w); }, Params{x})[0];
  // Replay the mask the forward used: dropout of ones from the same generator state.
  dropout.set_offset(0);
  const auto mask = dropout(soda::ones<double>({6, 5}));
  REQUIRE(count_zeros(mask) > 0);
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    CHECK(gradient.data()[i] == doctest::Approx(w.data()[i] * mask.data()[i]).epsilon(1e-15));
  }
}

TEST_CASE("Dropout with a fixed mask has exact first and second derivatives") {
  // Central differences evaluate the op many times, so each call replays the same mask.
  soda::nn::Dropout<double> dropout(0.5, 23);
  SODA_CHECK_OP(
      [&](const Params& q) {
        dropout.set_offset(0);
        return dropout(soda::tanh(q[0]) * q[0]);
      },
      {normal({4, 6}, 6)});
}

TEST_CASE("Dropout rejects a probability outside [0, 1]") {
  for (const double p : {-0.01, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    INFO("p " << p);
    const auto message = message_of<soda::ValueError>([p] { soda::nn::Dropout<float> d(p); });
    CHECK(contains(message, "Dropout: probability p ="));
    CHECK(contains(message, "must lie in [0, 1]"));
  }
}
