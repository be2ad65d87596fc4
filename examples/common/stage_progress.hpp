// One progress line per Hessian estimator stage (power iteration, Hutchinson, per-layer
// figures), driven by the estimators' callbacks, with rate and ETA.
#pragma once

#include <iomanip>
#include <iostream>
#include <memory>
#include <soda/soda.hpp>
#include <sstream>
#include <string>

namespace examples {

class StageProgress {
 public:
  explicit StageProgress(bool quiet) : out_(quiet ? nullptr : &std::cerr) {}

  soda::hessian::ProgressCallback callback() {
    return [this](const soda::hessian::EstimatorProgress& p) {
      if (!line_ || p.stage != stage_) {
        finish();
        stage_ = p.stage;
        line_ = std::make_unique<soda::train::ProgressLine>(p.stage, p.max_steps, "step", out_);
      }
      std::ostringstream figures;
      figures << "HVPs " << p.hvp_count << " estimate " << std::setprecision(6) << p.estimate;
      line_->update(p.step, figures.str(), p.step == p.max_steps);
    };
  }
  void finish() {
    if (line_) line_->finish();
    line_.reset();
  }

 private:
  std::ostream* out_;
  std::string stage_;
  std::unique_ptr<soda::train::ProgressLine> line_;
};

}  // namespace examples
