// operator<< for tensors, in NumPy's manner: nested brackets, aligned values, and "..." in place
// of the middle when an axis is long (more than 6 entries once the tensor exceeds 1000 elements).
#pragma once

#include <iomanip>
#include <ostream>
#include <sstream>

#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/tensor.hpp"

namespace soda {

namespace detail {

template <class T>
std::string format_value(T v) {
  std::ostringstream s;
  if constexpr (std::is_floating_point_v<T>) {
    s << std::setprecision(4) << std::fixed << v;
  } else {
    s << static_cast<std::int64_t>(v);
  }
  return s.str();
}

template <class T>
void print_axis(std::ostream& os, const Tensor<T>& t, std::size_t axis, std::int64_t offset,
                bool summarize, std::size_t width, int indent) {
  const std::int64_t n = t.shape()[axis];
  const bool cut = summarize && n > 6;
  os << '[';
  for (std::int64_t i = 0; i < n; ++i) {
    if (cut && i == 3) {
      os << (axis + 1 == t.shape().size()
                 ? "..., "
                 : "...,\n" + std::string(static_cast<std::size_t>(indent + 1), ' '));
      i = n - 3;
    }
    const std::int64_t at = offset + i * t.strides()[axis];
    if (axis + 1 == t.shape().size()) {
      const auto s = format_value(t.raw_data()[at]);
      os << std::string(width > s.size() ? width - s.size() : 0, ' ') << s;
    } else {
      print_axis(os, t, axis + 1, at, summarize, width, indent + 1);
    }
    if (i + 1 < n) {
      os << ',';
      os << (axis + 1 == t.shape().size()
                 ? std::string(" ")
                 : std::string(t.shape().size() - axis - 1, '\n') +
                       std::string(static_cast<std::size_t>(indent + 1), ' '));
    }
  }
  os << ']';
}

}  // namespace detail

template <class T>
std::ostream& operator<<(std::ostream& os, const Tensor<T>& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  os << "tensor(";
  if (t.ndim() == 0) {
    os << detail::format_value(t.item());
  } else {
    // Column width from every value, read from a contiguous copy when t is a strided view.
    std::size_t width = 0;
    const auto c = t.is_contiguous() ? t : detail::copy_contiguous(t);
    for (std::int64_t i = 0; i < t.numel(); ++i)
      width = std::max(width, detail::format_value(c.data()[i]).size());
    detail::print_axis(os, t, 0, 0, t.numel() > 1000, width, 7);
  }
  os << ", shape=" << to_string(t.shape()) << ", dtype=" << dtype_name<T>();
  if (t.requires_grad()) os << ", requires_grad";
  return os << ')';
}

}  // namespace soda
