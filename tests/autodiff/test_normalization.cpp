// normalize_channels and channel_inverse_std (autodiff/ops/normalization.hpp): values against a
// direct computation, exact first and second derivatives in every form, and errors.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "checks.hpp"

using namespace soda_test;

namespace {

// (x − mean) / √(var + eps) per channel, by loops over [N, C, S].
Tensor reference_normalize(const Tensor& x, double eps) {
  const auto c = copy_of(x);
  const auto batch = x.size(0), channels = x.size(1), spatial = x.numel() / (batch * channels);
  auto out = soda::zeros<double>(x.shape());
  for (std::int64_t ch = 0; ch < channels; ++ch) {
    double total = 0, squares = 0;
    for (std::int64_t n = 0; n < batch; ++n)
      for (std::int64_t s = 0; s < spatial; ++s)
        total += c.data()[(n * channels + ch) * spatial + s];
    const double mu = total / static_cast<double>(batch * spatial);
    for (std::int64_t n = 0; n < batch; ++n)
      for (std::int64_t s = 0; s < spatial; ++s) {
        const double d = c.data()[(n * channels + ch) * spatial + s] - mu;
        squares += d * d;
      }
    const double r = 1 / std::sqrt(squares / static_cast<double>(batch * spatial) + eps);
    for (std::int64_t n = 0; n < batch; ++n)
      for (std::int64_t s = 0; s < spatial; ++s) {
        const auto i = (n * channels + ch) * spatial + s;
        out.data()[i] = (c.data()[i] - mu) * r;
      }
  }
  return out;
}

}  // namespace

TEST_CASE("normalize_channels matches the per-channel definition for 2-D, 3-D and 4-D inputs") {
  std::uint64_t seed = 1;
  for (const soda::Shape& shape :
       {soda::Shape{6, 3}, soda::Shape{3, 2, 5}, soda::Shape{2, 3, 4, 5}}) {
    const auto x = normal(shape, seed++) * 3.0 + 2.0;
    CHECK(relative_error(reference_normalize(x, 1e-5), soda::normalize_channels(x, 1e-5)) < 1e-12);
  }
}

TEST_CASE("normalize_channels and channel_inverse_std have exact derivatives") {
  std::uint64_t seed = 10;
  for (const soda::Shape& shape : {soda::Shape{5, 3}, soda::Shape{2, 3, 3, 2}}) {
    CAPTURE(soda::to_string(shape));
    const Params p{normal(shape, seed++)};
    SODA_CHECK_OP([](const Params& q) { return soda::normalize_channels(q[0], 1e-3); }, p);
    SODA_CHECK_OP([](const Params& q) { return soda::channel_inverse_std(q[0], 1e-3); }, p);
    // Scaled and shifted as BatchNorm does, with the scale and shift differentiated too.
    const Params affine{normal(shape, seed++), normal({1, shape[1]}, seed++),
                        normal({1, shape[1]}, seed++)};
    SODA_CHECK_OP(
        [&](const Params& q) {
          soda::Shape view(shape.size(), 1);
          view[1] = shape[1];
          return soda::normalize_channels(q[0], 1e-5) * soda::reshape(q[1], view) +
                 soda::reshape(q[2], view);
        },
        affine);
  }
}

TEST_CASE("normalize_channels reads a strided view") {
  const auto x = normal({3, 4, 5}, 30);
  const auto view = soda::transpose(x, 0, 1);  // [4, 3, 5], not contiguous
  CHECK(relative_error(reference_normalize(copy_of(view), 1e-5),
                       soda::normalize_channels(view, 1e-5)) < 1e-12);
  SODA_CHECK_OP(
      [](const Params& q) { return soda::normalize_channels(soda::transpose(q[0], 0, 1), 1e-4); },
      Params{x});
}

TEST_CASE("normalize_channels refuses inputs it cannot normalise") {
  CHECK_THROWS_WITH_AS(soda::normalize_channels(soda::zeros<double>({4}), 1e-5),
                       "normalize_channels: expects an input [N, C, ...] of rank >= 2, got [4]",
                       soda::ShapeError);
  CHECK_THROWS_WITH_AS(
      soda::normalize_channels(soda::zeros<double>({1, 3}), 1e-5),
      "normalize_channels: needs more than one value per channel, got input [1, 3]",
      soda::ValueError);
  CHECK_THROWS_AS(soda::channel_inverse_std(soda::zeros<double>({2, 3}), -1.0), soda::ValueError);
}
