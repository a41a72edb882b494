// OptimConfig validation and the learning-rate schedules (optim.h).
//
// Owns: the cross-field checks of `optim:` and LrSchedule's formulas.
// Must not: touch tensors or optimizer state (optim_adamw.cpp).
#include <algorithm>
#include <cmath>

#include "zeroth/error.h"
#include "zeroth/optim.h"

namespace zeroth {

namespace {

LrScheduleKind schedule_kind(const std::string& name) {
  if (name == "constant") return LrScheduleKind::Constant;
  if (name == "linear") return LrScheduleKind::Linear;
  if (name == "cosine") return LrScheduleKind::Cosine;
  throw ConfigError("key 'optim.schedule': expected one of 'constant', 'linear', 'cosine', found '" +
                    name + "'");
}

}  // namespace

LrSchedule LrSchedule::from_config(const OptimConfig& config, int64_t run_steps) {
  LrSchedule s;
  s.kind = schedule_kind(config.schedule);
  s.peak_lr = config.lr;
  s.warmup_steps = config.warmup_steps;
  s.total_steps = config.total_steps > 0 ? config.total_steps : run_steps;
  s.min_lr_ratio = config.min_lr_ratio;
  if (s.kind != LrScheduleKind::Constant && s.total_steps <= s.warmup_steps)
    throw ConfigError(strformat(
        "key 'optim.total_steps': the '%s' schedule needs total_steps (%s: %lld) greater than "
        "optim.warmup_steps (%lld)",
        config.schedule.c_str(), config.total_steps > 0 ? "optim.total_steps" : "the run's steps",
        (long long)s.total_steps, (long long)s.warmup_steps));
  return s;
}

double LrSchedule::lr_at(int64_t step) const {
  ZT_ASSERT(step >= 1, "optimizer steps count from 1, got %lld", (long long)step);
  if (step <= warmup_steps) return peak_lr * double(step) / double(warmup_steps);
  if (kind == LrScheduleKind::Constant) return peak_lr;
  double p = double(step - warmup_steps) / double(total_steps - warmup_steps);
  p = std::min(1.0, std::max(0.0, p));
  const double r = min_lr_ratio;
  const double decay = kind == LrScheduleKind::Linear ? 1.0 - p : 0.5 * (1.0 + std::cos(M_PI * p));
  return peak_lr * (r + (1.0 - r) * decay);
}

}  // namespace zeroth
