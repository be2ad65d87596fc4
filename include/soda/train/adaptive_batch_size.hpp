// AdaptiveBatchSchedule: the batch-size rule of ABS / ABSA (Yao, Gholami, Arfeen, Liaw, Gonzalez,
// Keutzer, Mahoney, "Large batch size training of neural networks with adversarial training and
// second-order information", arXiv:1810.01021), as the authors' code (hessianflow's absa) runs it.
//
// At the end of an epoch with an estimate λ of the Hessian's top eigenvalue: the first λ becomes
// the reference λ_ref; once λ ≤ λ_ref / eigenvalue_drop, the batch grows ×growth (up to
// max_batch) and λ_ref ← λ. An epoch count at one batch size reaching `duration` grows the batch
// too (λ_ref kept). The learning rate follows the batch linearly (lr × B / B₀); ABSA's share of
// adversarial inputs is divided by the growth each time and ends below a floor or at max_batch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "soda/core/error.hpp"

namespace soda::train {

struct AdaptiveBatchOptions {
  std::int64_t initial_batch = 128;
  std::int64_t max_batch = 16384;  // the authors' 128 × large ratio 128
  double eigenvalue_drop = 2;      // grow once λ ≤ λ_ref / eigenvalue_drop
  double growth = 2;               // the batch's factor per growth (the result is rounded down)
  std::int64_t duration = 10;      // epochs at one batch size after which it grows anyway; 0: never
  std::int64_t interval = 1;       // estimate λ at the end of every interval-th epoch
  bool scale_learning_rate = true;  // lr × B / initial_batch (linear scaling), as the authors
  // ABSA: the share of each batch replaced by adversarial inputs (the authors' 0.2; 0 for ABS),
  // divided by `growth` at each growth and switched off below min_adversarial_fraction (theirs:
  // one input per 128) or once the batch reaches max_batch.
  double adversarial_fraction = 0;
  double min_adversarial_fraction = 1.0 / 128;
};

// What end_epoch decided: the batch size and learning-rate factor from the next epoch on.
struct BatchDecision {
  std::int64_t batch_size = 0;
  double learning_rate_factor = 1;
  bool grew = false;
  std::string reason;  // "eigenvalue", "duration" or "" (no growth)
};

class AdaptiveBatchSchedule {
 public:
  explicit AdaptiveBatchSchedule(AdaptiveBatchOptions options)
      : options_(std::move(options)),
        batch_(options_.initial_batch),
        adversarial_(options_.adversarial_fraction) {
    check();
    if (adversarial_ < options_.min_adversarial_fraction) adversarial_ = 0;
  }

  // Whether the epoch just ended (0-based) should end with an estimate of λ: every interval-th
  // epoch while the batch can still grow (at max_batch nothing is estimated any more).
  bool wants_estimate(std::int64_t epoch) const {
    return batch_ < options_.max_batch && (epoch + 1) % options_.interval == 0;
  }

  // The rule at the end of an epoch, with the estimate of λ when one was made.
  BatchDecision end_epoch(std::optional<double> eigenvalue) {
    BatchDecision decision;
    ++epochs_at_size_;  // a growth below resets it: the count is of epochs at the current size
    if (eigenvalue) {
      if (!std::isfinite(*eigenvalue)) {
        throw ValueError("AdaptiveBatchSchedule: the eigenvalue estimate is " +
                         std::to_string(*eigenvalue) + "; a finite number is needed");
      }
      if (!reference_) {
        reference_ = *eigenvalue;
      } else if (*eigenvalue <= *reference_ / options_.eigenvalue_drop && grow()) {
        reference_ = *eigenvalue;
        decision.reason = "eigenvalue";
      }
    }
    if (decision.reason.empty() && options_.duration > 0 && epochs_at_size_ >= options_.duration &&
        grow()) {
      decision.reason = "duration";
    }
    decision.grew = !decision.reason.empty();
    decision.batch_size = batch_;
    decision.learning_rate_factor = learning_rate_factor();
    return decision;
  }

  std::int64_t batch_size() const { return batch_; }
  double learning_rate_factor() const {
    return options_.scale_learning_rate
               ? static_cast<double>(batch_) / static_cast<double>(options_.initial_batch)
               : 1.0;
  }
  double adversarial_fraction() const { return adversarial_; }
  // λ_ref: the first estimate, then the one at the last eigenvalue-driven growth.
  std::optional<double> reference_eigenvalue() const { return reference_; }
  const AdaptiveBatchOptions& options() const { return options_; }

 private:
  void check() const {
    const auto fail = [](const std::string& what) {
      throw ValueError("AdaptiveBatchSchedule: " + what);
    };
    if (options_.initial_batch < 1) {
      fail("initial_batch = " + std::to_string(options_.initial_batch) + " must be >= 1");
    }
    if (options_.max_batch < options_.initial_batch) {
      fail("max_batch = " + std::to_string(options_.max_batch) +
           " is below initial_batch = " + std::to_string(options_.initial_batch));
    }
    if (!(options_.eigenvalue_drop > 1) || !std::isfinite(options_.eigenvalue_drop)) {
      fail("eigenvalue_drop = " + std::to_string(options_.eigenvalue_drop) + " must be > 1");
    }
    if (!(options_.growth > 1) || !std::isfinite(options_.growth)) {
      fail("growth = " + std::to_string(options_.growth) + " must be > 1");
    }
    if (options_.duration < 0) {
      fail("duration = " + std::to_string(options_.duration) + " must be >= 0 (0: never)");
    }
    if (options_.interval < 1) {
      fail("interval = " + std::to_string(options_.interval) + " must be >= 1");
    }
    if (!(options_.adversarial_fraction >= 0 && options_.adversarial_fraction <= 1)) {
      fail("adversarial_fraction = " + std::to_string(options_.adversarial_fraction) +
           " must be in [0, 1]");
    }
    if (!(options_.min_adversarial_fraction >= 0)) {
      fail("min_adversarial_fraction = " + std::to_string(options_.min_adversarial_fraction) +
           " must be >= 0");
    }
  }

  // One growth ×growth, capped at max_batch; false when the batch is already there.
  bool grow() {
    if (batch_ >= options_.max_batch) return false;
    const auto grown = static_cast<std::int64_t>(static_cast<double>(batch_) * options_.growth);
    batch_ = std::min(std::max(grown, batch_ + 1), options_.max_batch);
    adversarial_ /= options_.growth;
    if (batch_ >= options_.max_batch || adversarial_ < options_.min_adversarial_fraction) {
      adversarial_ = 0;
    }
    epochs_at_size_ = 0;
    return true;
  }

  AdaptiveBatchOptions options_;
  std::int64_t batch_;
  double adversarial_;
  std::optional<double> reference_;
  std::int64_t epochs_at_size_ = 0;
};

}  // namespace soda::train
