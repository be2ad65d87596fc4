// Reading an optimizer's checkpointed state: typed metadata entries and per-parameter buffers
// named "<kind>.<parameter index>", with errors that name the operation and the entry at fault.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/kernels/strided_loop.hpp"
#include "soda/core/tensor.hpp"
#include "soda/nn/module.hpp"
#include "soda/optim/number_text.hpp"

namespace soda::optim::detail {

class MetadataReader {
 public:
  MetadataReader(const std::map<std::string, std::string>& metadata, std::string op)
      : metadata_(metadata), op_(std::move(op)) {}

  const std::string& text(const std::string& key) const {
    const auto found = metadata_.find(key);
    if (found == metadata_.end()) {
      throw ValueError(op_ + ": metadata entry '" + key + "' is missing");
    }
    return found->second;
  }

  ValueError malformed(const std::string& key, const std::string& expected) const {
    return ValueError(op_ + ": metadata entry '" + key + "' is '" + text(key) + "', not " +
                      expected);
  }

  double real(const std::string& key) const {
    double value = 0;
    if (!parse_number(text(key), value)) throw malformed(key, "a number");
    return value;
  }

  std::int64_t count(const std::string& key) const {
    std::int64_t value = 0;
    if (!parse_number(text(key), value) || value < 0) {
      throw malformed(key, "a non-negative integer");
    }
    return value;
  }

  bool boolean(const std::string& key) const {
    const auto& value = text(key);
    if (value != "true" && value != "false") throw malformed(key, "true or false");
    return value == "true";
  }

  // A comma-separated list of distinct indices below `size` (empty text: none), as a mask.
  std::vector<bool> index_set(const std::string& key, std::size_t size) const {
    std::vector<bool> listed(size, false);
    const std::string& list = text(key);
    for (std::size_t begin = 0; begin < list.size();) {
      const std::size_t comma = std::min(list.find(',', begin), list.size());
      std::size_t index = 0;
      if (!parse_number(list.substr(begin, comma - begin), index) || index >= size ||
          listed[index]) {
        throw malformed(key, "a list of distinct parameter indices");
      }
      listed[index] = true;
      begin = comma + 1;
    }
    return listed;
  }

  // A comma-separated list of exactly `size` non-negative integers.
  std::vector<std::int64_t> count_list(const std::string& key, std::size_t size) const {
    const std::string& list = text(key);
    std::vector<std::int64_t> values;
    bool well_formed = list.empty() || list.back() != ',';
    for (std::size_t begin = 0; well_formed && begin < list.size();) {
      const std::size_t comma = std::min(list.find(',', begin), list.size());
      std::int64_t value = 0;
      well_formed = parse_number(list.substr(begin, comma - begin), value) && value >= 0;
      values.push_back(value);
      begin = comma + 1;
    }
    if (!well_formed || values.size() != size) {
      throw malformed(key, std::to_string(size) + " comma-separated non-negative integers");
    }
    return values;
  }

  // The entry must hold the number of parameters the state was saved for.
  void check_parameter_count(const std::string& key, std::size_t parameters) const {
    const auto saved = count(key);
    if (saved != static_cast<std::int64_t>(parameters)) {
      throw ValueError(op_ + ": the state is for " + std::to_string(saved) +
                       " parameters but this optimizer has " + std::to_string(parameters));
    }
  }

  const std::string& op() const { return op_; }

 private:
  const std::map<std::string, std::string>& metadata_;
  std::string op_;
};

// The inverse of MetadataReader::index_set.
inline std::string index_list(const std::vector<bool>& listed) {
  std::string out;
  for (std::size_t i = 0; i < listed.size(); ++i) {
    if (!listed[i]) continue;
    if (!out.empty()) out += ',';
    out += std::to_string(i);
  }
  return out;
}

inline std::string count_list_text(const std::vector<std::int64_t>& values) {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + std::to_string(values[i]);
  return out;
}

inline std::string buffer_name(const std::string& kind, std::size_t index) {
  return kind + "." + std::to_string(index);
}

// Contiguous copies of the defined buffers as "<kind>.<index>" (copies, so that a state dict
// taken now stays valid while training goes on).
template <class T>
void append_buffers(nn::NamedTensors<T>& out, const std::string& kind,
                    const std::vector<Tensor<T>>& buffers) {
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    if (buffers[i].defined()) {
      out.emplace_back(buffer_name(kind, i), soda::detail::copy_contiguous(buffers[i]));
    }
  }
}

template <class T>
std::vector<Tensor<T>> copies_of(const std::vector<Tensor<T>>& tensors) {
  std::vector<Tensor<T>> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) {
    out.push_back(t.defined() ? soda::detail::copy_contiguous(t) : Tensor<T>());
  }
  return out;
}

// The buffers of each kind from `tensors`: exactly those of the parameters `listed` (by the
// metadata entry `list_key`), each of its parameter's shape; anything else is an error.
// Result: one vector per kind, undefined where a parameter has no buffer.
template <class T>
std::vector<std::vector<Tensor<T>>> read_buffers(const nn::NamedTensors<T>& tensors,
                                                 const std::vector<std::string>& kinds,
                                                 const std::vector<Tensor<T>>& params,
                                                 const std::vector<bool>& listed,
                                                 const std::string& list_key,
                                                 const std::string& op) {
  std::vector<std::vector<Tensor<T>>> buffers(kinds.size(), std::vector<Tensor<T>>(params.size()));
  auto unexpected = [&](const std::string& name) {
    std::string expected;
    for (std::size_t k = 0; k < kinds.size(); ++k) {
      expected += (k == 0 ? "" : k + 1 == kinds.size() ? " or " : ", ") + kinds[k] + ".<index>";
    }
    return ValueError(op + ": unexpected entry '" + name + "' (expected " + expected + " for " +
                      std::to_string(params.size()) + " parameters)");
  };
  for (const auto& [name, tensor] : tensors) {
    const auto dot = name.rfind('.');
    const auto kind = std::find(kinds.begin(), kinds.end(), name.substr(0, dot));
    std::size_t index = 0;
    if (dot == std::string::npos || kind == kinds.end() ||
        !parse_number(name.substr(dot + 1), index) || index >= params.size()) {
      throw unexpected(name);
    }
    if (!listed[index]) {
      throw ValueError(op + ": entry '" + name + "' is not in the metadata's " + list_key +
                       " list");
    }
    auto& slot = buffers[static_cast<std::size_t>(kind - kinds.begin())][index];
    if (slot.defined()) throw ValueError(op + ": entry '" + name + "' appears twice");
    if (!tensor.defined()) throw ValueError(op + ": entry '" + name + "' is an undefined tensor");
    if (tensor.shape() != params[index].shape()) {
      throw ShapeError(op + ": " + name + " has shape " + to_string(tensor.shape()) +
                       " but parameter " + std::to_string(index) + " has shape " +
                       to_string(params[index].shape()));
    }
    slot = soda::detail::copy_contiguous(tensor);
  }
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (listed[i] && !buffers[k][i].defined()) {
        throw ValueError(op + ": entry '" + buffer_name(kinds[k], i) + "' is missing");
      }
    }
  }
  return buffers;
}

}  // namespace soda::optim::detail
