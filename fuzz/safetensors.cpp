// Fuzz target: load_safetensors on any bytes. Only soda::Error may come out; a file it accepts
// must save and load back to the same names, dtypes, shapes, bytes and metadata.
#include <soda/io/safetensors.hpp>

#include <cstring>

#include "fuzz_input.hpp"

namespace {

bool same_tensor(const soda::AnyTensor& a, const soda::AnyTensor& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&]<class T>(const soda::Tensor<T>& x) {
        const auto& y = std::get<soda::Tensor<T>>(b);
        return x.shape() == y.shape() &&
               std::memcmp(x.data(), y.data(), static_cast<std::size_t>(x.numel()) * sizeof(T)) ==
                   0;
      },
      a);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = soda_fuzz::write_input(data, size, "input.safetensors");
  soda::TensorFile file;
  try {
    file = soda::load_safetensors(path);
  } catch (const soda::Error&) {
    return 0;
  }
  const auto copy = soda_fuzz::scratch_folder() / "copy.safetensors";
  soda::save_safetensors(copy, file);
  const soda::TensorFile again = soda::load_safetensors(copy);
  soda_fuzz::require(again.metadata == file.metadata, "metadata survives a save and load");
  soda_fuzz::require(again.tensors.size() == file.tensors.size(), "every tensor is saved");
  for (std::size_t i = 0; i < file.tensors.size(); ++i) {
    soda_fuzz::require(again.tensors[i].first == file.tensors[i].first, "names keep their order");
    soda_fuzz::require(same_tensor(again.tensors[i].second, file.tensors[i].second),
                       "a tensor saves and loads bit for bit");
  }
  return 0;
}
