// IntegerMatrix: a row-major [rows, cols] matrix of int8, uint8, int4 or uint4 values stored as the
// spec says (shared/spec/quantization.md, "Storage"): one byte per 8-bit value, two 4-bit values
// per byte along a row (cols, the GEMM's K, padded to an even count with a zero nibble).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/quant/int4.hpp"

namespace soda::quant {

enum class IntegerFormat { int8, uint8, int4, uint4 };

constexpr const char* format_name(IntegerFormat format) {
  switch (format) {
    case IntegerFormat::int8:
      return "int8";
    case IntegerFormat::uint8:
      return "uint8";
    case IntegerFormat::int4:
      return "int4";
    default:
      return "uint4";
  }
}
constexpr bool is_signed(IntegerFormat f) {
  return f == IntegerFormat::int8 || f == IntegerFormat::int4;
}
constexpr bool is_4bit(IntegerFormat f) {
  return f == IntegerFormat::int4 || f == IntegerFormat::uint4;
}
constexpr std::int32_t format_min(IntegerFormat f) {
  return is_signed(f) ? (is_4bit(f) ? -8 : -128) : 0;
}
constexpr std::int32_t format_max(IntegerFormat f) {
  return is_signed(f) ? (is_4bit(f) ? 7 : 127) : (is_4bit(f) ? 15 : 255);
}
constexpr std::int64_t row_bytes(IntegerFormat f, std::int64_t cols) {
  return is_4bit(f) ? int4_row_bytes(cols) : cols;
}

struct IntegerMatrix {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  IntegerFormat format = IntegerFormat::int8;
  std::vector<std::uint8_t> bytes;  // rows · row_bytes(format, cols)

  // A zero matrix.
  static IntegerMatrix zeros(std::int64_t rows, std::int64_t cols, IntegerFormat format) {
    if (rows < 0 || cols < 0) {
      throw ShapeError("IntegerMatrix: negative shape [" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "]");
    }
    return {rows, cols, format,
            std::vector<std::uint8_t>(rows * quant::row_bytes(format, cols), 0)};
  }

  // From row-major values, each checked against the format's range.
  static IntegerMatrix from_values(std::span<const std::int32_t> values, std::int64_t rows,
                                   std::int64_t cols, IntegerFormat format) {
    if (is_4bit(format))
      return {rows, cols, format, pack_int4(values, rows, cols, is_signed(format))};
    if (rows < 0 || cols < 0 || static_cast<std::int64_t>(values.size()) != rows * cols) {
      throw ShapeError(std::string("IntegerMatrix: ") + std::to_string(values.size()) +
                       " values do not fill [" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "]");
    }
    IntegerMatrix m = zeros(rows, cols, format);
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (values[i] < format_min(format) || values[i] > format_max(format)) {
        throw ValueError(std::string("IntegerMatrix: value ") + std::to_string(values[i]) +
                         " at flat index " + std::to_string(i) + " is outside the " +
                         format_name(format) + " range");
      }
      m.bytes[i] = static_cast<std::uint8_t>(static_cast<std::uint32_t>(values[i]) & 0xFFu);
    }
    return m;
  }

  std::int64_t row_bytes() const { return quant::row_bytes(format, cols); }

  // The value at [r, c].
  std::int32_t at(std::int64_t r, std::int64_t c) const {
    const std::uint8_t* row = bytes.data() + r * row_bytes();
    if (is_4bit(format))
      return unpack_nibble(row[c / 2], static_cast<int>(c % 2), is_signed(format));
    return is_signed(format) ? static_cast<std::int32_t>(static_cast<std::int8_t>(row[c]))
                             : static_cast<std::int32_t>(row[c]);
  }

  // Stores value (already in range) at [r, c].
  void set(std::int64_t r, std::int64_t c, std::int32_t value) {
    std::uint8_t* row = bytes.data() + r * row_bytes();
    if (is_4bit(format)) {
      const int shift = 4 * static_cast<int>(c % 2);
      row[c / 2] =
          static_cast<std::uint8_t>((row[c / 2] & ~(0x0F << shift)) | (to_nibble(value) << shift));
    } else {
      row[c] = static_cast<std::uint8_t>(static_cast<std::uint32_t>(value) & 0xFFu);
    }
  }

  std::vector<std::int32_t> values() const {
    std::vector<std::int32_t> out(static_cast<std::size_t>(rows * cols));
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = 0; c < cols; ++c) out[r * cols + c] = at(r, c);
    }
    return out;
  }

  std::string shape_string() const {
    return std::string(format_name(format)) + " [" + std::to_string(rows) + ", " +
           std::to_string(cols) + "]";
  }

  // Throws unless bytes hold exactly the stored rows and, for 4-bit formats with odd cols, every
  // row's padding nibble is zero (the spec's padding, which kernels may rely on).
  void check(const char* op, const char* name) const {
    const auto expected = rows * row_bytes();
    if (rows < 0 || cols < 0 || static_cast<std::int64_t>(bytes.size()) != expected) {
      throw ShapeError(
          std::string(op) + ": " + name + " " + shape_string() + " holds " +
          std::to_string(bytes.size()) + " bytes, expected " + std::to_string(expected) +
          (is_4bit(format) ? " (two values per byte, each row padded to an even count)" : ""));
    }
    if (is_4bit(format) && cols % 2 == 1) {
      for (std::int64_t r = 0; r < rows; ++r) {
        if ((bytes[static_cast<std::size_t>((r + 1) * row_bytes() - 1)] >> 4) != 0) {
          throw ValueError(std::string(op) + ": " + name + " " + shape_string() + " row " +
                           std::to_string(r) +
                           " has a nonzero padding nibble; pad odd rows with a zero nibble");
        }
      }
    }
  }
};

}  // namespace soda::quant
