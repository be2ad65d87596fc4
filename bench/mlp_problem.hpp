// The benchmark model shared by the HVP benches: a tanh MLP 784-1024-1024-10 with softmax
// cross-entropy on a batch of 256, in float (the reference problem; bench/compare runs
// the same model in PyTorch).
#pragma once

#include <cmath>
#include <soda/soda.hpp>

namespace soda::bench {

struct MlpProblem {
  std::vector<Tensor<float>> params;  // W1, b1, W2, b2, W3, b3
  Tensor<float> inputs;
  Tensor<std::int64_t> labels;  // [batch, 1]

  Tensor<float> loss(const std::vector<Tensor<float>>& p) const {
    const auto h1 = tanh(matmul(inputs, p[0]) + p[1]);
    const auto h2 = tanh(matmul(h1, p[2]) + p[3]);
    const auto logits = matmul(h2, p[4]) + p[5];
    return -mean(gather(log_softmax(logits, -1), 1, labels));
  }

  std::vector<Tensor<float>> random_direction(Generator& gen) const {
    std::vector<Tensor<float>> v;
    for (const auto& p : params) v.push_back(randn<float>(p.shape(), gen));
    return v;
  }
};

inline MlpProblem make_mlp_problem(std::int64_t batch = 256,
                                   std::vector<std::int64_t> widths = {784, 1024, 1024, 10},
                                   std::uint64_t seed = 0) {
  Generator gen(seed);
  MlpProblem problem;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(widths[i]));
    problem.params.push_back(rand<float>({widths[i], widths[i + 1]}, gen, -bound, bound));
    problem.params.push_back(rand<float>({widths[i + 1]}, gen, -bound, bound));
  }
  problem.inputs = randn<float>({batch, widths.front()}, gen);
  problem.labels = randint<std::int64_t>({batch, 1}, gen, 0, widths.back());
  return problem;
}

}  // namespace soda::bench
