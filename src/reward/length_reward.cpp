// Length-shaping rewards (length_reward.h): the cosine length-scaled correctness
// reward and Kimi k1.5's group length penalty.
#include "zeroth/length_reward.h"

#include <algorithm>
#include <cmath>

namespace zeroth {

double cosine_length_reward(bool correct, int64_t length, const CosineLengthParams& p) {
  const double progress =
      p.max_len > 0 ? std::min(1.0, double(std::max<int64_t>(length, 0)) / double(p.max_len)) : 1.0;
  const double at_short = correct ? p.correct_short : p.wrong_short;
  const double at_long = correct ? p.correct_long : p.wrong_long;
  return at_long + 0.5 * (at_short - at_long) * (1.0 + std::cos(M_PI * progress));
}

std::vector<double> group_length_penalty(const std::vector<int64_t>& lengths, const std::vector<uint8_t>& correct) {
  std::vector<double> out(lengths.size(), 0.0);
  if (lengths.empty()) return out;
  const auto [lo, hi] = std::minmax_element(lengths.begin(), lengths.end());
  if (*lo == *hi) return out;
  const double min_len = double(*lo), span = double(*hi) - double(*lo);
  for (size_t i = 0; i < lengths.size(); ++i) {
    const double lambda = 0.5 - (double(lengths[i]) - min_len) / span;
    out[i] = i < correct.size() && correct[i] ? lambda : std::min(0.0, lambda);
  }
  return out;
}

}  // namespace zeroth
