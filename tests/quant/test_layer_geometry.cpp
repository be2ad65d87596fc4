// soda/quant/layer_geometry.hpp: shapes and MACs of CIFAR ResNets' quantizable layers against hand
// counts (MACs = C_out·C_in·kh·kw·H_out·W_out), and names against the model's state_dict.
#include <doctest/doctest.h>

#include <soda/models/resnet_cifar.hpp>
#include <soda/quant/layer_geometry.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace {

using soda::quant::LayerGeometry;

std::shared_ptr<soda::models::ResNetCifar<float>> geometry_resnet(std::int64_t depth,
                                                                  std::int64_t in_channels,
                                                                  bool residual = true) {
  soda::Generator gen(5);
  soda::models::ResNetCifarOptions options;
  options.depth = depth;
  options.in_channels = in_channels;
  options.residual = residual;
  return std::make_shared<soda::models::ResNetCifar<float>>(options, gen);
}

// One expected row: name, channels, kernel, stride, padding, input and output sizes (square).
struct GeometryRow {
  std::string name;
  std::int64_t in, out, kernel, stride, padding, in_size, out_size;
};

void geometry_check_rows(const std::vector<LayerGeometry>& layers,
                         const std::vector<GeometryRow>& rows) {
  REQUIRE(layers.size() == rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& g = layers[i];
    const auto& r = rows[i];
    INFO("layer " << i << " " << r.name);
    CHECK(g.name == r.name);
    CHECK(g.in_channels == r.in);
    CHECK(g.out_channels == r.out);
    CHECK(g.kernel_h == r.kernel);
    CHECK(g.kernel_w == r.kernel);
    CHECK(g.stride == r.stride);
    CHECK(g.padding == r.padding);
    CHECK(g.in_height == r.in_size);
    CHECK(g.in_width == r.in_size);
    CHECK(g.out_height == r.out_size);
    CHECK(g.out_width == r.out_size);
    CHECK(g.parameter_count == r.out * r.in * r.kernel * r.kernel);
    CHECK(g.mac_count == r.out * r.in * r.kernel * r.kernel * r.out_size * r.out_size);
  }
}

// The model's quantizable weights: every parameter of rank 2 or 4, in state_dict order.
std::vector<std::string> geometry_weight_names(const soda::nn::Module<float>& model) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : model.state_dict()) {
    if (tensor.ndim() == 4 || tensor.ndim() == 2) names.push_back(name);
  }
  return names;
}

}  // namespace

TEST_CASE("resnet_layer_geometry of ResNet-20 on 32×32×3 images, hand counted") {
  const auto model = geometry_resnet(20, 3);
  const auto layers = soda::quant::resnet_layer_geometry(*model, 32, 32);
  std::vector<GeometryRow> rows{{"conv1", 3, 16, 3, 1, 1, 32, 32}};
  for (int b = 0; b < 3; ++b) {
    const std::string p = "layer1." + std::to_string(b) + ".";
    rows.push_back({p + "conv1", 16, 16, 3, 1, 1, 32, 32});
    rows.push_back({p + "conv2", 16, 16, 3, 1, 1, 32, 32});
  }
  rows.push_back({"layer2.0.conv1", 16, 32, 3, 2, 1, 32, 16});
  rows.push_back({"layer2.0.conv2", 32, 32, 3, 1, 1, 16, 16});
  rows.push_back({"layer2.0.downsample.0", 16, 32, 1, 2, 0, 32, 16});
  for (int b = 1; b < 3; ++b) {
    const std::string p = "layer2." + std::to_string(b) + ".";
    rows.push_back({p + "conv1", 32, 32, 3, 1, 1, 16, 16});
    rows.push_back({p + "conv2", 32, 32, 3, 1, 1, 16, 16});
  }
  rows.push_back({"layer3.0.conv1", 32, 64, 3, 2, 1, 16, 8});
  rows.push_back({"layer3.0.conv2", 64, 64, 3, 1, 1, 8, 8});
  rows.push_back({"layer3.0.downsample.0", 32, 64, 1, 2, 0, 16, 8});
  for (int b = 1; b < 3; ++b) {
    const std::string p = "layer3." + std::to_string(b) + ".";
    rows.push_back({p + "conv1", 64, 64, 3, 1, 1, 8, 8});
    rows.push_back({p + "conv2", 64, 64, 3, 1, 1, 8, 8});
  }
  rows.push_back({"fc", 64, 10, 1, 1, 0, 1, 1});
  geometry_check_rows(layers, rows);

  CHECK(layers.front().mac_count == 16 * 3 * 9 * 32 * 32);
  std::int64_t total = 0;
  for (const auto& g : layers) total += g.mac_count;
  // 442,368 (stem) + 6·2,359,296 (stage 1) + 2·(1,179,648 + 2,359,296 + 131,072 + 4·2,359,296)
  // (stages 2 and 3) + 640 (fc): the 40.8 M MACs usually quoted for ResNet-20.
  CHECK(total == 40'813'184);

  std::vector<std::string> names;
  for (const auto& g : layers) names.push_back(g.name + ".weight");
  CHECK(names == geometry_weight_names(*model));
  std::int64_t weights = 0;
  for (const auto& g : layers) weights += g.parameter_count;
  CHECK(weights == 16 * 27 + 6 * 16 * 144 + (32 * 144 + 32 * 288 + 32 * 16 + 4 * 32 * 288) +
                       (64 * 288 + 64 * 576 + 64 * 32 + 4 * 64 * 576) + 640);
}

TEST_CASE("resnet_layer_geometry of ResNet-8 on 28×28×1 images: odd sizes halve upwards") {
  const auto model = geometry_resnet(8, 1);
  const auto layers = soda::quant::resnet_layer_geometry(*model, 28, 28);
  geometry_check_rows(layers, {{"conv1", 1, 16, 3, 1, 1, 28, 28},
                               {"layer1.0.conv1", 16, 16, 3, 1, 1, 28, 28},
                               {"layer1.0.conv2", 16, 16, 3, 1, 1, 28, 28},
                               {"layer2.0.conv1", 16, 32, 3, 2, 1, 28, 14},
                               {"layer2.0.conv2", 32, 32, 3, 1, 1, 14, 14},
                               {"layer2.0.downsample.0", 16, 32, 1, 2, 0, 28, 14},
                               {"layer3.0.conv1", 32, 64, 3, 2, 1, 14, 7},
                               {"layer3.0.conv2", 64, 64, 3, 1, 1, 7, 7},
                               {"layer3.0.downsample.0", 32, 64, 1, 2, 0, 14, 7},
                               {"fc", 64, 10, 1, 1, 0, 1, 1}});
  CHECK(layers[0].mac_count == 112'896);  // 16·1·9·28·28
  CHECK(layers[6].mac_count == 903'168);  // 64·32·9·7·7
  CHECK(layers[8].mac_count == 100'352);  // 64·32·7·7
  std::vector<std::string> names;
  for (const auto& g : layers) names.push_back(g.name + ".weight");
  CHECK(names == geometry_weight_names(*model));
}

TEST_CASE("resnet_layer_geometry of ResNet-8 on 32×32×3 and 7×5 images") {
  const auto model = geometry_resnet(8, 3);
  const auto cifar = soda::quant::resnet_layer_geometry(*model, 32, 32);
  REQUIRE(cifar.size() == 10);
  CHECK(cifar[0].mac_count == 16 * 3 * 9 * 32 * 32);
  CHECK(cifar[3].mac_count == 32 * 16 * 9 * 16 * 16);
  CHECK(cifar[8].out_height == 8);
  // Rectangular images: each side follows (size + 2·padding − kernel) / stride + 1 on its own.
  const auto odd = soda::quant::resnet_layer_geometry(*model, 7, 5);
  CHECK(odd[3].out_height == 4);
  CHECK(odd[3].out_width == 3);
  CHECK(odd[6].out_height == 2);
  CHECK(odd[6].out_width == 2);
  CHECK(odd[6].mac_count == 64 * 32 * 9 * 2 * 2);
}

TEST_CASE("resnet_layer_geometry without residual connections has no downsample layers") {
  const auto model = geometry_resnet(8, 3, false);
  const auto layers = soda::quant::resnet_layer_geometry(*model, 32, 32);
  REQUIRE(layers.size() == 8);
  for (const auto& g : layers) CHECK(g.name.find("downsample") == std::string::npos);
  CHECK(layers.back().name == "fc");
}

TEST_CASE("resnet_layer_geometry rejects images without pixels") {
  const auto model = geometry_resnet(8, 3);
  CHECK_THROWS_WITH_AS(soda::quant::resnet_layer_geometry(*model, 0, 32),
                       doctest::Contains("images must be at least 1×1, got 0×32"),
                       soda::ValueError);
  // A 1×1 image still passes every padded 3×3 window: the smallest input a CIFAR ResNet takes.
  const auto tiny = soda::quant::resnet_layer_geometry(*model, 1, 1);
  for (const auto& g : tiny) CHECK(g.out_height == 1);
}
