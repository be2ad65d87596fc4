// soda/optim/sgd.hpp, its state: state_dict and state_metadata, a resumed run that continues
// bit for bit (also through a safetensors file), and copies that own their buffers.
#include "sgd_checks.hpp"

using namespace sgd_test;

TEST_SUITE("optim/sgd") {
  TEST_CASE("state_dict holds the initialised buffers; metadata the scalar state") {
    Quadratic<double> q;
    SGD<double> opt(q.params(), skip_options);
    auto grads = q.gradients();
    grads[1] = soda::Tensor<double>();
    opt.step(grads);
    const auto state = opt.state_dict();
    REQUIRE(state.size() == 1);
    CHECK(state[0].first == "momentum_buffer.0");
    CHECK(same_bits(state[0].second, opt.momentum_buffer(0)));
    const std::map<std::string, std::string> expected = {
        {"sgd.lr", "0.05"},           {"sgd.momentum", "0.9"},      {"sgd.dampening", "0"},
        {"sgd.weight_decay", "0.01"}, {"sgd.nesterov", "false"},    {"sgd.step_count", "1"},
        {"sgd.parameter_count", "2"}, {"sgd.momentum_buffers", "0"}};
    CHECK(opt.state_metadata() == expected);
    // A snapshot: later steps do not change what was taken.
    const auto before = values_of(state[0].second);
    opt.step(q.gradients());
    CHECK(values_of(state[0].second) == before);
    CHECK(opt.state_dict().size() == 2);
    CHECK(opt.state_metadata().at("sgd.momentum_buffers") == "0,1");
  }

  TEST_CASE("a run resumed from state_dict and state_metadata continues bit for bit") {
    const SgdOptions options{.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.05};
    Quadratic<double> original;
    SGD<double> opt(original.params(), options);
    auto grads = original.gradients();
    grads[1] = soda::Tensor<double>();  // p1's buffer starts one step later
    opt.step(grads);
    opt.step(original.gradients());
    opt.set_learning_rate(0.1 / 3);  // a rate with no short decimal form
    auto grads3 = original.gradients();
    grads3[0] = soda::Tensor<double>();
    opt.step(grads3);

    // Checkpoint: parameter values, optimizer tensors and metadata, all copied.
    const auto saved_p0 = soda::detail::copy_contiguous(original.p0);
    const auto saved_p1 = soda::detail::copy_contiguous(original.p1);
    const auto saved_state = opt.state_dict();
    const auto saved_metadata = opt.state_metadata();

    for (int step = 0; step < 4; ++step) opt.step(original.gradients());

    Quadratic<double> resumed;
    resumed.p0 = saved_p0;
    resumed.p1 = saved_p1;
    SGD<double> reloaded(resumed.params());  // default options: restored by the load
    reloaded.load_state_dict(saved_state, saved_metadata);
    CHECK(reloaded.options() ==
          SgdOptions{.lr = 0.1 / 3, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.05});
    CHECK(reloaded.step_count() == 3);
    for (int step = 0; step < 4; ++step) reloaded.step(resumed.gradients());

    CHECK(same_bits(resumed.p0, original.p0));
    CHECK(same_bits(resumed.p1, original.p1));
    CHECK(same_bits(reloaded.momentum_buffer(0), opt.momentum_buffer(0)));
    CHECK(same_bits(reloaded.momentum_buffer(1), opt.momentum_buffer(1)));
    CHECK(reloaded.step_count() == opt.step_count());
    CHECK(reloaded.state_metadata() == opt.state_metadata());
    // The loaded buffers are copies: the saved tensors are unchanged by the resumed steps.
    CHECK_FALSE(values_of(saved_state[0].second) == values_of(opt.state_dict()[0].second));
    CHECK(reloaded.momentum_buffer(0).impl() != saved_state[0].second.impl());
  }

  TEST_CASE("state survives a safetensors file (tensors and metadata)") {
    Quadratic<double> q;
    SGD<double> opt(q.params(), {.lr = 0.07, .momentum = 0.5, .nesterov = true});
    opt.step(q.gradients());
    soda::TensorFile file;
    for (const auto& [name, t] : opt.state_dict()) file.tensors.emplace_back(name, t);
    file.metadata = opt.state_metadata();
    file.metadata["epoch"] = "3";  // keys of other owners share the file and are ignored
    const auto path = std::filesystem::temp_directory_path() /
                      ("soda_test_sgd_" + std::to_string(q.p0.id()) + ".safetensors");
    soda::save_safetensors(path, file);
    const auto loaded = soda::load_safetensors(path);
    std::filesystem::remove(path);

    soda::nn::NamedTensors<double> tensors;
    for (const auto& [name, any] : loaded.tensors) {
      tensors.emplace_back(name, loaded.get<double>(name));
    }
    SGD<double> reloaded(q.params());
    reloaded.load_state_dict(tensors, loaded.metadata);
    CHECK(reloaded.options() == opt.options());
    CHECK(reloaded.step_count() == 1);
    CHECK(same_bits(reloaded.momentum_buffer(0), opt.momentum_buffer(0)));
    CHECK(same_bits(reloaded.momentum_buffer(1), opt.momentum_buffer(1)));
  }

  TEST_CASE("a copied optimizer owns its buffers; the parameters stay shared") {
    Quadratic<double> q;
    SGD<double> opt(q.params(), {.lr = 0.1, .momentum = 0.9});
    opt.step(q.gradients());
    const SGD<double> snapshot = opt;
    const auto buffer = values_of(snapshot.momentum_buffer(0));
    opt.step(q.gradients());
    CHECK(values_of(snapshot.momentum_buffer(0)) == buffer);
    CHECK(snapshot.step_count() == 1);
    CHECK(snapshot.parameters()[0].impl() == q.p0.impl());
    SGD<double> assigned(q.params());
    assigned = snapshot;
    CHECK(assigned.options() == snapshot.options());
    CHECK(same_bits(assigned.momentum_buffer(0), snapshot.momentum_buffer(0)));
    CHECK(assigned.momentum_buffer(0).impl() != snapshot.momentum_buffer(0).impl());
  }
}
