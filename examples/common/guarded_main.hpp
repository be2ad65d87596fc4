// guarded_main: every example's main() runs its body inside it, so that whatever is thrown (a
// soda::Error, a file-system or JSON error, an allocation failure, anything) ends the program with
// one "error: ..." line on stderr and exit status 1, never std::terminate's abort.
#pragma once

#include <exception>
#include <iostream>
#include <new>
#include <string>

namespace examples {

// The message on one line: a line break inside it would split the one-line report.
inline std::string one_line(std::string text) {
  for (auto& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

// Runs body() (which returns the exit status) and reports what escapes it.
template <class Body>
int guarded_main(Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    std::cerr << "error: out of memory (an allocation failed); try a smaller --batch or data set\n";
  } catch (const std::exception& error) {
    std::cerr << "error: " << one_line(error.what()) << "\n";
  } catch (...) {
    std::cerr << "error: the program ended on an exception that is not a std::exception\n";
  }
  return 1;
}

}  // namespace examples
