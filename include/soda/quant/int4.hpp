// Packed 4-bit storage (shared/spec/quantization.md, "Storage"): two values per byte along K,
// element 2i in the low nibble and 2i+1 in the high nibble, signed values in two's complement,
// rows padded to an even length with a zero nibble.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "soda/core/error.hpp"

namespace soda::quant {

// Bytes of one packed row of `cols` 4-bit values.
constexpr std::int64_t int4_row_bytes(std::int64_t cols) {
  return (cols + 1) / 2;
}

// The value of nibble `index` (0 low, 1 high) of byte, sign-extended when is_signed.
constexpr std::int32_t unpack_nibble(std::uint8_t byte, int index, bool is_signed) {
  const std::int32_t nibble = (byte >> (4 * index)) & 0x0F;
  return is_signed ? (nibble ^ 8) - 8 : nibble;
}

// The low four bits of value's two's complement.
constexpr std::uint8_t to_nibble(std::int32_t value) {
  return static_cast<std::uint8_t>(static_cast<std::uint32_t>(value) & 0x0Fu);
}

// Packs a row-major [rows, cols] matrix of 4-bit values (int4: [−8, 7], uint4: [0, 15]).
inline std::vector<std::uint8_t> pack_int4(std::span<const std::int32_t> values, std::int64_t rows,
                                           std::int64_t cols, bool is_signed) {
  if (rows < 0 || cols < 0 || static_cast<std::int64_t>(values.size()) != rows * cols) {
    throw ShapeError("pack_int4: " + std::to_string(values.size()) + " values do not fill [" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "]");
  }
  const std::int32_t lo = is_signed ? -8 : 0, hi = is_signed ? 7 : 15;
  const std::int64_t row_bytes = int4_row_bytes(cols);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(rows * row_bytes), 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::int32_t v = values[static_cast<std::size_t>(r * cols + c)];
      if (v < lo || v > hi) {
        throw ValueError("pack_int4: value " + std::to_string(v) + " at [" + std::to_string(r) +
                         ", " + std::to_string(c) + "] is outside the " +
                         (is_signed ? "int4 range [-8, 7]" : "uint4 range [0, 15]"));
      }
      bytes[static_cast<std::size_t>(r * row_bytes + c / 2)] |= to_nibble(v) << (4 * (c % 2));
    }
  }
  return bytes;
}

// The row-major values of a packed [rows, cols] matrix.
inline std::vector<std::int32_t> unpack_int4(std::span<const std::uint8_t> bytes, std::int64_t rows,
                                             std::int64_t cols, bool is_signed) {
  const std::int64_t row_bytes = int4_row_bytes(cols);
  if (rows < 0 || cols < 0 || static_cast<std::int64_t>(bytes.size()) != rows * row_bytes) {
    throw ShapeError("unpack_int4: " + std::to_string(bytes.size()) + " bytes for [" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "], expected " +
                     std::to_string(rows * row_bytes) + " (two values per byte, rows padded)");
  }
  std::vector<std::int32_t> values(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      values[static_cast<std::size_t>(r * cols + c)] =
          unpack_nibble(bytes[static_cast<std::size_t>(r * row_bytes + c / 2)],
                        static_cast<int>(c % 2), is_signed);
    }
  }
  return values;
}

}  // namespace soda::quant
