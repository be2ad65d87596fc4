// Dyadic requantization (shared/spec/quantization.md): a real factor s written as M0 / 2^c with
// M0 an int32 in [2^30, 2^31) and 0 <= c < 63, and out = clamp((acc·M0 + 2^(c−1)) >> c, lo, hi)
// with an int64 product and an arithmetic shift: no float and no division at inference time.
#pragma once

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "soda/core/error.hpp"

namespace soda::quant {

// s ≈ multiplier / 2^shift.
struct DyadicFactor {
  std::int32_t multiplier = 1 << 30;  // M0, in [2^30, 2^31)
  int shift = 30;                     // c, in [0, 63)

  double value() const { return std::ldexp(static_cast<double>(multiplier), -shift); }
  bool operator==(const DyadicFactor&) const = default;
};

// The dyadic number M0 / 2^c closest to scale. Representable scales lie in
// [2^-32, 2^31 − 1/2): below that c would reach 63, above it M0 would need c < 0.
inline DyadicFactor dyadic_factor(double scale) {
  auto fail = [&](const char* why) {
    std::ostringstream message;
    message.precision(17);
    message << "dyadic_factor: scale " << scale << " " << why
            << "; representable scales are in [2^-32, 2^31) (about [2.3e-10, 2.1e9])";
    return ValueError(message.str());
  };
  if (!std::isfinite(scale)) throw fail("is not finite");
  if (scale <= 0) throw fail("is not positive");
  int exponent = 0;
  const double fraction = std::frexp(scale, &exponent);  // scale = fraction·2^exponent, [0.5, 1)
  // fraction·2^31 is exact in double; rounding it gives the closest M0 for this c, and every other
  // c puts M0·2^-c outside [2^(30−c), 2^(31−c)) ∋ scale, so farther away.
  std::int64_t multiplier = std::llround(std::ldexp(fraction, 31));
  int shift = 31 - exponent;
  if (multiplier == (std::int64_t{1} << 31)) {  // rounded up to the next power of two
    multiplier >>= 1;
    shift -= 1;
  }
  if (shift < 0) throw fail("is too large");
  if (shift >= 63) throw fail("is too small");
  return {static_cast<std::int32_t>(multiplier), shift};
}

// clamp((acc·M0 + 2^(c−1)) >> c, lo, hi): rounds half up (towards +∞), negative accs included.
// |acc·M0| < 2^62 and the rounding term is at most 2^61, so the int64 sum cannot overflow.
inline std::int32_t requantize(std::int32_t acc, std::int32_t multiplier, int shift,
                               std::int32_t lo, std::int32_t hi) {
  const std::int64_t rounding = shift > 0 ? std::int64_t{1} << (shift - 1) : 0;
  const std::int64_t scaled =
      (static_cast<std::int64_t>(acc) * multiplier + rounding) >> shift;  // arithmetic (C++20)
  return static_cast<std::int32_t>(scaled < lo ? lo : (scaled > hi ? hi : scaled));
}

inline std::int32_t requantize(std::int32_t acc, DyadicFactor factor, std::int32_t lo,
                               std::int32_t hi) {
  return requantize(acc, factor.multiplier, factor.shift, lo, hi);
}

}  // namespace soda::quant
