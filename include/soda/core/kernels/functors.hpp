// Element-wise functions as functors callable on a scalar or an xsimd batch. xsimd supplies the
// vectorised exp/log/tanh/sqrt; on scalars the same names resolve to <cmath>.
#pragma once

#include <xsimd/xsimd.hpp>

#include <cmath>
#include <type_traits>

namespace soda::detail::fn {

template <class V>
inline constexpr bool scalar_v = std::is_arithmetic_v<V>;

// A 0/1 value of the operand's type from a comparison result.
template <class V, class C>
V mask_of(const C& c) {
  if constexpr (scalar_v<V>) {
    return c ? V(1) : V(0);
  } else {
    return xsimd::select(c, V(1), V(0));
  }
}

struct Add {
  template <class V>
  V operator()(V a, V b) const {
    return a + b;
  }
};
struct Sub {
  template <class V>
  V operator()(V a, V b) const {
    return a - b;
  }
};
struct Mul {
  template <class V>
  V operator()(V a, V b) const {
    return a * b;
  }
};
struct Div {
  template <class V>
  V operator()(V a, V b) const {
    return a / b;
  }
};
// maximum/minimum propagate NaN from either operand (as NumPy/PyTorch); ties pick a.
struct Maximum {
  template <class V>
  V operator()(V a, V b) const {
    if constexpr (scalar_v<V>)
      return a >= b || a != a ? a : b;
    else
      return xsimd::select(a >= b || xsimd::isnan(a), a, b);
  }
};
struct Minimum {
  template <class V>
  V operator()(V a, V b) const {
    if constexpr (scalar_v<V>)
      return a <= b || a != a ? a : b;
    else
      return xsimd::select(a <= b || xsimd::isnan(a), a, b);
  }
};
struct Greater {
  template <class V>
  V operator()(V a, V b) const {
    return mask_of<V>(a > b);
  }
};
struct GreaterEqual {
  template <class V>
  V operator()(V a, V b) const {
    return mask_of<V>(a >= b);
  }
};
struct Less {
  template <class V>
  V operator()(V a, V b) const {
    return mask_of<V>(a < b);
  }
};
struct LessEqual {
  template <class V>
  V operator()(V a, V b) const {
    return mask_of<V>(a <= b);
  }
};
struct Equal {
  template <class V>
  V operator()(V a, V b) const {
    return mask_of<V>(a == b);
  }
};

struct Neg {
  template <class V>
  V operator()(V x) const {
    return -x;
  }
};
struct Exp {
  template <class V>
  V operator()(V x) const {
    using std::exp;
    using xsimd::exp;
    return exp(x);
  }
};
struct Log {
  template <class V>
  V operator()(V x) const {
    using std::log;
    using xsimd::log;
    return log(x);
  }
};
struct Sqrt {
  template <class V>
  V operator()(V x) const {
    using std::sqrt;
    using xsimd::sqrt;
    return sqrt(x);
  }
};
struct Tanh {
  template <class V>
  V operator()(V x) const {
    using std::tanh;
    using xsimd::tanh;
    return tanh(x);
  }
};
struct Sigmoid {
  // 1 / (1 + exp(-x)): exp overflows to inf for very negative x, giving the correct limit 0.
  template <class V>
  V operator()(V x) const {
    using std::exp;
    using xsimd::exp;
    return V(1) / (V(1) + exp(-x));
  }
};
struct Relu {
  template <class V>
  V operator()(V x) const {
    if constexpr (scalar_v<V>)
      return x > V(0) ? x : V(0);
    else
      return xsimd::select(x > V(0), x, V(0));
  }
};
struct Abs {
  template <class V>
  V operator()(V x) const {
    if constexpr (scalar_v<V>)
      return x < V(0) ? -x : x;
    else
      return xsimd::abs(x);
  }
};
struct Sign {
  template <class V>
  V operator()(V x) const {
    return mask_of<V>(x > V(0)) - mask_of<V>(x < V(0));
  }
};
struct Square {
  template <class V>
  V operator()(V x) const {
    return x * x;
  }
};
template <class T>
struct PowScalar {
  T exponent;
  template <class V>
  V operator()(V x) const {
    if (exponent == T(2)) return x * x;
    if (exponent == T(1)) return x;
    if constexpr (scalar_v<V>) {
      return std::pow(x, exponent);
    } else {
      return xsimd::pow(x, V(exponent));
    }
  }
};
template <class T>
struct Clamp {
  T low, high;
  template <class V>
  V operator()(V x) const {
    if constexpr (scalar_v<V>)
      return x < low ? low : (x > high ? high : x);
    else
      return xsimd::select(x < V(low), V(low), xsimd::select(x > V(high), V(high), x));
  }
};
// 1 where low <= x <= high: the derivative of clamp (PyTorch's convention at the bounds).
template <class T>
struct InRange {
  T low, high;
  template <class V>
  V operator()(V x) const {
    if constexpr (scalar_v<V>)
      return (x >= low && x <= high) ? V(1) : V(0);
    else
      return xsimd::select((x >= V(low)) && (x <= V(high)), V(1), V(0));
  }
};

}  // namespace soda::detail::fn
