// Where a Trainer checkpoint says its run stands: epoch, position in the epoch, step count, data
// seed and the run's log lines, read from its metadata and range-checked (an error names the file
// and the entry) before a resume changes anything.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "soda/core/error.hpp"
#include "soda/io/safetensors.hpp"

namespace soda::train {

struct CheckpointPosition {
  std::int64_t epoch = 0, position = 0, step = 0;
  std::uint64_t data_seed = 0;
  std::optional<nlohmann::ordered_json> history;  // absent in checkpoints from before it was kept
};

namespace detail {

// The metadata entry `key` as an unsigned integer no larger than `max`; `range` says in the error
// what it should have been.
inline std::uint64_t checkpoint_number(const TensorFile& file, const std::string& where,
                                       const std::string& key, std::uint64_t max,
                                       const std::string& range) {
  const auto found = file.metadata.find(key);
  if (found == file.metadata.end()) {
    throw ValueError(where + "metadata entry '" + key + "' is missing; not a soda checkpoint?");
  }
  const auto& text = found->second;
  try {
    std::size_t used = 0;
    const auto value = std::stoull(text, &used);
    // stoull takes a sign and leading spaces ("-1" is 2^64 - 1): only plain digits are counts.
    if (used == text.size() && text[0] >= '0' && text[0] <= '9' && value <= max) return value;
  } catch (const std::exception&) {
  }
  throw ValueError(where + "metadata entry '" + key + "' is '" + text + "', not " + range);
}

// The log lines in 'train.history': a JSON array of objects whose "epoch" is in [0, epoch].
inline std::optional<nlohmann::ordered_json> checkpoint_history(const TensorFile& file,
                                                                const std::string& where,
                                                                std::int64_t epoch) {
  const auto found = file.metadata.find("train.history");
  if (found == file.metadata.end()) return std::nullopt;
  auto history = nlohmann::ordered_json::parse(found->second, nullptr, false);
  const auto bad = [&](const std::string& why) {
    return ValueError(where + "metadata entry 'train.history' " + why);
  };
  if (!history.is_array()) throw bad("is not a JSON array of log lines");
  for (const auto& line : history) {
    if (!line.is_object() || !line.contains("epoch") || !line["epoch"].is_number_integer()) {
      throw bad("holds a line without an integer \"epoch\": " + line.dump());
    }
    const auto line_epoch = line["epoch"].get<std::int64_t>();
    if (line_epoch < 0 || line_epoch > epoch) {
      throw bad("holds epoch " + std::to_string(line_epoch) + ", outside [0, " +
                std::to_string(epoch) + "] (train.epoch)");
    }
  }
  return history;
}

}  // namespace detail

// Reads the position of a checkpoint that Trainer::save_checkpoint wrote; `where` starts each
// error (the file's name), `training_samples` bounds the position within an epoch.
inline CheckpointPosition read_checkpoint_position(const TensorFile& file, const std::string& where,
                                                   std::int64_t training_samples) {
  constexpr auto int64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  const std::string count = "an integer in [0, 2^63)";
  const auto samples = static_cast<std::uint64_t>(training_samples);
  CheckpointPosition point;
  point.epoch = static_cast<std::int64_t>(
      detail::checkpoint_number(file, where, "train.epoch", int64_max, count));
  point.step = static_cast<std::int64_t>(
      detail::checkpoint_number(file, where, "train.step", int64_max, count));
  point.position = static_cast<std::int64_t>(detail::checkpoint_number(
      file, where, "train.position", samples,
      "a position in this run's training set of " + std::to_string(samples) +
          " samples (a checkpoint of a larger set, or of another --train-subset?)"));
  point.data_seed =
      detail::checkpoint_number(file, where, "train.data_seed",
                                std::numeric_limits<std::uint64_t>::max(), "an unsigned integer");
  point.history = detail::checkpoint_history(file, where, point.epoch);
  return point;
}

}  // namespace soda::train
