// soda/io/safetensors.hpp: one test per way a file can be corrupt, each checking that the IoError
// names the file and the problem.
#include "safetensors_files.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

using namespace safetensors_test;
using soda::AnyTensor;
using soda::Shape;
using soda::TensorFile;

TEST_SUITE("io/safetensors") {
  TEST_CASE("load: a missing file") {
    TempDir dir;
    const auto message = load_error(dir / "nope.safetensors");
    CHECK_MESSAGE(contains(message, (dir / "nope.safetensors").string()), message);
    CHECK_MESSAGE(contains(message, "no such file"), message);
  }

  TEST_CASE("load: a directory") {
    TempDir dir;
    const auto message = load_error(dir.path);
    CHECK_MESSAGE(contains(message, dir.path.string()), message);
    CHECK_MESSAGE(contains(message, "is a directory"), message);
  }

  TEST_CASE("load: a file shorter than the 8-byte header size") {
    check_rejected(std::string("\x05\0\0", 3), "only 3 bytes long");
    check_rejected("", "only 0 bytes long");
  }

  TEST_CASE("load: a header size over 100 MB") {
    check_rejected(little_endian_u64(100'000'001) + "{}", "over the 100 MB limit");
    check_rejected(little_endian_u64(~std::uint64_t{0}) + "{}", "over the 100 MB limit");
  }

  TEST_CASE("load: a header size past the end of the file") {
    check_rejected(little_endian_u64(100) + "{}",
                   "truncated: the header claims 100 bytes but only 2");
  }

  TEST_CASE("load: a header that is not JSON") {
    check_rejected(by_hand(R"({"a":)", ""), "not valid JSON");
    check_rejected(by_hand("", ""), "not valid JSON");
    check_rejected(by_hand(std::string("{\"\xff\":1}"), ""), "not valid JSON");
  }

  TEST_CASE("load: a header that is not an object") {
    check_rejected(by_hand("[1,2]", ""), "not an object");
    check_rejected(by_hand(R"("text")", ""), "not an object");
  }

  TEST_CASE("load: an entry missing a field") {
    const std::string buffer(8, '\0');
    check_rejected(by_hand(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", buffer),
                   "tensor 'a' has no \"dtype\"");
    check_rejected(by_hand(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", buffer),
                   "tensor 'a' has no \"shape\"");
    check_rejected(by_hand(R"({"a":{"dtype":"F32","shape":[2]}})", buffer),
                   "tensor 'a' has no \"data_offsets\"");
  }

  TEST_CASE("load: an entry with fields of the wrong type") {
    const std::string buffer(8, '\0');
    check_rejected(by_hand(R"({"a":[1]})", buffer), "tensor 'a' is not an object");
    check_rejected(by_hand(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", buffer),
                   "dtype is 4, not a string");
    check_rejected(by_hand(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", buffer),
                   "not an array");
    check_rejected(by_hand(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", buffer),
                   "other than integers");
    check_rejected(by_hand(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", buffer),
                   "not two non-negative integers");
    check_rejected(by_hand(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}})", buffer),
                   "not two non-negative integers");
    check_rejected(by_hand(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", buffer),
                   "not two non-negative integers");
  }

  TEST_CASE("load: metadata that is not an object of strings") {
    check_rejected(by_hand(R"({"__metadata__":{"step":12}})", ""),
                   "__metadata__ entry 'step' is 12, not a string");
    check_rejected(by_hand(R"({"__metadata__":["a"]})", ""), "__metadata__ is not an object");
  }

  TEST_CASE("load: an unknown dtype") {
    check_rejected(
        by_hand(R"({"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0')),
        "dtype 'C64', which soda does not read");
  }

  TEST_CASE("load: a negative dimension") {
    check_rejected(
        by_hand(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0')),
        "negative dimension");
  }

  TEST_CASE("load: a shape too large to count") {
    check_rejected(
        by_hand(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                std::string(8, '\0')),
        "is too large");
  }

  TEST_CASE("load: a shape whose size overflows int64 even though an extent is 0") {
    // No bytes are needed, but the strides of [0, 2^32, 2^32] (and the count of [2^32, 2^32, 0]
    // on the way to 0) overflow: such a tensor cannot be made.
    for (const std::string shape : {"[0,4294967296,4294967296]", "[4294967296,4294967296,0]"}) {
      CAPTURE(shape);
      check_rejected(
          by_hand(R"({"a":{"dtype":"U8","shape":)" + shape + R"(,"data_offsets":[0,0]}})", ""),
          "is too large");
    }
  }

  TEST_CASE("load: JSON nested deeper than a header can be") {
    // Printing such a value in a message would recurse once per level (a stack overflow at this
    // depth): the parse stops at level 17.
    const std::size_t depth = 200000;
    const std::string shape = std::string(depth, '[') + std::string(depth, ']');
    check_rejected(
        by_hand(R"({"a":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,0]}})", ""),
        "nests JSON values more than 16 levels deep");
  }

  TEST_CASE("load: data_offsets that end before they begin") {
    check_rejected(
        by_hand(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", std::string(8, '\0')),
        "end before they begin");
  }

  TEST_CASE("load: data_offsets that disagree with shape and dtype") {
    check_rejected(
        by_hand(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
        "needs 12 bytes but data_offsets [0,8] span 8");
  }

  TEST_CASE("load: overlapping tensors") {
    check_rejected(by_hand(R"({"a":)" + f32_entry +
                               R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           std::string(12, '\0')),
                   "tensors 'a' and 'b' overlap");
  }

  TEST_CASE("load: a hole between tensors") {
    check_rejected(by_hand(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                           std::string(12, '\0')),
                   "bytes [4, 8) of the data buffer belong to no tensor");
  }

  TEST_CASE("load: data_offsets past the end of the buffer") {
    check_rejected(by_hand(R"({"a":)" + f32_entry + "}", std::string(4, '\0')),
                   "outside the data buffer of 4 bytes");
  }

  TEST_CASE("load: trailing bytes after the last tensor") {
    check_rejected(by_hand(R"({"a":)" + f32_entry + "}", std::string(12, '\0')),
                   "4 bytes of trailing garbage");
  }

  TEST_CASE("load: a name given twice") {
    check_rejected(by_hand(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           std::string(8, '\0')),
                   "names 'a' twice");
  }
}
