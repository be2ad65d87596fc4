// soda/quant/integer_resnet_file.hpp: a saved and reloaded IntegerResNet gives the same codes bit
// for bit, and a truncated, foreign or tampered file is refused with an IoError naming it.
#include <doctest/doctest.h>

#include <soda/io/safetensors.hpp>
#include <soda/quant/integer_resnet_file.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "random_plan.hpp"

using namespace soda::quant;
using integer_resnet_test::random_images;
using integer_resnet_test::random_plan;
using integer_resnet_test::RandomPlanOptions;

namespace {

// A fresh folder under the system temp folder, removed with everything in it.
struct IntegerResnetFileTempDir {
  std::filesystem::path path;
  IntegerResnetFileTempDir() {
    std::random_device entropy;
    path =
        std::filesystem::temp_directory_path() /
        ("soda-integer-resnet-test-" + std::to_string(entropy()) + "-" + std::to_string(entropy()));
    std::filesystem::create_directories(path);
  }
  ~IntegerResnetFileTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  IntegerResnetFileTempDir(const IntegerResnetFileTempDir&) = delete;
  IntegerResnetFileTempDir& operator=(const IntegerResnetFileTempDir&) = delete;
};

// The message of the IoError loading path throws (and that it names the file).
std::string integer_resnet_file_load_error(const std::filesystem::path& path) {
  try {
    load_integer_resnet(path);
  } catch (const soda::IoError& e) {
    const std::string message = e.what();
    CHECK_MESSAGE(message.find(path.string()) != std::string::npos, message);
    return message;
  }
  FAIL("load_integer_resnet accepted " << path.string());
  return "";
}

bool integer_resnet_file_contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("integer_resnet_file: save then load gives bit-identical codes") {
  for (bool residual : {true, false}) {
    RandomPlanOptions options;
    options.residual = residual;
    options.in_channels = residual ? 3 : 1;
    options.widths = {6, 9, 16};
    options.weight_bits = {8, 2, 4, 4};
    options.activation_bits = {4, 8};
    options.seed = residual ? 71 : 72;
    const auto network =
        IntegerResNet::compile(random_plan(options), options.height, options.width);
    IntegerResnetFileTempDir dir;
    const auto path = dir.path / "resnet8.safetensors";
    save_integer_resnet(path, network);
    const IntegerResNet loaded = load_integer_resnet(path);
    const auto images = random_images(20, options.in_channels, 16, 16, 9);
    const IntegerMatrix expected = network.forward_codes(images);
    const IntegerMatrix actual = loaded.forward_codes(images);
    CHECK(actual.format == expected.format);
    CHECK(actual.bytes == expected.bytes);
    CHECK(loaded.to_json() == network.to_json());
    CHECK(loaded.size_bits() == network.size_bits());
    const auto original_layers = network.layers();
    const auto loaded_layers = loaded.layers();
    REQUIRE(loaded_layers.size() == original_layers.size());
    for (std::size_t i = 0; i < loaded_layers.size(); ++i) {
      const IntegerLayer& a = original_layers[i];
      const IntegerLayer& b = loaded_layers[i];
      CHECK(a.weights.bytes == b.weights.bytes);
      CHECK(a.weight_scales == b.weight_scales);
      CHECK(a.bias == b.bias);
      CHECK(a.factors == b.factors);
    }

    const soda::TensorFile file = soda::load_safetensors(path);
    CHECK(file.metadata.at("format") == "soda.integer_resnet");
    CHECK(file.contains("conv1.weight"));
    CHECK(file.contains("fc.multiplier"));
    CHECK(file.contains("layer2.0.downsample.bias") == residual);
  }
}

TEST_CASE("integer_resnet_file: int8 weights are I8 [out, K], int4 ones U8 nibbles [out, K/2]") {
  RandomPlanOptions options;
  options.weight_bits = {8, 2};
  const auto network = IntegerResNet::compile(random_plan(options), 16, 16);
  IntegerResnetFileTempDir dir;
  const auto path = dir.path / "net.safetensors";
  save_integer_resnet(path, network);
  const soda::TensorFile file = soda::load_safetensors(path);
  const auto stem = file.get<std::int8_t>("conv1.weight");  // layer 0: 8 bits
  CHECK(stem.shape() == soda::Shape{8, 27});
  const auto conv = file.get<std::uint8_t>("layer1.0.conv1.weight");  // layer 1: 2 bits
  CHECK(conv.shape() == soda::Shape{8, 36});
  CHECK(file.get<std::int32_t>("layer1.0.conv1.shift").shape() == soda::Shape{8});
  CHECK(file.get<float>("fc.weight_scale").shape() == soda::Shape{10});
}

TEST_CASE("integer_resnet_file: truncated, foreign and tampered files raise IoError naming them") {
  const auto network = IntegerResNet::compile(random_plan(RandomPlanOptions{}), 16, 16);
  IntegerResnetFileTempDir dir;
  const auto path = dir.path / "net.safetensors";
  save_integer_resnet(path, network);
  const soda::TensorFile good = soda::load_safetensors(path);

  SUBCASE("missing file") {
    CHECK(integer_resnet_file_contains(integer_resnet_file_load_error(dir.path / "none"),
                                       "no such file"));
  }
  SUBCASE("truncated") {
    const auto size = std::filesystem::file_size(path);
    std::filesystem::resize_file(path, size - 100);
    CHECK(integer_resnet_file_contains(integer_resnet_file_load_error(path), "truncated"));
  }
  SUBCASE("a plain safetensors file") {
    soda::save_safetensors(path, {{"w", soda::Tensor<float>({2}, {1.0f, 2.0f})}});
    CHECK(integer_resnet_file_contains(integer_resnet_file_load_error(path),
                                       "not an IntegerResNet model file"));
  }
  SUBCASE("missing tensor") {
    soda::TensorFile file = good;
    std::erase_if(file.tensors, [](const auto& t) { return t.first == "layer2.0.conv1.bias"; });
    soda::save_safetensors(path, file);
    CHECK(integer_resnet_file_contains(integer_resnet_file_load_error(path),
                                       "missing tensor 'layer2.0.conv1.bias'"));
  }
  SUBCASE("wrong shape") {
    soda::TensorFile file = good;
    for (auto& [name, tensor] : file.tensors) {
      if (name == "fc.bias") tensor = soda::Tensor<std::int32_t>({9}, std::vector<std::int32_t>(9));
    }
    soda::save_safetensors(path, file);
    CHECK(integer_resnet_file_contains(integer_resnet_file_load_error(path),
                                       "tensor 'fc.bias' has shape [9], expected [10]"));
  }
  SUBCASE("wrong dtype") {
    soda::TensorFile file = good;
    for (auto& [name, tensor] : file.tensors) {
      if (name == "conv1.weight_scale") tensor = soda::Tensor<double>({8}, std::vector<double>(8));
    }
    soda::save_safetensors(path, file);
    CHECK(integer_resnet_file_contains(integer_resnet_file_load_error(path),
                                       "'conv1.weight_scale' is float64, expected float32"));
  }
  SUBCASE("a stray tensor") {
    soda::TensorFile file = good;
    file.tensors.emplace_back("extra", soda::Tensor<float>({1}, {0.0f}));
    soda::save_safetensors(path, file);
    CHECK(integer_resnet_file_contains(integer_resnet_file_load_error(path),
                                       "'extra' belongs to no layer"));
  }
  SUBCASE("a factor that is not dyadic") {
    soda::TensorFile file = good;
    for (auto& [name, tensor] : file.tensors) {
      if (name == "layer3.0.conv2.multiplier") {
        tensor = soda::Tensor<std::int32_t>({32}, std::vector<std::int32_t>(32, 5));
      }
    }
    soda::save_safetensors(path, file);
    const auto message = integer_resnet_file_load_error(path);
    CHECK(integer_resnet_file_contains(message, "inconsistent network"));
    CHECK(integer_resnet_file_contains(message, "layer 'layer3.0.conv2'"));
  }
  SUBCASE("a description whose grids disagree") {
    soda::TensorFile file = good;
    auto description = nlohmann::ordered_json::parse(file.metadata.at("soda.integer_resnet"));
    description["blocks"][1]["conv1"]["input"]["bits"] = 4;
    file.metadata["soda.integer_resnet"] = description.dump();
    soda::save_safetensors(path, file);
    CHECK(integer_resnet_file_contains(integer_resnet_file_load_error(path),
                                       "'layer2.0.conv1' reads its input on"));
  }
  SUBCASE("a malformed description") {
    soda::TensorFile file = good;
    auto description = nlohmann::ordered_json::parse(file.metadata.at("soda.integer_resnet"));
    description.erase("pool_factor");
    file.metadata["soda.integer_resnet"] = description.dump();
    soda::save_safetensors(path, file);
    CHECK(integer_resnet_file_contains(integer_resnet_file_load_error(path), "malformed"));
  }
  SUBCASE("a field that is not an integer of its type") {
    // nlohmann's get<> would truncate 1.0 or 8.5 and wrap 2^32 + 8 to 8, and accept the file.
    const std::vector<std::pair<std::string, nlohmann::ordered_json>> fields = {
        {"stride", 1.0}, {"padding", 8.5}, {"weight_bits", std::int64_t{4294967304}}};
    for (const auto& [field, value] : fields) {
      CAPTURE(field);
      soda::TensorFile file = good;
      auto description = nlohmann::ordered_json::parse(file.metadata.at("soda.integer_resnet"));
      description["stem"][field] = value;
      file.metadata["soda.integer_resnet"] = description.dump();
      soda::save_safetensors(path, file);
      const auto message = integer_resnet_file_load_error(path);
      CHECK(integer_resnet_file_contains(message, "\"" + field + "\" is " + value.dump()));
      CHECK(integer_resnet_file_contains(message, "not an integer"));
    }
  }
  SUBCASE("a geometry or image size past its bound") {
    const std::vector<std::pair<std::string, std::string>> fields = {
        {"out_channels", "layer 'conv1': out_channels 1099511627776 is too large"},
        {"kernel_h", "layer 'conv1': kernel_h 1099511627776 is too large"},
        {"image_height", "image height 1099511627776 is too large"}};
    for (const auto& [field, expected] : fields) {
      CAPTURE(field);
      soda::TensorFile file = good;
      auto description = nlohmann::ordered_json::parse(file.metadata.at("soda.integer_resnet"));
      auto& where = field == "image_height" ? description : description["stem"];
      where[field] = std::int64_t{1} << 40;
      file.metadata["soda.integer_resnet"] = description.dump();
      soda::save_safetensors(path, file);
      CHECK(integer_resnet_file_contains(integer_resnet_file_load_error(path), expected));
    }
  }
  SUBCASE("another format version") {
    soda::TensorFile file = good;
    file.metadata["format_version"] = "2";
    soda::save_safetensors(path, file);
    CHECK(integer_resnet_file_contains(integer_resnet_file_load_error(path), "format_version '2'"));
  }
}
