// What the examples share: the data choice (CIFAR-10 binaries, else Fashion-MNIST, else a
// synthetic set) with its normalisation, and building a model by name.
#pragma once

#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>
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

DataChoice choose_data(const std::string& data_dir, std::int64_t synthetic_count,
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

std::shared_ptr<soda::nn::Module<float>> make_model(const std::string& name,
                                                    const soda::ImageDataset& data,
                                                    soda::Generator& gen) {
  const auto shape = data.images.shape();  // [N, C, H, W]
  const std::int64_t channels = shape[1], height = shape[2], width = shape[3];
  const std::int64_t classes = 10;
  if (name.rfind("resnet", 0) == 0) {
    soda::models::ResNetCifarOptions options;
    std::string depth = name.substr(6);
    if (depth.size() > 5 && depth.substr(depth.size() - 5) == "-nobn") {
      options.batch_norm = false;
      depth.resize(depth.size() - 5);
    }
    options.depth = std::stoll(depth);
    options.in_channels = channels;
    options.num_classes = classes;
    return std::make_shared<soda::models::ResNetCifar<float>>(options, gen);
  }
  if (name == "mlp")
    return soda::models::mlp<float>(channels * height * width, {512, 256}, classes, gen);
  if (name == "cnn") return soda::models::small_cnn<float>(channels, height, width, classes, gen);
  throw soda::ValueError("unknown --model '" + name + "'");
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
