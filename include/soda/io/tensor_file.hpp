// soda::TensorFile: named tensors of any dtype (AnyTensor) in a fixed order plus string metadata,
// the in-memory form of a checkpoint whatever its file format.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "soda/core/dtype.hpp"
#include "soda/core/error.hpp"
#include "soda/core/tensor.hpp"

namespace soda {

// A tensor of any soda element type.
using AnyTensor = std::variant<Tensor<float>, Tensor<double>, Tensor<std::int8_t>,
                               Tensor<std::uint8_t>, Tensor<std::int32_t>, Tensor<std::int64_t>>;

namespace detail {

// The dtype name (float32, int64, ...) of the tensor held.
inline std::string_view dtype_name_of(const AnyTensor& tensor) {
  return std::visit([]<class T>(const Tensor<T>&) { return dtype_name<T>(); }, tensor);
}

// The C++ element type of a soda dtype, for messages: float64 -> double, int8 -> std::int8_t.
inline std::string cpp_type_of(std::string_view dtype) {
  if (dtype == "float32") return "float";
  if (dtype == "float64") return "double";
  return "std::" + std::string(dtype) + "_t";
}

}  // namespace detail

// Named tensors in file order plus the file's string metadata.
struct TensorFile {
  std::vector<std::pair<std::string, AnyTensor>> tensors;
  std::map<std::string, std::string> metadata;

  // The tensor called `name`, or null.
  const AnyTensor* find(const std::string& name) const {
    for (const auto& [key, tensor] : tensors) {
      if (key == name) return &tensor;
    }
    return nullptr;
  }

  bool contains(const std::string& name) const { return find(name) != nullptr; }

  // The tensor called `name` as a Tensor<T> (sharing its storage); T must be its dtype.
  template <class T>
  Tensor<T> get(const std::string& name) const {
    const AnyTensor* found = find(name);
    if (found == nullptr) {
      throw ValueError("TensorFile::get: no tensor named '" + name + "'; " + listing());
    }
    if (const auto* tensor = std::get_if<Tensor<T>>(found)) return *tensor;
    const std::string held(detail::dtype_name_of(*found));
    const std::string wanted(dtype_name<T>());
    throw ValueError("TensorFile::get: tensor '" + name + "' is " + held + ", not the requested " +
                     wanted + "; call get<" + detail::cpp_type_of(held) + ">(\"" + name +
                     "\") or convert it with .to<" + detail::cpp_type_of(wanted) + ">()");
  }

 private:
  std::string listing() const {
    if (tensors.empty()) return "it holds no tensors";
    constexpr std::size_t shown = 5;
    std::string text = "it holds " + std::to_string(tensors.size()) + " tensor" +
                       (tensors.size() == 1 ? "" : "s") + ": ";
    for (std::size_t i = 0; i < std::min(shown, tensors.size()); ++i) {
      text += (i > 0 ? ", '" : "'") + tensors[i].first + "'";
    }
    return tensors.size() > shown ? text + ", ..." : text;
  }
};

}  // namespace soda
