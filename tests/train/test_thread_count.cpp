// Results independent of the thread count, as the README promises: the same seed gives
// bit-identical losses, gradients, H·v and checkpoints at 1, 2 and 3 threads (3 catches odd
// splits) for the MLP, the small CNN and ResNet-20, in the default (OpenBLAS) build.
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using Model = std::shared_ptr<soda::nn::Module<float>>;
using ModelFactory = std::function<Model(soda::Generator&)>;

// Everything a run produces, to be compared bit for bit.
struct RunResult {
  std::vector<soda::Tensor<float>> tensors;  // loss, gradients, H·v, the trained state
  std::string checkpoint;                    // the checkpoint file's bytes, timings aside
};

struct ScratchFile {
  fs::path path;
  ScratchFile() {
    std::random_device entropy;
    path = fs::temp_directory_path() /
           ("soda-thread-count-" + std::to_string(entropy()) + ".safetensors");
  }
  ~ScratchFile() {
    std::error_code ignored;
    fs::remove(path, ignored);
  }
  // The file's bytes once its wall-clock figures (the only content a rerun cannot reproduce) are
  // taken out of the log lines the checkpoint keeps.
  std::string reproducible_bytes() const {
    auto file = soda::load_safetensors(path);
    auto history = nlohmann::ordered_json::parse(file.metadata.at("train.history"));
    for (auto& line : history) {
      line.erase("seconds");
      line.erase("images_per_second");
    }
    file.metadata["train.history"] = history.dump();
    soda::save_safetensors(path, file);
    return bytes();
  }
  std::string bytes() const {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
};

// Loss, gradient and H·v on one batch, then a few SGD steps through the Trainer, and its
// checkpoint.
RunResult run(const ModelFactory& make_model, const soda::ImageDataset& data, int threads) {
  const int saved_threads = soda::max_threads();
  soda::set_num_threads(threads);
  soda::Generator gen(11);
  const Model model = make_model(gen);
  const auto params = model->parameters();
  soda::DataLoaderOptions loader_options;
  loader_options.batch_size = 32;
  loader_options.seed = 5;
  soda::DataLoader loader(data, loader_options);
  loader.start_epoch(0);
  const auto batch = *loader.next();
  std::vector<soda::Tensor<float>> v;
  for (const auto& p : params) v.push_back(soda::randn<float>(p.shape(), gen));
  RunResult result;
  // The whole batch, and batch 1 (whose convolutions are single large GEMMs, not one per image).
  for (const std::int64_t size : {batch.labels.numel(), std::int64_t{1}}) {
    const auto images = soda::slice(batch.images, 0, 0, size);
    const auto labels = soda::slice(batch.labels, 0, 0, size);
    auto loss = [&] { return soda::nn::cross_entropy((*model)(images), labels); };
    auto [value, grads, hv] = soda::value_grad_hvp(loss, params, v);
    result.tensors.push_back(value);
    result.tensors.insert(result.tensors.end(), grads.begin(), grads.end());
    result.tensors.insert(result.tensors.end(), hv.begin(), hv.end());
  }

  soda::train::TrainerOptions options;
  options.max_steps = 3;
  options.progress = nullptr;
  const soda::optim::LrSchedule schedule(0.05);
  soda::train::Trainer<float> trainer(
      model, soda::optim::SGD<float>(params, {.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4}),
      schedule, soda::DataLoader(data, loader_options), std::nullopt, options);
  trainer.fit();
  for (const auto& [name, tensor] : model->state_dict())
    result.tensors.push_back(tensor.to<float>());
  const ScratchFile checkpoint;
  trainer.save_checkpoint(checkpoint.path);
  result.checkpoint = checkpoint.reproducible_bytes();
  soda::set_num_threads(saved_threads);
  return result;
}

void check_thread_independence(const ModelFactory& make_model, const soda::ImageDataset& data) {
  const auto reference = run(make_model, data, 1);
  REQUIRE(!reference.checkpoint.empty());
  for (const int threads : {2, 3}) {
    CAPTURE(threads);
    const auto other = run(make_model, data, threads);
    REQUIRE(other.tensors.size() == reference.tensors.size());
    for (std::size_t i = 0; i < reference.tensors.size(); ++i) {
      CAPTURE(i);
      CHECK(soda::max_abs_difference(reference.tensors[i], other.tensors[i]) == 0);
    }
    CHECK(other.checkpoint == reference.checkpoint);
  }
}

}  // namespace

TEST_SUITE("train/thread_count") {
  TEST_CASE(
      "the MLP's loss, gradient, H·v and checkpoint are bit-identical at 1, 2 and 3 threads") {
    // train_cifar10's MLP on Fashion-MNIST-sized images: every product is cut into GEMM tiles.
    const auto data = soda::make_synthetic_images(96, 10, 1, 28, 28, 1);
    check_thread_independence(
        [](soda::Generator& gen) {
          return soda::models::mlp<float>(28 * 28, {512, 256}, 10, gen);
        },
        data);
  }

  TEST_CASE("the small CNN is bit-identical at 1, 2 and 3 threads") {
    const auto data = soda::make_synthetic_images(96, 10, 1, 28, 28, 2);
    check_thread_independence(
        [](soda::Generator& gen) { return soda::models::small_cnn<float>(1, 28, 28, 10, gen); },
        data);
  }

  TEST_CASE("ResNet-20 is bit-identical at 1, 2 and 3 threads") {
    const auto data = soda::make_synthetic_images(96, 10, 3, 16, 16, 3);
    check_thread_independence(
        [](soda::Generator& gen) { return soda::models::resnet_cifar<float>(20, gen); }, data);
  }
}
