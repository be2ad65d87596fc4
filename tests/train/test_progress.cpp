// soda/train/progress.hpp: durations read as a person writes them, and a progress line that shows
// the count, the caller's figures, the rate and an ETA, redrawn in place and ended with a newline
// (also when an exception leaves it unfinished).
#include <doctest/doctest.h>
#include <soda/soda.hpp>

#include <limits>
#include <sstream>
#include <stdexcept>

TEST_CASE("durations are written as hours and minutes, minutes and seconds, or seconds") {
  CHECK(soda::train::duration_text(12.4) == "12s");
  CHECK(soda::train::duration_text(185) == "3m05s");
  CHECK(soda::train::duration_text(3725) == "1h02m");
  CHECK(soda::train::duration_text(-1) == "?");
  CHECK(soda::train::duration_text(std::numeric_limits<double>::quiet_NaN()) == "?");
}

TEST_CASE("the progress line shows count, figures, rate and ETA, and is throttled") {
  std::ostringstream out;
  soda::train::ProgressLine line("epoch 1/2 step", 100, "step", &out, 3600);
  line.update(10, "loss 0.5", true);
  const auto first = out.str();
  CHECK(first.rfind("\repoch 1/2 step 10/100 loss 0.5 ", 0) == 0);
  CHECK(first.find("step/s ETA ") != std::string::npos);
  line.update(20, "loss 0.4");  // within the hour-long interval: not redrawn
  CHECK(out.str() == first);
  line.finish();
  CHECK(out.str().back() == '\n');

  soda::train::ProgressLine silent("x", 1, "img", nullptr);
  silent.update(1, "", true);  // a null stream is silent, not a crash
  silent.finish();
}

TEST_CASE("a progress line left unfinished by an exception is ended when it goes") {
  std::ostringstream out;
  try {
    soda::train::ProgressLine line("epoch 1/2 step", 100, "step", &out);
    line.update(10, "loss 0.5", true);
    throw std::runtime_error("the step failed");
  } catch (const std::runtime_error&) {
    out << "error: the step failed\n";
  }
  CHECK(out.str().find("\nerror: the step failed\n") != std::string::npos);

  std::ostringstream finished;
  {
    soda::train::ProgressLine line("x", 1, "step", &finished);
    line.update(1, "", true);
    line.finish();
  }
  CHECK(finished.str().find("\n") == finished.str().size() - 1);  // ended once, not twice

  std::ostringstream never_drawn;
  { soda::train::ProgressLine line("x", 1, "step", &never_drawn); }
  CHECK(never_drawn.str().empty());
}
