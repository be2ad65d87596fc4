// soda/io/state_dict.hpp (with nn/module.hpp): PyTorch names in PyTorch's order, a round trip
// through a file into a fresh model, dtype casts, int64 counters, and errors naming the file.
#include <doctest/doctest.h>
#include <soda/io/state_dict.hpp>
#include <soda/soda.hpp>

#include "safetensors_files.hpp"

namespace {

// A block with a parameter, a buffer and the BatchNorm counter name, nested twice.
struct Leaf : soda::nn::Module<float> {
  soda::Tensor<float> weight, running_mean, counter;
  explicit Leaf(float fill) {
    weight = register_parameter("weight", soda::full<float>({2, 3}, fill));
    running_mean = register_buffer("running_mean", soda::full<float>({3}, fill + 1));
    counter = register_buffer("num_batches_tracked", soda::full<float>({}, 7));
  }
  soda::Tensor<float> forward(const soda::Tensor<float>& x) override { return x; }
  std::string type_name() const override { return "Leaf"; }
};

struct Net : soda::nn::Module<float> {
  std::shared_ptr<Leaf> first, second;
  soda::Tensor<float> bias;
  explicit Net(float fill) {
    bias = register_parameter("bias", soda::full<float>({4}, fill));
    first = register_module("first", std::make_shared<Leaf>(fill));
    second = register_module("second", std::make_shared<Leaf>(fill * 2));
  }
  soda::Tensor<float> forward(const soda::Tensor<float>& x) override { return x; }
  std::string type_name() const override { return "Net"; }
};

std::vector<std::string> names_of(const soda::nn::NamedTensors<float>& named) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : named) names.push_back(name);
  return names;
}

}  // namespace

TEST_SUITE("io/state_dict") {
  TEST_CASE("names join with dots, parameters before buffers per module, depth first") {
    const Net net(1);
    CHECK(names_of(net.named_parameters()) ==
          std::vector<std::string>{"bias", "first.weight", "second.weight"});
    CHECK(names_of(net.named_buffers()) ==
          std::vector<std::string>{"first.running_mean", "first.num_batches_tracked",
                                   "second.running_mean", "second.num_batches_tracked"});
    CHECK(names_of(net.state_dict()) ==
          std::vector<std::string>{"bias", "first.weight", "first.running_mean",
                                   "first.num_batches_tracked", "second.weight",
                                   "second.running_mean", "second.num_batches_tracked"});
    CHECK(net.parameter_count() == 4 + 6 + 6);
  }

  TEST_CASE("train and eval reach every child") {
    Net net(1);
    net.eval();
    CHECK(!net.first->is_training());
    CHECK(!net.second->is_training());
    net.train();
    CHECK(net.second->is_training());
  }

  TEST_CASE("a saved state loads into a fresh model in place, counters as int64") {
    const safetensors_test::TempDir dir;
    const Net saved(3);
    saved.first->weight.data()[4] = -1.5f;
    soda::save_state_dict(dir.path / "net.safetensors", saved, {{"epoch", "5"}});

    const auto file = soda::load_safetensors(dir.path / "net.safetensors");
    CHECK(file.metadata.at("epoch") == "5");
    CHECK(std::holds_alternative<soda::Tensor<std::int64_t>>(
        *file.find("first.num_batches_tracked")));

    Net loaded(0);
    const auto handle = loaded.first->weight;  // as an optimizer would hold it
    soda::load_state_dict(loaded, dir.path / "net.safetensors");
    CHECK(handle.data()[4] == -1.5f);
    CHECK(soda::max_abs_difference(loaded.second->running_mean, saved.second->running_mean) == 0);
    CHECK(loaded.first->counter.item() == 7.0f);
  }

  TEST_CASE("double tensors in a file are cast to the model's float") {
    Net net(0);
    auto file = soda::state_dict_file(Net(2));
    file.tensors[0].second = soda::full<double>({4}, 0.25);
    soda::load_state_dict(net, file, "memory");
    CHECK(net.bias.data()[0] == 0.25f);
  }

  TEST_CASE("a missing, misshapen or extra tensor is an error naming the file and the tensor") {
    Net net(0);
    auto file = soda::state_dict_file(Net(2));
    auto missing = file;
    missing.tensors.erase(missing.tensors.begin() + 1);
    CHECK_THROWS_WITH_AS(soda::load_state_dict(net, missing, "a.safetensors"),
                         "load_state_dict: 'a.safetensors': 1 of the model's tensors are missing "
                         "('first.weight'); is this a checkpoint of another model?",
                         soda::ValueError);
    soda::load_state_dict(net, missing, "a.safetensors", "", false);  // non-strict: loads the rest

    auto misshapen = file;
    misshapen.tensors[0].second = soda::zeros<float>({5});
    CHECK_THROWS_WITH_AS(soda::load_state_dict(net, misshapen, "b.safetensors"),
                         "load_state_dict: 'b.safetensors': tensor 'bias' has shape [5] but the "
                         "model's Net expects [4]",
                         soda::ShapeError);

    auto extra = file;
    extra.tensors.emplace_back("fc.weight", soda::zeros<float>({1}));
    CHECK_THROWS_WITH_AS(soda::load_state_dict(net, extra, "c.safetensors"),
                         "load_state_dict: 'c.safetensors': tensor 'fc.weight' matches nothing in "
                         "the model's Net; is this a checkpoint of another model?",
                         soda::ValueError);
  }

  TEST_CASE("a refused file leaves every tensor of the model as it was") {
    // The bad entry comes last, after tensors that fit: nothing may be copied before the check.
    const auto unchanged = [](const Net& net) {
      return net.bias.at({0}) == 1.0f && net.first->weight.at({1, 2}) == 1.0f &&
             net.first->running_mean.at({2}) == 2.0f && net.second->weight.at({0, 0}) == 2.0f &&
             net.second->counter.item() == 7.0f;
    };
    Net net(1);
    REQUIRE(unchanged(net));
    const auto file = soda::state_dict_file(Net(5));
    REQUIRE(file.tensors.back().first == "second.num_batches_tracked");

    auto misshapen = file;
    misshapen.tensors.back().second = soda::zeros<std::int64_t>({2});
    CHECK_THROWS_AS(soda::load_state_dict(net, misshapen, "a.safetensors"), soda::ShapeError);
    CHECK(unchanged(net));

    auto missing = file;
    missing.tensors.pop_back();
    CHECK_THROWS_AS(soda::load_state_dict(net, missing, "b.safetensors"), soda::ValueError);
    CHECK(unchanged(net));

    auto extra = file;
    extra.tensors.emplace_back("fc.weight", soda::zeros<float>({1}));
    CHECK_THROWS_AS(soda::load_state_dict(net, extra, "c.safetensors"), soda::ValueError);
    CHECK(unchanged(net));

    soda::load_state_dict(net, file, "d.safetensors");  // and a good file loads
    CHECK(net.bias.at({0}) == 5.0f);
    CHECK(net.second->weight.at({0, 0}) == 10.0f);
  }

  TEST_CASE("a prefix selects one model's entries in a larger file") {
    Net net(0);
    soda::TensorFile file;
    for (auto& [name, tensor] : soda::state_dict_file(Net(4)).tensors) {
      file.tensors.emplace_back("model." + name, tensor);
    }
    file.tensors.emplace_back("optimizer.momentum_buffer.0", soda::zeros<float>({4}));
    soda::load_state_dict(net, file, "checkpoint", "model.");
    CHECK(net.bias.data()[3] == 4.0f);
  }

  TEST_CASE("registering a name twice or a dotted name is refused") {
    struct Bad : soda::nn::Module<float> {
      explicit Bad(int which) {
        register_parameter("w", soda::zeros<float>({1}));
        if (which == 0) register_buffer("w", soda::zeros<float>({1}));
        if (which == 1) register_parameter("a.b", soda::zeros<float>({1}));
      }
      soda::Tensor<float> forward(const soda::Tensor<float>& x) override { return x; }
      std::string type_name() const override { return "Bad"; }
    };
    CHECK_THROWS_WITH_AS(Bad(0), "Bad: the name 'w' is registered twice", soda::ValueError);
    CHECK_THROWS_AS(Bad(1), soda::ValueError);
  }
}
