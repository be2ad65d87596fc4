// Fuzz target: load_integer_resnet on any bytes. Only soda::Error may come out; a network it
// accepts runs on a few images (when they are small) and saves and loads back to the same
// description and the same codes.
#include <soda/quant/integer_resnet_file.hpp>

#include "fuzz_input.hpp"

namespace {

// Two images with values spread over [-2, 2), the same on every run.
soda::Tensor<float> images_for(const soda::quant::IntegerResNet& network) {
  const soda::Shape shape{2, network.in_channels(), network.image_height(), network.image_width()};
  std::vector<float> values(static_cast<std::size_t>(soda::numel(shape)));
  for (std::size_t i = 0; i < values.size(); ++i) {
    values[i] = static_cast<float>(static_cast<int>(i * 37 % 64) - 32) / 16.0f;
  }
  return soda::Tensor<float>(shape, std::move(values));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = soda_fuzz::write_input(data, size, "input.safetensors");
  std::optional<soda::quant::IntegerResNet> network;
  try {
    network.emplace(soda::quant::load_integer_resnet(path));
  } catch (const soda::Error&) {
    return 0;
  }
  const auto copy = soda_fuzz::scratch_folder() / "copy.safetensors";
  soda::quant::save_integer_resnet(copy, *network);
  const auto again = soda::quant::load_integer_resnet(copy);
  soda_fuzz::require(again.to_json() == network->to_json(), "the description saves and loads");
  // Bounded work per input: the forward pass only on small images and channel counts.
  if (network->image_height() * network->image_width() <= 256 && network->in_channels() <= 16) {
    const auto images = images_for(*network);
    const auto codes = network->forward_codes(images);
    soda_fuzz::require(again.forward_codes(images).bytes == codes.bytes,
                       "a saved and loaded network gives the same codes");
  }
  return 0;
}
