// Group-relative advantages and the DAPO overlong rules (grpo.h).
//
// Owns: the advantage estimators (grpo, dr_grpo, rloo, reinforce_pp and its batch
// whitening, batch_std) in float64 and the overlong
// reward shaping / loss masking of one batch. Must not: communicate (the caller
// all-gathers rewards first) or read anything but its arguments.
#include <cmath>
#include <cstddef>

#include "zeroth/error.h"
#include "zeroth/grpo.h"

namespace zeroth {

Advantages compute_advantages(const std::vector<double>& rewards, int64_t group_size,
                              const GrpoConfig& config) {
  // The user-facing check (a ConfigError naming rollout.group_size) belongs to config
  // validation; reaching here with G < 2 is still a user error, reported the same way.
  config.validate_group_size(group_size);
  const size_t n = rewards.size();
  const size_t g = size_t(group_size);
  ZT_ASSERT(n % g == 0, "%zu rewards do not form groups of %zu", n, g);
  for (size_t i = 0; i < n; ++i) ZT_ASSERT(std::isfinite(rewards[i]), "reward %zu is %g", i, rewards[i]);

  Advantages out;
  out.values.assign(n, 0.0);
  out.zero_group.assign(n / g, 0);
  for (size_t grp = 0; grp < n / g; ++grp) {
    const double* r = rewards.data() + grp * g;
    double* a = out.values.data() + grp * g;
    bool all_equal = true;
    for (size_t i = 1; i < g; ++i) all_equal = all_equal && r[i] == r[0];
    if (all_equal) {  // exactly 0, whatever rounding the mean would do
      out.zero_group[grp] = 1;
      ++out.zero_groups;
      continue;
    }
    double sum = 0.0;
    for (size_t i = 0; i < g; ++i) sum += r[i];
    const double mean = sum / double(g);
    if (config.advantage == "grpo") {
      double ss = 0.0;
      for (size_t i = 0; i < g; ++i) ss += (r[i] - mean) * (r[i] - mean);
      const double std_dev = std::sqrt(ss / double(g - 1));
      for (size_t i = 0; i < g; ++i) a[i] = (r[i] - mean) / (std_dev + config.adv_eps);
    } else if (config.advantage == "dr_grpo" || config.advantage == "reinforce_pp" ||
               config.advantage == "batch_std") {
      for (size_t i = 0; i < g; ++i) a[i] = r[i] - mean;
    } else if (config.advantage == "rloo") {
      for (size_t i = 0; i < g; ++i) a[i] = r[i] - (sum - r[i]) / double(g - 1);
    } else {
      ZT_ASSERT(false, "unknown grpo.advantage '%s'", config.advantage.c_str());
    }
  }
  return out;
}

void whiten_advantages(std::vector<double>& values, const std::vector<double>& batch_values,
                       const std::vector<double>& batch_weights, double eps) {
  ZT_ASSERT(batch_values.size() == batch_weights.size(), "sizes %zu %zu", batch_values.size(),
            batch_weights.size());
  double w_sum = 0.0, wa = 0.0;
  for (size_t i = 0; i < batch_values.size(); ++i) {
    w_sum += batch_weights[i];
    wa += batch_weights[i] * batch_values[i];
  }
  if (w_sum < 2.0) return;
  const double mean = wa / w_sum;
  double ss = 0.0;
  for (size_t i = 0; i < batch_values.size(); ++i)
    ss += batch_weights[i] * (batch_values[i] - mean) * (batch_values[i] - mean);
  const double std_dev = std::sqrt(ss / (w_sum - 1.0));
  for (double& a : values) a = (a - mean) / (std_dev + eps);
}

double batch_reward_std(const std::vector<double>& r) {
  if (r.size() < 2) return 0.0;
  double sum = 0.0;
  for (double x : r) sum += x;
  const double mean = sum / double(r.size());
  double ss = 0.0;
  for (double x : r) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / double(r.size() - 1));
}

double overlong_soft_penalty(int64_t length, int64_t l_max, int64_t buffer) {
  ZT_ASSERT(buffer > 0 && buffer < l_max, "buffer %lld, l_max %lld", (long long)buffer, (long long)l_max);
  const int64_t start = l_max - buffer;
  if (length <= start) return 0.0;
  if (length <= l_max) return double(start - length) / double(buffer);
  return -1.0;
}

void apply_overlong(const GrpoConfig& config, int64_t max_new_tokens, const std::vector<int64_t>& lengths,
                    const std::vector<uint8_t>& truncated, std::vector<double>& rewards,
                    std::vector<uint8_t>& in_loss) {
  const size_t n = rewards.size();
  ZT_ASSERT(lengths.size() == n && truncated.size() == n, "sizes %zu %zu %zu", lengths.size(),
            truncated.size(), n);
  in_loss.assign(n, 1);
  if (config.overlong == "soft_penalty") {
    const int64_t l_max = config.resolved_overlong_max_len(max_new_tokens);
    for (size_t i = 0; i < n; ++i)
      rewards[i] += config.overlong_penalty * overlong_soft_penalty(lengths[i], l_max, config.overlong_buffer);
  } else if (config.overlong == "mask_truncated") {
    for (size_t i = 0; i < n; ++i)
      if (truncated[i]) in_loss[i] = 0;
  } else {
    ZT_ASSERT(config.overlong == "none", "unknown grpo.overlong '%s'", config.overlong.c_str());
  }
}

}  // namespace zeroth
