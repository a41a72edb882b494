// The GRPO trainer loop of `zeroth train`: roll out G completions per prompt with the
// policy, score them with the rule-based rewards, group-relative advantages, the clipped
// policy loss (grpo.h) over ppo_epochs x mini_batches optimizer steps, metrics, held-out
// evaluation, checkpoints and resume, data parallel over a communicator; an optional
// cold-start SFT stage runs first in the same run directory. docs/training.md
// ("zeroth train") describes one step, the metrics and the run directory.
//
// Owns: the order of a step, packing prompt + completion into
// (b, T) training batches, the global reductions of rewards/counts/statistics, the
// reference model and its resets, GRPO checkpoint extras (reference model, the
// grpo_state.json completion marker) and held-out evaluation (pass@1, pass@k).
// Must not: parse the command line (src/cli/cmd_train.cpp, cmd_eval.cpp do), pick the
// communicator or backend (passed in), or implement the GRPO math (grpo.h), sampling
// (rollout.h), rewards (rewards.h), the optimizer (optim.h) or collectives (grad_sync.h).
//
// Data parallelism: every rank draws the same global prompt batch and keeps its shard
// (prompt_shard: a group of G never split); advantages are per group, so local; every
// metric, loss normaliser and expert load is summed over the ranks; gradients go through
// GradSync. Mini-batch m of a step is the same set of groups whatever the rank count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "zeroth/config.h"
#include "zeroth/metrics.h"
#include "zeroth/prompt_data.h"
#include "zeroth/rewards.h"
#include "zeroth/run_stop.h"

namespace zeroth {

class Backend;
class Communicator;
class Model;
class Tokenizer;

// The configuration of `zeroth train` / `zeroth eval` is the whole Config (config.h):
// its rl:, prompts:, rewards:, eval:, cold_start:, rollout: and grpo: sections are the
// RL ones.
using TrainConfig = Config;

// load_config_as<TrainConfig> (defaults: chain, --set overrides). Throws ConfigError.
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides);
// Every key as YAML (load_train_config of it gives the same config).
std::string dump_train_config_yaml(const TrainConfig& config);

struct GrpoTrainOptions {
  std::string resume_dir;  // continue this run directory from its newest GRPO checkpoint
  bool show_progress = true;
};

struct GrpoTrainResult {
  std::vector<MetricMap> steps;  // one per step run by this call (global values)
  std::vector<MetricMap> evals;  // eval rows (with "step" added), in order
  std::string final_dir;         // run_dir/final (written only when the run was not stopped)
  RunStop stop;                  // stopped early (run_stop.h); stop.where "cold start" when in it
};

// Runs config.train.steps GRPO steps (after the cold start, if configured) on `backend`
// with data parallelism over `comm` (every rank calls it with the same config). Throws
// ConfigError for settings that do not fit (no prompts, a model too short for
// rollout.max_len, ...), DataError for bad data, CheckpointError for a bad resume dir.
GrpoTrainResult run_grpo_training(const TrainConfig& config, Communicator& comm, Backend& backend,
                                  const GrpoTrainOptions& options = {});

// Held-out results over a set of prompts, or over the prompts of one of its sources
// (global over the ranks).
struct EvalSourceResult {
  std::string name;                // the source's name (prompt_source_name); "" for the whole set
  int64_t prompts = 0;
  double accuracy = 0.0;           // greedy pass@1
  double format_rate = 0.0;        // greedy completions passing the format check
  double response_len_mean = 0.0;  // greedy completions, tokens
  double pass_at_k = 0.0;          // share of prompts with at least one correct of k
  double sampled_accuracy = 0.0;   // share of correct samples
  int64_t maj_prompts = 0;         // math prompts among the k-sampled ones (maj@k counts these)
  double maj_at_k = 0.0;           // share of them whose majority answer is correct
  std::vector<double> pass_at;     // eval.pass_at's unbiased pass@k estimates, in its order
};

// Held-out results: those of the whole set, and per source.
struct EvalResult : EvalSourceResult {
  bool greedy = false;  // the greedy pass ran (eval.greedy)
  int64_t k = 0;        // pass@k samples per prompt (0: not run)
  std::vector<int64_t> pass_at_ks;  // the k of each pass_at estimate (eval.pass_at; empty when k is 0)
  // The same per source, in source order, when the evaluated prompts come from two or
  // more sources (empty otherwise); a source none of whose prompts was evaluated is left out.
  std::vector<EvalSourceResult> sources;
  // k > 0: each evaluated prompt's correct samples (of k), in prompt order (all ranks'):
  // what `zeroth pass-rate` filters the training prompts by.
  std::vector<int64_t> prompt_correct;
  // eval_accuracy, eval_format_rate, eval_pass_at_k, eval_pass_at_K per pass_at_ks, ...;
  // with `sources` also eval_accuracy/NAME, eval_pass_at_k/NAME, ... per source.
  MetricMap metrics() const;
};

// The unbiased pass@k estimate of one prompt with c correct of n samples (Chen et al.
// 2021): 1 - C(n - c, k) / C(n, k), the chance that k of the n drawn without replacement
// hold a correct one, computed as 1 - prod_{i = n - c + 1}^{n} (1 - k / i). Needs
// 1 <= k <= n and 0 <= c <= n.
double pass_at_k_estimate(int64_t n, int64_t c, int64_t k);

// Majority voting (maj@k, "cons@k" in the DeepSeek-R1 report) over one prompt's sampled
// answers (the extracted final answers, "" where a sample gave none: it does not vote).
// Answers are grouped by `same` (math equivalence: "0.5" and "\frac{1}{2}" are one
// answer; identical strings are one answer without asking), each group represented by its
// first member; the largest group wins, a tie goes to the group whose first member comes
// first. Returns the index of the winning group's first member, or -1 when no sample has
// an answer.
int64_t majority_answer(const std::vector<std::string>& answers,
                        const std::function<bool(const std::string&, const std::string&)>& same);

// Evaluates `model` (its current weights) on `prompts` (each rank its shard of the first
// eval.max_prompts) per config.eval, with config.rollout's template, stop rules and
// lengths. Deterministic: draws depend on the eval seed and the prompt index only.
// `dump` (when given): every generation as a JSON line (mode greedy/sampled, the prompt,
// completion, rewards, correct, format_ok; docs/training.md "Eval dumps"), greedy lines
// first, each pass in prompt order, on rank 0 of `comm` ("" on the others). Collective.
// `abort` (optional): asked during generation (generate()'s hook); when it says true on any
// rank, every rank throws GenerationAborted after its generation (one more all-reduce).
// `composer` (optional): the rewards to score with, built from config.rewards with the
// rollout's max_new_tokens resolved (zeroth train passes its own, so a python function's
// workers and the code sandbox are not started again for every eval); null: built here.
EvalResult evaluate_model(Model& model, const Tokenizer& tokenizer, const TrainConfig& config,
                          const PromptDataset& prompts, Communicator& comm, std::string* dump = nullptr,
                          const std::function<bool()>& abort = nullptr,
                          const RewardComposer* composer = nullptr);

// The newest checkpoints/step_N of run_dir that holds grpo_state.json (written last, so
// only complete GRPO checkpoints count); "" when there is none.
std::string latest_grpo_checkpoint(const std::string& run_dir);

}  // namespace zeroth
