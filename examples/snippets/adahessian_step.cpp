#include <iostream>
#include <soda/soda.hpp>

int main() {
  soda::Generator gen(0);
  auto model = soda::models::small_cnn<float>(1, 16, 16, 10, gen);  // 1×16×16 images, 10 classes
  const auto data = soda::make_synthetic_images(256, 10, 1, 16, 16, /*seed=*/1);  // no download
  soda::DataLoader loader(data, {.batch_size = 32});

  soda::optim::AdaHessian<float> opt(model->parameters(),
                                     {.lr = 0.15, .weight_decay = 5e-4 / 0.15});
  for (std::int64_t epoch = 0; epoch < 4; ++epoch) {
    loader.start_epoch(epoch);
    double total = 0;
    while (const auto batch = loader.next()) {
      auto loss = [&] { return soda::nn::cross_entropy((*model)(batch->images), batch->labels); };
      auto value = opt.step(loss);  // loss, gradient and H·z in one forward-over-reverse pass
      total += value.item();
    }
    std::cout << "epoch " << epoch << ": mean loss " << total / loader.batches_per_epoch() << "\n";
  }
}
