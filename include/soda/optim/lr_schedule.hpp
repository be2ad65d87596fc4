// soda::optim::LrSchedule: the learning rate as a pure function of the step, with the closed
// forms of torch.optim.lr_scheduler (PyTorch 1.13): MultiStepLR, CosineAnnealingLR, and a LinearLR
// warm-up in front of either (SequentialLR([LinearLR, main], milestones=[warm-up steps])).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "soda/core/error.hpp"
#include "soda/optim/number_text.hpp"

namespace soda::optim {

// The base rate throughout.
struct Constant {
  bool operator==(const Constant&) const = default;
};

// lr = base · gamma^(number of milestones <= step). Like PyTorch's Counter of milestones, a
// milestone listed twice applies gamma twice; the order of the list does not matter.
struct MultiStepLR {
  std::vector<std::int64_t> milestones;
  double gamma = 0.1;
  bool operator==(const MultiStepLR&) const = default;
};

// lr = eta_min + (base − eta_min)·(1 + cos(π·step / t_max)) / 2: PyTorch's closed form, which
// keeps following the cosine (back up towards base) after t_max.
struct CosineAnnealingLR {
  std::int64_t t_max = 1;
  double eta_min = 0.0;
  bool operator==(const CosineAnnealingLR&) const = default;
};

// PyTorch's LinearLR(start_factor, end_factor=1, total_iters=steps) run for `steps` steps:
// lr = base · (start_factor + (1 − start_factor)·step / steps).
struct LinearWarmup {
  double start_factor = 1.0 / 3.0;
  std::int64_t steps = 5;
  bool operator==(const LinearWarmup&) const = default;
};

using LrDecay = std::variant<Constant, MultiStepLR, CosineAnnealingLR>;

// A schedule is a value: learning_rate_at(step) depends on nothing but step, so resuming a run
// needs only the step count, and two schedules compare equal when they describe the same rates.
//
// `step` counts scheduler steps as in PyTorch: learning_rate_at(k) is the rate after k calls
// of scheduler.step(), i.e. the rate of epoch k when stepping per epoch, or of iteration k when
// stepping per iteration (then give milestones, t_max and warm-up steps in iterations).
//
//   const optim::LrSchedule schedule =
//       optim::LrSchedule(0.1, optim::CosineAnnealingLR{.t_max = 85}).with_linear_warmup(0.01, 5);
//   for (std::int64_t epoch = 0; epoch < 90; ++epoch) {
//     opt.set_learning_rate(schedule.learning_rate_at(epoch));
//     ...
//   }
class LrSchedule {
 public:
  explicit LrSchedule(double base_lr, LrDecay decay = Constant{})
      : base_lr_(base_lr), decay_(std::move(decay)) {
    if (!std::isfinite(base_lr_) || base_lr_ < 0) {
      throw ValueError("LrSchedule: invalid base learning rate " + detail::exact_text(base_lr_) +
                       " (must be finite and >= 0)");
    }
    if (auto* multi_step = std::get_if<MultiStepLR>(&decay_)) {
      if (!std::isfinite(multi_step->gamma) || multi_step->gamma < 0) {
        throw ValueError("MultiStepLR: invalid gamma " + detail::exact_text(multi_step->gamma) +
                         " (must be finite and >= 0)");
      }
      for (const auto milestone : multi_step->milestones) {
        if (milestone < 0) {
          throw ValueError("MultiStepLR: milestone " + std::to_string(milestone) + " is negative");
        }
      }
      // Sorted once so that learning_rate_at is a binary search (bisect_right, as PyTorch).
      std::sort(multi_step->milestones.begin(), multi_step->milestones.end());
    }
    if (const auto* cosine = std::get_if<CosineAnnealingLR>(&decay_)) {
      if (cosine->t_max < 1) {
        throw ValueError("CosineAnnealingLR: t_max must be >= 1, got " +
                         std::to_string(cosine->t_max));
      }
      if (!std::isfinite(cosine->eta_min)) {
        throw ValueError("CosineAnnealingLR: eta_min must be finite");
      }
    }
  }

  // This schedule delayed by `steps`, during which the rate rises linearly from
  // start_factor · base (step 0) towards base; at step `steps` the decay starts from its own
  // step 0, as SequentialLR starts its second scheduler (torchvision's warm-up recipe).
  LrSchedule with_linear_warmup(double start_factor, std::int64_t steps) const {
    if (warmup_) throw ValueError("LrSchedule.with_linear_warmup: the schedule already has one");
    // PyTorch's LinearLR bounds; a factor of 0 would make step 0 train with a zero rate.
    if (!(start_factor > 0 && start_factor <= 1)) {
      throw ValueError("LrSchedule.with_linear_warmup: start_factor must be in (0, 1], got " +
                       detail::exact_text(start_factor));
    }
    if (steps < 1) {
      throw ValueError("LrSchedule.with_linear_warmup: steps must be >= 1, got " +
                       std::to_string(steps));
    }
    LrSchedule out = *this;
    out.warmup_ = LinearWarmup{start_factor, steps};
    return out;
  }

  // The rate after `step` scheduler steps (step >= 0). Operations are in PyTorch's order
  // (its _get_closed_form_lr), so the rates agree with it to the last bit or so.
  double learning_rate_at(std::int64_t step) const {
    if (step < 0) {
      throw ValueError("LrSchedule.learning_rate_at: step must be >= 0, got " +
                       std::to_string(step));
    }
    if (warmup_) {
      if (step < warmup_->steps) {
        return base_lr_ *
               (warmup_->start_factor + (1.0 - warmup_->start_factor) * static_cast<double>(step) /
                                            static_cast<double>(warmup_->steps));
      }
      step -= warmup_->steps;
    }
    return std::visit([&](const auto& decay) { return decay_rate(decay, step); }, decay_);
  }

  double base_lr() const { return base_lr_; }
  const LrDecay& decay() const { return decay_; }
  const std::optional<LinearWarmup>& warmup() const { return warmup_; }

  bool operator==(const LrSchedule&) const = default;

 private:
  double decay_rate(const Constant&, std::int64_t) const { return base_lr_; }

  double decay_rate(const MultiStepLR& decay, std::int64_t step) const {
    const auto passed = std::upper_bound(decay.milestones.begin(), decay.milestones.end(), step) -
                        decay.milestones.begin();
    return base_lr_ * std::pow(decay.gamma, static_cast<double>(passed));
  }

  double decay_rate(const CosineAnnealingLR& decay, std::int64_t step) const {
    const double angle =
        std::numbers::pi * static_cast<double>(step) / static_cast<double>(decay.t_max);
    return decay.eta_min + (base_lr_ - decay.eta_min) * (1.0 + std::cos(angle)) / 2.0;
  }

  double base_lr_;
  LrDecay decay_;
  std::optional<LinearWarmup> warmup_;
};

}  // namespace soda::optim
