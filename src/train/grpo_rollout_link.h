// Internal to the GRPO trainer (grpo_run.h): the groups of one step's rollout and
// how rollout workers hand them to the trainer ranks (rl.rollout_ranks > 0).
//
// Owns: the Group record, the step's rollout summary (StepRollout), their byte encoding
// and the rollout -> trainer transfer over the world communicator.
// Must not: generate, score or train (grpo_collect.cpp, grpo_update.cpp), or be included outside src/train.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "zeroth/data.h"
#include "zeroth/model_params.h"
#include "zeroth/rollout.h"

namespace zeroth {

class Backend;
class Communicator;

namespace grpo_detail {

// One prompt's G completions and what the trainer needs of them.
struct Group {
  int64_t global_index = 0;           // position among the step's trained groups (all ranks)
  std::vector<int32_t> prompt;        // prompt ids
  std::vector<Completion> completions;  // (G)
  std::vector<double> advantage;      // (G)
  std::vector<uint8_t> in_loss;       // (G) 0 = masked out (mask_truncated)
  // Per completion token, filled by the old-log-prob pass when it runs: the trainer's
  // log-prob at the rollout's weights, the rollout-correction weight, 1/0 kept/rejected.
  std::vector<std::vector<float>> old_logprob, is_weight, keep;
};

// One step's rollout: the groups a rank trains on and the step-wide rollout figures
// (reduced over the ranks that generated them).
struct StepRollout {
  std::vector<Group> groups;  // this rank's, in global_index order
  std::vector<double> sums;   // RolloutSums of grpo_run.h (global)
  double len_max = 0;         // longest completion (global)
  int64_t kept_global = 0;    // groups trained on, over all ranks
  int64_t rounds = 0;         // sampling rounds (dynamic sampling)
  double rollout_s = 0, reward_s = 0;  // generation and scoring time (first rollout rank)
  double idle_s = 0;          // first rollout rank: waiting for weights before this batch
  DataCursor cursor;          // the prompt sampler after this step's batches
  std::vector<int64_t> skipped;  // rl.skip_solved: the sampler's skipped records then (ascending)
  double mem_rss_gib = 0, mem_peak_gib = 0;  // rollout workers: add_memory_metrics over them (0: unread)
};

// The bytes of `r` restricted to the groups with global_index in [begin, begin + count)
// (a trainer's share), and back. decode_step_rollout asserts on a malformed buffer (it
// only ever reads what encode_step_rollout wrote in the same binary).
std::vector<uint8_t> encode_step_rollout(const StepRollout& r, int64_t begin, int64_t count);
StepRollout decode_step_rollout(const std::vector<uint8_t>& bytes);

// Rollout workers are the last R ranks of `world`, the trainers the first world.size() - R.
// send: every worker sends each trainer t the groups of prompt_shard(kept_global, t,
// trainers) it holds (and the step figures). recv: a trainer gathers its groups from every
// worker (ordered by global_index) and the figures of the first one. Tensors for the
// messages come from `backend` (the world communicator's device). Blocking; every message
// goes from a worker to a trainer, in (worker, trainer) order, so nothing can deadlock.
void send_step_rollout(Communicator& world, Backend& backend, int rollout_ranks, const StepRollout& mine);
StepRollout recv_step_rollout(Communicator& world, Backend& backend, int rollout_ranks);

// rl.balance_batch: moves groups between the ranks of `team` so that this rank ends up with
// exactly the groups g with owner[g.global_index] == team.rank() (in global_index order).
// `owner` has one entry per global index of the step and is the same on every rank; the
// groups arrive with their trainer fields (encode_step_rollout's), before the old-log-prob
// pass. Two all_to_all_v calls over `team` (word counts, then the words); tensors from
// `backend`. Collective over `team`.
void move_groups(Communicator& team, Backend& backend, std::vector<Group>& groups, const std::vector<int>& owner);

// Every rank's `text` concatenated in rank order, on rank 0 of `team` ("" on the others).
// Two all_gather calls (the byte counts, then the texts padded to the longest); tensors
// from `backend`. Collective over `team`.
std::string gather_text(Communicator& team, Backend& backend, const std::string& text);

// The policy from the trainers to the rollout workers, once per step. Without expert
// parallelism trainer 0 broadcasts its flat weights to the workers. With it (the trainers'
// P > 1) trainer q of the first expert group (world rank q < P) broadcasts its shard over
// a communicator of its own and the workers; a worker receives each shard into one
// scratch buffer and copies its tensors into the whole model by name (the dense ones from
// shard 0 only). Construction is collective over `world`.
class PolicyBroadcast {
 public:
  PolicyBroadcast(Communicator& world, int rollout_ranks, int expert_parallel, const ModelConfig& config,
                  Backend& backend);
  ~PolicyBroadcast();
  // Trainer q < P: sends `params` (its shard); other trainers: returns at once. Worker:
  // receives into `params` (the whole model). Blocking.
  void run(ParamSet& params);

 private:
  const ModelConfig& config_;
  Backend& backend_;
  bool worker_ = false;
  int parts_ = 1;
  std::vector<std::unique_ptr<Communicator>> comms_;  // [q]: trainer q + the workers (or null)
  std::unique_ptr<ParamSet> scratch_;                 // a worker's receive buffer (P > 1)
  std::vector<std::vector<std::pair<Tensor, Tensor>>> copies_;  // [q]: (scratch view, model view)
};

}  // namespace grpo_detail
}  // namespace zeroth
