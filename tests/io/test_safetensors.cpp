// soda/io/safetensors.hpp: round trips of every dtype, the exact bytes the format prescribes
// (hand-built oracles), hand-made files, TensorFile access and the atomic writer.
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
  TEST_CASE("every dtype, 0-d, empty and non-contiguous tensors and metadata round-trip") {
    TempDir dir;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const Tensor<float> f32({2, 3}, {1.5f, -0.0f, nan, std::numeric_limits<float>::infinity(),
                                     std::numeric_limits<float>::denorm_min(), 3e38f});
    const Tensor<double> f64({4}, {0.1, -2.0, 1e-300, std::numeric_limits<double>::max()});
    const auto i8 = Tensor<std::int8_t>::scalar(-128);
    const Tensor<std::uint8_t> u8({0}, {});
    const Tensor<std::int32_t> i32({2, 0, 3}, {});
    const Tensor<std::int64_t> i64({2, 3}, {std::numeric_limits<std::int64_t>::min(), -1, 0, 1, 2,
                                            std::numeric_limits<std::int64_t>::max()});
    const auto i64_transposed = i64.view_with({3, 2}, {1, 3}, 0);
    const auto f32_column = f32.view_with({2}, {3}, 1);  // offset and stride: {-0.0, denorm}
    const Tensor<std::uint8_t> u8_values({3}, {0, 127, 255});
    REQUIRE_FALSE(i64_transposed.is_contiguous());
    REQUIRE_FALSE(f32_column.is_contiguous());

    TensorFile file;
    file.tensors = {{"f32", f32},
                    {"f64", f64},
                    {"i8 scalar", i8},
                    {"u8 empty", u8},
                    {"i32 empty", i32},
                    {"i64.T", i64_transposed},
                    {"f32 column", f32_column},
                    {"u8", u8_values}};
    file.metadata = {{"format", "pt"}, {"step", "1200"}, {"unicode", "ünïcødé ✓"}, {"", ""}};
    soda::save_safetensors(dir / "all.safetensors", file);
    const auto loaded = soda::load_safetensors(dir / "all.safetensors");

    REQUIRE(loaded.tensors.size() == file.tensors.size());
    for (std::size_t i = 0; i < file.tensors.size(); ++i) {
      CHECK(loaded.tensors[i].first == file.tensors[i].first);  // insertion order kept
      CHECK(loaded.tensors[i].second.index() == file.tensors[i].second.index());
    }
    CHECK(same_bits(loaded.get<float>("f32"), f32));
    CHECK(same_bits(loaded.get<double>("f64"), f64));
    CHECK(loaded.get<std::int8_t>("i8 scalar").shape() == Shape{});
    CHECK(loaded.get<std::int8_t>("i8 scalar").item() == -128);
    CHECK(loaded.get<std::uint8_t>("u8 empty").shape() == Shape{0});
    CHECK(loaded.get<std::int32_t>("i32 empty").shape() == Shape{2, 0, 3});
    const auto transposed = loaded.get<std::int64_t>("i64.T");
    CHECK(transposed.is_contiguous());
    CHECK(same_bits(transposed, i64_transposed));
    CHECK(values(transposed) ==
          std::vector<std::int64_t>{values(i64)[0], 1, -1, 2, 0, values(i64)[5]});
    CHECK(same_bits(loaded.get<float>("f32 column"), f32_column));
    CHECK(values(loaded.get<std::uint8_t>("u8")) == std::vector<std::uint8_t>{0, 127, 255});
    CHECK(loaded.metadata == file.metadata);
    CHECK(dir.entries() == std::vector<std::string>{"all.safetensors"});
  }

  TEST_CASE("a large tensor round-trips") {
    TempDir dir;
    soda::Generator gen(7);
    const auto big = soda::randn<double>({300, 257}, gen);
    soda::save_safetensors(dir / "big.safetensors", TensorFile{{{"big", big}}, {}});
    CHECK(same_bits(soda::load_safetensors(dir / "big.safetensors").get<double>("big"), big));
  }

  TEST_CASE("save writes exactly the bytes the spec prescribes") {
    TempDir dir;
    soda::save_safetensors(dir / "a.safetensors",
                           TensorFile{{{"a", Tensor<float>({2}, {1.0f, 2.0f})}}, {}});
    // 54 bytes of JSON padded with 2 spaces to 56 (0x38), so the buffer starts at byte 64.
    const std::string expected = std::string("\x38\0\0\0\0\0\0\0", 8) +
                                 R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})" +
                                 "  " + std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
    CHECK(read_file(dir / "a.safetensors") == expected);
  }

  TEST_CASE("save keeps insertion order, puts metadata first and pads to 8 bytes") {
    TempDir dir;
    TensorFile file;
    file.tensors = {{"b", Tensor<std::int64_t>::scalar(-2)},
                    {"a", Tensor<std::uint8_t>({3}, {1, 2, 255})}};
    file.metadata = {{"format", "pt"}};
    soda::save_safetensors(dir / "ba.safetensors", file);
    // 137 bytes of JSON + 7 spaces = 144 (0x90).
    const std::string expected =
        std::string("\x90\0\0\0\0\0\0\0", 8) +
        R"({"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
        R"("a":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}})" +
        std::string(7, ' ') + std::string("\xfe\xff\xff\xff\xff\xff\xff\xff\x01\x02\xff", 11);
    CHECK(read_file(dir / "ba.safetensors") == expected);
  }

  TEST_CASE("the data buffer starts 8-byte aligned whatever the header length") {
    TempDir dir;
    for (std::size_t length = 1; length <= 9; ++length) {
      soda::save_safetensors(dir / "x.safetensors",
                             TensorFile{{{std::string(length, 'n'), soda::ones<float>({1})}}, {}});
      const auto bytes = read_file(dir / "x.safetensors");
      const auto header_size = static_cast<std::uint8_t>(bytes[0]);
      CHECK((8 + header_size) % 8 == 0);
      CHECK(bytes.size() == 8 + header_size + 4);
      const auto header = bytes.substr(8, header_size);
      CHECK(header.find_last_not_of(' ') == header.rfind('}'));
      CHECK(header_size - header.rfind('}') <= 8);
      CHECK(soda::load_safetensors(dir / "x.safetensors").contains(std::string(length, 'n')));
    }
  }

  TEST_CASE("a hand-made file loads, in header order, whatever the data order") {
    TempDir dir;
    const std::string header =
        R"({"w":{"dtype":"I32","shape":[2,2],"data_offsets":[8,24]},)"
        R"("__metadata__":{"k":"v"},"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]}})";
    write_file(dir / "h.safetensors",
               by_hand(header, bytes_of(std::vector<double>{0.25}) +
                                   bytes_of(std::vector<std::int32_t>{1, 2, 3, -1})));
    const auto file = soda::load_safetensors(dir / "h.safetensors");
    REQUIRE(file.tensors.size() == 2);
    CHECK(file.tensors[0].first == "w");
    CHECK(file.tensors[1].first == "s");
    CHECK(file.get<std::int32_t>("w").shape() == Shape{2, 2});
    CHECK(values(file.get<std::int32_t>("w")) == std::vector<std::int32_t>{1, 2, 3, -1});
    CHECK(file.get<double>("s").item() == 0.25);
    CHECK(file.metadata == std::map<std::string, std::string>{{"k", "v"}});
  }

  TEST_CASE("BOOL loads as uint8; F16 and BF16 load as float32") {
    TempDir dir;
    const std::string header = R"({"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]},)"
                               R"("half":{"dtype":"F16","shape":[2,4],"data_offsets":[3,19]},)"
                               R"("brain":{"dtype":"BF16","shape":[3],"data_offsets":[19,25]}})";
    const std::vector<std::uint16_t> half{0x3c00, 0xc000, 0x7bff, 0x0001,
                                          0x3800, 0x7c00, 0x8000, 0x0400};
    const std::vector<std::uint16_t> brain{0x3f80, 0xc000, 0x4049};
    write_file(dir / "h.safetensors",
               by_hand(header, std::string("\x01\x00\x01", 3) + bytes_of(half) + bytes_of(brain)));
    const auto file = soda::load_safetensors(dir / "h.safetensors");
    CHECK(values(file.get<std::uint8_t>("mask")) == std::vector<std::uint8_t>{1, 0, 1});
    CHECK(file.get<float>("half").shape() == Shape{2, 4});
    CHECK(values(file.get<float>("half")) ==
          std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24), 0.5f,
                             std::numeric_limits<float>::infinity(), -0.0f, std::ldexp(1.0f, -14)});
    CHECK(std::signbit(values(file.get<float>("half"))[6]));
    CHECK(values(file.get<float>("brain")) == std::vector<float>{1.0f, -2.0f, 3.140625f});
  }

  TEST_CASE("the float32 convenience overload saves in order") {
    TempDir dir;
    const std::vector<std::pair<std::string, Tensor<float>>> parameters{
        {"layer.weight", soda::ones<float>({2, 2})}, {"layer.bias", soda::zeros<float>({2})}};
    soda::save_safetensors(dir / "p.safetensors", parameters);
    const auto file = soda::load_safetensors(dir / "p.safetensors");
    REQUIRE(file.tensors.size() == 2);
    CHECK(file.tensors[0].first == "layer.weight");
    CHECK(values(file.get<float>("layer.bias")) == std::vector<float>{0, 0});
  }

  TEST_CASE("get names the tensor and the dtypes; a missing name lists what is there") {
    TensorFile file;
    file.tensors = {{"w", Tensor<double>({1}, {1.0})}, {"b", soda::zeros<float>({1})}};
    CHECK(file.contains("w"));
    CHECK_FALSE(file.contains("x"));
    try {
      file.get<float>("w");
      FAIL("expected a ValueError");
    } catch (const soda::ValueError& e) {
      const std::string message = e.what();
      CHECK_MESSAGE(contains(message, "'w' is float64, not the requested float32"), message);
      CHECK_MESSAGE(contains(message, "get<double>"), message);
    }
    try {
      file.get<float>("x");
      FAIL("expected a ValueError");
    } catch (const soda::ValueError& e) {
      const std::string message = e.what();
      CHECK_MESSAGE(contains(message, "no tensor named 'x'"), message);
      CHECK_MESSAGE(contains(message, "2 tensors: 'w', 'b'"), message);
    }
  }

  TEST_CASE("save refuses reserved, duplicate and undefined names before touching the file") {
    TempDir dir;
    const auto path = dir / "keep.safetensors";
    write_file(path, "old contents");
    const auto rejected = [&](const TensorFile& file, const std::string& problem) {
      try {
        soda::save_safetensors(path, file);
        FAIL("expected a ValueError");
      } catch (const soda::ValueError& e) {
        CHECK_MESSAGE(contains(e.what(), problem), e.what());
        CHECK_MESSAGE(contains(e.what(), path.string()), e.what());
      }
      CHECK(read_file(path) == "old contents");
      CHECK(dir.entries() == std::vector<std::string>{"keep.safetensors"});
    };
    rejected(TensorFile{{{"__metadata__", soda::ones<float>({1})}}, {}}, "reserved");
    rejected(TensorFile{{{"a", soda::ones<float>({1})}, {"a", soda::ones<float>({1})}}, {}},
             "two tensors are named 'a'");
    rejected(TensorFile{{{"u", Tensor<float>()}}, {}}, "'u' is undefined");
    rejected(TensorFile{{}, {{"bad", std::string("\xff", 1)}}}, "UTF-8");
  }

  TEST_CASE("saving over an existing file replaces it and leaves no temporary file") {
    TempDir dir;
    const auto path = dir / "w.safetensors";
    write_file(path, "old contents");
    soda::save_safetensors(path, TensorFile{{{"a", soda::ones<float>({3})}}, {}});
    CHECK(soda::load_safetensors(path).get<float>("a").numel() == 3);
    CHECK(dir.entries() == std::vector<std::string>{"w.safetensors"});
  }

  TEST_CASE("saving onto a directory fails and leaves the directory and folder as they were") {
    TempDir dir;
    fs::create_directory(dir / "target");
    write_file(dir / "target" / "inside", "x");
    try {
      soda::save_safetensors(dir / "target", TensorFile{{{"a", soda::ones<float>({1})}}, {}});
      FAIL("expected an IoError");
    } catch (const soda::IoError& e) {
      CHECK_MESSAGE(contains(e.what(), (dir / "target").string()), e.what());
      CHECK_MESSAGE(contains(e.what(), "directory"), e.what());
    }
    CHECK(fs::is_directory(dir / "target"));
    CHECK(read_file(dir / "target" / "inside") == "x");
    CHECK(dir.entries() == std::vector<std::string>{"target"});
  }

  TEST_CASE("saving into a missing folder fails naming it") {
    TempDir dir;
    CHECK_THROWS_WITH_AS(
        soda::save_safetensors(dir / "no" / "x.safetensors", TensorFile{}),
        doctest::Contains(("folder '" + (dir / "no").string() + "' does not exist").c_str()),
        soda::IoError);
  }

  TEST_CASE("a write abandoned midway removes its temporary file and keeps the old file") {
    TempDir dir;
    const auto path = dir / "w.safetensors";
    write_file(path, "old contents");
    {
      soda::AtomicFileWriter out(path);
      CHECK(fs::exists(out.temp_path()));
      CHECK(out.temp_path().parent_path() == path.parent_path());
      CHECK(contains(out.temp_path().filename().string(), "w.safetensors.tmp-"));
      out.write("new", 3);
    }  // destroyed without commit(), as when an exception unwinds
    CHECK(read_file(path) == "old contents");
    CHECK(dir.entries() == std::vector<std::string>{"w.safetensors"});
  }
}
