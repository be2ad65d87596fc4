// soda/quant/integer_matrix.hpp: storage of the four formats, element access, and the checks
// that every kernel runs on its operands (byte count, zero padding nibble).
#include <doctest/doctest.h>

#include <soda/quant/integer_matrix.hpp>

#include <cstdint>
#include <vector>

using soda::quant::IntegerFormat;
using soda::quant::IntegerMatrix;

TEST_CASE("IntegerMatrix stores int8/uint8 one byte per value and 4-bit formats two per byte") {
  const std::vector<std::int32_t> values{-128, 127, 0, -1, 5, 100};
  const auto m = IntegerMatrix::from_values(values, 2, 3, IntegerFormat::int8);
  CHECK(m.bytes == std::vector<std::uint8_t>{0x80, 0x7F, 0x00, 0xFF, 0x05, 0x64});
  CHECK(m.values() == values);
  CHECK(m.at(1, 0) == -1);
  const std::vector<std::int32_t> u{255, 0, 17};
  CHECK(IntegerMatrix::from_values(u, 1, 3, IntegerFormat::uint8).at(0, 0) == 255);
  const std::vector<std::int32_t> nibbles{-8, 7, 3, 1, -1, 0};
  auto q = IntegerMatrix::from_values(nibbles, 2, 3, IntegerFormat::int4);
  CHECK(q.bytes.size() == 4);
  CHECK(q.values() == nibbles);
  q.set(1, 2, -5);
  CHECK(q.at(1, 2) == -5);
  CHECK(q.at(1, 1) == -1);
  CHECK_NOTHROW(q.check("op", "A"));
}

TEST_CASE("IntegerMatrix refuses values outside the format and storage that does not agree") {
  const std::vector<std::int32_t> big{256};
  CHECK_THROWS_WITH_AS(IntegerMatrix::from_values(big, 1, 1, IntegerFormat::uint8),
                       doctest::Contains("outside the uint8 range"), soda::ValueError);
  IntegerMatrix unpadded{3, 5, IntegerFormat::int4, std::vector<std::uint8_t>(8, 0)};
  CHECK_THROWS_WITH_AS(unpadded.check("integer_gemm", "A"),
                       doctest::Contains("integer_gemm: A int4 [3, 5] holds 8 bytes, expected 9"),
                       soda::ShapeError);
  IntegerMatrix dirty_padding = IntegerMatrix::zeros(2, 3, IntegerFormat::uint4);
  dirty_padding.bytes[3] = 0x10;  // the high nibble of row 1's last byte is padding
  CHECK_THROWS_WITH_AS(dirty_padding.check("integer_gemm", "B"),
                       doctest::Contains("row 1 has a nonzero padding nibble"), soda::ValueError);
}
