// soda/quant/integer_gemm_reference.hpp: the oracle itself on products worked by hand (bias, the
// dyadic epilogue, fused ReLU, packed int4 output), and the contract's errors.
#include <doctest/doctest.h>

#include <soda/quant/integer_gemm_reference.hpp>

#include <cstdint>
#include <vector>

using namespace soda::quant;

TEST_CASE("integer_gemm_reference: C = A·Bᵀ + bias worked by hand") {
  // A uint8 [2, 3], B int8 [2, 3].
  const auto a = IntegerMatrix::from_values(std::vector<std::int32_t>{255, 1, 2, 0, 10, 3}, 2, 3,
                                            IntegerFormat::uint8);
  const auto b = IntegerMatrix::from_values(std::vector<std::int32_t>{-128, 1, 1, 2, -3, 127}, 2, 3,
                                            IntegerFormat::int8);
  std::vector<std::int32_t> c(4);
  const std::vector<std::int32_t> bias{1000, -5};
  integer_gemm_reference(a, b, bias, c);
  // row 0: 255·−128 + 1 + 2 = −32637 (+1000), 510 − 3 + 254 = 761 (−5)
  // row 1: 0 + 10 + 3 = 13 (+1000),            0 − 30 + 381 = 351 (−5)
  CHECK(c == std::vector<std::int32_t>{-31637, 756, 1013, 346});
  integer_gemm_reference(a, b, {}, c);
  CHECK(c == std::vector<std::int32_t>{-32637, 761, 13, 351});
}

TEST_CASE("integer_gemm_reference requantizes per channel, with a fused ReLU and int4 output") {
  const auto a = IntegerMatrix::from_values(std::vector<std::int32_t>{255, 1, 2, 0, 10, 3}, 2, 3,
                                            IntegerFormat::uint8);
  const auto b = IntegerMatrix::from_values(std::vector<std::int32_t>{-128, 1, 1, 2, -3, 127}, 2, 3,
                                            IntegerFormat::int8);
  const std::vector<DyadicFactor> factors{dyadic_factor(1.0 / 256), dyadic_factor(0.25)};
  // acc = [[-32637, 761], [13, 351]]: -32637/256 = -127.49 -> -127; 761/4 = 190.25 -> 127 (clamp);
  // 13/256 = 0.05 -> 0; 351/4 = 87.75 -> 88.
  auto out = IntegerMatrix::zeros(2, 2, IntegerFormat::int8);
  integer_gemm_reference(a, b, {}, Requantization{factors, false}, out);
  CHECK(out.values() == std::vector<std::int32_t>{-127, 127, 0, 88});
  integer_gemm_reference(a, b, {}, Requantization{factors, true}, out);
  CHECK(out.values() == std::vector<std::int32_t>{0, 127, 0, 88});
  auto u8 = IntegerMatrix::zeros(2, 2, IntegerFormat::uint8);
  integer_gemm_reference(a, b, {}, Requantization{factors, false}, u8);
  CHECK(u8.values() == std::vector<std::int32_t>{0, 190, 0, 88});
  auto s4 = IntegerMatrix::zeros(2, 2, IntegerFormat::int4);
  integer_gemm_reference(a, b, {}, Requantization{factors, false}, s4);
  CHECK(s4.values() == std::vector<std::int32_t>{-8, 7, 0, 7});
  CHECK(s4.bytes == std::vector<std::uint8_t>{0x78, 0x70});
}

TEST_CASE("integer_gemm_reference names the op and both shapes when they do not agree") {
  const auto a = IntegerMatrix::zeros(2, 3, IntegerFormat::uint8);
  const auto b = IntegerMatrix::zeros(4, 5, IntegerFormat::int8);
  std::vector<std::int32_t> c(8);
  CHECK_THROWS_WITH_AS(
      integer_gemm_reference(a, b, {}, c),
      doctest::Contains(
          "integer_gemm_reference: A uint8 [2, 3] and B int8 [4, 5] do not agree in K"),
      soda::ShapeError);
  const auto b3 = IntegerMatrix::zeros(4, 3, IntegerFormat::int8);
  CHECK_THROWS_WITH_AS(integer_gemm_reference(a, b3, {}, std::span<std::int32_t>(c.data(), 7)),
                       doctest::Contains("expected M·N for C [2, 4]"), soda::ShapeError);
  const std::vector<std::int32_t> bias(3);
  CHECK_THROWS_WITH_AS(integer_gemm_reference(a, b3, bias, c),
                       doctest::Contains("bias holds 3 values, expected N = 4"), soda::ShapeError);
  const auto u8_weights = IntegerMatrix::zeros(4, 3, IntegerFormat::uint8);
  CHECK_THROWS_WITH_AS(integer_gemm_reference(a, u8_weights, {}, c),
                       doctest::Contains("weights must be int8 or int4"), soda::ValueError);
  auto out = IntegerMatrix::zeros(2, 4, IntegerFormat::int8);
  const std::vector<DyadicFactor> three(3);
  CHECK_THROWS_WITH_AS(integer_gemm_reference(a, b3, {}, Requantization{three}, out),
                       doctest::Contains("3 requantization factors for N = 4"), soda::ShapeError);
  const std::vector<DyadicFactor> bad(4, DyadicFactor{5, 3});
  CHECK_THROWS_AS(integer_gemm_reference(a, b3, {}, Requantization{bad}, out), soda::ValueError);
  auto wrong = IntegerMatrix::zeros(4, 2, IntegerFormat::int8);
  const std::vector<DyadicFactor> four(4);
  CHECK_THROWS_WITH_AS(integer_gemm_reference(a, b3, {}, Requantization{four}, wrong),
                       doctest::Contains("output int8 [4, 2] does not match C [2, 4]"),
                       soda::ShapeError);
}
