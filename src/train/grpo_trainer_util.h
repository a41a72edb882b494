// Internal helpers shared by the GRPO trainer files (grpo_trainer*.cpp): the model source
// of a run (weights, tokenizer and the files copied into every saved model directory),
// rendering + encoding prompts, and the rollout's sampling/stop parameters.
// Must not: be included outside src/train (the public API is include/zeroth/grpo_trainer.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zeroth/grpo_trainer.h"
#include "zeroth/model_config.h"
#include "zeroth/prompt.h"
#include "zeroth/prompt_data.h"
#include "zeroth/rewards.h"
#include "zeroth/rollout.h"
#include "zeroth/tokenizer.h"
#include "zeroth/train.h"

namespace zeroth {
namespace grpo_detail {

// The prompt of a record as token ids (rendered with `tmpl`, encoded per rollout).
std::vector<int32_t> encode_record(const PromptRecord& rec, const PromptTemplate& tmpl,
                                   const Tokenizer& tok, bool add_special_tokens);

// The fields of one scored completion in the rollout and eval dumps, appended to `o` after
// the caller's leading ones: prompt_index, sample_index, where, source (the record's
// source name in `data`, when it names its sources), prompt (rendered), completion,
// tokens, finish_reason, reward, components (each reward function's value), verdict, kind
// and, for a math prompt, extracted and gold, for a code prompt its tests (the reward
// JSONL schema, so `zeroth reward` can score a dump again); reward_error when a python
// reward call failed, and with `extra_info` the record (what a python reward function
// receives).
void add_completion_fields(nlohmann::ordered_json& o, int64_t prompt_index, int64_t sample_index,
                           const PromptDataset& data, const PromptRecord& rec, const std::string& prompt,
                           const Completion& c, double reward, const RewardResult& r, bool extra_info);

// A python reward function's inputs for a completion of `rec`: its source name in `data`,
// the rendered prompt and the record (RewardSample::source, prompt, extra_info).
void add_python_inputs(RewardSample& s, const PromptDataset& data, const PromptRecord& rec,
                       const PromptTemplate& tmpl);

// One JSON line (with the newline), invalid UTF-8 in model output replaced.
std::string json_line(const nlohmann::ordered_json& o);

// Writes `text` to `path` atomically (io::write_file_atomic).
void write_atomic(const std::string& path, const std::string& text);

// A dump file: `text` to RUN_DIR/rollouts/`name` (the directory created), atomically.
void write_dump(const std::string& run_dir, const std::string& name, const std::string& text);

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

// rl.balance_batch: the trainer rank of each of a step's groups, cost[i] being the work of
// the group with global_index i. Each mini-batch (prompt_shard(n, m, mini_batches) of the
// global indices, what one optimizer step trains on) is balanced on its own, longest
// processing time first: its groups by cost (largest first, ties by index) each go to the
// rank with the least load so far (ties: the lowest rank). Depends only on the costs, not
// on where the groups are, so every layout trains the same shares.
std::vector<int> balance_plan(const std::vector<double>& cost, int ranks, int64_t mini_batches);

// How uneven `owner` spreads the work over the ranks: sum over mini-batches of the
// busiest rank's load / sum over mini-batches of the mean load (1 = even; each optimizer
// step waits for its busiest rank).
double dp_imbalance(const std::vector<double>& cost, const std::vector<int>& owner, int ranks,
                    int64_t mini_batches);

}  // namespace grpo_detail
}  // namespace zeroth
