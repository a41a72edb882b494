// Length- and repetition-shaping rewards for long reasoning traces, computed from a
// completion's token count, its correctness and (for the group penalty) the other
// completions of its prompt:
//
//   cosine        Yeo et al. 2025, "Demystifying Long Chain-of-Thought Reasoning in
//                 LLMs" (open-r1's cosine_scaled_reward): correctness scaled along a
//                 half cosine from a short-trace value to a long-trace value, so short
//                 correct traces are preferred and long wrong ones penalised less.
//   length group  Kimi k1.5 (sec. 2.3.3): within a prompt's group, lambda =
//                 0.5 - (len - min_len) / (max_len - min_len); correct traces get
//                 lambda, wrong ones min(0, lambda); a group of equal lengths gets 0.
//
// The n-gram repetition penalty lives beside the other text checks (format_reward.h).
// Owns: the formulas. Must not: know about configs or compose rewards (rewards.h does).
// Never throws; constant or linear time.
#pragma once

#include <cstdint>
#include <vector>

namespace zeroth {

// The four end values of the cosine reward and the length (tokens) at which a trace
// counts as long. Defaults are open-r1's.
struct CosineLengthParams {
  double correct_short = 1.0;  // a correct trace of length 0
  double correct_long = 0.5;   // a correct trace of length >= max_len
  double wrong_short = -1.0;   // a wrong trace of length 0
  double wrong_long = -0.5;    // a wrong trace of length >= max_len
  int64_t max_len = 1000;      // tokens; must be positive
};

// long + (short - long) * (1 + cos(pi * min(length / max_len, 1))) / 2, with the
// correct or wrong pair of end values. Negative lengths count as 0.
double cosine_length_reward(bool correct, int64_t length, const CosineLengthParams& p);

// Kimi k1.5's length penalty for one group: one value per completion, each in
// [-0.5, 0.5]. `lengths` and `correct` have one entry per completion (same size).
std::vector<double> group_length_penalty(const std::vector<int64_t>& lengths, const std::vector<uint8_t>& correct);

}  // namespace zeroth
