// soda/core/generator.hpp and the random factories built on it: Philox known answers, counter
// bookkeeping, thread-count independence and the distributions' moments and ranges.
#include "oracle.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <set>

using soda::Generator;
using Words = std::array<std::uint32_t, 4>;

namespace {

// Uniform [0, 1) from two words as the generator documents it: top 53 bits of hi:lo.
double uniform_oracle(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t bits = ((std::uint64_t{hi} << 32) | lo) >> 11;
  return std::ldexp(static_cast<double>(bits), -53);
}

template <class T>
bool identical(const soda::Tensor<T>& a, const soda::Tensor<T>& b) {
  if (a.shape() != b.shape()) return false;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    if (a.data()[i] != b.data()[i]) return false;
  }
  return true;
}

}  // namespace

TEST_SUITE("core/generator") {
  TEST_CASE("Philox-4x32-10 matches the Random123 known-answer vectors") {
    CHECK(Generator::philox({0, 0, 0, 0}, {0, 0}) ==
          Words{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
    CHECK(Generator::philox({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                            {0xffffffff, 0xffffffff}) ==
          Words{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
    CHECK(Generator::philox({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                            {0xa4093822, 0x299f31d0}) ==
          Words{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
  }

  TEST_CASE("block(c) is Philox of counter {lo(c), hi(c), 0, 0} under key {lo(seed), hi(seed)}") {
    const std::uint64_t seed = 0x0123456789abcdefULL;
    const Generator g(seed);
    for (const std::uint64_t c :
         {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0xfedcba9876543210ULL}}) {
      CHECK(g.block(c) == Generator::philox({static_cast<std::uint32_t>(c),
                                             static_cast<std::uint32_t>(c >> 32), 0, 0},
                                            {0x89abcdefu, 0x01234567u}));
    }
    CHECK(Generator(0).block(0) == Words{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  }

  TEST_CASE("reserve hands out consecutive block ranges and advances the offset") {
    Generator g(5);
    CHECK(g.seed() == 5);
    CHECK(g.offset() == 0);
    CHECK(g.reserve(3) == 0);
    CHECK(g.reserve(2) == 3);
    CHECK(g.offset() == 5);
    g.set_offset(100);
    CHECK(g.reserve(1) == 100);
    CHECK(g.offset() == 101);
  }

  TEST_CASE("rand takes two uniforms per block from the reserved counters") {
    Generator g(42);
    g.set_offset(7);
    const auto t = soda::rand<double>({5}, g);
    CHECK(g.offset() == 7 + 3);  // ceil(5 / 2) blocks
    const Generator ref(42);
    for (int i = 0; i < 5; ++i) {
      const auto b = ref.block(7 + static_cast<std::uint64_t>(i / 2));
      const double expected = i % 2 == 0 ? uniform_oracle(b[0], b[1]) : uniform_oracle(b[2], b[3]);
      CHECK(t.data()[i] == expected);
    }
  }

  TEST_CASE("randn is Box-Muller on each block's two uniforms") {
    Generator g(3);
    const auto t = soda::randn<double>({4}, g);
    const Generator ref(3);
    for (int i = 0; i < 4; ++i) {
      const auto b = ref.block(static_cast<std::uint64_t>(i / 2));
      const double r = std::sqrt(-2.0 * std::log(1.0 - uniform_oracle(b[0], b[1])));
      const double angle = 2.0 * M_PI * uniform_oracle(b[2], b[3]);
      const double expected = i % 2 == 0 ? r * std::cos(angle) : r * std::sin(angle);
      CHECK(t.data()[i] == doctest::Approx(expected).epsilon(1e-15));
    }
  }

  TEST_CASE("the same seed gives the same values; different seeds differ") {
    Generator a(1234), b(1234), c(1235);
    const auto x = soda::randn<float>({1000}, a);
    const auto y = soda::randn<float>({1000}, b);
    const auto z = soda::randn<float>({1000}, c);
    CHECK(identical(x, y));
    int same = 0;
    for (int i = 0; i < 1000; ++i) same += x.data()[i] == z.data()[i];
    CHECK(same < 5);
  }

  TEST_CASE("consecutive draws continue the stream instead of repeating it") {
    Generator g(9);
    const auto first = soda::rand<float>({101}, g);
    const auto second = soda::rand<float>({101}, g);
    CHECK(g.offset() == 2 * 51);
    CHECK_FALSE(identical(first, second));
    // The second draw is exactly what a generator positioned at its first block produces.
    Generator h(9);
    h.set_offset(51);
    CHECK(identical(second, soda::rand<float>({101}, h)));
  }

  TEST_CASE("random draws do not depend on the thread count") {
    oracle::ThreadCountGuard guard;
    const soda::Shape shape{1 << 20};
    auto draw = [&](int threads) {
      soda::set_num_threads(threads);
      Generator g(77);
      g.set_offset(12345);
      return std::array<soda::Tensor<float>, 3>{soda::randn<float>(shape, g),
                                                soda::rand<float>(shape, g, -2.f, 3.f),
                                                soda::rademacher<float>(shape, g)};
    };
    const auto one = draw(1);
    const auto two = draw(2);
    const auto four = draw(4);
    for (int k = 0; k < 3; ++k) {
      CHECK(identical(one[static_cast<std::size_t>(k)], two[static_cast<std::size_t>(k)]));
      CHECK(identical(one[static_cast<std::size_t>(k)], four[static_cast<std::size_t>(k)]));
    }
    soda::set_num_threads(2);
    Generator g(77);
    const auto ints = soda::randint<std::int64_t>(shape, g, -5, 5);
    soda::set_num_threads(1);
    Generator h(77);
    CHECK(identical(ints, soda::randint<std::int64_t>(shape, h, -5, 5)));
  }

  TEST_CASE("randn has mean 0 and standard deviation 1 over a million draws") {
    Generator g(2024);
    const auto t = soda::randn<float>({1000000}, g);
    double s = 0, s2 = 0;
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      const double v = t.data()[i];
      s += v;
      s2 += v * v;
    }
    const double mean = s / 1e6, std = std::sqrt(s2 / 1e6 - mean * mean);
    CHECK(std::abs(mean) < 0.01);
    CHECK(std::abs(std - 1.0) < 0.01);

    Generator h(1);
    const auto shifted = soda::randn<double>({200000}, h, 3.0, 0.5);
    double m = 0;
    for (std::int64_t i = 0; i < shifted.numel(); ++i) m += shifted.data()[i];
    CHECK(std::abs(m / 200000 - 3.0) < 0.01);
  }

  TEST_CASE("rand stays in [low, high) with the uniform mean") {
    Generator g(11);
    const auto t = soda::rand<float>({1000000}, g, -2.f, 3.f);
    double s = 0;
    bool in_range = true;
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      const float v = t.data()[i];
      in_range = in_range && v >= -2.f && v < 3.f;
      s += v;
    }
    CHECK(in_range);
    CHECK(std::abs(s / 1e6 - 0.5) < 0.01);
  }

  TEST_CASE("rand never returns high, even when the uniform rounds up to it in float") {
    // Block 38471471 of seed 0 starts with u = 0.99999999551..., which rounds to 1.0f.
    const auto b = Generator(0).block(38471471);
    REQUIRE(static_cast<float>(uniform_oracle(b[0], b[1])) == 1.0f);
    Generator g(0);
    g.set_offset(38471471);
    const float v = soda::rand<float>({1}, g).item();
    CHECK(v < 1.0f);
    CHECK(v >= 0.0f);
    // The same u shifted into [5, 6) also rounds to 6.0f.
    Generator h(0);
    h.set_offset(38471471);
    const float w = soda::rand<float>({1}, h, 5.f, 6.f).item();
    CHECK(w < 6.0f);
  }

  TEST_CASE("rademacher gives only -1 and +1 with mean near 0") {
    Generator g(8);
    const auto t = soda::rademacher<double>({1000000}, g);
    double s = 0;
    bool pm1 = true;
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      const double v = t.data()[i];
      pm1 = pm1 && (v == 1.0 || v == -1.0);
      s += v;
    }
    CHECK(pm1);
    CHECK(std::abs(s / 1e6) < 0.01);
  }

  TEST_CASE("randint covers [low, high) uniformly and rejects an empty range") {
    Generator g(13);
    const auto t = soda::randint<std::int32_t>({700000}, g, -3, 4);
    std::array<int, 7> counts{};
    bool in_range = true;
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      const auto v = t.data()[i];
      in_range = in_range && v >= -3 && v < 4;
      if (v >= -3 && v < 4) ++counts[static_cast<std::size_t>(v + 3)];
    }
    CHECK(in_range);
    for (const int c : counts) CHECK(std::abs(c - 100000) < 1500);
    CHECK_THROWS_AS(soda::randint<std::int64_t>({3}, g, 2, 2), soda::ValueError);
    const auto one = soda::randint<std::int64_t>({50}, g, 9, 10);
    for (int i = 0; i < 50; ++i) CHECK(one.data()[i] == 9);
  }

  TEST_CASE("empty draws reserve nothing") {
    Generator g(1);
    CHECK(soda::randn<float>({0, 5}, g).numel() == 0);
    CHECK(g.offset() == 0);
  }

}  // TEST_SUITE
