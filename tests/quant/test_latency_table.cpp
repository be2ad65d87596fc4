// soda/quant/latency_table.hpp: measured medians for every layer and bit pair of a small ResNet,
// exact JSON round trips (in memory and through a file), and errors that name the layer or file.
#include <doctest/doctest.h>

#include <soda/models/resnet_cifar.hpp>
#include <soda/quant/latency_table.hpp>
#include <soda/quant/layer_geometry.hpp>
#include <soda/quant/sensitivity.hpp>

#include <unistd.h>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

using soda::quant::LatencyTable;

// ResNet-8 with 4 base channels on 8×8 three-channel images: 10 layers, a few µs each.
std::vector<soda::quant::LayerGeometry> latency_geometry() {
  soda::Generator gen(9);
  soda::models::ResNetCifarOptions options;
  options.depth = 8;
  options.base_channels = 4;
  const auto model = std::make_shared<soda::models::ResNetCifar<float>>(options, gen);
  return soda::quant::resnet_layer_geometry(*model, 8, 8);
}

const std::vector<std::pair<int, int>> latency_pairs{{8, 8}, {4, 8}, {4, 4}, {2, 8}};

// A file name of this process under the system's temporary folder, removed at scope exit.
struct LatencyTempFile {
  std::filesystem::path path;
  explicit LatencyTempFile(const std::string& stem)
      : path(std::filesystem::temp_directory_path() /
             ("soda_test_" + stem + "_" + std::to_string(::getpid()) + ".json")) {}
  ~LatencyTempFile() {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
  }
};

}  // namespace

TEST_CASE("measure_layer_latency times every layer at every bit pair") {
  const auto geometry = latency_geometry();
  const auto table = soda::quant::measure_layer_latency(geometry, latency_pairs, 2, 3, 42);
  CHECK(table.batch() == 2);
  CHECK(table.kernel() ==
        std::string(soda::quant::kernel_name(soda::quant::best_integer_gemm_kernel())));
  REQUIRE(table.entries().size() == geometry.size() * latency_pairs.size());
  for (const auto& g : geometry) {
    for (const auto& [wb, ab] : latency_pairs) {
      INFO(g.name << " W" << wb << "A" << ab);
      CHECK(table.seconds(g.name, wb, ab) > 0);
    }
  }
  for (const auto& e : table.entries()) CHECK(e.repetitions == 3);

  // The table feeds the allocation's latency term.
  std::vector<soda::quant::LayerSensitivity> sensitivities;
  for (const auto& g : geometry) {
    soda::quant::LayerSensitivity s;
    s.name = g.name;
    s.parameter_count = s.weight_count = g.parameter_count;
    s.average_trace = 1;
    for (const int b : {8, 4, 2}) s.perturbations.push_back({b, 1.0 / b, 1.0 / b});
    sensitivities.push_back(s);
  }
  const auto layers = soda::quant::layer_candidates(sensitivities, geometry, latency_pairs, &table);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    for (std::size_t c = 0; c < latency_pairs.size(); ++c) {
      CHECK(layers[i].candidates[c].latency_seconds ==
            table.seconds(geometry[i].name, latency_pairs[c].first, latency_pairs[c].second));
    }
  }

  CHECK_THROWS_WITH_AS(soda::quant::measure_layer_latency(geometry, latency_pairs, 0, 3, 42),
                       doctest::Contains("batch and repetitions must be at least 1"),
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(soda::quant::measure_layer_latency(geometry, {{8, 2}}, 1, 1, 42),
                       doctest::Contains("activation bits must be 4 or 8, got 2"),
                       soda::ValueError);
}

TEST_CASE("LatencyTable: lookups name the missing layer and bits") {
  LatencyTable table(4, "portable");
  table.add({"conv1", 8, 8, 1.5e-5, 7});
  CHECK(table.seconds("conv1", 8, 8) == 1.5e-5);
  CHECK_THROWS_WITH_AS(table.seconds("conv1", 4, 8),
                       doctest::Contains("no latency for layer \"conv1\" at W4A8"),
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(table.seconds("layer9.0.conv1", 8, 8),
                       doctest::Contains("layer \"layer9.0.conv1\" at W8A8"), soda::ValueError);
  CHECK_THROWS_WITH_AS(table.add({"conv1", 8, 8, 2e-5, 7}), doctest::Contains("given twice"),
                       soda::ValueError);
  CHECK_THROWS_WITH_AS(table.add({"fc", 3, 8, 2e-5, 7}),
                       doctest::Contains("weight bits must be 2, 4 or 8, got 3"), soda::ValueError);
}

TEST_CASE("LatencyTable: JSON round trips are exact, in memory and through a file") {
  const auto table = soda::quant::measure_layer_latency(latency_geometry(), latency_pairs, 1, 2, 7);
  const auto json = table.to_json();
  CHECK(LatencyTable::from_json(json) == table);
  // Through text: doubles are printed with round-trip precision.
  CHECK(LatencyTable::from_json(nlohmann::ordered_json::parse(json.dump())) == table);
  const LatencyTempFile file("latency_round_trip");
  table.save(file.path.string());
  const auto loaded = LatencyTable::load(file.path.string());
  CHECK(loaded == table);
  CHECK(loaded.entries().front().seconds == table.entries().front().seconds);
}

TEST_CASE("LatencyTable: a missing or corrupt file is an error naming the file") {
  const LatencyTempFile corrupt("latency_corrupt");
  {
    std::ofstream out(corrupt.path);
    out << "{\"batch\": 1, \"entries\": [ {\"name\": \"conv1\", ";
  }
  const std::string name = corrupt.path.string();
  CHECK_THROWS_WITH_AS(LatencyTable::load(name),
                       doctest::Contains(("'" + name + "' is not valid JSON").c_str()),
                       soda::IoError);

  const LatencyTempFile wrong("latency_wrong_entry");
  {
    std::ofstream out(wrong.path);
    out << R"({"batch": 1, "kernel": "avx2", "entries": [)"
        << R"({"name": "conv1", "weight_bits": 8, "activation_bits": 8, "seconds": 1e-5,)"
        << R"( "repetitions": 3}, {"name": "fc", "weight_bits": 8, "activation_bits": 8}]})";
  }
  CHECK_THROWS_WITH_AS(LatencyTable::load(wrong.path.string()),
                       doctest::Contains(("('" + wrong.path.string() + "'): entry 1").c_str()),
                       soda::IoError);

  const LatencyTempFile missing("latency_missing");
  CHECK_THROWS_WITH_AS(LatencyTable::load(missing.path.string()),
                       doctest::Contains(("cannot open '" + missing.path.string() + "'").c_str()),
                       soda::IoError);
  CHECK_THROWS_WITH_AS(
      LatencyTable::from_json(nlohmann::ordered_json::parse(R"({"batch": 0, "entries": []})")),
      doctest::Contains("batch must be at least 1, got 0"), soda::ValueError);
  CHECK_THROWS_WITH_AS(LatencyTable::from_json(nlohmann::ordered_json::parse(R"({"entries": []})")),
                       doctest::Contains("expected an object with \"batch\""), soda::ValueError);
  CHECK_THROWS_WITH_AS(
      LatencyTable::from_json(nlohmann::ordered_json::array()),
      doctest::Contains("expected an object with \"batch\" and an \"entries\" array"),
      soda::ValueError);
}
