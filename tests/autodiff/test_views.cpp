// View ops (autodiff/ops/views.hpp): reshape, permute, transpose, broadcast_to, slice (with step),
// slice_scatter, select, unsqueeze/squeeze/flatten, contiguous and clone, alone and chained, on
// contiguous and non-contiguous inputs. Each is checked under a nonlinearity so that its forward
// rule and its reverse rule both carry tangents.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include "checks.hpp"

using namespace soda_test;

namespace {

// A non-contiguous [3, 4] parameter: a transposed, strided view into a larger buffer.
Tensor strided_matrix(std::uint64_t seed) {
  const auto base = normal({8, 3}, seed);
  auto view = soda::transpose(soda::slice(base, 0, 0, 8, 2), 0, 1);
  REQUIRE_FALSE(view.is_contiguous());
  return view;
}

}  // namespace

TEST_CASE("reshape has exact derivatives, including an inferred extent") {
  const Params p{normal({2, 3, 4}, 1)};
  SODA_CHECK_OP([](const Params& q) { return soda::reshape(q[0], {6, 4}); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::tanh(soda::reshape(q[0], {4, -1})); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::reshape(q[0] * q[0], {24}); }, p);
}

TEST_CASE("reshape of a non-contiguous view copies and keeps exact derivatives") {
  const Params p{strided_matrix(2)};
  SODA_CHECK_OP([](const Params& q) { return soda::reshape(q[0], {2, 6}); }, p);
  SODA_CHECK_OP(
      [](const Params& q) { return soda::exp(soda::reshape(soda::transpose(q[0], 0, 1), {12})); },
      p);
}

TEST_CASE("permute and transpose have exact derivatives") {
  const Params p{normal({2, 3, 4}, 3)};
  SODA_CHECK_OP([](const Params& q) { return soda::permute(q[0], {2, 0, 1}); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::sigmoid(soda::permute(q[0], {1, 2, 0})); }, p);
  SODA_CHECK_OP(
      [](const Params& q) { return soda::transpose(q[0], 0, -1) * soda::transpose(q[0], 0, 2); },
      p);
  SODA_CHECK_OP([](const Params& q) { return soda::permute(q[0], {-1, 1, 0}); }, p);
}

TEST_CASE("broadcast_to has exact derivatives, summing over the broadcast axes") {
  const Params p{normal({3, 1}, 4)};
  SODA_CHECK_OP([](const Params& q) { return soda::broadcast_to(q[0], {2, 3, 4}); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::exp(soda::broadcast_to(q[0], {3, 5})); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::broadcast_to(q[0] * q[0], {2, 3, 1}); }, p);
}

TEST_CASE("slice with a step, a negative start and a clipped stop has exact derivatives") {
  const Params p{normal({5, 6}, 5)};
  SODA_CHECK_OP([](const Params& q) { return soda::slice(q[0], 1, 1, 6, 2); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::tanh(soda::slice(q[0], 0, -4, 100, 3)); }, p);
  SODA_CHECK_OP(
      [](const Params& q) { return soda::slice(soda::slice(q[0], 0, 1, 4), 1, 0, 6, 4) * 2.0; }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::slice(q[0] * q[0], -1, 2, 5); }, p);
}

TEST_CASE("slicing a non-contiguous input has exact derivatives") {
  const Params p{strided_matrix(6)};
  SODA_CHECK_OP([](const Params& q) { return soda::exp(soda::slice(q[0], 1, 0, 4, 3)); }, p);
  SODA_CHECK_OP(
      [](const Params& q) { return soda::slice(soda::transpose(q[0], 0, 1), 0, 1, 4, 2); }, p);
}

TEST_CASE("slice_scatter writes into zeros and has exact derivatives") {
  const Params p{normal({2, 3}, 7)};
  SODA_CHECK_OP([](const Params& q) { return soda::slice_scatter(q[0], {2, 7}, 1, 1, 7, 2); }, p);
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::exp(soda::slice_scatter(q[0], {5, 3}, 0, 0, 5, 3));
      },
      p);
  const auto scattered = soda::slice_scatter(Tensor({2}, {1.0, 2.0}), {5}, 0, 1, 5, 2);
  CHECK(soda::max_abs_difference(scattered, Tensor({5}, {0, 1, 0, 2, 0})) == 0);
}

TEST_CASE("select picks one slice, with a negative index, and has exact derivatives") {
  const Params p{normal({3, 4, 2}, 8)};
  SODA_CHECK_OP([](const Params& q) { return soda::select(q[0], 1, 2); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::exp(soda::select(q[0], -1, -1)); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::select(q[0], 0, 0) * soda::select(q[0], 0, 2); },
                p);
  SODA_CHECK_OP([](const Params& q) { return soda::select(soda::select(q[0], 0, 1), 0, 3) * q[0]; },
                p);
}

TEST_CASE("unsqueeze, squeeze and flatten have exact derivatives") {
  const Params p{normal({2, 1, 3, 2}, 9)};
  SODA_CHECK_OP([](const Params& q) { return soda::unsqueeze(q[0], 0); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::tanh(soda::unsqueeze(q[0], -1)); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::squeeze(q[0] * q[0], 1); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::flatten(q[0]); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::exp(soda::flatten(q[0], 2)); }, p);
  SODA_CHECK_OP(
      [](const Params& q) {
        return soda::flatten(soda::permute(q[0], {3, 2, 1, 0}), 1);
      },
      p);
}

TEST_CASE("contiguous and clone copy and have exact derivatives") {
  const Params p{strided_matrix(10)};
  SODA_CHECK_OP([](const Params& q) { return soda::contiguous(q[0]); }, p);
  SODA_CHECK_OP(
      [](const Params& q) { return soda::contiguous(soda::transpose(q[0] * q[0], 0, 1)); }, p);
  SODA_CHECK_OP([](const Params& q) { return soda::sigmoid(soda::clone(q[0])); }, p);
  const auto x = normal({3, 4}, 11);
  CHECK(soda::contiguous(x).impl() == x.impl());
  CHECK(soda::clone(x).impl()->storage != x.impl()->storage);
}

TEST_CASE("a chain of views under a nonlinearity has the exact Hessian") {
  soda::Generator gen(12);
  auto f = [](const Params& q) {
    const auto a = soda::reshape(soda::permute(q[0], {1, 0, 2}), {3, 8});
    const auto b = soda::slice(soda::transpose(a, 0, 1), 0, 1, 8, 3);  // [3, 3]
    const auto c = soda::broadcast_to(soda::unsqueeze(soda::select(q[0], 2, 1), 0), {2, 2, 3});
    return soda::sum(soda::tanh(b)) * soda::sum(soda::max(soda::exp(soda::flatten(c, 1)), {1}));
  };
  const Params p{soda::randn<double>({2, 3, 4}, gen)};
  CHECK(gradient_error(f, p) < 1e-6);
  CHECK(hvp_error(f, p, random_like(p, gen)) < 1e-6);
}

TEST_CASE("views share storage with their base; no-op views return the input itself") {
  const auto x = normal({2, 3}, 13);
  CHECK(soda::transpose(x, 0, 1).impl()->storage == x.impl()->storage);
  CHECK(soda::slice(x, 1, 0, 3, 2).impl()->storage == x.impl()->storage);
  CHECK(soda::reshape(x, {2, 3}).impl() == x.impl());
  CHECK(soda::permute(x, {0, 1}).impl() == x.impl());
  CHECK(soda::slice(x, 1, 0, 3).impl() == x.impl());
  CHECK(soda::broadcast_to(x, {2, 3}).impl() == x.impl());
}

TEST_CASE("reshape, select, squeeze and unsqueeze of a view share its storage when strides allow") {
  auto x = soda::zeros<double>({2, 3, 4});
  auto row = soda::select(x, 1, 0);  // [2, 4], strides [12, 1]: not contiguous
  row.at({1, 2}) = 5;
  CHECK(x.at({1, 0, 2}) == 5);
  const auto t = soda::transpose(x, 0, 2);  // [4, 3, 2]
  CHECK(soda::unsqueeze(t, 1).raw_data() == t.raw_data());
  CHECK(soda::squeeze(soda::unsqueeze(t, 0), 0).raw_data() == t.raw_data());
  const auto rows =
      soda::slice(soda::reshape(soda::arange<double>(24.0), {4, 6}), 1, 0, 6, 2);  // [4, 3]
  const auto split = soda::reshape(rows, {2, 2, 3});  // splits the outer axis: a view
  CHECK(split.raw_data() == rows.raw_data());
  CHECK(split.at({1, 0, 2}) == 16.0);
}

TEST_CASE(
    "reshape copies when the new shape cannot be a view, with the values of a row-major read") {
  const auto x = soda::reshape(soda::arange<double>(24.0), {2, 3, 4});
  const auto t = soda::transpose(x, 0, 2);  // [4, 3, 2]
  const auto flat = soda::reshape(t, {4, 6});
  CHECK(flat.is_contiguous());
  for (std::int64_t i = 0; i < 4; ++i) {
    for (std::int64_t j = 0; j < 6; ++j) CHECK(flat.at({i, j}) == t.at({i, j / 2, j % 2}));
  }
}
