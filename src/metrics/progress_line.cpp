// format_progress_line (metrics.h): the one compact console line of a training step.
// Must not: print (the caller logs the line) or know where the values came from.
#include <cmath>

#include "zeroth/error.h"
#include "zeroth/metrics.h"

namespace zeroth {

std::vector<ProgressField> default_progress_fields() {
  return {{"reward_mean", "reward", 3},   {"accuracy", "acc", 3},       {"format_rate", "fmt", 2},
          {"kl", "kl", -1},               {"entropy", "ent", 3},        {"response_len_mean", "len", 0},
          {"clip_frac", "clip", 3},       {"grad_norm", "gnorm", 3},    {"tokens_per_s", "tok/s", 0},
          {"eval_accuracy", "eval acc", 3}};
}

std::string format_progress_line(int64_t step, int64_t total_steps, const MetricMap& values,
                                 const std::vector<ProgressField>& fields) {
  std::string line = total_steps > 0 ? strformat("step %lld/%lld", (long long)step, (long long)total_steps)
                                     : strformat("step %lld", (long long)step);
  for (const ProgressField& f : fields) {
    const auto it = values.find(f.key);
    if (it == values.end()) continue;
    const double v = it->second;
    std::string text;
    if (std::isnan(v))
      text = "nan";
    else if (std::isinf(v))
      text = v > 0 ? "inf" : "-inf";
    else if (f.precision < 0)
      text = strformat("%.3g", v);
    else
      text = strformat("%.*f", f.precision, v);
    line += " | " + f.label + " " + text;
  }
  return line;
}

}  // namespace zeroth
