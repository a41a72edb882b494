// Internal to the GRPO trainer: GrpoRun, the state of one `zeroth train` run between
// steps, and the micro-batch record of its policy update.
//
// Where things live:
//   grpo_trainer.cpp  setup (weights, roles, models, optimizer, data, engine), the step
//                     loop, a rollout worker's loop, eval, metrics, checkpoints
//   grpo_collect.cpp  one step's rollout: generate, score, advantages, dynamic sampling
//   grpo_update.cpp   one step's policy update: micro-batches, the old-log-prob pass,
//                     the loss, backward, all-reduce, AdamW, the router-bias update
// Must not: be included outside src/train (the public API is include/zeroth/grpo_trainer.h),
// or implement the GRPO math (grpo.h), sampling (rollout.h), rewards (rewards.h), AdamW
// (optim.h) or the gradient all-reduce (grad_sync.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "grpo_rollout_link.h"
#include "grpo_trainer_util.h"
#include "zeroth/grpo.h"
#include "zeroth/grpo_trainer.h"
#include "zeroth/metrics.h"
#include "zeroth/optim.h"
#include "zeroth/process_groups.h"
#include "zeroth/prompt.h"
#include "zeroth/prompt_data.h"
#include "zeroth/rewards.h"
#include "zeroth/rollout.h"
#include "zeroth/train.h"

namespace zeroth {

class AdamW;
class Backend;
class Communicator;
class GradSync;
class Model;
class ModelInference;

namespace grpo_detail {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

using SeqRef = std::pair<const Group*, int64_t>;  // (group, sample)

// Real tokens of a sequence's row: its prompt and completion but the last completion
// token (only a target).
int64_t row_length(const SeqRef& r);

// The host arrays of one micro-batch: the plan's sequences as prompt + completion rows
// padded to plan.T. Completion token t of a sequence with a P-token prompt is predicted
// at position P + t - 1 (at()); mask is 1 there for samples in the loss (and, after the
// old-log-prob pass of a mask mode, for the tokens it kept).
struct MicroBatch {
  int64_t S = 0, T = 0, N = 0;
  std::vector<int32_t> ids, targets, seq;  // (S, T) each
  std::vector<float> mask, rollout_lp;     // (S, T) each
  std::vector<double> adv;                 // (S)
  std::vector<int64_t> lengths;            // (S) real tokens of each row
  size_t at(int64_t s, int64_t P, int64_t t) const { return size_t(s * T + P + t - 1); }
};

MicroBatch build_micro_batch(const std::vector<SeqRef>& seqs, const MicroPlan& plan, int32_t pad_id);

// One row of one padding token and no target: what an expert-parallel rank runs when
// other ranks of its expert group have more micro-batches (its forward and backward only
// take part in the experts' exchange; the row has no loss and no expert load).
MicroBatch empty_micro_batch(int32_t pad_id);

// Sums over every sampled completion of a step (all sampling rounds), all-reduced: the
// fixed ones, then one per reward function, then kPerSource per prompt source (when the
// training prompts come from two or more sources). kAdv, kAdv2, kAdvAbs and kAdvSamples
// are over the trained completions only (the advantages the loss uses).
struct RolloutSums {
  enum : size_t { kSamples, kReward, kReward2, kCorrect, kFormat, kLen, kTrunc, kAdv, kAdv2, kAdvAbs,
                  kZeroGroups, kGroups, kMasked, kLenCorrect, kSolvedAll, kSolvedNone, kReflect, kReflectCorrect,
                  kAdvSamples, kKlSum, kKlTokens, kRewardErrors, kFixed };
  // Per source: samples, reward, correct, format ok, tokens.
  enum : size_t { kSrcSamples, kSrcReward, kSrcCorrect, kSrcFormat, kSrcLen, kPerSource };
  std::vector<double> v;
  const size_t components, sources;
  RolloutSums(size_t components_, size_t sources_)
      : v(kFixed + components_ + kPerSource * sources_, 0.0), components(components_), sources(sources_) {}
  double& source(size_t s, size_t what) { return v[kFixed + components + kPerSource * s + what]; }
};

// RolloutSums' components: each reward function's value, then a sum and a count per
// rewards.python.metrics key.
inline size_t rollout_components(const RewardsConfig& r) {
  return r.functions.size() + 2 * (r.has_python() ? r.python.metrics.size() : 0);
}

// What one step's policy update measured, reduced over the trainers.
struct StepUpdate {
  GrpoLossStats stats;
  MismatchStats mismatch;
  bool has_mismatch = false;  // the trainer's log-probs at the rollout's weights were computed
  double loss_sum = 0, aux_sum = 0;  // over optimizer steps
  double grad_norm = 0, lr = 0;      // of the last optimizer step
  double trained_tokens = 0;
  int64_t opt_steps = 0;
  double pad_tokens = 0, row_tokens = 0;  // padding and all row positions of the micro-batches
  double empty_micro = 0;                 // expert parallelism: empty micro-batches run
  double dp_imbalance = 0;                // > 1 trainer rank: dp_imbalance of the shares trained
  std::vector<std::vector<int64_t>> loads;  // (MoE layers, experts) of the last optimizer step
};

// One GRPO run: built by the constructor (collective over `comm`), then run() once.
class GrpoRun {
 public:
  GrpoRun(const TrainConfig& cfg, Communicator& comm, Backend& backend, const GrpoTrainOptions& options);
  ~GrpoRun();
  GrpoRun(const GrpoRun&) = delete;
  GrpoRun& operator=(const GrpoRun&) = delete;

  GrpoTrainResult run();

 private:
  // The prompt sources the step metrics are broken down by: all training sources when
  // there are two or more, else none.
  size_t metric_sources() const {
    return data_.train.source_names.size() >= 2 ? data_.train.source_names.size() : 0;
  }
  // grpo_trainer.cpp
  void log_setup() const;
  void run_worker();
  // `stoppable`: a stop signal during its generation throws GenerationAborted on every rank
  // (nothing logged).
  void run_eval(int64_t step, bool stoppable = false);
  // The abort hook of a stoppable generation of `step`: true once a stop signal came. On
  // `first_rank`, when `test_step` (ZEROTH_TEST_SIGNAL_IN_*) is `step`, it raises SIGUSR1
  // itself on its third call (a signal in mid-generation, for the tests).
  static std::function<bool()> stop_hook(int64_t test_step, int64_t step, bool first_rank);
  MetricMap step_metrics(const StepRollout& ro, const StepUpdate& up, double train_s, double step_s,
                         double wait_s, double sync_s) const;
  // eval_pending: the eval of `step` is due but skipped (a stop); the resume runs it.
  void save_checkpoint(int64_t step, const DataCursor& cursor, const std::vector<int64_t>& skipped,
                       bool eval_pending = false);
  // grpo_collect.cpp
  StepRollout collect(int64_t step);
  // Thrown by collect() on every generating rank when a stop signal came during the step's
  // rollout (colocated runs past their first step): the sampler is back where the step
  // began, and nothing of the step has been kept.
  struct RolloutStopped {
    int signal = 0;  // the stop signal (agreed over the generating ranks)
  };
  std::vector<double> sequence_kl(const std::vector<std::vector<int32_t>>& prompts, const std::vector<Completion>& outs);
  // grpo_update.cpp
  double balance(std::vector<Group>& kept, int64_t kept_global);
  StepUpdate update(int64_t step, std::vector<Group>& kept, int64_t kept_global);
  std::vector<float> logprobs(Model& m, const MicroBatch& mbt, Tensor& ids, Tensor& targets, Tensor* entropy);
  void upload(const MicroBatch& mbt, Tensor& ids, Tensor& targets);
  void empty_pass(Model& m, bool backward);
  int64_t extra_micro_batches(size_t mine, StepUpdate& up);
  void old_logprob_pass(std::vector<Group>& kept, int64_t T, StepUpdate& up);

  const TrainConfig& cfg_;
  Communicator& comm_;
  Backend& backend_;
  const GrpoTrainOptions options_;
  const int64_t B_, G_, steps_;  // prompts and samples per step, steps
  int rank_ = 0, world_ = 1;

  // Where the weights come from: a GRPO checkpoint (resume), the cold start, model.init.
  std::string resume_ckpt_;  // "" = a fresh run
  int64_t last_checkpoint_step_ = -1;  // the newest checkpoint of this run (-1: none)
  int64_t test_signal_step_ = 0;       // ZEROTH_TEST_SIGNAL_IN_ROLLOUT (tests): SIGUSR1 in that step's rollout
  int64_t test_eval_signal_step_ = 0;  // ZEROTH_TEST_SIGNAL_IN_EVAL (tests): SIGUSR1 in that step's eval
  TrainerState start_;
  bool eval_pending_ = false;  // the resumed checkpoint's eval was skipped by a stop
  std::string init_;
  ModelSource src_;

  // Roles. Colocated (rl.rollout_ranks 0): every rank generates and trains. Else the last
  // R ranks are rollout workers (generate and score with a gradient-free copy of the
  // policy) and the others trainers; trainer 0 broadcasts the policy to the workers.
  int R_ = 0, lag_ = 0;
  bool split_ = false, worker_ = false, trains_ = true;
  std::unique_ptr<Communicator> role_comm_;
  std::unique_ptr<PolicyBroadcast> weights_;  // trainers -> workers
  Communicator* team_ = nullptr;              // the ranks of this rank's role (all, colocated)
  ProcessGroups pg_;
  DType compute_ = DType::F32;

  std::unique_ptr<Model> model_;   // the policy (a worker: its gradient-free copy)
  std::unique_ptr<Model> behind_;  // rl.rollout_lag 1 on trainers: the policy one step behind
  std::unique_ptr<Model> ref_;     // the frozen reference (only when the loss has a KL term)
  bool lagged_auto_ = false, trainer_old_ = false;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<GradSync> grad_sync_;
  LrSchedule schedule_;

  std::unique_ptr<PromptTemplate> tmpl_;
  PromptData data_;
  uint64_t fingerprint_ = 0;
  std::unique_ptr<PromptSampler> sampler_;
  KvCachePlan plan_;
  std::unique_ptr<ModelInference> engine_;  // the generating ranks' (none on trainers with workers)
  SamplingParams sampling_;
  StopParams stop_;
  float temperature_ = 1.0f;
  std::unique_ptr<RewardComposer> composer_;
  int32_t pad_id_ = 0;
  std::unique_ptr<MicroBatch> empty_mbt_;  // empty_micro_batch(pad_id_)

  std::unique_ptr<MetricsWriter> metrics_;
  GrpoTrainResult result_;

  // rl.save_best: the best eval value so far and its step (-1: none yet), and whether a
  // missing metric was reported.
  double best_value_ = 0;
  int64_t best_step_ = -1;
  // The KL coefficient in use: grpo.kl_coef, or with grpo.kl_target the adaptive
  // controller's value (grpo_state.json "kl_coef"), the same on every trainer.
  double kl_coef_ = 0;
  bool best_missing_warned_ = false;
  void update_best(int64_t step, const MetricMap& eval_row);
};

}  // namespace grpo_detail
}  // namespace zeroth
