// Exceptions thrown by soda. Every error derives from soda::Error and carries a message a user
// can act on: which op, which shapes or which file, and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace soda {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Shapes that do not agree in a binary op, matmul, reshape or concat.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// An argument out of its domain: a bad axis, an empty tensor where a value is needed, a wrong
// dtype.
class ValueError : public Error {
 public:
  using Error::Error;
};

// An index outside a tensor's bounds.
class IndexError : public Error {
 public:
  using Error::Error;
};

// A missing, truncated or corrupt file.
class IoError : public Error {
 public:
  using Error::Error;
};

// Memory the system would not give: names the tensor's shape and the bytes asked for.
class AllocationError : public Error {
 public:
  using Error::Error;
};

}  // namespace soda
