#include <iostream>
#include <soda/soda.hpp>

int main() {
  soda::Generator gen(0);
  auto model = soda::models::resnet_cifar<float>(20, gen);      // PyHessian's ResNet-20
  const auto images = soda::randn<float>({8, 3, 32, 32}, gen);  // a batch shaped like CIFAR-10
  const auto labels = soda::randint({8}, gen, 0, 10);           // its classes
  auto loss = [&] { return soda::nn::cross_entropy((*model)(images), labels); };

  std::vector<soda::Tensor<float>> v;  // a direction in weight space
  for (const auto& p : model->parameters()) v.push_back(soda::randn<float>(p.shape(), gen));
  auto [value, grads, hv] = soda::value_grad_hvp(loss, model->parameters(), v);  // H·v in one pass
  std::cout << "loss " << value.item() << ", vᵀHv " << soda::hessian::dot(v, hv) << "\n";

  soda::save_state_dict("resnet20.safetensors", *model);       // PyTorch's state-dict names
  auto reloaded = soda::models::resnet_cifar<float>(20, gen);  // fresh weights...
  soda::load_state_dict(*reloaded, "resnet20.safetensors");    // ...replaced by the saved ones
  model->eval();                                               // BatchNorm on running statistics
  reloaded->eval();
  const double difference = soda::max_abs_difference((*model)(images), (*reloaded)(images));
  std::cout << "max |logits - reloaded logits| = " << difference << "\n";
  return difference == 0 ? 0 : 1;
}
