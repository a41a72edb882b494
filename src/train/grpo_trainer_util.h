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

}  // namespace grpo_detail
}  // namespace zeroth
