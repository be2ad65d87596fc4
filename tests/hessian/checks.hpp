// Shared helpers for the Hessian tests: flattening parameter vectors to Eigen, a dense symmetric
// operator with a known spectrum, the full Hessian of any operator built column by column from
// H·e_i, and a small double-precision MLP whose Hessian is exact to build.
#pragma once

#include <doctest/doctest.h>
#include <soda/hessian/estimator.hpp>
#include <soda/hessian/hessian_operator.hpp>
#include <soda/hessian/parameter_vector.hpp>
#include <soda/soda.hpp>

#include <Eigen/Dense>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace soda_test {

template <class T>
Eigen::VectorXd flatten(const soda::hessian::ParameterVector<T>& v) {
  Eigen::VectorXd out(soda::hessian::total_size(soda::hessian::shapes_of(v)));
  Eigen::Index at = 0;
  for (const auto& t : v) {
    const auto c = t.template to<T>();
    for (std::int64_t j = 0; j < c.numel(); ++j) out[at++] = static_cast<double>(c.data()[j]);
  }
  return out;
}

template <class T>
soda::hessian::ParameterVector<T> unflatten(const Eigen::VectorXd& x,
                                            const std::vector<soda::Shape>& shapes) {
  auto out = soda::hessian::zeros_like<T>(shapes);
  Eigen::Index at = 0;
  for (auto& t : out) {
    for (std::int64_t j = 0; j < t.numel(); ++j) t.data()[j] = static_cast<T>(x[at++]);
  }
  return out;
}

// H as an Eigen matrix acting on vectors laid out as `shapes`; counts the products it gives.
template <class T = double>
class DenseOperator {
 public:
  using Scalar = T;
  DenseOperator(Eigen::MatrixXd matrix, std::vector<soda::Shape> shapes)
      : matrix_(std::move(matrix)), shapes_(std::move(shapes)) {}

  soda::hessian::ParameterVector<T> apply(const soda::hessian::ParameterVector<T>& v) const {
    ++products_;
    return unflatten<T>(matrix_ * flatten(v), shapes_);
  }
  std::vector<soda::hessian::ParameterVector<T>> apply_many(
      const std::vector<soda::hessian::ParameterVector<T>>& vs) const {
    std::vector<soda::hessian::ParameterVector<T>> out;
    for (const auto& v : vs) out.push_back(apply(v));
    return out;
  }
  const std::vector<soda::Shape>& shapes() const { return shapes_; }
  const Eigen::MatrixXd& matrix() const { return matrix_; }
  std::int64_t products() const { return products_; }

 private:
  Eigen::MatrixXd matrix_;
  std::vector<soda::Shape> shapes_;
  mutable std::int64_t products_ = 0;
};

// A symmetric n×n matrix Q diag(eigenvalues) Qᵀ with a seeded random orthogonal Q.
inline Eigen::MatrixXd matrix_with_spectrum(const std::vector<double>& eigenvalues,
                                            std::uint64_t seed) {
  const auto n = static_cast<Eigen::Index>(eigenvalues.size());
  soda::Generator gen(seed);
  const auto g = soda::randn<double>({n, n}, gen);
  Eigen::MatrixXd a(n, n);
  for (Eigen::Index i = 0; i < n; ++i)
    for (Eigen::Index j = 0; j < n; ++j) a(i, j) = g.data()[i * n + j];
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
  const Eigen::MatrixXd q = qr.householderQ();
  Eigen::VectorXd d(n);
  for (Eigen::Index i = 0; i < n; ++i) d[i] = eigenvalues[static_cast<std::size_t>(i)];
  return q * d.asDiagonal() * q.transpose();
}

// The full matrix of any operator, column by column from H·e_i, symmetrised.
template <class Op>
Eigen::MatrixXd dense_matrix(Op& op) {
  using T = soda::hessian::scalar_of<Op>;
  const auto shapes = std::vector<soda::Shape>(op.shapes().begin(), op.shapes().end());
  const auto n = static_cast<Eigen::Index>(soda::hessian::total_size(shapes));
  Eigen::MatrixXd h(n, n);
  for (Eigen::Index i = 0; i < n; ++i) {
    Eigen::VectorXd e = Eigen::VectorXd::Zero(n);
    e[i] = 1;
    h.col(i) = flatten(op.apply(unflatten<T>(e, shapes)));
  }
  return (h + h.transpose()) / 2;
}

// Eigenvalues in descending order.
inline Eigen::VectorXd descending_eigenvalues(const Eigen::MatrixXd& h) {
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(h);
  return solver.eigenvalues().reverse();
}

// A small tanh MLP (4 → 6 → 3, cross-entropy on 16 samples) in double: 51 parameters, a Hessian
// with both signs of eigenvalue. params and data are fixed by the seed.
struct SmallMlp {
  std::vector<soda::Tensor<double>> params;
  soda::Tensor<double> inputs;
  soda::Tensor<std::int64_t> labels;

  explicit SmallMlp(std::uint64_t seed = 7) {
    soda::Generator gen(seed);
    params = {soda::randn<double>({4, 6}, gen, 0.0, 0.8), soda::randn<double>({6}, gen, 0.0, 0.3),
              soda::randn<double>({6, 3}, gen, 0.0, 0.8), soda::randn<double>({3}, gen, 0.0, 0.3)};
    inputs = soda::randn<double>({16, 4}, gen);
    labels = soda::randint<std::int64_t>({16}, gen, 0, 3);
  }

  soda::Tensor<double> loss(const std::vector<soda::Tensor<double>>& p) const {
    const auto h = soda::tanh(soda::matmul(inputs, p[0]) + p[1]);
    return soda::nn::cross_entropy(soda::matmul(h, p[2]) + p[3], labels);
  }

  soda::LinearizedHessian<double> hessian() const {
    return soda::hessian_at([this](const std::vector<soda::Tensor<double>>& p) { return loss(p); },
                            params);
  }
};

// Classification batches of the given sizes (inputs N(0, 1) of `features` columns, labels in
// [0, classes)), drawn batch by batch, and the same samples as one batch.
struct RandomBatches {
  std::vector<soda::hessian::LabeledBatch<double>> batches;
  soda::Tensor<double> all_inputs;
  soda::Tensor<std::int64_t> all_labels;
};

inline RandomBatches random_batches(soda::Generator& gen, const std::vector<std::int64_t>& sizes,
                                    std::int64_t features, std::int64_t classes) {
  RandomBatches out;
  std::int64_t total = 0;
  for (const auto n : sizes) total += n;
  std::vector<soda::Tensor<double>> inputs;
  out.all_labels = soda::zeros<std::int64_t>({total});
  std::int64_t start = 0;
  for (const auto n : sizes) {
    out.batches.push_back({soda::randn<double>({n, features}, gen),
                           soda::randint<std::int64_t>({n}, gen, 0, classes)});
    inputs.push_back(out.batches.back().inputs);
    std::copy_n(out.batches.back().labels.data(), n, out.all_labels.data() + start);
    start += n;
  }
  out.all_inputs = soda::concat(inputs, 0);
  return out;
}

// A ResNet-8 in double on one-channel images with 3 classes: the smallest model with every kind
// of layer (convolutions, BatchNorm, residual shortcuts, a classifier) for the Hessian tests.
inline std::shared_ptr<soda::models::ResNetCifar<double>> tiny_resnet(soda::Generator& gen,
                                                                      std::int64_t base_channels) {
  soda::models::ResNetCifarOptions options;
  options.depth = 8;
  options.in_channels = 1;
  options.num_classes = 3;
  options.base_channels = base_channels;
  return std::make_shared<soda::models::ResNetCifar<double>>(options, gen);
}

}  // namespace soda_test
