// Bad input: every error path throws the documented soda exception with a message naming the op
// and the offending shapes, axes or indices.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <functional>
#include <string>

#include "checks.hpp"

using namespace soda_test;

namespace {}  // namespace

TEST_CASE("every binary op rejects shapes that do not broadcast, naming the op and both shapes") {
  const auto a = soda::ones<double>({2, 3});
  const auto b = soda::ones<double>({4});
  const std::vector<std::pair<std::string, std::function<void()>>> ops{
      {"add", [&] { (void)soda::add(a, b); }},
      {"sub", [&] { (void)soda::sub(a, b); }},
      {"mul", [&] { (void)soda::mul(a, b); }},
      {"div", [&] { (void)soda::div(a, b); }},
      {"maximum", [&] { (void)soda::maximum(a, b); }},
      {"minimum", [&] { (void)soda::minimum(a, b); }},
      {"where", [&] { (void)soda::where(a, a, b); }},
      {"add", [&] { (void)(a + b); }},
      {"div", [&] { (void)(b / a); }}};
  for (const auto& [name, call] : ops) {
    INFO("op " << name);
    const auto message = message_of<soda::ShapeError>(call);
    CHECK(contains(message, name));
    CHECK(contains(message, "[2, 3]"));
    CHECK(contains(message, "[4]"));
  }
  // where's condition must broadcast too.
  CHECK_THROWS_AS(soda::where(soda::ones<double>({5}), a, a), soda::ShapeError);
}

TEST_CASE("matmul rejects inner dimensions that do not agree, naming both shapes") {
  const auto a = soda::ones<double>({128, 64});
  const auto b = soda::ones<double>({32, 10});
  const auto message = message_of<soda::ShapeError>([&] { (void)soda::matmul(a, b); });
  CHECK(contains(message, "matmul"));
  CHECK(contains(message, "[128, 64]"));
  CHECK(contains(message, "[32, 10]"));
}

TEST_CASE("matmul rejects rank-1 operands and batches that do not broadcast") {
  const auto rank1 = message_of<soda::ShapeError>([] {
    (void)soda::matmul(soda::ones<double>({3}), soda::ones<double>({3, 2}));
  });
  CHECK(contains(rank1, "matmul"));
  CHECK(contains(rank1, "[3]"));
  const auto batch = message_of<soda::ShapeError>([] {
    (void)soda::matmul(soda::ones<double>({2, 3, 4}), soda::ones<double>({3, 4, 5}));
  });
  CHECK(contains(batch, "matmul"));
}

TEST_CASE("reshape to a different number of elements throws ShapeError") {
  const auto x = soda::ones<double>({2, 3});
  const auto message = message_of<soda::ShapeError>([&] { (void)soda::reshape(x, {4, 2}); });
  CHECK(contains(message, "reshape"));
  CHECK(contains(message, "[2, 3]"));
  CHECK(contains(message, "[4, 2]"));
  CHECK_THROWS_AS(soda::reshape(x, {-1, -1}), soda::ShapeError);
  CHECK_THROWS_AS(soda::reshape(x, {4, -1}), soda::ShapeError);
  CHECK_THROWS_AS(soda::squeeze(x, 0), soda::ShapeError);
  CHECK_THROWS_AS(soda::broadcast_to(x, {3, 3}), soda::ShapeError);
}

TEST_CASE("concat and stack reject pieces whose shapes do not agree") {
  const auto a = soda::ones<double>({2, 3});
  const auto message = message_of<soda::ShapeError>([&] {
    (void)soda::concat({a, soda::ones<double>({3, 3})}, 1);
  });
  CHECK(contains(message, "concat"));
  CHECK(contains(message, "[2, 3]"));
  CHECK(contains(message, "[3, 3]"));
  CHECK_THROWS_AS(soda::concat({a, soda::ones<double>({2, 3, 1})}, 0), soda::ShapeError);
  CHECK_THROWS_AS(soda::concat(std::vector<Tensor>{}, 0), soda::ValueError);
  CHECK_THROWS_AS(soda::stack({a, soda::ones<double>({3, 2})}), soda::ShapeError);
}

TEST_CASE("permute rejects a wrong number of axes, a repeated axis and an axis out of range") {
  const auto x = soda::ones<double>({2, 3, 4});
  CHECK(contains(message_of<soda::ShapeError>([&] { (void)soda::permute(x, {1, 0}); }), "permute"));
  CHECK(contains(message_of<soda::ShapeError>([&] {
                   (void)soda::permute(x, {0, 1, 1});
                 }),
                 "repeated"));
  CHECK(contains(message_of<soda::ValueError>([&] {
                   (void)soda::permute(x, {0, 1, 3});
                 }),
                 "axis 3"));
  CHECK_THROWS_AS(soda::transpose(x, 0, 5), soda::ValueError);
}

TEST_CASE("reductions and softmax reject an axis out of range or given twice") {
  const auto x = soda::ones<double>({2, 3});
  const auto message = message_of<soda::ValueError>([&] { (void)soda::sum(x, {2}); });
  CHECK(contains(message, "sum"));
  CHECK(contains(message, "axis 2"));
  CHECK_THROWS_AS(soda::sum(x, {-3}), soda::ValueError);
  CHECK_THROWS_AS(soda::sum(x, {1, -1}), soda::ValueError);
  CHECK_THROWS_AS(soda::mean(x, {5}), soda::ValueError);
  CHECK_THROWS_AS(soda::max(x, {2}, true), soda::ValueError);
  CHECK_THROWS_AS(soda::softmax(x, 2), soda::ValueError);
  CHECK_THROWS_AS(soda::log_softmax(x, -3), soda::ValueError);
  CHECK_THROWS_AS(soda::logsumexp(x, 2), soda::ValueError);
  CHECK_THROWS_AS(soda::concat({x, x}, 2), soda::ValueError);
}

TEST_CASE("gather, index_select and select reject indices out of range with IndexError") {
  const auto x = soda::ones<double>({3, 4});
  const auto message = message_of<soda::IndexError>([&] {
    (void)soda::gather(x, 1, Index({3, 1}, {0, 4, 1}));
  });
  CHECK(contains(message, "gather"));
  CHECK(contains(message, "index 4"));
  CHECK_THROWS_AS(soda::gather(x, 0, Index({1, 2}, {-1, 0})), soda::IndexError);
  CHECK(contains(message_of<soda::IndexError>([&] {
                   (void)soda::index_select(x, 0, {0, 3});
                 }),
                 "index_select"));
  CHECK_THROWS_AS(soda::index_select(x, 1, {-1}), soda::IndexError);
  CHECK_THROWS_AS(soda::select(x, 1, 4), soda::IndexError);
  CHECK_THROWS_AS(soda::select(x, 0, -4), soda::IndexError);
  // An index of the wrong rank is a shape error.
  CHECK_THROWS_AS(soda::gather(x, 1, Index({3}, {0, 1, 2})), soda::ShapeError);
}

TEST_CASE("hvp, value_grad_hvp, jvp and hessian_at reject vectors of the wrong shape or count") {
  soda::Generator gen(1);
  const Params p{soda::randn<double>({3, 2}, gen)};
  auto f = [](const Params& q) { return soda::sum(soda::exp(q[0])); };
  const Params wrong{soda::randn<double>({2, 3}, gen)};
  const auto message = message_of<soda::ShapeError>([&] { (void)soda::hvp(f, p, wrong); });
  CHECK(contains(message, "[2, 3]"));
  CHECK(contains(message, "[3, 2]"));
  CHECK_THROWS_AS(soda::hvp(f, p, Params{}), soda::ShapeError);
  CHECK_THROWS_AS(soda::value_grad_hvp(f, p, wrong), soda::ShapeError);
  CHECK_THROWS_AS(soda::jvp(f, p, Params{p[0], p[0]}), soda::ShapeError);
  const auto h = soda::hessian_at(f, p);
  CHECK(contains(message_of<soda::ShapeError>([&] { (void)h.apply(wrong); }), "hessian_at"));
  CHECK_THROWS_AS(h.apply_many({p, wrong}), soda::ShapeError);
}

TEST_CASE("value_and_grad, hvp and hessian_at reject a function that is not scalar") {
  const Params p{soda::ones<double>({3})};
  auto f = [](const Params& q) { return q[0] * 2.0; };
  const auto message = message_of<soda::ValueError>([&] { (void)soda::value_and_grad(f, p); });
  CHECK(contains(message, "value_and_grad"));
  CHECK(contains(message, "[3]"));
  CHECK_THROWS_AS(soda::grad(f, p), soda::ValueError);
  CHECK_THROWS_AS(soda::hvp(f, p, p), soda::ValueError);
  CHECK_THROWS_AS(soda::hessian_at(f, p), soda::ValueError);
  // jvp is for any output shape.
  CHECK(soda::jvp(f, p, p).shape() == soda::Shape{3});
}

TEST_CASE("backward rejects a non-scalar output and an output that needs no gradient") {
  auto x = soda::ones<double>({3});
  x.set_requires_grad(true);
  CHECK(contains(message_of<soda::ValueError>([&] { soda::backward(x * 2.0); }), "backward"));
  CHECK_THROWS_AS(soda::backward(soda::sum(soda::ones<double>({3}))), soda::ValueError);
  CHECK_THROWS_AS(soda::gradients(x * 2.0, {x}), soda::ValueError);
}

TEST_CASE("data() of a non-contiguous view and item() of many elements throw ValueError") {
  const auto x = soda::ones<double>({2, 3});
  CHECK(contains(message_of<soda::ValueError>([&] { (void)soda::transpose(x, 0, 1).data(); }),
                 "contiguous"));
  CHECK_THROWS_AS(soda::slice(x, 1, 0, 3, 2).data(), soda::ValueError);
  CHECK(contains(message_of<soda::ValueError>([&] { (void)x.item(); }), "[2, 3]"));
  CHECK_NOTHROW((void)soda::contiguous(soda::transpose(x, 0, 1)).data());
}

TEST_CASE("other bad arguments: clamp bounds, slice step, integer tensors requiring grad") {
  const auto x = soda::ones<double>({4});
  CHECK_THROWS_AS(soda::clamp(x, 1.0, -1.0), soda::ValueError);
  CHECK_THROWS_AS(soda::slice(x, 0, 0, 4, 0), soda::ValueError);
  auto integers = soda::zeros<std::int64_t>({2});
  CHECK_THROWS_AS(integers.set_requires_grad(true), soda::ValueError);
  CHECK_THROWS_AS(soda::mean(soda::ones<double>({0, 2}), {0}), soda::ValueError);
}

TEST_CASE("an error inside hessian_at or hvp leaves no recording or grad mode behind") {
  const Params p{soda::ones<double>({3})};
  auto bad = [](const Params& q) {
    return soda::matmul(soda::reshape(q[0], {3, 1}), soda::reshape(q[0], {3, 1}));
  };
  CHECK_THROWS_AS(soda::hessian_at(bad, p), soda::ShapeError);
  CHECK(soda::detail::active_trace<double>() == nullptr);
  CHECK_THROWS_AS(soda::jvp(bad, p, p), soda::ShapeError);
  CHECK(soda::grad_enabled());
  CHECK_FALSE(p[0].requires_grad());
}

TEST_CASE("all soda exceptions derive from soda::Error") {
  CHECK_THROWS_AS(soda::reshape(soda::ones<double>({2}), {3}), soda::Error);
  CHECK_THROWS_AS(soda::sum(soda::ones<double>({2}), {1}), soda::Error);
  CHECK_THROWS_AS(soda::select(soda::ones<double>({2}), 0, 2), soda::Error);
}
