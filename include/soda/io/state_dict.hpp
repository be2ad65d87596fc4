// A module's state dict (parameters and buffers under PyTorch names) to and from safetensors, so
// weights move both ways between soda and PyTorch (torch.save-free: safetensors on both sides).
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "soda/core/convert.hpp"
#include "soda/io/safetensors.hpp"
#include "soda/nn/module.hpp"

namespace soda {

namespace detail {

// PyTorch keeps BatchNorm's batch counter as int64; soda keeps every buffer in the module's type.
inline bool is_integer_counter(const std::string& name) {
  const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The values of `stored` (any dtype) cast to T.
template <class T>
Tensor<T> values_as(const AnyTensor& stored) {
  return std::visit([](const auto& t) { return t.template to<T>(); }, stored);
}

}  // namespace detail

// The module's state as named tensors (prefix + PyTorch names), sharing storage, counters as int64.
template <class T>
TensorFile state_dict_file(const nn::Module<T>& module, const std::string& prefix = "") {
  TensorFile file;
  for (const auto& [name, tensor] : module.state_dict()) {
    if (detail::is_integer_counter(name)) {
      file.tensors.emplace_back(prefix + name, tensor.template to<std::int64_t>());
    } else {
      file.tensors.emplace_back(prefix + name, tensor);
    }
  }
  return file;
}

// Writes the module's state dict (atomically) with optional string metadata.
template <class T>
void save_state_dict(const std::filesystem::path& path, const nn::Module<T>& module,
                     const std::map<std::string, std::string>& metadata = {}) {
  auto file = state_dict_file(module);
  file.metadata = metadata;
  save_safetensors(path, file);
}

// Copies the tensors named prefix + name in `file` into the module's parameters and buffers, in
// place (handles held by optimizers stay valid). Values of another float or integer type are
// cast. Strict: every module entry must be present and, with no prefix, no entry may be left over.
// Every check runs before the first copy, so a file that is refused leaves the module untouched.
// `source` names the file in messages.
template <class T>
void load_state_dict(nn::Module<T>& module, const TensorFile& file, const std::string& source,
                     const std::string& prefix = "", bool strict = true) {
  const auto where = [&] { return "load_state_dict: '" + source + "': "; };
  std::set<std::string> used;
  std::vector<std::string> missing;
  std::vector<std::pair<Tensor<T>, Tensor<T>>> copies;  // (the module's tensor, the values cast)
  for (const auto& [name, tensor] : module.state_dict()) {
    const AnyTensor* stored = file.find(prefix + name);
    if (stored == nullptr) {
      missing.push_back(prefix + name);
      continue;
    }
    used.insert(prefix + name);
    const Shape& stored_shape =
        std::visit([](const auto& t) -> const Shape& { return t.shape(); }, *stored);
    if (stored_shape != tensor.shape()) {
      throw ShapeError(where() + "tensor '" + prefix + name + "' has shape " +
                       to_string(stored_shape) + " but the model's " + module.type_name() +
                       " expects " + to_string(tensor.shape()));
    }
    if (!tensor.is_contiguous()) {
      throw ValueError(where() + "the model's tensor '" + name + "' is a strided view (internal)");
    }
    copies.emplace_back(tensor, detail::values_as<T>(*stored));
  }
  if (strict && !missing.empty()) {
    std::string list;
    for (std::size_t i = 0; i < missing.size() && i < 5; ++i)
      list += (i ? ", '" : "'") + missing[i] + "'";
    throw ValueError(
        where() + std::to_string(missing.size()) + " of the model's tensors are missing (" + list +
        (missing.size() > 5 ? ", ..." : "") + "); is this a checkpoint of another model?");
  }
  if (strict && prefix.empty()) {
    for (const auto& [name, tensor] : file.tensors) {
      if (!used.count(name)) {
        throw ValueError(where() + "tensor '" + name + "' matches nothing in the model's " +
                         module.type_name() + "; is this a checkpoint of another model?");
      }
    }
  }
  for (const auto& [destination, values] : copies) {
    std::copy(values.data(), values.data() + values.numel(), destination.raw_data());
  }
}

template <class T>
void load_state_dict(nn::Module<T>& module, const std::filesystem::path& path, bool strict = true) {
  load_state_dict(module, load_safetensors(path), path.string(), "", strict);
}

}  // namespace soda
