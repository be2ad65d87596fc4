// What the examples share: the data choice (CIFAR-10 binaries, else Fashion-MNIST, else a
// synthetic set) with its normalisation, and building a model by name.
#pragma once

#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <soda/soda.hpp>
#include <string>
#include <vector>

namespace examples {

struct DataChoice {
  soda::ImageDataset train, test;
  std::string name;
  std::vector<float> mean, stddev;
  bool augment = false;
};

inline DataChoice choose_data(const std::string& data_dir, std::int64_t synthetic_count,
                              std::uint64_t seed) {
  if (!data_dir.empty()) {
    return {soda::load_cifar10(data_dir, true), soda::load_cifar10(data_dir, false), "CIFAR-10",
            {0.4914f, 0.4822f, 0.4465f},        {0.2470f, 0.2435f, 0.2616f},         true};
  }
  if (std::filesystem::exists(soda::fashion_mnist_default_root())) {
    return {soda::load_fashion_mnist(true),
            soda::load_fashion_mnist(false),
            "Fashion-MNIST",
            {0.2860f},
            {0.3530f},
            false};
  }
  std::cerr << "notice: no --data and no Fashion-MNIST under " << soda::fashion_mnist_default_root()
            << " (apt-get install dataset-fashion-mnist); training on a synthetic image set\n";
  return {soda::make_synthetic_images(synthetic_count, 10, 3, 32, 32, seed),
          soda::make_synthetic_images(synthetic_count / 5, 10, 3, 32, 32, seed + 1),
          "synthetic",
          {0.5f, 0.5f, 0.5f},
          {0.25f, 0.25f, 0.25f},
          false};
}

// Trains on the first `count` training images only (count <= 0 or beyond the set: all of them).
inline void keep_first_training_images(DataChoice& data, std::int64_t count) {
  if (count <= 0 || count >= data.train.size()) return;
  std::vector<std::int64_t> first(static_cast<std::size_t>(count));
  std::iota(first.begin(), first.end(), std::int64_t{0});
  data.train = soda::subset(data.train, first);
}

inline const std::string resnet_names_help =
    "resnet20, resnet32, resnet44, resnet56, resnet110 (any depth 6n + 2 up to 1202), each "
    "with the suffix -nobn for no BatchNorm";
inline const std::string model_names_help = resnet_names_help + "; mlp; cnn";

struct ResNetName {
  std::int64_t depth = 0;
  bool batch_norm = true;
};

// "resnet<depth>[-nobn]" with depth 6n + 2 (n >= 1) up to He et al.'s 1202, or nothing.
inline std::optional<ResNetName> parse_resnet_name(const std::string& name) {
  const std::string prefix = "resnet", suffix = "-nobn";
  if (name.rfind(prefix, 0) != 0) return std::nullopt;
  std::string depth = name.substr(prefix.size());
  ResNetName parsed;
  if (depth.size() > suffix.size() && depth.substr(depth.size() - suffix.size()) == suffix) {
    parsed.batch_norm = false;
    depth.resize(depth.size() - suffix.size());
  }
  if (depth.empty() || depth.size() > 4 ||
      depth.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  parsed.depth = std::stoll(depth);
  if (parsed.depth < 8 || parsed.depth > 1202 || (parsed.depth - 2) % 6 != 0) return std::nullopt;
  return parsed;
}

inline bool is_resnet_name(const std::string& name) {
  return parse_resnet_name(name).has_value();
}
inline bool is_model_name(const std::string& name) {
  return is_resnet_name(name) || name == "mlp" || name == "cnn";
}

inline std::shared_ptr<soda::nn::Module<float>> make_model(const std::string& name,
                                                           const soda::ImageDataset& data,
                                                           soda::Generator& gen) {
  const auto shape = data.images.shape();  // [N, C, H, W]
  const std::int64_t channels = shape[1], height = shape[2], width = shape[3];
  const std::int64_t classes = 10;
  if (const auto resnet = parse_resnet_name(name)) {
    soda::models::ResNetCifarOptions options;
    options.depth = resnet->depth;
    options.batch_norm = resnet->batch_norm;
    options.in_channels = channels;
    options.num_classes = classes;
    return std::make_shared<soda::models::ResNetCifar<float>>(options, gen);
  }
  if (name == "mlp")
    return soda::models::mlp<float>(channels * height * width, {512, 256}, classes, gen);
  if (name == "cnn") return soda::models::small_cnn<float>(channels, height, width, classes, gen);
  throw soda::ValueError("unknown --model '" + name + "'; valid: " + model_names_help);
}

// Loader options for evaluation or analysis: dataset order, no augmentation.
inline soda::DataLoaderOptions plain_loader_options(const DataChoice& data, std::int64_t batch,
                                                    std::uint64_t seed) {
  soda::DataLoaderOptions options;
  options.batch_size = batch;
  options.seed = seed;
  options.mean = data.mean;
  options.stddev = data.stddev;
  options.shuffle = false;
  return options;
}

}  // namespace examples
