// The examples' command-line checks: CLI11 validators for the ranges of their options, stricter
// than CLI11's own where those let bad values through (CLI::Range and CLI::PositiveNumber accept
// "nan", an unsigned option reads "-1" as 2^64 - 1), and a check that holds between options.
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <soda/soda.hpp>
#include <sstream>
#include <string>

#include "common/data_and_models.hpp"

namespace examples {

namespace detail {

// `text` as a finite number, or nothing ("nan", "inf", "1x" and "" are not numbers here).
inline std::optional<double> finite_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

// `text` as a whole int64 (digits with an optional minus sign), or nothing.
inline std::optional<std::int64_t> whole_number(const std::string& text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

inline std::string number_text(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

}  // namespace detail

// A finite number in the range [low, high], with either end open when asked; `description` is
// what --help shows and the error repeats.
inline CLI::Validator finite_number_in(double low, double high, bool low_open = false,
                                       bool high_open = false) {
  const auto description = std::string(low_open ? "(" : "[") + detail::number_text(low) + ", " +
                           (std::isinf(high) ? "inf" : detail::number_text(high)) +
                           (high_open || std::isinf(high) ? ")" : "]");
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        const auto value = detail::finite_number(text);
        const bool inside = value && (low_open ? *value > low : *value >= low) &&
                            (high_open ? *value < high : *value <= high);
        if (inside) return "";
        return "'" + text + "' is not a finite number in " + description;
      },
      "in " + description);
}

inline CLI::Validator finite_number_at_least(double low) {
  return finite_number_in(low, std::numeric_limits<double>::infinity());
}

inline CLI::Validator finite_number_above(double low) {
  return finite_number_in(low, std::numeric_limits<double>::infinity(), true);
}

// A whole number in [low, high].
inline CLI::Validator whole_number_in(
    std::int64_t low, std::int64_t high = std::numeric_limits<std::int64_t>::max()) {
  const auto description = high == std::numeric_limits<std::int64_t>::max()
                               ? ">= " + std::to_string(low)
                               : "in [" + std::to_string(low) + ", " + std::to_string(high) + "]";
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        const auto value = detail::whole_number(text);
        if (value && *value >= low && *value <= high) return "";
        return "'" + text + "' is not a whole number " + description;
      },
      description);
}

// A count where -1 means "all" (or what `minus_one` says): -1 or a whole number >= 1; 0 would do
// nothing (and an evaluation of nothing would report 0% accuracy).
inline CLI::Validator count_or_all(const std::string& minus_one = "all") {
  const auto description = "-1 (" + minus_one + ") or >= 1";
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        const auto value = detail::whole_number(text);
        if (value && (*value == -1 || *value >= 1)) return "";
        return "'" + text + "' is neither -1 (" + minus_one + ") nor a whole number >= 1";
      },
      description);
}

// A seed: a whole number in [0, 2^64 - 1], digits only (CLI11 would read "-1" as 2^64 - 1).
inline CLI::Validator seed_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::uint64_t value = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (!text.empty() && error == std::errc() && end == text.data() + text.size()) return "";
        return "'" + text + "' is not a whole number in [0, 2^64 - 1]";
      },
      "in [0, 2^64 - 1]");
}

// OpenMP threads: 0 (all cores) up to 1024.
inline CLI::Validator thread_count() {
  return whole_number_in(0, 1024);
}

// A folder to write into: absent (it will be created) or a folder, not a file.
inline CLI::Validator output_folder() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::error_code ec;
        if (text.empty()) return "the folder path is empty";
        if (std::filesystem::exists(text, ec) && !std::filesystem::is_directory(text, ec)) {
          return "'" + text + "' is a file, not a folder; give a folder for the results";
        }
        return "";
      },
      "FOLDER");
}

// A file to write: not an existing folder.
inline CLI::Validator output_file() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::error_code ec;
        if (text.empty()) return "the file path is empty";
        if (std::filesystem::is_directory(text, ec)) {
          return "'" + text + "' is a folder; give a file path";
        }
        return "";
      },
      "FILE");
}

// A model name make_model knows; with resnet_only, a CIFAR ResNet.
inline CLI::Validator model_name(bool resnet_only = false) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        if (resnet_only ? is_resnet_name(text) : is_model_name(text)) return "";
        return "unknown model '" + text +
               "'; valid: " + (resnet_only ? resnet_names_help : model_names_help);
      },
      "MODEL");
}

// A check between options, after parsing: a ValueError naming them when `holds` is false.
inline void require(bool holds, const std::string& message) {
  if (!holds) throw soda::ValueError(message);
}

}  // namespace examples
