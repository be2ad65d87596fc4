// Activation range observers for the spec's per-tensor activation scales (shared/spec/
// quantization.md): S_a = range / (2^b − 1) after a ReLU (unsigned), range / (2^(b−1) − 1) signed,
// with range the running max or a percentile of the calibration batches; the method is recorded.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "soda/core/convert.hpp"
#include "soda/core/error.hpp"
#include "soda/quant/quantize.hpp"

namespace soda::quant::detail {

// The value an observer ranks: x itself after a ReLU (negatives, which quantize to 0, count as 0),
// |x| for signed symmetric activations.
inline float observed_magnitude(float x, bool is_unsigned) {
  return is_unsigned ? std::max(x, 0.0f) : std::abs(x);
}

// Rejects an empty batch or one holding NaN or ±inf before any of it is counted, so a bad batch
// leaves the observer as it was.
inline void check_calibration_batch(const std::string& observer, std::span<const float> batch,
                                    std::int64_t batch_index) {
  if (batch.empty()) {
    throw ValueError(observer + ": batch " + std::to_string(batch_index) + " holds no values");
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!std::isfinite(batch[i])) {
      throw ValueError(observer + ": batch " + std::to_string(batch_index) +
                       " holds a non-finite value (" + std::to_string(batch[i]) +
                       ") at flat index " + std::to_string(i));
    }
  }
}

// S_a = range / q_max, through quant::activation_scale so calibrated and hand-given scales round
// alike; a zero range (every value 0, or none positive after a ReLU) has no valid scale.
inline float calibrated_scale(const std::string& observer, float range, int bits,
                              bool is_unsigned) {
  check_bits(observer.c_str(), bits);
  if (!(range > 0)) {
    throw ValueError(observer + ": the observed range is 0 (every value seen is " +
                     std::string(is_unsigned ? "<= 0" : "0") + "), so no scale maps it");
  }
  return quant::activation_scale(range, bits, is_unsigned);
}

// Hands a tensor's values to observer.observe as floats.
template <class Observer, class T>
void observe_tensor(Observer& observer, const Tensor<T>& batch) {
  const Tensor<float> values = batch.template to<float>();
  observer.observe(std::span<const float>(values.data(), static_cast<std::size_t>(values.numel())));
}

}  // namespace soda::quant::detail

namespace soda::quant {

// range = max |x| (signed) or max x (unsigned, after a ReLU) over every batch observed. O(1)
// memory.
class RunningMaxObserver {
 public:
  explicit RunningMaxObserver(bool is_unsigned) : is_unsigned_(is_unsigned) {}

  void observe(std::span<const float> batch) {
    detail::check_calibration_batch("RunningMaxObserver", batch, batches_);
    for (const float x : batch)
      range_ = std::max(range_, detail::observed_magnitude(x, is_unsigned_));
    ++batches_;
  }

  template <class T>
  void observe(const Tensor<T>& batch) {
    detail::observe_tensor(*this, batch);
  }

  float range() const {
    check_observed();
    return range_;
  }

  float scale(int bits) const {
    check_observed();
    return detail::calibrated_scale("RunningMaxObserver", range_, bits, is_unsigned_);
  }

  // The calibration method, as a model file records it.
  std::string method() const { return "running_max"; }
  bool is_unsigned() const { return is_unsigned_; }
  std::int64_t batches() const { return batches_; }

 private:
  void check_observed() const {
    if (batches_ == 0) {
      throw ValueError("RunningMaxObserver: no batches observed; call observe() first");
    }
  }

  bool is_unsigned_;
  float range_ = 0;
  std::int64_t batches_ = 0;
};

// range = the p-th percentile (nearest rank, exact) of |x| (signed) or of max(x, 0) (unsigned)
// over every value of every batch observed: the k-th smallest, k = ⌈p/100 · n⌉, so p = 100 gives
// the running max. Exact because it keeps every value: 4 bytes per observed value (n floats),
// plus nothing extra at query time (std::nth_element reorders the stored values in place, O(n)).
class PercentileObserver {
 public:
  PercentileObserver(double percentile, bool is_unsigned)
      : percentile_(percentile), is_unsigned_(is_unsigned) {
    if (!(percentile > 0 && percentile <= 100)) {
      throw ValueError("PercentileObserver: percentile must be in (0, 100], got " +
                       std::to_string(percentile));
    }
  }

  void observe(std::span<const float> batch) {
    detail::check_calibration_batch("PercentileObserver", batch, batches_);
    values_.reserve(values_.size() + batch.size());
    for (const float x : batch) values_.push_back(detail::observed_magnitude(x, is_unsigned_));
    ++batches_;
  }

  template <class T>
  void observe(const Tensor<T>& batch) {
    detail::observe_tensor(*this, batch);
  }

  float range() const {
    if (batches_ == 0) {
      throw ValueError("PercentileObserver: no batches observed; call observe() first");
    }
    const auto n = static_cast<double>(values_.size());
    // ⌈p/100 · n⌉ in [1, n]; the product is rounded first so that, e.g., 99.9% of 1000 values is
    // rank 999 and not 1000 through 99.9/100 · 1000 = 999.0000000000001.
    const double exact_rank = std::round(percentile_ / 100 * n * 1e9) / 1e9;
    const auto rank =
        std::clamp<std::size_t>(static_cast<std::size_t>(std::ceil(exact_rank)), 1, values_.size());
    const auto nth = values_.begin() + static_cast<std::ptrdiff_t>(rank - 1);
    std::nth_element(values_.begin(), nth, values_.end());
    return *nth;
  }

  float scale(int bits) const {
    return detail::calibrated_scale("PercentileObserver", range(), bits, is_unsigned_);
  }

  // The calibration method with its percentile, as a model file records it: "percentile_99.9".
  std::string method() const {
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, percentile_).ptr;
    return "percentile_" + std::string(text, end);
  }
  double percentile() const { return percentile_; }
  bool is_unsigned() const { return is_unsigned_; }
  std::int64_t batches() const { return batches_; }
  // How many values are kept (the observer's memory is 4 bytes each).
  std::size_t values_kept() const { return values_.size(); }

 private:
  double percentile_;
  bool is_unsigned_;
  std::int64_t batches_ = 0;
  // Mutable: range() reorders the values (nth_element), which changes no observable state. Not
  // safe to call range() or scale() from several threads at once.
  mutable std::vector<float> values_;
};

}  // namespace soda::quant
