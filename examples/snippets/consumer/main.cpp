// A project of a user's own, built against an installed soda (find_package(soda) in
// CMakeLists.txt): a product and a gradient, checked against their values worked by hand.
#include <iostream>
#include <soda/soda.hpp>

int main() {
  const auto a = soda::reshape(soda::arange<double>(6), {2, 3});   // [[0, 1, 2], [3, 4, 5]]
  const auto product = soda::matmul(a, soda::transpose(a, 0, 1));  // [[5, 14], [14, 50]]
  const auto sum_of_squares = [](const std::vector<soda::Tensor<double>>& p) {
    return soda::sum(soda::square(p[0]));
  };
  const auto [value, grads] = soda::value_and_grad(sum_of_squares, std::vector{a});  // 55, 2a
  std::cout << product << "\n" << value.item() << "\n" << grads[0] << "\n";
  const bool right = soda::sum(product).item() == 83 && value.item() == 55 &&
                     soda::max_abs_difference(grads[0], 2.0 * a) == 0;
  return right ? 0 : 1;
}
