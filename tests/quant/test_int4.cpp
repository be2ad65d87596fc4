// soda/quant/int4.hpp: the spec's nibble layout (element 2i low, 2i+1 high, two's complement, odd
// rows padded with a zero nibble), range checks and the pack/unpack round trip.
#include <doctest/doctest.h>

#include <soda/quant/int4.hpp>

#include <cstdint>
#include <random>
#include <vector>

using soda::quant::pack_int4;
using soda::quant::unpack_int4;

TEST_CASE("pack_int4 puts element 2i in the low nibble and pads odd rows with zero") {
  const std::vector<std::int32_t> signed_values{1, -2, 7, -8, 0, -1};  // [2, 3]
  const auto bytes = pack_int4(signed_values, 2, 3, true);
  CHECK(bytes == std::vector<std::uint8_t>{0xE1, 0x07, 0x08, 0x0F});
  const std::vector<std::int32_t> unsigned_values{15, 0, 3, 9};  // [1, 4]
  CHECK(pack_int4(unsigned_values, 1, 4, false) == std::vector<std::uint8_t>{0x0F, 0x93});
  CHECK(soda::quant::unpack_nibble(0xE1, 1, true) == -2);
  CHECK(soda::quant::unpack_nibble(0xE1, 1, false) == 14);
}

TEST_CASE("pack_int4 and unpack_int4 round-trip every value, signed and unsigned") {
  std::mt19937 gen(3);
  for (bool is_signed : {true, false}) {
    for (std::int64_t cols : {1, 2, 7, 64}) {
      std::uniform_int_distribution<std::int32_t> value(is_signed ? -8 : 0, is_signed ? 7 : 15);
      std::vector<std::int32_t> values(5 * cols);
      for (auto& v : values) v = value(gen);
      const auto bytes = pack_int4(values, 5, cols, is_signed);
      CHECK(bytes.size() == static_cast<std::size_t>(5 * ((cols + 1) / 2)));
      CHECK(unpack_int4(bytes, 5, cols, is_signed) == values);
    }
  }
}

TEST_CASE("pack_int4 and unpack_int4 refuse values out of range and sizes that do not agree") {
  const std::vector<std::int32_t> too_big{8};
  CHECK_THROWS_WITH_AS(pack_int4(too_big, 1, 1, true), doctest::Contains("int4 range [-8, 7]"),
                       soda::ValueError);
  const std::vector<std::int32_t> negative{-1};
  CHECK_THROWS_AS(pack_int4(negative, 1, 1, false), soda::ValueError);
  const std::vector<std::int32_t> three{1, 2, 3};
  CHECK_THROWS_AS(pack_int4(three, 2, 2, true), soda::ShapeError);
  const std::vector<std::uint8_t> two_bytes{0, 0};
  CHECK_THROWS_WITH_AS(unpack_int4(two_bytes, 2, 3, true), doctest::Contains("expected 4"),
                       soda::ShapeError);
}
