// ProgressLine: a one-line progress report for long work (done/total, rate, ETA and whatever
// figures the caller adds), redrawn in place at most a few times a second; a line left unfinished
// (an exception ended the work) is ended when it goes, so an error message starts a line of its
// own.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>

namespace soda::train {

// "1h02m", "3m05s", "12s".
inline std::string duration_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<std::int64_t>(std::llround(seconds));
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(total / 3600),
                  static_cast<long long>(total % 3600 / 60));
  } else if (total >= 60) {
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  } else {
    std::snprintf(text, sizeof text, "%llds", static_cast<long long>(total));
  }
  return text;
}

class ProgressLine {
 public:
  using Clock = std::chrono::steady_clock;

  // `unit` names what is counted per second ("img", "HVP"); `out` null silences the line.
  ProgressLine(std::string label, std::int64_t total, std::string unit, std::ostream* out,
               double min_interval_seconds = 0.5)
      : label_(std::move(label)),
        unit_(std::move(unit)),
        total_(total),
        out_(out),
        interval_(min_interval_seconds),
        start_(Clock::now()),
        last_draw_(start_) {}

  // Not copied: a copy would end the same line twice.
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  ~ProgressLine() {
    try {
      if (open_) finish();
    } catch (...) {  // a stream that throws must not end the program from a destructor
    }
  }

  double elapsed_seconds() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }

  // Reports `done` of total (in units) with extra text; redraws if enough time has passed.
  void update(std::int64_t done, const std::string& figures, bool force = false) {
    const auto now = Clock::now();
    if (out_ == nullptr) return;
    if (!force && std::chrono::duration<double>(now - last_draw_).count() < interval_) return;
    last_draw_ = now;
    open_ = true;
    const double elapsed = elapsed_seconds();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : NAN;
    char rate_text[64];
    std::snprintf(rate_text, sizeof rate_text, rate < 10 ? "%.2f %s/s" : "%.0f %s/s", rate,
                  unit_.c_str());
    *out_ << "\r" << label_ << " " << done << "/" << total_ << " " << figures << " " << rate_text
          << " ETA " << duration_text(eta) << "   " << std::flush;
  }

  // Ends the line (the next output starts on a fresh one).
  void finish() {
    open_ = false;
    if (out_ != nullptr) *out_ << "\n" << std::flush;
  }

 private:
  std::string label_, unit_;
  std::int64_t total_;
  std::ostream* out_;
  double interval_;
  Clock::time_point start_, last_draw_;
  bool open_ = false;  // drawn since the last finish()
};

}  // namespace soda::train
