// Internal helpers shared by the GRPO trainer files (grpo_trainer*.cpp): the model source
// of a run (weights, tokenizer and the files copied into every saved model directory),
// rendering + encoding prompts, and the rollout's sampling/stop parameters.
// Must not: be included outside src/train (the public API is include/zeroth/grpo_trainer.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "zeroth/grpo_trainer.h"
#include "zeroth/model_config.h"
#include "zeroth/prompt.h"
#include "zeroth/rollout.h"
#include "zeroth/tokenizer.h"
#include "zeroth/train.h"

namespace zeroth {
namespace grpo_detail {

// The prompt of a record as token ids (rendered with `tmpl`, encoded per rollout).
std::vector<int32_t> encode_record(const PromptRecord& rec, const PromptTemplate& tmpl,
                                   const Tokenizer& tok, bool add_special_tokens);

// The rollout's sampling parameters; rollout.seed 0 derives the seed from run.seed
// (stream "rollout").
SamplingParams rollout_sampling(const TrainConfig& config);

// max over MoE layers of max load / mean load (1 = even; 0 without MoE layers).
double max_expert_imbalance(const std::vector<std::vector<int64_t>>& loads);

// One micro-batch: positions in a list of sequences, and the length its rows are padded to.
struct MicroPlan {
  std::vector<size_t> idx;
  int64_t T = 0;
};

// The micro-batches of sequences whose rows hold `lengths` real tokens. tokens = 0 (the
// default): runs of `micro` sequences (0 = all) in order, each padded to T_step (the
// step's longest row, over all ranks). tokens > 0 (rl.micro_batch_tokens): the sequences
// by length, longest first (ties in order), packed greedily while rows x the longest
// row stays within `tokens` (and at most `micro` rows when micro > 0), each padded to its
// own longest row; a row longer than `tokens` gets a micro-batch of its own.
std::vector<MicroPlan> plan_micro_batches(const std::vector<int64_t>& lengths, int64_t micro, int64_t tokens,
                                          int64_t T_step);

}  // namespace grpo_detail
}  // namespace zeroth
