// Helpers for the Trainer tests: a self-removing temp folder, a small CNN trainer on a synthetic
// set, model snapshots, log files read back, and PoisonedCnn, a model whose chosen training steps
// have a NaN loss or a NaN gradient (with a finite loss) while it records the state before each.
#pragma once

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <soda/soda.hpp>

#include <sys/resource.h>

#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace trainer_fixture {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device entropy;
    path = fs::temp_directory_path() /
           ("soda-train-test-" + std::to_string(entropy()) + "-" + std::to_string(entropy()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// A model's and its optimizer's state at one moment, compared bit for bit.
struct TrainingState {
  std::vector<soda::Tensor<float>> model;
  std::vector<soda::Tensor<float>> optimizer;
  std::map<std::string, std::string> optimizer_metadata;
};

inline std::vector<soda::Tensor<float>> snapshot(const soda::nn::Module<float>& model) {
  std::vector<soda::Tensor<float>> out;
  for (const auto& [name, t] : model.state_dict()) out.push_back(t.to<float>());
  return out;
}

inline bool identical(const std::vector<soda::Tensor<float>>& a,
                      const std::vector<soda::Tensor<float>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].shape() != b[i].shape()) return false;
    for (std::int64_t k = 0; k < a[i].numel(); ++k) {
      // Bit-identical, NaN included: the values' bytes are compared.
      const float x = a[i].data()[k], y = b[i].data()[k];
      if (std::memcmp(&x, &y, sizeof x) != 0) return false;
    }
  }
  return true;
}

inline bool identical(const TrainingState& a, const TrainingState& b) {
  return identical(a.model, b.model) && identical(a.optimizer, b.optimizer) &&
         a.optimizer_metadata == b.optimizer_metadata;
}

// The small CNN with a scalar parameter "probe" that changes nothing at ordinary steps (+0·probe)
// and, at the chosen training-mode calls (1-based), makes the loss NaN (logits × NaN) or only a
// gradient NaN: + 0·sqrt(probe² − probe²) is exactly 0, but its derivative is 0·∞ = NaN. Each
// training-mode call first records the model's and optimizer's state, which is the state before
// that step.
class PoisonedCnn : public soda::nn::Module<float> {
 public:
  std::set<std::int64_t> nan_loss_at, nan_gradient_at;
  const soda::optim::Optimizer<float>* optimizer = nullptr;  // recorded when set
  std::vector<TrainingState> before_call;                    // [k - 1]: before call k

  explicit PoisonedCnn(std::uint64_t seed) {
    soda::Generator gen(seed);
    net_ = register_module("net", soda::models::small_cnn<float>(1, 8, 8, 4, gen));
    probe_ = register_parameter("probe", soda::full<float>({1}, 1.0f));
  }

  soda::Tensor<float> forward(const soda::Tensor<float>& x) override {
    auto logits = (*net_)(x);
    if (!is_training()) return logits;
    record();
    const auto call = static_cast<std::int64_t>(before_call.size());
    if (nan_loss_at.count(call)) {
      return logits * soda::Tensor<float>::scalar(std::numeric_limits<float>::quiet_NaN());
    }
    const auto zero = soda::Tensor<float>::scalar(0.0f);
    if (nan_gradient_at.count(call)) {
      return logits + zero * soda::sqrt(probe_ * probe_ - probe_ * probe_);
    }
    return logits + zero * probe_;
  }

  std::string type_name() const override { return "PoisonedCnn"; }

 private:
  void record() {
    TrainingState state{snapshot(*this), {}, {}};
    if (optimizer != nullptr) {
      for (const auto& [name, t] : optimizer->state_dict())
        state.optimizer.push_back(t.to<float>());
      state.optimizer_metadata = optimizer->state_metadata();
    }
    before_call.push_back(std::move(state));
  }

  std::shared_ptr<soda::nn::Sequential<float>> net_;
  soda::Tensor<float> probe_;
};

// A synthetic set of 4 classes of 1×8×8 images, 8 batches of 32 per epoch, with
// augmentation on, so data order, augmentation draws and the optimizer's state (momentum,
// moments, AdaHessian's probes) all matter for bit-identity.
struct Setup {
  soda::ImageDataset train = soda::make_synthetic_images(240, 4, 1, 8, 8, 3);
  soda::ImageDataset test = soda::make_synthetic_images(80, 4, 1, 8, 8, 4);

  static std::unique_ptr<soda::optim::Optimizer<float>> make_optimizer(
      const std::string& name, const std::vector<soda::Tensor<float>>& params, std::uint64_t seed) {
    using namespace soda::optim;
    if (name == "adam") return std::make_unique<Adam<float>>(params, AdamOptions{.lr = 0.01});
    if (name == "adahessian") {
      return std::make_unique<AdaHessian<float>>(
          params,
          AdaHessianOptions{.lr = 0.005, .weight_decay = 1e-3, .update_each = 2, .seed = seed});
    }
    return std::make_unique<SGD<float>>(
        params, SgdOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
  }

  soda::train::Trainer<float> make_with(std::shared_ptr<soda::nn::Module<float>> model,
                                        std::uint64_t seed, soda::train::TrainerOptions options,
                                        const std::string& optimizer = "sgd") const {
    soda::DataLoaderOptions loader;
    loader.batch_size = 32;
    loader.seed = seed;
    loader.random_crop = loader.horizontal_flip = true;
    loader.mean = {0.5f};
    loader.stddev = {0.25f};
    auto test_loader = loader;
    test_loader.shuffle = test_loader.random_crop = test_loader.horizontal_flip = false;
    options.progress = nullptr;
    auto chosen = make_optimizer(optimizer, model->parameters(), seed);
    const soda::optim::LrSchedule schedule(chosen->learning_rate(),
                                           soda::optim::MultiStepLR{{2}, 0.1});
    return soda::train::Trainer<float>(model, std::move(chosen), schedule,
                                       soda::DataLoader(train, loader),
                                       soda::DataLoader(test, test_loader), options);
  }

  soda::train::Trainer<float> make(std::uint64_t seed, soda::train::TrainerOptions options,
                                   const std::string& optimizer = "sgd") const {
    soda::Generator gen(seed);
    return make_with(soda::models::small_cnn<float>(1, 8, 8, 4, gen), seed, std::move(options),
                     optimizer);
  }
};

// Each line of a JSON-lines file, parsed.
inline std::vector<nlohmann::json> read_json_lines(const fs::path& path) {
  std::ifstream file(path);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(file, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

inline std::vector<std::int64_t> epochs_of(const std::vector<nlohmann::json>& lines) {
  std::vector<std::int64_t> epochs;
  for (const auto& line : lines) epochs.push_back(line.at("epoch").get<std::int64_t>());
  return epochs;
}

// The files in `folder` whose name starts with `prefix`.
inline std::vector<fs::path> files_starting_with(const fs::path& folder,
                                                 const std::string& prefix) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) found.push_back(entry.path());
  }
  return found;
}

// Lowers this process's file-size limit (RLIMIT_FSIZE) while it lives: a write past it fails with
// EFBIG, as on a full disk, for any user (root included, whom permissions do not stop). SIGXFSZ,
// which would end the process, is ignored meanwhile.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved_) == 0);
    previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lowered = saved_;
    lowered.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lowered) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  void (*previous_handler_)(int) = nullptr;
};

}  // namespace trainer_fixture
