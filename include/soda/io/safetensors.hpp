// Checkpoints in Hugging Face's safetensors format: named tensors of any soda dtype plus string
// metadata, saved atomically and loaded with every header field checked against the file.
#pragma once

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/core/kernels/elementwise.hpp"
#include "soda/core/tensor.hpp"
#include "soda/io/atomic_file.hpp"
#include "soda/io/tensor_file.hpp"

namespace soda {

static_assert(
    std::endian::native == std::endian::little,
    "soda's safetensors I/O copies tensor bytes as they are: it needs a little-endian host");

namespace detail {

// A safetensors dtype code soda reads, its width in bytes and the soda dtype it loads as.
struct SafetensorsDtype {
  std::string_view code;
  std::size_t size;
  std::string_view loads_as;
};
inline constexpr SafetensorsDtype safetensors_dtypes[] = {
    {"F32", 4, "float32"}, {"F64", 8, "float64"}, {"I8", 1, "int8"},
    {"U8", 1, "uint8"},    {"I32", 4, "int32"},   {"I64", 8, "int64"},
    {"BOOL", 1, "uint8"},  {"F16", 2, "float32"}, {"BF16", 2, "float32"}};

// The code soda writes for T: the first one that loads as T.
template <class T>
constexpr std::string_view safetensors_code() {
  for (const auto& dtype : safetensors_dtypes) {
    if (dtype.loads_as == dtype_name<T>()) return dtype.code;
  }
  return "";
}

// Bytes per element of a code soda reads; 0 for codes it does not.
inline std::size_t safetensors_element_size(std::string_view code) {
  for (const auto& dtype : safetensors_dtypes) {
    if (dtype.code == code) return dtype.size;
  }
  return 0;
}

// Bytes per element once loaded: 16-bit floats widen to float32.
inline std::int64_t safetensors_loaded_size(std::string_view code) {
  return code == "F16" || code == "BF16"
             ? 4
             : static_cast<std::int64_t>(safetensors_element_size(code));
}

// IEEE binary16 to float32 (exact: every half value is a float).
inline float half_to_float(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1fu;
  const std::uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  const std::uint32_t bits = exponent == 0x1f ? sign | 0x7f800000u | (mantissa << 13)
                                              : sign | ((exponent + 112) << 23) | (mantissa << 13);
  return std::bit_cast<float>(bits);
}

// bfloat16 is the top half of a float32.
inline float bfloat16_to_float(std::uint16_t bfloat) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bfloat) << 16);
}

}  // namespace detail

// Writes `file` to `path` in safetensors format: header entries and data in the order given,
// non-contiguous views written contiguously, the data buffer 8-byte aligned. The file appears
// complete or not at all (temporary file, fsync, rename).
inline void save_safetensors(const std::filesystem::path& path, const TensorFile& file) {
  const auto refuse = [&](const std::string& problem) {
    throw ValueError("save_safetensors: '" + path.string() + "': " + problem);
  };
  std::set<std::string_view> names;
  for (const auto& [name, tensor] : file.tensors) {
    if (name == "__metadata__")
      refuse("'__metadata__' is reserved for metadata; rename that tensor");
    if (!names.insert(name).second) {
      refuse("two tensors are named '" + name + "'; names in a safetensors file must be unique");
    }
    if (!std::visit([](const auto& t) { return t.defined(); }, tensor)) {
      refuse("tensor '" + name + "' is undefined");
    }
  }

  std::vector<AnyTensor> contiguous;
  contiguous.reserve(file.tensors.size());
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::uint64_t offset = 0;
  // Named members, not a structured binding: clang before 16 refuses to capture one in a lambda.
  for (const auto& named : file.tensors) {
    const std::string& name = named.first;
    std::visit(
        [&]<class T>(const Tensor<T>& t) {
          const auto bytes = static_cast<std::uint64_t>(t.numel()) * sizeof(T);
          auto& entry = header[name];
          entry["dtype"] = detail::safetensors_code<T>();
          entry["shape"] = t.shape();
          entry["data_offsets"] = nlohmann::ordered_json::array({offset, offset + bytes});
          offset += bytes;
          contiguous.emplace_back(t.is_contiguous() ? t : detail::copy_contiguous(t));
        },
        named.second);
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::type_error& e) {
    refuse("tensor names and metadata must be valid UTF-8 (" + std::string(e.what()) + ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the buffer starts 8-byte aligned

  unsigned char size_bytes[8];
  for (int i = 0; i < 8; ++i) size_bytes[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  AtomicFileWriter out(path);
  out.write(size_bytes, sizeof size_bytes);
  out.write(text.data(), text.size());
  for (const auto& tensor : contiguous) {
    std::visit(
        [&]<class T>(const Tensor<T>& t) {
          out.write(t.raw_data(), static_cast<std::size_t>(t.numel()) * sizeof(T));
        },
        tensor);
  }
  out.commit();
}

// Float32 tensors only, as modules hand out their parameters.
inline void save_safetensors(const std::filesystem::path& path,
                             const std::vector<std::pair<std::string, Tensor<float>>>& tensors) {
  TensorFile file;
  for (const auto& [name, tensor] : tensors) file.tensors.emplace_back(name, tensor);
  save_safetensors(path, file);
}

namespace detail {

// Safetensors caps headers at 100 MB; a larger size means a foreign or corrupt file.
inline constexpr std::uint64_t max_safetensors_header_bytes = 100'000'000;

struct SafetensorsEntry {
  std::string name;
  std::string dtype;
  Shape shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

class SafetensorsLoader {
 public:
  explicit SafetensorsLoader(std::filesystem::path path) : path_(std::move(path)) {}

  TensorFile load() {
    open();
    const auto header = read_header();
    TensorFile file;
    std::vector<SafetensorsEntry> entries;
    for (const auto& item : header.items()) {
      if (item.key() == "__metadata__") {
        file.metadata = parse_metadata(item.value());
      } else {
        entries.push_back(parse_entry(item.key(), item.value()));
      }
    }
    check_layout(entries);
    for (const auto& entry : entries) file.tensors.emplace_back(entry.name, read_tensor(entry));
    return file;
  }

 private:
  [[noreturn]] void corrupt(const std::string& problem) const {
    throw IoError("load_safetensors: '" + path_.string() + "': " + problem);
  }

  void open() {
    std::error_code ec;
    const auto status = std::filesystem::status(path_, ec);
    if (!std::filesystem::exists(status)) corrupt("no such file");
    if (std::filesystem::is_directory(status)) corrupt("is a directory, not a file");
    file_bytes_ = std::filesystem::file_size(path_, ec);
    in_.open(path_, std::ios::binary);
    if (ec || !in_.is_open()) corrupt(std::string("cannot open it: ") + std::strerror(errno));
  }

  void read_bytes(void* destination, std::uint64_t position, std::uint64_t size,
                  const std::string& what) {
    in_.seekg(static_cast<std::streamoff>(position));
    in_.read(static_cast<char*>(destination), static_cast<std::streamsize>(size));
    if (!in_) corrupt("the file ended while reading " + what + " (was it changed while loading?)");
  }

  nlohmann::ordered_json read_header() {
    if (file_bytes_ < 8) {
      corrupt("only " + std::to_string(file_bytes_) +
              " bytes long; a safetensors file starts with an 8-byte header size");
    }
    unsigned char size_bytes[8];
    read_bytes(size_bytes, 0, 8, "the header size");
    std::uint64_t header_bytes = 0;
    for (int i = 0; i < 8; ++i) header_bytes |= std::uint64_t{size_bytes[i]} << (8 * i);
    if (header_bytes > max_safetensors_header_bytes) {
      corrupt("header size " + std::to_string(header_bytes) +
              " bytes is over the 100 MB limit: not a safetensors file, or a corrupt one");
    }
    if (header_bytes > file_bytes_ - 8) {
      corrupt("truncated: the header claims " + std::to_string(header_bytes) + " bytes but only " +
              std::to_string(file_bytes_ - 8) + " follow the header size");
    }
    buffer_start_ = 8 + header_bytes;
    buffer_bytes_ = file_bytes_ - buffer_start_;
    std::string text(header_bytes, '\0');
    read_bytes(text.data(), 8, header_bytes, "the header");
    return parse_json(text);
  }

  // Parses the header, noting a key that appears twice in one object (the parser keeps one) and
  // refusing deep nesting: printing a value in a message recurses once per level.
  nlohmann::ordered_json parse_json(const std::string& text) const {
    using Json = nlohmann::ordered_json;
    constexpr int deepest = 16;  // a valid header nests 3 levels: tensors, entry, shape
    std::vector<std::set<std::string>> open_objects;
    std::string duplicate;
    const auto note_keys = [&](int depth, Json::parse_event_t event, Json& parsed) {
      if (depth > deepest) {
        corrupt("the header nests JSON values more than " + std::to_string(deepest) +
                " levels deep; a safetensors header is an object of flat entries");
      }
      if (event == Json::parse_event_t::object_start) {
        open_objects.emplace_back();
      } else if (event == Json::parse_event_t::object_end) {
        open_objects.pop_back();
      } else if (event == Json::parse_event_t::key && duplicate.empty() &&
                 !open_objects.back().insert(parsed.get<std::string>()).second) {
        duplicate = parsed.get<std::string>();
      }
      return true;
    };
    Json header;
    try {
      header = Json::parse(text, note_keys);
    } catch (const Json::exception& e) {
      corrupt(std::string("the header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) corrupt("the header is JSON but not an object of named tensors");
    if (!duplicate.empty()) corrupt("the header names '" + duplicate + "' twice");
    return header;
  }

  std::map<std::string, std::string> parse_metadata(const nlohmann::ordered_json& value) const {
    if (!value.is_object()) corrupt("__metadata__ is not an object of strings");
    std::map<std::string, std::string> metadata;
    for (const auto& item : value.items()) {
      if (!item.value().is_string()) {
        corrupt("__metadata__ entry '" + item.key() + "' is " + item.value().dump() +
                ", not a string");
      }
      metadata[item.key()] = item.value().get<std::string>();
    }
    return metadata;
  }

  SafetensorsEntry parse_entry(const std::string& name, const nlohmann::ordered_json& value) const {
    const std::string where = "tensor '" + name + "'";
    if (!value.is_object()) corrupt(where + " is not an object with dtype, shape and data_offsets");
    for (const char* field : {"dtype", "shape", "data_offsets"}) {
      if (!value.contains(field)) corrupt(where + " has no \"" + field + "\"");
    }
    SafetensorsEntry entry;
    entry.name = name;
    const auto& dtype = value["dtype"];
    if (!dtype.is_string()) corrupt(where + ": dtype is " + dtype.dump() + ", not a string");
    entry.dtype = dtype.get<std::string>();
    const std::size_t element_size = safetensors_element_size(entry.dtype);
    if (element_size == 0) {
      corrupt(where + " has dtype '" + entry.dtype +
              "', which soda does not read (F32, F64, I8, U8, I32, I64, BOOL, F16, BF16)");
    }

    const auto& shape = value["shape"];
    if (!shape.is_array()) corrupt(where + ": shape is " + shape.dump() + ", not an array");
    for (const auto& extent : shape) {
      if (!extent.is_number_integer()) {
        corrupt(where + ": shape " + shape.dump() + " holds something other than integers");
      }
      if (!extent.is_number_unsigned()) {
        corrupt(where + ": shape " + shape.dump() + " has a negative dimension");
      }
      const auto d = extent.get<std::uint64_t>();
      if (d > static_cast<std::uint64_t>(INT64_MAX)) {
        corrupt(where + ": shape " + shape.dump() + " has a dimension too large");
      }
      entry.shape.push_back(static_cast<std::int64_t>(d));
    }
    try {
      check_shape_valid(entry.shape, "load_safetensors", safetensors_loaded_size(entry.dtype));
    } catch (const ShapeError&) {
      corrupt(where + ": shape " + shape.dump() + " of " + entry.dtype +
              " is too large (its element count or byte size overflows int64)");
    }

    const auto& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      corrupt(where + ": data_offsets is " + offsets.dump() +
              ", not two non-negative integers [begin, end]");
    }
    entry.begin = offsets[0].get<std::uint64_t>();
    entry.end = offsets[1].get<std::uint64_t>();
    if (entry.end < entry.begin) {
      corrupt(where + ": data_offsets " + offsets.dump() + " end before they begin");
    }
    const auto needed = static_cast<std::uint64_t>(numel(entry.shape)) * element_size;
    if (entry.end - entry.begin != needed) {
      corrupt(where + ": shape " + shape.dump() + " of " + entry.dtype + " needs " +
              std::to_string(needed) + " bytes but data_offsets " + offsets.dump() + " span " +
              std::to_string(entry.end - entry.begin));
    }
    return entry;
  }

  // Tensors must tile the data buffer exactly: no overlap, no hole, nothing after the last one.
  void check_layout(const std::vector<SafetensorsEntry>& entries) const {
    std::vector<const SafetensorsEntry*> by_offset;
    for (const auto& entry : entries) by_offset.push_back(&entry);
    std::ranges::stable_sort(by_offset, [](const auto* a, const auto* b) {
      return std::pair(a->begin, a->end) < std::pair(b->begin, b->end);
    });
    std::uint64_t covered = 0;
    const SafetensorsEntry* previous = nullptr;
    for (const auto* entry : by_offset) {
      const auto span =
          "data_offsets [" + std::to_string(entry->begin) + ", " + std::to_string(entry->end) + "]";
      if (entry->end > buffer_bytes_) {
        corrupt("tensor '" + entry->name + "' has " + span + " outside the data buffer of " +
                std::to_string(buffer_bytes_) + " bytes (truncated file?)");
      }
      if (entry->begin < covered) {
        corrupt("tensors '" + previous->name + "' and '" + entry->name + "' overlap (" + span +
                " of '" + entry->name + "' start before byte " + std::to_string(covered) + ")");
      }
      if (entry->begin > covered) {
        corrupt("bytes [" + std::to_string(covered) + ", " + std::to_string(entry->begin) +
                ") of the data buffer belong to no tensor (a hole before '" + entry->name + "')");
      }
      covered = entry->end;
      previous = entry;
    }
    if (covered != buffer_bytes_) {
      corrupt(std::to_string(buffer_bytes_ - covered) +
              " bytes of trailing garbage after the last tensor's data (the buffer holds " +
              std::to_string(buffer_bytes_) + " bytes, tensors cover " + std::to_string(covered) +
              ")");
    }
  }

  template <class T>
  Tensor<T> read_native(const SafetensorsEntry& entry) {
    auto tensor = Tensor<T>::empty(entry.shape);
    read_bytes(tensor.raw_data(), buffer_start_ + entry.begin, entry.end - entry.begin,
               "tensor '" + entry.name + "'");
    return tensor;
  }

  Tensor<float> read_16_bit_float(const SafetensorsEntry& entry, float (*convert)(std::uint16_t)) {
    std::vector<std::uint16_t> raw((entry.end - entry.begin) / 2);
    read_bytes(raw.data(), buffer_start_ + entry.begin, entry.end - entry.begin,
               "tensor '" + entry.name + "'");
    auto tensor = Tensor<float>::empty(entry.shape);
    std::ranges::transform(raw, tensor.raw_data(), convert);
    return tensor;
  }

  AnyTensor read_tensor(const SafetensorsEntry& entry) {
    const auto& code = entry.dtype;
    if (code == "F32") return read_native<float>(entry);
    if (code == "F64") return read_native<double>(entry);
    if (code == "I8") return read_native<std::int8_t>(entry);
    if (code == "U8" || code == "BOOL") return read_native<std::uint8_t>(entry);
    if (code == "I32") return read_native<std::int32_t>(entry);
    if (code == "I64") return read_native<std::int64_t>(entry);
    if (code == "F16") return read_16_bit_float(entry, half_to_float);
    return read_16_bit_float(entry, bfloat16_to_float);
  }

  std::filesystem::path path_;
  std::ifstream in_;
  std::uint64_t file_bytes_ = 0;
  std::uint64_t buffer_start_ = 0;
  std::uint64_t buffer_bytes_ = 0;
};

}  // namespace detail

// Reads a safetensors file; "BOOL" loads as uint8 and "F16"/"BF16" as float32. Throws IoError,
// naming the file and the problem, on anything that does not match the format exactly.
inline TensorFile load_safetensors(const std::filesystem::path& path) {
  return detail::SafetensorsLoader(path).load();
}

}  // namespace soda
