// The element types a Tensor may hold and their printable names (NumPy's spelling).
// Floating types are differentiable; integer types are data (labels, quantized values).
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace soda {

template <class T>
concept Element =
    std::same_as<T, float> || std::same_as<T, double> || std::same_as<T, std::int8_t> ||
    std::same_as<T, std::uint8_t> || std::same_as<T, std::int32_t> || std::same_as<T, std::int64_t>;

template <class T>
concept FloatElement = std::same_as<T, float> || std::same_as<T, double>;

template <class T>
constexpr std::string_view dtype_name() {
  if constexpr (std::is_same_v<T, float>)
    return "float32";
  else if constexpr (std::is_same_v<T, double>)
    return "float64";
  else if constexpr (std::is_same_v<T, std::int8_t>)
    return "int8";
  else if constexpr (std::is_same_v<T, std::uint8_t>)
    return "uint8";
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return "int32";
  else
    return "int64";
}

}  // namespace soda
