// Flatten (nn/flatten.hpp): merges start_dim..end_dim into one axis in row-major order, as
// torch.nn.Flatten, on contiguous and strided inputs, with exact derivatives; bad axes are errors.
#include <doctest/doctest.h>
#include <soda/nn/flatten.hpp>
#include <soda/soda.hpp>

#include <functional>
#include <string>

#include "../autodiff/checks.hpp"

using namespace soda_test;

TEST_CASE("Flatten keeps the batch axis and merges the rest by default, as torch.nn.Flatten") {
  const auto x = soda::arange<double>(120.0);
  const auto images = soda::reshape(x, {2, 3, 4, 5});
  soda::nn::Flatten<double> flatten;
  const auto y = flatten(images);
  CHECK(y.shape() == soda::Shape{2, 60});
  // Row-major order: element [n, c, h, w] lands at [n, c·20 + h·5 + w].
  CHECK(y.at({1, 0}) == 60);
  CHECK(y.at({1, 27}) == 87);
  CHECK(flatten.start_dim() == 1);
  CHECK(flatten.end_dim() == -1);
  CHECK(flatten.type_name() == "Flatten");
  CHECK(flatten.state_dict().empty());
}

TEST_CASE("Flatten merges exactly the axes from start_dim to end_dim, negative axes included") {
  const auto x = soda::reshape(soda::arange<double>(120.0), {2, 3, 4, 5});
  CHECK(soda::nn::Flatten<double>(0)(x).shape() == soda::Shape{120});
  CHECK(soda::nn::Flatten<double>(1, 2)(x).shape() == soda::Shape{2, 12, 5});
  CHECK(soda::nn::Flatten<double>(-3, -2)(x).shape() == soda::Shape{2, 12, 5});
  CHECK(soda::nn::Flatten<double>(2, 2)(x).shape() == soda::Shape{2, 3, 4, 5});
  CHECK(soda::nn::Flatten<double>(0, 1)(x).shape() == soda::Shape{6, 4, 5});
  CHECK(soda::nn::Flatten<double>(0)(soda::arange<double>(7.0)).shape() == soda::Shape{7});
  const auto middle = soda::nn::Flatten<double>(1, 2)(x);
  CHECK(middle.at({1, 7, 3}) == x.at({1, 1, 3, 3}));
}

TEST_CASE("Flatten of a strided input reads its elements in logical order") {
  const auto base = soda::reshape(soda::arange<double>(24.0), {4, 3, 2});
  const auto strided = soda::permute(base, {2, 0, 1});  // [2, 4, 3]
  REQUIRE_FALSE(strided.is_contiguous());
  const auto y = soda::nn::Flatten<double>()(strided);
  REQUIRE(y.shape() == soda::Shape{2, 12});
  for (std::int64_t n = 0; n < 2; ++n) {
    for (std::int64_t i = 0; i < 4; ++i) {
      for (std::int64_t j = 0; j < 3; ++j) CHECK(y.at({n, i * 3 + j}) == base.at({i, j, n}));
    }
  }
}

TEST_CASE("Flatten passes exact first and second derivatives") {
  soda::nn::Flatten<double> flatten;
  SODA_CHECK_OP([&](const Params& q) { return flatten(q[0] * q[0]); }, {normal({2, 3, 2, 2}, 1)});
  SODA_CHECK_OP([&](const Params& q) { return flatten(soda::transpose(q[0], 1, 3)); },
                {normal({2, 3, 2, 2}, 2)});
}

TEST_CASE("Flatten rejects axes outside the input and start_dim after end_dim") {
  auto message = message_of<soda::ValueError>(
      [] { (void)soda::nn::Flatten<double>()(soda::zeros<double>({5})); });
  CHECK(contains(message, "Flatten: start_dim 1 and end_dim -1"));
  CHECK(contains(message, "shape [5]"));
  message = message_of<soda::ValueError>([] {
    (void)soda::nn::Flatten<double>(0, 3)(soda::zeros<double>({2, 3, 4}));
  });
  CHECK(contains(message, "end_dim 3"));
  message = message_of<soda::ValueError>([] {
    (void)soda::nn::Flatten<double>(-4)(soda::zeros<double>({2, 3, 4}));
  });
  CHECK(contains(message, "start_dim -4"));
  message = message_of<soda::ValueError>([] {
    (void)soda::nn::Flatten<double>(2, 1)(soda::zeros<double>({2, 3, 4}));
  });
  CHECK(contains(message, "Flatten: start_dim 2 comes after end_dim 1"));
  CHECK(contains(message, "[2, 3, 4]"));
}
