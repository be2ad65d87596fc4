// A Google Benchmark reporter that also remembers each benchmark's time, so a bench can print
// ratios between figures measured in the same run (ours against a peer's).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>

namespace soda::bench {

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs) {
      if (run.run_type == Run::RT_Iteration && run.repetitions <= 1) {
        seconds_[run.benchmark_name()] =
            run.GetAdjustedRealTime() * time_unit_seconds(run.time_unit);
      } else if (run.aggregate_name == "median") {
        seconds_[run.run_name.str()] = run.GetAdjustedRealTime() * time_unit_seconds(run.time_unit);
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  // Seconds per iteration of a benchmark by name; negative when it did not run.
  double seconds(const std::string& name) const {
    const auto found = seconds_.find(name);
    return found == seconds_.end() ? -1.0 : found->second;
  }

  // Prints "label: value" for numerator/denominator when both ran.
  void print_ratio(const char* label, const std::string& numerator,
                   const std::string& denominator) const {
    const double a = seconds(numerator), b = seconds(denominator);
    if (a > 0 && b > 0) std::printf("%-58s %7.3f\n", label, a / b);
  }

 private:
  static double time_unit_seconds(benchmark::TimeUnit unit) {
    switch (unit) {
      case benchmark::kNanosecond:
        return 1e-9;
      case benchmark::kMicrosecond:
        return 1e-6;
      case benchmark::kMillisecond:
        return 1e-3;
      default:
        return 1.0;
    }
  }

  std::map<std::string, double> seconds_;
};

}  // namespace soda::bench
