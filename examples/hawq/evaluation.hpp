// The hawq example's measurements: accuracy and throughput of the float model, the fake-quantized
// simulation and the integer-only network on the same test batches, and how closely the integer
// network reproduces the simulation (argmax agreement, logit codes within one quantum).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <soda/soda.hpp>
#include <vector>

namespace hawq {

using Batches = std::vector<soda::hessian::LabeledBatch<float>>;

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct FloatEvaluation {
  double accuracy = 0, images_per_second = 0;
  std::int64_t images = 0;
};

// Any module (the float model or its fake-quantized version) in eval mode without gradients.
inline FloatEvaluation evaluate_module(soda::nn::Module<float>& model, const Batches& batches) {
  model.eval();
  soda::NoGradGuard no_grad;
  std::int64_t correct = 0, images = 0;
  double seconds = 0;
  for (const auto& batch : batches) {
    const auto start = std::chrono::steady_clock::now();
    const auto logits = model.forward(batch.inputs);
    seconds += seconds_since(start);
    correct += soda::nn::count_correct(logits, batch.labels);
    images += batch.labels.numel();
  }
  return {static_cast<double>(correct) / static_cast<double>(images),
          static_cast<double>(images) / seconds, images};
}

struct IntegerEvaluation {
  double accuracy = 0, images_per_second = 0;
  std::int64_t images = 0;
  // Against the fake-quantized simulation on the same images:
  double argmax_agreement = 0;   // fraction of images with the same prediction
  double logits_within_one = 0;  // fraction of logit codes that differ by at most 1
  double images_within_one = 0;  // fraction of images all of whose codes do
  std::int64_t max_code_difference = 0;

  nlohmann::ordered_json to_json() const {
    return {{"accuracy", accuracy},
            {"images_per_second", images_per_second},
            {"images", images},
            {"argmax_agreement_with_simulation", argmax_agreement},
            {"logit_codes_within_one_quantum", logits_within_one},
            {"images_with_all_codes_within_one_quantum", images_within_one},
            {"max_logit_code_difference", max_code_difference}};
  }
};

// The lowest index of the row's largest value, as IntegerResNet::predict breaks ties.
inline std::int64_t first_argmax(const float* row, std::int64_t count) {
  return std::max_element(row, row + count) - row;
}

inline IntegerEvaluation evaluate_integer(const soda::quant::IntegerResNet& network,
                                          soda::quant::QuantizedResNet<float>& simulation,
                                          const Batches& batches) {
  simulation.eval();
  soda::NoGradGuard no_grad;
  const float logit_scale = network.output_grid().scale;
  IntegerEvaluation out;
  std::int64_t correct = 0, agree = 0, codes_close = 0, codes = 0, images_close = 0;
  double seconds = 0;
  for (const auto& batch : batches) {
    const auto start = std::chrono::steady_clock::now();
    const soda::quant::IntegerMatrix integer_codes = network.forward_codes(batch.inputs);
    seconds += seconds_since(start);
    const auto simulated = soda::contiguous(simulation.forward(batch.inputs));
    const std::int64_t n = batch.labels.numel(), classes = integer_codes.cols;
    for (std::int64_t i = 0; i < n; ++i) {
      std::vector<float> row(static_cast<std::size_t>(classes));
      bool all_close = true;
      for (std::int64_t c = 0; c < classes; ++c) {
        row[static_cast<std::size_t>(c)] = static_cast<float>(integer_codes.at(i, c));
        const auto simulated_code =
            static_cast<std::int64_t>(std::lround(simulated.data()[i * classes + c] / logit_scale));
        const std::int64_t difference = std::abs(integer_codes.at(i, c) - simulated_code);
        out.max_code_difference = std::max(out.max_code_difference, difference);
        codes_close += difference <= 1;
        all_close = all_close && difference <= 1;
        ++codes;
      }
      const std::int64_t predicted = first_argmax(row.data(), classes);
      correct += predicted == batch.labels.data()[i];
      agree += predicted == first_argmax(simulated.data() + i * classes, classes);
      images_close += all_close;
    }
    out.images += n;
  }
  const auto images = static_cast<double>(out.images);
  out.accuracy = static_cast<double>(correct) / images;
  out.images_per_second = images / seconds;
  out.argmax_agreement = static_cast<double>(agree) / images;
  out.logits_within_one = static_cast<double>(codes_close) / static_cast<double>(codes);
  out.images_within_one = static_cast<double>(images_close) / images;
  return out;
}

}  // namespace hawq
