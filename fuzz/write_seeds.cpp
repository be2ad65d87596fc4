// Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/) from files soda itself writes:
// safetensors checkpoints, a state dict of the state_dict target's MLP, IDX files raw and gzip'd,
// CIFAR-10 records and two small IntegerResNet model files. Run by `scripts/fuzz.sh --write-seeds`.
#include <soda/data/cifar10.hpp>
#include <soda/data/idx.hpp>
#include <soda/io/safetensors.hpp>
#include <soda/io/state_dict.hpp>
#include <soda/models/classifiers.hpp>
#include <soda/quant/integer_resnet_file.hpp>

#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../tests/quant/random_plan.hpp"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

void write_bytes(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw soda::IoError("write_seeds: cannot write " + path.string());
}

void write_gzip(const fs::path& path, const Bytes& bytes) {
  const gzFile out = gzopen(path.c_str(), "wb9");
  if (out == nullptr ||
      gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())) !=
          static_cast<int>(bytes.size()) ||
      gzclose(out) != Z_OK) {
    throw soda::IoError("write_seeds: cannot write " + path.string());
  }
}

// An IDX file of unsigned bytes: magic 0 0 8 rank, big-endian extents, then the values i·7.
Bytes idx_file(const std::vector<std::uint32_t>& shape) {
  Bytes out = {0, 0, 0x08, static_cast<unsigned char>(shape.size())};
  std::uint32_t count = 1;
  for (const auto d : shape) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<unsigned char>(d >> shift));
    count *= d;
  }
  for (std::uint32_t i = 0; i < count; ++i) out.push_back(static_cast<unsigned char>(i * 7));
  return out;
}

void write_safetensors_seeds(const fs::path& folder) {
  soda::TensorFile file;
  file.metadata["format"] = "pt";
  file.tensors.emplace_back("weight", soda::Tensor<float>({2, 3}, {1, -2, 3.5f, 0, -0.0f, 7}));
  file.tensors.emplace_back("scale", soda::Tensor<double>({2}, {0.25, -1e300}));
  file.tensors.emplace_back("codes", soda::Tensor<std::int8_t>({3}, {-128, 0, 127}));
  file.tensors.emplace_back("mask", soda::Tensor<std::uint8_t>({2, 2}, {0, 1, 1, 0}));
  file.tensors.emplace_back("index", soda::Tensor<std::int32_t>({1}, {-5}));
  file.tensors.emplace_back("step", soda::Tensor<std::int64_t>::scalar(12345));
  file.tensors.emplace_back("none", soda::Tensor<float>({0, 4}, {}));
  soda::save_safetensors(folder / "every_dtype.safetensors", file);

  soda::TensorFile single;
  single.tensors.emplace_back("x", soda::Tensor<float>({4}, {1, 2, 3, 4}));
  soda::save_safetensors(folder / "one_tensor.safetensors", single);

  // F16, BF16 and BOOL, which soda reads but does not write: assembled by hand.
  const std::string header = R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},)"
                             R"("m":{"dtype":"BOOL","shape":[2],"data_offsets":[8,10]}})";
  Bytes bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<unsigned char>(header.size() >> (8 * i)));
  bytes.insert(bytes.end(), header.begin(), header.end());
  for (const unsigned char b : {0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f, 0x00, 0xc0, 0x01, 0x00})
    bytes.push_back(b);
  write_bytes(folder / "half_floats.safetensors", bytes);
}

void write_state_dict_seeds(const fs::path& folder) {
  // The fuzz target's model (models::mlp 4 → 3 → 2) with other weights, and in double.
  soda::Generator generator(8);
  soda::save_state_dict(folder / "mlp.safetensors", *soda::models::mlp<float>(4, {3}, 2, generator),
                        {{"epoch", "3"}});
  soda::Generator double_generator(9);
  soda::save_state_dict(folder / "mlp_double.safetensors",
                        *soda::models::mlp<double>(4, {3}, 2, double_generator));
}

void write_idx_seeds(const fs::path& raw_folder, const fs::path& gzip_folder) {
  write_bytes(raw_folder / "images.idx", idx_file({2, 3, 3}));
  write_bytes(raw_folder / "labels.idx", idx_file({5}));
  write_gzip(raw_folder / "images.idx.gz", idx_file({3, 2, 2}));
  // The idx_gzip target compresses its input itself: its seeds are plain IDX files.
  write_bytes(gzip_folder / "images.idx", idx_file({2, 4, 4}));
  write_bytes(gzip_folder / "labels.idx", idx_file({6}));
  write_bytes(gzip_folder / "scalar.idx", idx_file({}));
}

void write_cifar10_seeds(const fs::path& folder) {
  for (const int records : {1, 2}) {
    Bytes bytes;
    for (int r = 0; r < records; ++r) {
      bytes.push_back(static_cast<unsigned char>(r * 7 % 10));
      for (std::int64_t i = 0; i < soda::cifar10_image_bytes; ++i)
        bytes.push_back(static_cast<unsigned char>(i * 13 + r));
    }
    write_bytes(folder / ("records_" + std::to_string(records) + ".bin"), bytes);
  }
}

void write_integer_resnet_seeds(const fs::path& folder) {
  for (const bool residual : {true, false}) {
    integer_resnet_test::RandomPlanOptions options;
    options.residual = residual;
    options.in_channels = 1;
    options.num_classes = 3;
    options.height = options.width = 4;
    options.widths = residual ? std::vector<std::int64_t>{2, 3} : std::vector<std::int64_t>{2};
    options.seed = residual ? 5 : 6;
    const auto network = soda::quant::IntegerResNet::compile(
        integer_resnet_test::random_plan(options), options.height, options.width);
    soda::quant::save_integer_resnet(
        folder / (residual ? "resnet_residual.safetensors" : "resnet_plain.safetensors"), network);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus folder>\n", argv[0]);
    return 2;
  }
  try {
    const fs::path root = argv[1];
    for (const char* target :
         {"safetensors", "state_dict", "idx", "idx_gzip", "cifar10", "integer_resnet_file"}) {
      fs::create_directories(root / target);
    }
    write_safetensors_seeds(root / "safetensors");
    write_state_dict_seeds(root / "state_dict");
    write_idx_seeds(root / "idx", root / "idx_gzip");
    write_cifar10_seeds(root / "cifar10");
    write_integer_resnet_seeds(root / "integer_resnet_file");
  } catch (const soda::Error& e) {
    std::fprintf(stderr, "write_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
