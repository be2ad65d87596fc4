#include "checks.hpp"

#include <soda/hessian/eigenvalues.hpp>
#include <soda/hessian/hessian_operator.hpp>
#include <soda/hessian/trace.hpp>

namespace {

using soda::hessian::HessianOperator;
using soda::hessian::HessianOperatorOptions;
using soda::hessian::LabeledBatch;
using soda::hessian::ParameterVector;

struct OperatorProblem {
  std::shared_ptr<soda::nn::Sequential<double>> model;
  std::vector<LabeledBatch<double>> batches;  // 3 batches of 5, 4 and 7 samples
  soda::Tensor<double> all_inputs;
  soda::Tensor<std::int64_t> all_labels;

  OperatorProblem() {
    soda::Generator gen(11);
    model = soda::models::mlp<double>(3, {5}, 4, gen);
    auto data = soda_test::random_batches(gen, {5, 4, 7}, 3, 4);
    batches = std::move(data.batches);
    all_inputs = data.all_inputs;
    all_labels = data.all_labels;
  }

  // The Hessian of the mean loss over all 16 samples at once.
  soda::LinearizedHessian<double> whole(const std::vector<soda::Tensor<double>>& params) const {
    return soda::hessian_at(
        [&] { return soda::nn::cross_entropy((*model)(all_inputs), all_labels); }, params);
  }
};

}  // namespace

TEST_CASE("HessianOperator sums batches weighted by their size, kept or recomputed") {
  const OperatorProblem problem;
  const HessianOperator<double> kept(problem.model, problem.batches);
  HessianOperatorOptions no_memory;
  no_memory.memory_budget_bytes = 0;
  const HessianOperator<double> recomputed(problem.model, problem.batches, no_memory);
  CHECK(kept.kept_batches() == 3);
  CHECK(kept.kept_bytes() > 0);
  CHECK(recomputed.kept_batches() == 0);
  CHECK(kept.samples() == 16);

  const auto reference = problem.whole(problem.model->parameters());
  soda::Generator gen(5);
  const auto v = soda::hessian::gaussian_vector<double>(kept.shapes(), gen);
  const auto expected = soda_test::flatten(reference.apply(v));
  CHECK((soda_test::flatten(kept.apply(v)) - expected).norm() < 1e-12 * expected.norm());
  CHECK(soda_test::flatten(recomputed.apply(v)) == soda_test::flatten(kept.apply(v)));
  CHECK(kept.loss() == doctest::Approx(reference.value().item()).epsilon(1e-13));
  CHECK((soda_test::flatten(kept.gradient()) - soda_test::flatten(reference.gradient())).norm() <
        1e-13);
  CHECK(kept.products() == 2);

  // apply_many gives each vector's product.
  const auto w = soda::hessian::rademacher_vector<double>(kept.shapes(), gen);
  const auto both = kept.apply_many({v, w});
  CHECK((soda_test::flatten(both[1]) - soda_test::flatten(reference.apply(w))).norm() < 1e-12);
}

TEST_CASE("HessianOperator on a block of parameters equals that block of the full Hessian") {
  const OperatorProblem problem;
  const HessianOperator<double> full(problem.model, problem.batches);
  CHECK(full.parameter_names() ==
        std::vector<std::string>{"1.weight", "1.bias", "3.weight", "3.bias"});
  const auto dense = soda_test::dense_matrix(full);

  HessianOperatorOptions block_options;
  block_options.parameters = {"3.weight", "3.bias"};
  const HessianOperator<double> block(problem.model, problem.batches, block_options);
  const soda::hessian::BlockOperator<HessianOperator<double>> view(full, {2, 3});
  const Eigen::Index start = 3 * 5 + 5, size = 5 * 4 + 4;
  const Eigen::MatrixXd expected = dense.block(start, start, size, size);
  CHECK((soda_test::dense_matrix(block) - expected).norm() < 1e-12 * expected.norm());
  CHECK((soda_test::dense_matrix(view) - expected).norm() < 1e-12 * expected.norm());
  CHECK(block.parameter_count() == size);
  CHECK_THROWS_AS(view.apply(soda::hessian::zeros_like<double>(full.shapes())), soda::ShapeError);
}

TEST_CASE("HessianOperator in train mode uses batch statistics and leaves BatchNorm as it was") {
  soda::Generator gen(2);
  auto model = soda_test::tiny_resnet(gen, 2);
  const std::vector<LabeledBatch<double>> batches{
      {soda::randn<double>({4, 1, 6, 6}, gen), soda::randint<std::int64_t>({4}, gen, 0, 3)}};
  model->eval();
  const auto buffers_before = model->named_buffers();
  std::vector<soda::Tensor<double>> saved;
  for (const auto& [name, b] : buffers_before) saved.push_back(b.template to<double>());

  HessianOperatorOptions train;
  train.train_mode = true;
  const HessianOperator<double> in_train(model, batches, train);
  const HessianOperator<double> in_eval(model, batches);
  CHECK_FALSE(model->is_training());
  for (std::size_t i = 0; i < saved.size(); ++i) {
    CHECK(soda_test::flatten(ParameterVector<double>{buffers_before[i].second}) ==
          soda_test::flatten(ParameterVector<double>{saved[i]}));
  }

  const auto v = soda::hessian::gaussian_vector<double>(in_train.shapes(), gen);
  const auto params = model->parameters();
  const auto loss = [&] {
    return soda::nn::cross_entropy((*model)(batches[0].inputs), batches[0].labels);
  };
  // Both products first: a plain train-mode pass below moves the running statistics, which
  // the eval-mode linearization reads (it shares storage with the model, as hessian_at does).
  const auto from_train = soda_test::flatten(in_train.apply(v));
  const auto from_eval = soda_test::flatten(in_eval.apply(v));
  const auto expected_eval = soda_test::flatten(soda::hvp(loss, params, v));
  model->train();
  const auto expected_train = soda_test::flatten(soda::hvp(loss, params, v));
  model->eval();
  CHECK((from_train - expected_train).norm() < 1e-12 * expected_train.norm());
  CHECK((from_eval - expected_eval).norm() < 1e-12 * expected_eval.norm());
  CHECK((expected_train - expected_eval).norm() > 1e-3 * expected_eval.norm());
}

TEST_CASE("HessianOperator rejects unknown parameters and empty data with clear errors") {
  const OperatorProblem problem;
  HessianOperatorOptions options;
  options.parameters = {"3.wieght"};
  CHECK_THROWS_WITH_AS(HessianOperator<double>(problem.model, problem.batches, options),
                       doctest::Contains("no parameter named '3.wieght'"), soda::ValueError);
  CHECK_THROWS_AS(HessianOperator<double>(problem.model, {}), soda::ValueError);
  CHECK_THROWS_AS(HessianOperator<double>(nullptr, problem.batches), soda::ValueError);
}

TEST_CASE("Hessian estimates are the same numbers at any thread count") {
  soda::Generator gen(4);
  auto model = soda_test::tiny_resnet(gen, 4);
  const std::vector<LabeledBatch<double>> batches{
      {soda::randn<double>({9, 1, 8, 8}, gen), soda::randint<std::int64_t>({9}, gen, 0, 3)}};
  const auto estimates_with = [&](int threads) {
    const int before = soda::max_threads();
    soda::set_num_threads(threads);
    const HessianOperator<double> op(model, batches);
    const auto top = soda::hessian::top_eigenvalues(op, 1, {.max_iterations = 4, .tolerance = 0});
    const auto trace = soda::hessian::hutchinson_trace(op, {.max_samples = 3, .tolerance = 0});
    soda::set_num_threads(before);
    return std::vector<double>{top.eigenvalues[0], trace.trace, op.loss()};
  };
  const auto one = estimates_with(1);
  const auto two = estimates_with(2);
  for (std::size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);
}
