// Optimizer: the `optim:` config section, learning-rate schedules and AdamW with
// global-norm gradient clipping over a model's ParamSet.
//
// Owns: OptimConfig (its keys, constraints and docs), LrSchedule (a pure function of
// the step), AdamW's fp32 moments (two ParamSets of the parameters' layout), its step
// count, and its checkpoint state. Must not: communicate (gradients arrive already
// all-reduced: grad_sync.h), touch BLAS/CUDA (every computation is a Backend op), or
// know about models beyond the ParamSet layout.
//
// Host synchronisation: AdamW::step reads the squared gradient norm to the host once
// (to derive the clip scale); nothing else in this file waits on the device.
//
// Step numbering: optimizer steps are counted from 1 (the first update is step 1),
// which is also the exponent of the Adam bias corrections.
#pragma once

#include <cstdint>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/config_reflect.h"
#include "zeroth/error.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/tensor.h"

namespace zeroth {

// `optim:` AdamW and its learning-rate schedule. The default lr (3e-4) suits
// pretraining small models; R1-Zero RL fine-tuning uses about 3e-6 (configs/ set it).
struct OptimConfig {
  double lr = 3e-4;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double grad_clip = 1.0;
  std::string schedule = "constant";
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;
  double min_lr_ratio = 0.1;
  std::vector<std::string> frozen;  // regexes over HF tensor names: not updated

  template <class V>
  void visit(V& v) {
    v.field("lr", lr, "Peak learning rate (after warmup); R1-Zero RL uses about 3e-6").min(0);
    v.field("beta1", beta1, "AdamW first-moment decay").min(0).max(0.999999);
    v.field("beta2", beta2, "AdamW second-moment decay").min(0).max(0.999999);
    v.field("eps", eps, "AdamW denominator epsilon").min(0);
    v.field("weight_decay", weight_decay,
            "Decoupled weight decay (times lr); never applied to norms, biases or the router bias")
        .min(0);
    v.field("grad_clip", grad_clip, "Clip the global gradient L2 norm to this (0 = no clipping)")
        .min(0);
    v.field("schedule", schedule,
            "Learning-rate schedule after warmup: constant, linear decay or cosine decay to "
            "min_lr_ratio * lr at total_steps")
        .one_of({"constant", "linear", "cosine"});
    v.field("warmup_steps", warmup_steps, "Steps of linear warmup from 0 to lr").min(0);
    v.field("total_steps", total_steps,
            "Step at which linear/cosine decay reaches the floor (0 = the run's step count)")
        .min(0);
    v.field("min_lr_ratio", min_lr_ratio, "Floor of linear/cosine decay, as a fraction of lr")
        .min(0).max(1);
    v.field("frozen", frozen,
            "Parameters the optimizer leaves as they are: regular expressions (ECMAScript, "
            "matched anywhere in the name) over the HF tensor names, e.g. 'mlp\\.' freezes "
            "every MLP, expert and router, 'embed_tokens' the embedding. Frozen parameters get "
            "no update, no weight decay and no share of the gradient norm; a pattern that "
            "matches no parameter is an error");
  }
  // warmup_steps < total_steps when total_steps > 0 and the schedule decays.
  // A decaying schedule needs total_steps > warmup_steps (inline: the config module
  // parses this section without linking zeroth_train).
  void validate() const {
    for (const std::string& f : frozen) {
      try {
        std::regex re(f);
      } catch (const std::regex_error& e) {
        throw ConfigError(strformat("key 'optim.frozen': expected regular expressions, found '%s' (%s)",
                                    f.c_str(), e.what()));
      }
    }
    if (schedule != "constant" && total_steps > 0 && total_steps <= warmup_steps)
      throw ConfigError(strformat(
          "key 'optim.total_steps': expected more than optim.warmup_steps (%lld) for the '%s' "
          "schedule, found %lld",
          (long long)warmup_steps, schedule.c_str(), (long long)total_steps));
  }
};

enum class LrScheduleKind { Constant, Linear, Cosine };

// The learning rate at optimizer step s (s >= 1):
//   warmup (s <= warmup_steps):  peak * s / warmup_steps
//   then constant:               peak
//   linear / cosine:             p = (s - warmup) / (total - warmup), clamped to [0, 1],
//     linear: peak * (r + (1 - r) * (1 - p)),
//     cosine: peak * (r + (1 - r) * (1 + cos(pi p)) / 2),   r = min_lr_ratio,
//   so the floor peak * r is reached at s = total and kept after it.
struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::Constant;
  double peak_lr = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // resolved (> warmup_steps for linear/cosine)
  double min_lr_ratio = 0.0;

  // From the config; total_steps = 0 there means `run_steps`. Throws ConfigError
  // ("key 'optim.total_steps': ...") when a decaying schedule ends up with
  // total_steps <= warmup_steps.
  static LrSchedule from_config(const OptimConfig& config, int64_t run_steps);
  double lr_at(int64_t step) const;  // step >= 1
};

// Checkpoint state of AdamW: the moments as flat F32 tensors (P) of the parameters'
// layout and the number of steps taken.
struct AdamWState {
  int64_t step = 0;
  Tensor m;  // F32 (P) first moment, on the optimizer's backend
  Tensor v;  // F32 (P) second moment
};

// AdamW on fp32 master weights (PyTorch semantics: decoupled decay lr * wd * param,
// bias-corrected moments), with global-norm clipping (PyTorch clip_grad_norm_:
// scale = grad_clip / (norm + 1e-6) when norm > grad_clip). Entries with
// trainable == false (the router bias) are left alone; entries with
// weight_decay == false (norms, biases) get no decay. Deterministic: the same inputs
// give bit-identical results on a backend (sum_squares has a fixed order).
class AdamW {
 public:
  // Moments: zeroed F32 ParamSets of `model`'s layout on `backend`.
  // Expert parallelism: `shard` is the model's ExpertShard (Model::expert_shard()) and
  // `expert_group` the model's expert group; the global norm then adds the routed
  // experts' squared norms over that group (one host all-reduce per step), so every
  // rank clips by the norm of the whole model.
  AdamW(const OptimConfig& config, const ModelConfig& model, Backend& backend,
        ExpertShard shard = {}, Communicator* expert_group = nullptr);

  // One update of `params` (F32) from `grads` (F32 or BF16), both of the model's layout
  // and already reduced over data-parallel ranks, at learning rate `lr` (from
  // LrSchedule). Returns the pre-clip global L2 norm of the trainable gradients. If that
  // norm is not finite (inf/NaN gradients), nothing is updated, the step count is
  // unchanged and the non-finite norm is returned: the caller decides (log, skip,
  // abort). If `bf16_copy` is given (a BF16 ParamSet of the same layout), it receives
  // the updated trainable weights rounded to bf16.
  float step(ParamSet& params, const ParamSet& grads, double lr, ParamSet* bf16_copy = nullptr);

  int64_t step_count() const { return step_; }
  // HF tensors that optim.frozen leaves as they are.
  int64_t frozen_tensors() const { return frozen_tensors_; }
  const OptimConfig& config() const { return config_; }
  const ParamSet& m() const { return m_; }
  const ParamSet& v() const { return v_; }

  // The state for a checkpoint: views of the moment buffers (not copies) and the step.
  AdamWState state() const;
  // Restores a checkpoint: m and v are F32 (P) tensors on the host or on this backend's
  // device; a different element count or dtype is a CheckpointError naming expected and
  // found; step must be >= 0.
  void load_state(const AdamWState& state);
  // Restores a checkpoint written tensor by tensor (expert parallelism, whose parts
  // hold HF-named moments): fill(name, m, v) writes the moments of each HF-named
  // parameter into m and v (F32 views of this optimizer's buffers on its device; the
  // alignment gaps stay zero). step must be >= 0.
  void load_state_by_name(int64_t step,
                          const std::function<void(const std::string& name, Tensor& m, Tensor& v)>& fill);

 private:
  // A run of adjacent trainable parameters with the same decay: elements
  // [offset, offset + numel) of every flat buffer.
  struct UpdateRange {
    int64_t offset, numel;
    bool decay;
    bool expert;  // routed experts' weights (kept apart under expert parallelism)
  };

  OptimConfig config_;
  Backend& be_;
  std::vector<UpdateRange> ranges_;  // in flat order
  ParamSet m_, v_;
  Communicator* expert_group_ = nullptr;  // size > 1 only
  Tensor norm_sq_;  // F32 (2) on the backend: the others' and (expert parallelism) the experts'
  int64_t step_ = 0;
  int64_t frozen_tensors_ = 0;
};

}  // namespace zeroth
