// soda/data/idx.hpp: IDX files raw and gzip'd (written here with zlib), MNIST-layout folders,
// one test per error, and the real Fashion-MNIST from Debian's dataset-fashion-mnist package.
#include <doctest/doctest.h>

#include <soda/soda.hpp>

#include <sys/resource.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "scratch.hpp"

namespace {

// An IDX file: magic 0 0 dtype rank, big-endian u32 extents, then `data`.
scratch::Bytes idx_bytes(const std::vector<std::uint32_t>& dims, const scratch::Bytes& data,
                         unsigned char dtype = 0x08) {
  scratch::Bytes out = {0, 0, dtype, static_cast<unsigned char>(dims.size())};
  for (const auto d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<unsigned char>(d >> shift));
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void check_bytes(const soda::Tensor<std::uint8_t>& t, const scratch::Bytes& expected) {
  REQUIRE(t.numel() == static_cast<std::int64_t>(expected.size()));
  std::int64_t wrong = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) wrong += t.data()[i] != expected[i];
  CHECK(wrong == 0);
}

// Writes an MNIST-layout folder of `n` 28x28 images and labels (images gzip'd, labels raw).
void write_mnist_folder(const std::filesystem::path& root, const std::string& prefix,
                        std::uint32_t n, const scratch::Bytes& pixels,
                        const scratch::Bytes& labels) {
  scratch::write_gzip(root / (prefix + "-images-idx3-ubyte.gz"), idx_bytes({n, 28, 28}, pixels));
  scratch::write_raw(root / (prefix + "-labels-idx1-ubyte"),
                     idx_bytes({static_cast<std::uint32_t>(labels.size())}, labels));
}

// The decompressed bytes of a gzip file, read with zlib directly (the oracle for the real data).
scratch::Bytes gunzip(const std::filesystem::path& file) {
  gzFile in = gzopen(file.c_str(), "rb");
  REQUIRE(in != nullptr);
  scratch::Bytes out;
  std::array<unsigned char, 65536> buffer{};
  int got = 0;
  while ((got = gzread(in, buffer.data(), buffer.size())) > 0)
    out.insert(out.end(), buffer.data(), buffer.data() + got);
  gzclose(in);
  return out;
}

// `bytes` as one gzip member, in memory (zlib's deflate with the gzip wrapper).
scratch::Bytes gzip_member(const scratch::Bytes& bytes) {
  z_stream stream{};
  REQUIRE(deflateInit2(&stream, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  scratch::Bytes out(deflateBound(&stream, static_cast<uLong>(bytes.size())));
  stream.next_in = const_cast<Bytef*>(bytes.data());
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// The peak resident memory of this process so far, in KiB.
long peak_resident_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace

TEST_SUITE("data/idx") {
  TEST_CASE("a raw IDX file reads back with its shape and every byte") {
    scratch::TempFolder tmp;
    const auto data = scratch::pattern(4 * 5 * 6, 1);
    scratch::write_raw(tmp.path() / "cube.idx", idx_bytes({4, 5, 6}, data));
    const auto t = soda::load_idx_u8(tmp.path() / "cube.idx");
    CHECK(t.shape() == soda::Shape{4, 5, 6});
    check_bytes(t, data);
    CHECK(t.at({3, 4, 5}) == data[3 * 30 + 4 * 6 + 5]);
  }

  TEST_CASE("gzip is detected by its magic, not by the file name") {
    scratch::TempFolder tmp;
    const auto data = scratch::pattern(7 * 3, 2);
    scratch::write_gzip(tmp.path() / "no-extension", idx_bytes({7, 3}, data));
    scratch::write_raw(tmp.path() / "raw-but-named.gz", idx_bytes({7, 3}, data));
    REQUIRE(scratch::read_raw(tmp.path() / "no-extension")[0] == 0x1f);
    const auto inflated = soda::load_idx_u8(tmp.path() / "no-extension");
    const auto raw = soda::load_idx_u8(tmp.path() / "raw-but-named.gz");
    CHECK(inflated.shape() == soda::Shape{7, 3});
    CHECK(raw.shape() == soda::Shape{7, 3});
    check_bytes(inflated, data);
    check_bytes(raw, data);
  }

  TEST_CASE("a large gzip file (several read chunks) inflates completely") {
    scratch::TempFolder tmp;
    const auto data = scratch::pattern(3'000'000, 3);
    scratch::write_gzip(tmp.path() / "big.gz", idx_bytes({3'000'000}, data));
    check_bytes(soda::load_idx_u8(tmp.path() / "big.gz"), data);
  }

  TEST_CASE("load_mnist reads an MNIST-layout folder (.gz or not) as [N, 1, 28, 28]") {
    scratch::TempFolder tmp;
    const auto pixels = scratch::pattern(6 * 784, 4);
    const scratch::Bytes labels = {7, 2, 1, 0, 4, 9};
    write_mnist_folder(tmp.path(), "train", 6, pixels, labels);
    const auto test_pixels = scratch::pattern(2 * 784, 5);
    write_mnist_folder(tmp.path(), "t10k", 2, test_pixels, {3, 3});

    const auto train = soda::load_mnist(tmp.path(), true);
    CHECK(train.images.shape() == soda::Shape{6, 1, 28, 28});
    CHECK(train.classes == 10);
    CHECK(train.class_names[7] == "7");
    check_bytes(train.images, pixels);
    for (std::int64_t i = 0; i < 6; ++i) CHECK(train.labels.at({i}) == labels[i]);
    CHECK(train.images.at({5, 0, 27, 27}) == pixels[5 * 784 + 27 * 28 + 27]);

    const auto test = soda::load_fashion_mnist(tmp.path(), false);
    CHECK(test.images.shape() == soda::Shape{2, 1, 28, 28});
    CHECK(test.class_names[9] == "Ankle boot");
    check_bytes(test.images, test_pixels);
    CHECK(test.labels.at({1}) == 3);
  }

  TEST_CASE("a missing file is named, with the files expected") {
    scratch::TempFolder tmp;
    const auto missing =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "nope"); });
    CHECK(scratch::mentions(missing, {(tmp.path() / "nope").string(), "missing"}));

    write_mnist_folder(tmp.path(), "train", 1, scratch::pattern(784, 6), {1});
    std::filesystem::remove(tmp.path() / "train-labels-idx1-ubyte");
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_fashion_mnist(tmp.path(), true); });
    CHECK(scratch::mentions(message, {(tmp.path() / "train-labels-idx1-ubyte").string(), "missing",
                                      "t10k-images-idx3-ubyte", "dataset-fashion-mnist"}));
  }

  TEST_CASE("a bad magic number is reported with the bytes found") {
    scratch::TempFolder tmp;
    scratch::write_raw(tmp.path() / "bad", {0x00, 0x01, 0x08, 0x01, 0, 0, 0, 0});
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "bad"); });
    CHECK(scratch::mentions(message, {(tmp.path() / "bad").string(), "bad magic", "0x01"}));

    scratch::write_raw(tmp.path() / "empty", {});
    const auto empty =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "empty"); });
    CHECK(scratch::mentions(empty, {(tmp.path() / "empty").string(), "bad magic", "empty"}));
  }

  TEST_CASE("a dtype other than unsigned byte is named") {
    scratch::TempFolder tmp;
    scratch::write_gzip(tmp.path() / "floats.gz", idx_bytes({2}, scratch::pattern(8, 7), 0x0D));
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "floats.gz"); });
    CHECK(scratch::mentions(message, {(tmp.path() / "floats.gz").string(), "0x0D", "float32"}));
  }

  TEST_CASE("data shorter than the extents say is reported as truncated") {
    scratch::TempFolder tmp;
    auto bytes = idx_bytes({10, 28, 28}, scratch::pattern(10 * 784, 8));
    bytes.resize(bytes.size() - 1);
    scratch::write_gzip(tmp.path() / "short.gz", bytes);
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "short.gz"); });
    CHECK(scratch::mentions(
        message, {(tmp.path() / "short.gz").string(), "truncated", "[10, 28, 28]", "7839"}));

    // Extents whose product overflows 64 bits are truncated too, not a crash.
    scratch::write_raw(tmp.path() / "huge",
                       idx_bytes({0xffffffffu, 0xffffffffu, 0xffffffffu}, {1}));
    const auto huge =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "huge"); });
    CHECK(scratch::mentions(huge, {(tmp.path() / "huge").string(), "truncated"}));

    // The header itself cut short.
    scratch::write_raw(tmp.path() / "header", {0, 0, 8, 3, 0, 0, 0, 1});
    const auto header =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "header"); });
    CHECK(
        scratch::mentions(header, {(tmp.path() / "header").string(), "truncated", "3 dimensions"}));
  }

  TEST_CASE("bytes after the declared data are reported as corrupt") {
    scratch::TempFolder tmp;
    scratch::write_raw(tmp.path() / "long", idx_bytes({3}, {1, 2, 3, 4}));
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "long"); });
    CHECK(scratch::mentions(message, {(tmp.path() / "long").string(), "corrupt", "1 bytes"}));
  }

  TEST_CASE("a gzip file is inflated header first, never past its declared size and one byte") {
    scratch::TempFolder tmp;
    // A [1] tensor, then 4 MiB more in the same member, whose checksum is broken: a reader that
    // inflated everything would report the checksum; one that stops after the declared byte and
    // one more reports the extra data.
    auto content = idx_bytes({1}, {42});
    content.resize(content.size() + (std::size_t{4} << 20), 0);
    auto member = gzip_member(content);
    member[member.size() - 8] ^= 0xff;  // the CRC-32 of the member's trailer
    scratch::write_raw(tmp.path() / "crc.gz", member);
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "crc.gz"); });
    CHECK(scratch::mentions(message,
                            {(tmp.path() / "crc.gz").string(), "corrupt", "more bytes", "[1]"}));

    // The same [1] tensor followed by 1 GiB of zeros (1024 gzip members of 1 MiB each, 1 MB on
    // disk): refused without inflating them (before: 2.1 GB of memory and seconds).
    auto bomb = gzip_member(idx_bytes({1}, {42}));
    const auto zeros = gzip_member(scratch::Bytes(std::size_t{1} << 20, 0));
    for (int i = 0; i < 1024; ++i) bomb.insert(bomb.end(), zeros.begin(), zeros.end());
    scratch::write_raw(tmp.path() / "bomb.gz", bomb);
    const long before = peak_resident_kib();
    const auto bomb_message =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "bomb.gz"); });
    CHECK(scratch::mentions(bomb_message, {(tmp.path() / "bomb.gz").string(), "more bytes"}));
    CHECK(peak_resident_kib() - before < 64 * 1024);
  }

  TEST_CASE("a gzip header may not declare more than its file can inflate to") {
    scratch::TempFolder tmp;
    // 47 MB declared, 10 bytes given: refused from the header, before any allocation.
    scratch::write_gzip(tmp.path() / "claims.gz",
                        idx_bytes({60000, 28, 28}, scratch::pattern(10, 12)));
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "claims.gz"); });
    CHECK(scratch::mentions(message, {(tmp.path() / "claims.gz").string(), "truncated",
                                      "[60000, 28, 28]", "can inflate"}));
  }

  TEST_CASE("a header whose shape no tensor can hold is refused naming the file") {
    scratch::TempFolder tmp;
    // No data is needed (an extent is 0), but its stride, (2^32 - 1)², overflows int64.
    scratch::write_raw(tmp.path() / "strides", idx_bytes({0, 0xffffffffu, 0xffffffffu}, {}));
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "strides"); });
    CHECK(scratch::mentions(
        message, {(tmp.path() / "strides").string(), "corrupt", "[0, 4294967295, 4294967295]"}));
  }

  TEST_CASE("a gzip stream cut short is reported as truncated") {
    scratch::TempFolder tmp;
    scratch::write_gzip(tmp.path() / "whole.gz", idx_bytes({20000}, scratch::pattern(20000, 9)));
    auto gz = scratch::read_raw(tmp.path() / "whole.gz");
    gz.resize(gz.size() / 2);
    scratch::write_raw(tmp.path() / "cut.gz", gz);
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_idx_u8(tmp.path() / "cut.gz"); });
    CHECK(scratch::mentions(message, {(tmp.path() / "cut.gz").string(), "truncated"}));
  }

  TEST_CASE("image and label counts that differ name both files") {
    scratch::TempFolder tmp;
    write_mnist_folder(tmp.path(), "t10k", 3, scratch::pattern(3 * 784, 10), {1, 2});
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_mnist(tmp.path(), false); });
    CHECK(scratch::mentions(
        message, {(tmp.path() / "t10k-images-idx3-ubyte.gz").string(),
                  (tmp.path() / "t10k-labels-idx1-ubyte").string(), "3 images", "2 labels"}));
  }

  TEST_CASE("a label above 9 names the file and the image") {
    scratch::TempFolder tmp;
    write_mnist_folder(tmp.path(), "t10k", 3, scratch::pattern(3 * 784, 11), {1, 12, 2});
    const auto message =
        scratch::error_message<soda::IoError>([&] { soda::load_mnist(tmp.path(), false); });
    CHECK(scratch::mentions(message,
                            {(tmp.path() / "t10k-labels-idx1-ubyte").string(), "image 1", "12"}));
  }

  TEST_CASE(
      "real Fashion-MNIST: 60000 + 10000 images, balanced labels, pixels as zlib reads them") {
    const auto root = soda::fashion_mnist_default_root();
    if (!std::filesystem::is_directory(root)) {
      FAIL("Fashion-MNIST is not installed at " << root.string()
                                                << ": run `apt-get install dataset-fashion-mnist` "
                                                   "(or scripts/install_deps.sh)");
    }
    for (const bool train : {true, false}) {
      CAPTURE(train);
      const auto set = soda::load_fashion_mnist(train);
      const std::int64_t n = train ? 60000 : 10000;
      REQUIRE(set.images.shape() == soda::Shape{n, 1, 28, 28});
      REQUIRE(set.labels.shape() == soda::Shape{n});
      std::array<std::int64_t, 10> per_class{};
      for (std::int64_t i = 0; i < n; ++i) {
        const auto label = set.labels.data()[i];
        REQUIRE((label >= 0 && label <= 9));
        ++per_class[static_cast<std::size_t>(label)];
      }
      for (const auto count : per_class) CHECK(count == n / 10);

      // Independent read: zlib, the 16-byte header skipped by hand.
      const std::string prefix = train ? "train" : "t10k";
      const auto raw_images = gunzip(root / (prefix + "-images-idx3-ubyte.gz"));
      const auto raw_labels = gunzip(root / (prefix + "-labels-idx1-ubyte.gz"));
      REQUIRE(raw_images.size() == static_cast<std::size_t>(16 + n * 784));
      REQUIRE(raw_labels.size() == static_cast<std::size_t>(8 + n));
      std::uint64_t expected_sum = 0, sum = 0;
      for (std::size_t i = 16; i < raw_images.size(); ++i) expected_sum += raw_images[i];
      for (std::int64_t i = 0; i < n * 784; ++i) sum += set.images.data()[i];
      CHECK(sum == expected_sum);
      for (const std::int64_t image : {std::int64_t{0}, std::int64_t{1234}, n - 1}) {
        for (const std::int64_t pixel : {0, 300, 406, 783}) {
          CHECK(set.images.at({image, 0, pixel / 28, pixel % 28}) ==
                raw_images[static_cast<std::size_t>(16 + image * 784 + pixel)]);
        }
        CHECK(set.labels.at({image}) == raw_labels[static_cast<std::size_t>(8 + image)]);
      }
      // The first image of either split is an ankle boot (label 9).
      CHECK(set.labels.at({0}) == 9);
      CHECK(set.class_names[9] == "Ankle boot");
    }
  }
}
