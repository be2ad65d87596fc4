// Reverse mode (autodiff/engine.hpp, node.hpp, grad_mode.hpp): backward() into leaves' .grad,
// accumulation, NoGradGuard, detach, gradients() of intermediate values, and graph lifetime.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <pthread.h>

#include "checks.hpp"

using namespace soda_test;

namespace {

Tensor leaf(const soda::Shape& shape, std::uint64_t seed) {
  soda::Generator gen(seed);
  auto x = soda::randn<double>(shape, gen);
  x.set_requires_grad(true);
  return x;
}

}  // namespace

TEST_CASE("backward sums the gradient of a value used several times: d/dx sum(x*x + x) = 2x + 1") {
  auto x = leaf({3, 4}, 1);
  soda::backward(soda::sum(x * x + x));
  REQUIRE(x.grad().defined());
  CHECK(soda::max_abs_difference(x.grad(), x * 2.0 + 1.0) < 1e-15);
}

TEST_CASE("backward sums gradients over many branches that share a value") {
  auto x = leaf({5}, 2);
  const auto a = x * 2.0;
  const auto b = soda::tanh(x);
  const auto loss = soda::sum(a * b + a + b * x + soda::exp(a));
  soda::backward(loss);
  auto f = [](const Params& q) {
    const auto a2 = q[0] * 2.0;
    const auto b2 = soda::tanh(q[0]);
    return soda::sum(a2 * b2 + a2 + b2 * q[0] + soda::exp(a2));
  };
  const auto expected = numerical_gradient(f, {x.detach()});
  CHECK(relative_error(expected[0], x.grad()) < 1e-6);
}

TEST_CASE("backward accumulates into .grad across calls until zero_grad") {
  auto x = leaf({4}, 3);
  auto w = leaf({4}, 4);
  soda::backward(soda::sum(x * w));
  soda::backward(soda::sum(x * w));
  CHECK(soda::max_abs_difference(x.grad(), w * 2.0) < 1e-15);
  CHECK(soda::max_abs_difference(w.grad(), x * 2.0) < 1e-15);
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  soda::backward(soda::sum(x * x));
  CHECK(soda::max_abs_difference(x.grad(), x * 2.0) < 1e-15);
  CHECK(soda::max_abs_difference(w.grad(), x * 2.0) < 1e-15);  // untouched by the third call
}

TEST_CASE("backward reaches leaves through views and broadcasting") {
  auto x = leaf({2, 3}, 5);
  auto b = leaf({3}, 6);
  soda::Generator gen(7);
  const auto w = soda::randn<double>({3, 2}, gen);
  soda::backward(soda::sum((soda::transpose(x, 0, 1) + soda::unsqueeze(b, 1)) * w));
  CHECK(soda::max_abs_difference(x.grad(), soda::transpose(w, 0, 1)) == 0);
  CHECK(soda::max_abs_difference(b.grad(), soda::sum(w, {1})) < 1e-15);
}

TEST_CASE("backward of a leaf scalar sets its gradient to one") {
  auto x = Tensor::scalar(3.0);
  x.set_requires_grad(true);
  soda::backward(x);
  CHECK(x.grad().item() == 1.0);
}

TEST_CASE("ops record on the tape only when an input requires grad") {
  auto x = leaf({3}, 8);
  const auto c = soda::ones<double>({3});
  const auto y = x * c;
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  const auto z = c * c;
  CHECK_FALSE(z.requires_grad());
  CHECK(z.is_leaf());
}

TEST_CASE("NoGradGuard stops recording for its scope and restores the previous mode") {
  auto x = leaf({3}, 9);
  CHECK(soda::grad_enabled());
  {
    soda::NoGradGuard no_grad;
    CHECK_FALSE(soda::grad_enabled());
    const auto y = x * x;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    CHECK_THROWS_AS(soda::backward(soda::sum(y)), soda::ValueError);
    {
      soda::NoGradGuard nested;
      CHECK_FALSE(soda::grad_enabled());
    }
    CHECK_FALSE(soda::grad_enabled());
  }
  CHECK(soda::grad_enabled());
  CHECK((x * x).requires_grad());
}

TEST_CASE("detach cuts gradient flow: d/dx sum(detach(x) * x) = x") {
  auto x = leaf({4}, 10);
  soda::backward(soda::sum(x.detach() * x));
  CHECK(soda::max_abs_difference(x.grad(), x) == 0);
  const auto d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.impl()->storage == x.impl()->storage);
  CHECK(d.id() != x.id());
}

TEST_CASE("gradients of parameters f does not depend on are zeros") {
  soda::Generator gen(11);
  const Params p{soda::randn<double>({3}, gen), soda::randn<double>({2, 2}, gen),
                 soda::randn<double>({}, gen)};
  auto f = [](const Params& q) { return soda::sum(q[0] * q[0]); };
  const auto grads = soda::grad(f, p);
  REQUIRE(grads.size() == 3);
  CHECK(soda::max_abs_difference(grads[0], p[0] * 2.0) == 0);
  CHECK(grads[1].shape() == soda::Shape{2, 2});
  CHECK(soda::max_abs_difference(grads[1], soda::zeros<double>({2, 2})) == 0);
  CHECK(grads[2].shape() == soda::Shape{});
  CHECK(grads[2].item() == 0.0);
  // A leaf that requires grad but is unused gets no .grad from backward.
  auto x = leaf({2}, 12);
  auto unused = leaf({2}, 13);
  soda::backward(soda::sum(x));
  CHECK_FALSE(unused.grad().defined());
}

TEST_CASE("gradients() differentiates with respect to intermediate values too") {
  auto x = leaf({3}, 14);
  const auto w = Tensor({3}, {1.0, -2.0, 0.5});
  const auto h = x * x;
  const auto loss = soda::sum(h * w);
  const auto g = soda::gradients(loss, {h, x});
  CHECK(soda::max_abs_difference(g[0], w) == 0);
  CHECK(soda::max_abs_difference(g[1], x * w * 2.0) < 1e-15);
  CHECK_FALSE(g[1].requires_grad());  // the tape is off while rules run
}

TEST_CASE("functional APIs leave list-form parameters untouched") {
  soda::Generator gen(15);
  const Params p{soda::randn<double>({3}, gen)};
  const Params v{soda::randn<double>({3}, gen)};
  auto f = [](const Params& q) { return soda::sum(soda::exp(q[0])); };
  (void)soda::value_grad_hvp(f, p, v);
  (void)soda::hessian_at(f, p).apply(v);
  CHECK_FALSE(p[0].requires_grad());
  CHECK_FALSE(p[0].has_tangent());
  CHECK_FALSE(p[0].grad().defined());
  CHECK(p[0].is_leaf());
}

namespace {

// Builds and frees a chain of `length` ops (half of them using one value twice) and backpropagates
// through it, on a thread with a small stack.
void* long_chain(void* length_ptr) {
  const auto length = *static_cast<int*>(length_ptr);
  auto x = soda::ones<double>({1});
  x.set_requires_grad(true);
  {
    auto y = x;
    for (int i = 0; i < length; ++i) y = i % 2 == 0 ? y * 1.0 : y * y;
    soda::backward(soda::sum(y));
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a very long chain of ops is freed without exhausting the stack") {
  // 60,000 ops in a row on a 256 KiB stack: releasing the graph recursively would overflow it.
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int length = 60000;
  pthread_t thread;
  REQUIRE(pthread_create(&thread, &attr, long_chain, &length) == 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  CHECK(true);  // reaching this line is the test
}
