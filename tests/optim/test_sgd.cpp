// soda/optim/sgd.hpp: trajectories against torch.optim.SGD (plain, momentum, dampening, Nesterov,
// weight decay and their combinations), the p.grad() style, strided and large (SIMD, threaded)
// tensors, and every error path. Checkpoint state: test_sgd_state.cpp.
#include "sgd_checks.hpp"

using namespace sgd_test;

TEST_SUITE("optim/sgd") {
  TEST_CASE("step(grads) follows torch.optim.SGD for every combination of the options") {
    for (const auto& ref : references()) {
      INFO(ref.torch_call);
      Quadratic<double> q;
      SGD<double> opt(q.params(), ref.options);
      for (int step = 1; step <= 5; ++step) {
        opt.step(q.gradients());
        check_values(q.values(), ref.expected[step - 1], 1e-13, step);
      }
      CHECK(opt.step_count() == 5);
    }
  }

  TEST_CASE("float parameters follow the same trajectories to float precision") {
    for (const auto& ref : references()) {
      INFO(ref.torch_call);
      Quadratic<float> q;
      SGD<float> opt(q.params(), ref.options);
      for (int step = 1; step <= 5; ++step) {
        opt.step(q.gradients());
        check_values(q.values(), ref.expected[step - 1], 1e-5, step);
      }
    }
  }

  TEST_CASE("momentum buffer starts as the first decayed gradient, then b = m·b + (1 − d)·g") {
    Quadratic<double> q;
    SGD<double> opt(q.params(),
                    {.lr = 0.05, .momentum = 0.9, .dampening = 0.5, .weight_decay = 0.1});
    CHECK_FALSE(opt.momentum_buffer(0).defined());
    const auto g = q.gradients();
    const auto p0 = values_of(q.p0);
    opt.step(g);
    // Not (1 − dampening)·d: PyTorch clones the first direction undamped.
    const auto g0 = values_of(g[0]);
    const auto b0 = values_of(opt.momentum_buffer(0));
    for (std::size_t i = 0; i < b0.size(); ++i)
      CHECK(b0[i] == doctest::Approx(g0[i] + 0.1 * p0[i]));
  }

  TEST_CASE("set_learning_rate takes effect at the next step, momentum carried over unscaled") {
    Quadratic<double> q;
    SGD<double> opt(q.params(), {.lr = 0.05, .momentum = 0.9});
    for (int step = 1; step <= 5; ++step) {
      if (step == 3) opt.set_learning_rate(0.01);
      opt.step(q.gradients());
      check_values(q.values(), lr_change_expected[step - 1], 1e-13, step);
    }
    CHECK(opt.learning_rate() == 0.01);
    CHECK(opt.options().lr == 0.01);
  }

  TEST_CASE("step() reads p.grad() from soda::backward and skips parameters without a gradient") {
    Quadratic<double> q;
    q.p0.set_requires_grad(true);
    q.p1.set_requires_grad(true);
    SGD<double> opt(q.params(), skip_options);
    for (int step = 1; step <= 5; ++step) {
      opt.zero_grad();
      CHECK_FALSE(q.p0.grad().defined());
      soda::backward(q.loss(step != 2));
      CHECK(q.p1.grad().defined() == (step != 2));
      opt.step();
      check_values(q.values(), skip_expected[step - 1], 1e-13, step);
    }
    // The update went around the tape: the parameters are still leaves that require grad.
    CHECK(q.p0.is_leaf());
    CHECK(q.p0.requires_grad());
    CHECK(soda::grad_enabled());
  }

  TEST_CASE("an undefined gradient in step(grads) skips its parameter, as a None grad does") {
    Quadratic<double> q;
    SGD<double> opt(q.params(), skip_options);
    for (int step = 1; step <= 5; ++step) {
      auto grads = q.gradients();
      if (step == 2) grads[1] = soda::Tensor<double>();
      opt.step(grads);
      check_values(q.values(), skip_expected[step - 1], 1e-13, step);
    }
  }

  TEST_CASE("step() and step(grads) agree with soda::value_and_grad's gradients") {
    const auto& ref = reference("torch.optim.SGD([p0, p1], lr=0.05, momentum=0.8, nesterov=True)");
    Quadratic<double> q;
    SGD<double> opt(q.params(), ref.options);
    const auto a0 = q.a0, b0 = q.b0, a1 = q.a1, b1 = q.b1;
    auto loss = [&](const std::vector<soda::Tensor<double>>& p) {
      return soda::sum(a0 * p[0] * p[0] * 0.5 + b0 * p[0]) +
             soda::sum(a1 * p[1] * p[1] * 0.5 + b1 * p[1]);
    };
    for (int step = 1; step <= 5; ++step) {
      auto [value, grads] = soda::value_and_grad(loss, opt.parameters());
      opt.step(grads);
      check_values(q.values(), ref.expected[step - 1], 1e-13, step);
    }
  }

  TEST_CASE("strided parameters and gradients (transposed views) are updated in place") {
    const auto& ref = reference(
        "torch.optim.SGD([p0, p1], lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.05)");
    Quadratic<double> q;
    // p0 as the transpose of a [3, 2] tensor: same values, strides {1, 2}.
    auto storage = soda::Tensor<double>::empty({3, 2});
    q.p0 = storage.view_with({2, 3}, {1, 2}, 0);
    for (std::int64_t i = 0; i < 2; ++i) {
      for (std::int64_t j = 0; j < 3; ++j) q.p0.at({i, j}) = initial_params[3 * i + j];
    }
    REQUIRE_FALSE(q.p0.is_contiguous());
    SGD<double> opt(q.params(), ref.options);
    for (int step = 1; step <= 5; ++step) {
      auto grads = q.gradients();
      // The gradient of p0 as a transposed view too, and p1's with a storage offset.
      auto g0_storage = soda::Tensor<double>::empty({3, 2});
      auto g0 = g0_storage.view_with({2, 3}, {1, 2}, 0);
      for (std::int64_t i = 0; i < 2; ++i) {
        for (std::int64_t j = 0; j < 3; ++j) g0.at({i, j}) = grads[0].at({i, j});
      }
      auto g1_storage = soda::Tensor<double>::empty({5});
      auto g1 = g1_storage.view_with({3}, {1}, 2);
      for (std::int64_t i = 0; i < 3; ++i) g1.at({i}) = grads[1].at({i});
      opt.step({g0, g1});
      check_values(q.values(), ref.expected[step - 1], 1e-13, step);
    }
  }

  TEST_CASE("a broadcast gradient (stride 0) is read like its materialised copy") {
    const SgdOptions options{.lr = 0.1, .momentum = 0.5, .weight_decay = 0.2};
    Quadratic<double> broadcast, dense;
    SGD<double> by_view(broadcast.params(), options);
    SGD<double> by_copy(dense.params(), options);
    const auto one = soda::Tensor<double>::scalar(0.75);
    const auto g0 = one.view_with({2, 3}, {0, 0}, 0);
    const auto g1 = one.view_with({3}, {0}, 0);
    for (int step = 1; step <= 3; ++step) {
      by_view.step({g0, g1});
      by_copy.step({soda::full<double>({2, 3}, 0.75), soda::full<double>({3}, 0.75)});
    }
    check_values(broadcast.values(), dense.values(), 1e-15, 3);
  }

  TEST_CASE("large tensors (SIMD blocks over threads) match PyTorch and the thread count") {
    const auto& ref = reference(
        "torch.optim.SGD([p0, p1], lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.05)");
    // Above 2 × elementwise_grain, so the update runs in parallel; n mod 8 != 0 leaves a tail.
    constexpr std::int64_t n = 3 * (1 << 15) + 5;
    auto tiled = [&](const Values& values, std::size_t first) {
      std::vector<double> v(n);
      for (std::int64_t i = 0; i < n; ++i) v[i] = values[first + static_cast<std::size_t>(i % 6)];
      return soda::Tensor<double>({n}, v);
    };
    auto run = [&](int threads) {
      ThreadCount scope(threads);
      auto p = tiled(initial_params, 0);
      const auto a = tiled(curvature, 0), b = tiled(offset, 0);
      const double* before = p.data();
      SGD<double> opt({p}, ref.options);
      for (int step = 1; step <= 5; ++step) {
        opt.step({Quadratic<double>::gradient(p, a, b)});
        if (step == 2) REQUIRE(opt.momentum_buffer(0).data() != nullptr);
      }
      CHECK(p.data() == before);  // in place
      return std::pair{p, opt.momentum_buffer(0)};
    };
    const auto [serial, serial_buffer] = run(1);
    const auto [threaded, threaded_buffer] = run(3);
    CHECK(same_bits(serial, threaded));
    CHECK(same_bits(serial_buffer, threaded_buffer));
    const auto v = values_of(threaded);
    for (std::int64_t i : {std::int64_t{0}, std::int64_t{7}, n / 2 + 1, n - 3, n - 1}) {
      INFO("element " << i);
      const double expected = ref.expected[4][static_cast<std::size_t>(i % 6)];
      CHECK(std::abs(v[i] - expected) <= 1e-13 * std::max(1.0, std::abs(expected)));
    }
  }

  TEST_CASE("steps update parameters in place and reuse the momentum buffer") {
    Quadratic<double> q;
    SGD<double> opt(q.params(), {.lr = 0.1, .momentum = 0.9});
    const double* p0 = q.p0.data();
    opt.step(q.gradients());
    const double* buffer = opt.momentum_buffer(0).data();
    for (int step = 0; step < 3; ++step) opt.step(q.gradients());
    CHECK(q.p0.data() == p0);
    CHECK(opt.momentum_buffer(0).data() == buffer);
    CHECK_FALSE(SGD<double>(q.params(), {.lr = 0.1}).momentum_buffer(0).defined());
  }

  TEST_CASE("invalid options are refused as PyTorch refuses them") {
    Quadratic<double> q;
    auto make = [&](SgdOptions options) { SGD<double> opt(q.params(), options); };
    CHECK_THROWS_WITH_AS(make({.lr = -0.1}),
                         "SGD: invalid learning rate -0.1 (must be finite and >= 0)",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(make({.lr = std::nan("")}),
                         "SGD: invalid learning rate nan (must be finite and >= 0)",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(make({.lr = 0.1, .momentum = -0.9}),
                         "SGD: invalid momentum -0.9 (must be finite and >= 0)", soda::ValueError);
    CHECK_THROWS_WITH_AS(make({.lr = 0.1, .weight_decay = -1e-4}),
                         "SGD: invalid weight_decay -1e-04 (must be finite and >= 0)",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(make({.lr = 0.1, .dampening = std::numeric_limits<double>::infinity()}),
                         "SGD: invalid dampening inf (must be finite)", soda::ValueError);
    CHECK_THROWS_WITH_AS(make({.lr = 0.1, .nesterov = true}),
                         "SGD: nesterov momentum requires momentum > 0 and dampening = 0 (got "
                         "momentum 0, dampening 0)",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(make({.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                         "SGD: nesterov momentum requires momentum > 0 and dampening = 0 (got "
                         "momentum 0.9, dampening 0.1)",
                         soda::ValueError);
    CHECK_NOTHROW(make({.lr = 0.0, .momentum = 0.9, .dampening = 1.5}));  // PyTorch allows both

    SGD<double> opt(q.params(), {.lr = 0.1});
    CHECK_THROWS_WITH_AS(opt.set_learning_rate(-1e-7),
                         "SGD.set_learning_rate: invalid learning rate -1e-07 (must be finite and "
                         ">= 0)",
                         soda::ValueError);
    CHECK(opt.learning_rate() == 0.1);
  }

  TEST_CASE("invalid parameter lists are refused") {
    Quadratic<double> q;
    CHECK_THROWS_WITH_AS(SGD<double>({}), "SGD: got an empty parameter list", soda::ValueError);
    CHECK_THROWS_WITH_AS(SGD<double>({q.p0, soda::Tensor<double>()}),
                         "SGD: parameter 1 is an undefined tensor", soda::ValueError);
    CHECK_THROWS_WITH_AS(SGD<double>({q.p0, q.p1, q.p0}),
                         "SGD: parameter 2 is the same tensor as parameter 0; each parameter may "
                         "appear once",
                         soda::ValueError);
    const auto broadcast = q.p1.view_with({4, 3}, {0, 1}, 0);
    CHECK_THROWS_WITH_AS(SGD<double>({broadcast}),
                         "SGD: parameter 0 of shape [4, 3] is a broadcast view (stride 0 on axis "
                         "0); pass a tensor that owns its elements",
                         soda::ValueError);
    SGD<double> opt(q.params());
    CHECK_THROWS_WITH_AS(opt.momentum_buffer(2),
                         "SGD.momentum_buffer: index 2 but there are 2 parameters",
                         soda::IndexError);
  }

  TEST_CASE("wrong gradients are refused before any parameter changes") {
    Quadratic<double> q;
    SGD<double> opt(q.params(), {.lr = 0.1, .momentum = 0.9});
    const auto before = q.values();
    auto grads = q.gradients();
    CHECK_THROWS_WITH_AS(opt.step({grads[0]}),
                         "SGD.step: expected 2 gradients (one per parameter, in order), got 1",
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(opt.step({grads[0], grads[1], grads[1]}),
                         "SGD.step: expected 2 gradients (one per parameter, in order), got 3",
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(opt.step({grads[0], soda::zeros<double>({3, 1})}),
                         "SGD.step: gradient 1 has shape [3, 1] but parameter 1 has shape [3]",
                         soda::ShapeError);
    CHECK_THROWS_WITH_AS(opt.step({grads[1], grads[0]}),
                         "SGD.step: gradient 0 has shape [3] but parameter 0 has shape [2, 3]",
                         soda::ShapeError);
    // The p.grad() path checks the same way (a gradient planted by hand, as no op would).
    q.p1.impl()->grad = soda::zeros<double>({2}).impl();
    CHECK_THROWS_WITH_AS(opt.step(),
                         "SGD.step: gradient 1 has shape [2] but parameter 1 has shape [3]",
                         soda::ShapeError);
    CHECK(q.values() == before);
    CHECK(opt.step_count() == 0);
    CHECK_FALSE(opt.momentum_buffer(0).defined());
  }

  TEST_CASE(
      "load_state_dict names what is missing, mis-shaped or unexpected, and changes nothing") {
    Quadratic<double> q;
    SGD<double> source(q.params(), {.lr = 0.05, .momentum = 0.9});
    source.step(q.gradients());
    const auto tensors = source.state_dict();
    const auto metadata = source.state_metadata();

    Quadratic<double> other;
    SGD<double> opt(other.params(), {.lr = 0.3});
    auto refuses = [&](const soda::nn::NamedTensors<double>& t,
                       const std::map<std::string, std::string>& m) { opt.load_state_dict(t, m); };
    auto with = [&](const std::string& key, const std::string& value) {
      auto m = metadata;
      m[key] = value;
      return m;
    };
    auto without = [&](const std::string& key) {
      auto m = metadata;
      m.erase(key);
      return m;
    };

    CHECK_THROWS_WITH_AS(refuses(tensors, without("sgd.momentum")),
                         "SGD.load_state_dict: metadata entry 'sgd.momentum' is missing",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses(tensors, with("sgd.lr", "0.1x")),
                         "SGD.load_state_dict: metadata entry 'sgd.lr' is '0.1x', not a number",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses(tensors, with("sgd.lr", "-2")),
                         "SGD.load_state_dict: invalid learning rate -2 (must be finite and >= 0)",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses(tensors, with("sgd.nesterov", "yes")),
                         "SGD.load_state_dict: metadata entry 'sgd.nesterov' is 'yes', not true or "
                         "false",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses(tensors, with("sgd.step_count", "-1")),
                         "SGD.load_state_dict: metadata entry 'sgd.step_count' is '-1', not a "
                         "non-negative integer",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses(tensors, with("sgd.parameter_count", "3")),
                         "SGD.load_state_dict: the state is for 3 parameters but this optimizer "
                         "has 2",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses(tensors, with("sgd.momentum_buffers", "0,1,2")),
                         "SGD.load_state_dict: metadata entry 'sgd.momentum_buffers' is '0,1,2', "
                         "not a list of distinct parameter indices",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses(tensors, with("sgd.momentum_buffers", "0,0")),
                         "SGD.load_state_dict: metadata entry 'sgd.momentum_buffers' is '0,0', "
                         "not a list of distinct parameter indices",
                         soda::ValueError);

    CHECK_THROWS_WITH_AS(refuses({tensors[0]}, metadata),
                         "SGD.load_state_dict: entry 'momentum_buffer.1' is missing",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses(tensors, with("sgd.momentum_buffers", "0")),
                         "SGD.load_state_dict: entry 'momentum_buffer.1' is not in the metadata's "
                         "sgd.momentum_buffers list",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses({tensors[0], tensors[0]}, with("sgd.momentum_buffers", "0")),
                         "SGD.load_state_dict: entry 'momentum_buffer.0' appears twice",
                         soda::ValueError);
    CHECK_THROWS_WITH_AS(
        refuses({tensors[0], {"momentum_buffer.1", soda::zeros<double>({2, 3})}}, metadata),
        "SGD.load_state_dict: momentum_buffer.1 has shape [2, 3] but parameter 1 "
        "has shape [3]",
        soda::ShapeError);
    CHECK_THROWS_WITH_AS(
        refuses({tensors[0], {"momentum_buffer.1", soda::Tensor<double>()}}, metadata),
        "SGD.load_state_dict: entry 'momentum_buffer.1' is an undefined tensor", soda::ValueError);
    CHECK_THROWS_WITH_AS(
        refuses({tensors[0], tensors[1], {"momentum_buffer.2", tensors[1].second}}, metadata),
        "SGD.load_state_dict: unexpected entry 'momentum_buffer.2' (expected "
        "momentum_buffer.<index> for 2 parameters)",
        soda::ValueError);
    CHECK_THROWS_WITH_AS(refuses({{"layer.weight", tensors[0].second}}, metadata),
                         "SGD.load_state_dict: unexpected entry 'layer.weight' (expected "
                         "momentum_buffer.<index> for 2 parameters)",
                         soda::ValueError);

    // None of the refusals touched the optimizer.
    CHECK(opt.options() == SgdOptions{.lr = 0.3});
    CHECK(opt.step_count() == 0);
    CHECK_FALSE(opt.momentum_buffer(0).defined());
    CHECK_NOTHROW(refuses(tensors, metadata));
    CHECK(opt.options() == source.options());
  }
}
