// Counter-based random numbers (Philox-4x32-10, Salmon et al., SC'11). Element i of a draw depends
// only on (seed, counter + i), never on thread count or order, so parallel fills are reproducible.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace soda {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}

  std::uint64_t seed() const { return seed_; }
  std::uint64_t offset() const { return offset_; }
  void set_offset(std::uint64_t offset) { offset_ = offset; }

  // Reserves `blocks` Philox blocks for one draw and returns the first; each block gives 128 bits.
  std::uint64_t reserve(std::uint64_t blocks) {
    const auto first = offset_;
    offset_ += blocks;
    return first;
  }

  // The 128-bit Philox output for counter `block` under this generator's seed.
  std::array<std::uint32_t, 4> block(std::uint64_t counter) const {
    return philox(
        {static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32), 0, 0},
        {static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)});
  }

  static std::array<std::uint32_t, 4> philox(std::array<std::uint32_t, 4> ctr,
                                             std::array<std::uint32_t, 2> key) {
    constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
    constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
      if (round > 0) {
        key[0] += w0;
        key[1] += w1;
      }
      const std::uint64_t p0 = std::uint64_t{m0} * ctr[0];
      const std::uint64_t p1 = std::uint64_t{m1} * ctr[2];
      ctr = {static_cast<std::uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<std::uint32_t>(p1),
             static_cast<std::uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1],
             static_cast<std::uint32_t>(p0)};
    }
    return ctr;
  }

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};

namespace detail {

// Uniform in [0, 1) with 53 random bits from two 32-bit words.
inline double uniform_from_words(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t bits = (std::uint64_t{hi} << 32 | lo) >> 11;
  return static_cast<double>(bits) * 0x1.0p-53;
}

// Element `index` of a uniform draw starting at block `first`: two values per block.
inline double uniform_at(const Generator& gen, std::uint64_t first, std::uint64_t index) {
  const auto b = gen.block(first + index / 2);
  return index % 2 == 0 ? uniform_from_words(b[0], b[1]) : uniform_from_words(b[2], b[3]);
}

// Element `index` of a standard normal draw (Box-Muller on one block's two uniforms).
inline double normal_at(const Generator& gen, std::uint64_t first, std::uint64_t index) {
  const auto b = gen.block(first + index / 2);
  const double u1 = 1.0 - uniform_from_words(b[0], b[1]);  // (0, 1]: log is finite
  const double u2 = uniform_from_words(b[2], b[3]);
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * 3.14159265358979323846 * u2;
  return index % 2 == 0 ? r * std::cos(angle) : r * std::sin(angle);
}

}  // namespace detail
}  // namespace soda
