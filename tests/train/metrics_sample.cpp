// Writes a sample run directory with MetricsWriter for the Python checks of
// scripts/tfevents-check.py (CTest metrics_tfevents_*): steps 1..8 with eval rows, a
// NaN, a zero and an infinity, then a resume from step 5 that writes steps 6..10.
//
// usage: metrics_sample RUN_DIR     (RUN_DIR is replaced)
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "zeroth/error.h"
#include "zeroth/metrics.h"

using namespace zeroth;

static void write_steps(MetricsWriter& w, int64_t from, int64_t to) {
  for (int64_t s = from; s <= to; ++s) {
    MetricMap m = {{"reward_mean", 0.05 * double(s) + 1.0 / 7.0},
                   {"accuracy", double(s) / 16.0},
                   {"kl", 3e-5 * double(s * s)},
                   {"response_len_mean", 200.0 - 3.5 * double(s)},
                   {"clip_frac", 0.0}};
    if (s == 3) m["grad_norm"] = std::numeric_limits<double>::quiet_NaN();
    if (s == 7) m["grad_norm"] = std::numeric_limits<double>::infinity();
    w.log(s, m);
    if (s % 4 == 0) w.log(s, {{"eval_accuracy", 0.1 * double(s)}});
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: metrics_sample RUN_DIR\n");
    return 2;
  }
  try {
    const std::string dir = argv[1];
    std::filesystem::remove_all(dir);
    {
      MetricsWriter w(dir, 0);
      write_steps(w, 1, 8);
    }
    MetricsWriterOptions resume;
    resume.resume_step = 5;
    MetricsWriter w(dir, 0, resume);
    write_steps(w, 6, 10);
    std::printf("metrics_sample: wrote %s (metrics.jsonl, %s)\n", dir.c_str(), w.events_path().c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "metrics_sample: %s\n", e.what());
    return 1;
  }
  return 0;
}
