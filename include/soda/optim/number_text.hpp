// Numbers as text for optimizer checkpoints and error messages: the shortest text that parses
// back to the same value (std::to_chars), and a strict parse of it (std::from_chars).
#pragma once

#include <charconv>
#include <string>
#include <system_error>

namespace soda::optim::detail {

// Shortest round-trip text, so that a checkpointed learning rate resumes bit for bit and an
// error names the exact value it refused (std::to_string would print 1e-7 as 0.000000).
inline std::string exact_text(double value) {
  char text[64];
  const auto result = std::to_chars(text, text + sizeof(text), value);
  return std::string(text, result.ptr);
}

// Parses all of `text` into `value`; false on empty text, trailing characters or overflow.
template <class Number>
bool parse_number(const std::string& text, Number& value) {
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  return !text.empty() && result.ec == std::errc() && result.ptr == end;
}

}  // namespace soda::optim::detail
