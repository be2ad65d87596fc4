// Fuzz target: load_state_dict of any file into a small MLP (models::mlp, 4 → 3 → 2). Only
// soda::Error may come out; a refused file leaves the model as it was, an accepted one sets every
// parameter to the file's values.
#include <soda/io/state_dict.hpp>
#include <soda/models/classifiers.hpp>

#include <vector>

#include "fuzz_input.hpp"

namespace {

// The model's values, flattened in state-dict order.
std::vector<float> snapshot(const soda::nn::Module<float>& model) {
  std::vector<float> values;
  for (const auto& [name, tensor] : model.state_dict()) {
    const auto contiguous = soda::detail::copy_contiguous(tensor);
    values.insert(values.end(), contiguous.data(), contiguous.data() + contiguous.numel());
  }
  return values;
}

// Bitwise, so that NaN payloads and -0 count.
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  soda::Generator generator(7);
  const auto model = soda::models::mlp<float>(4, {3}, 2, generator);
  const auto before = snapshot(*model);
  const auto path = soda_fuzz::write_input(data, size, "input.safetensors");
  try {
    soda::load_state_dict(*model, path);
  } catch (const soda::Error&) {
    soda_fuzz::require(same_bits(snapshot(*model), before), "a refused file changes nothing");
    return 0;
  }
  const soda::TensorFile file = soda::load_safetensors(path);
  std::vector<float> expected;
  for (const auto& [name, tensor] : model->state_dict()) {
    const auto stored = soda::detail::values_as<float>(*file.find(name));
    expected.insert(expected.end(), stored.data(), stored.data() + stored.numel());
  }
  soda_fuzz::require(same_bits(snapshot(*model), expected),
                     "a loaded model holds the file's values");
  return 0;
}
