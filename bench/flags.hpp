// Command-line flags of the benches besides Google Benchmark's own: --name=VALUE parsing with an
// error that names the bench and the flag, and handing the rest to Google Benchmark.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <soda/core/error.hpp>

namespace soda::bench {

// The value of --name=VALUE in arg, or null when arg is another flag.
inline const char* flag_value(const char* arg, const char* name) {
  const std::size_t length = std::strlen(name);
  if (std::strncmp(arg, "--", 2) != 0 || std::strncmp(arg + 2, name, length) != 0 ||
      arg[2 + length] != '=') {
    return nullptr;
  }
  return arg + 3 + length;
}

// True when arg is --name=N, with N a positive integer stored in out; throws when N is not one.
inline bool parse_count(const char* program, const char* arg, const char* name, std::int64_t& out) {
  const char* value = flag_value(arg, name);
  if (value == nullptr) return false;
  char* end = nullptr;
  const long long parsed = std::strtoll(value, &end, 10);
  if (end == value || *end != '\0' || parsed < 1) {
    throw soda::ValueError(std::string(program) + ": --" + name + " must be a positive " +
                           "integer, got '" + value + "'");
  }
  out = parsed;
  return true;
}

// Hands Google Benchmark the arguments a bench did not take (program name first); false when one
// of them is unknown to it too (Google Benchmark has then said which).
inline bool initialize_benchmark(std::vector<char*> args) {
  int count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&count, args.data());
  return !benchmark::ReportUnrecognizedArguments(count, args.data());
}

}  // namespace soda::bench
