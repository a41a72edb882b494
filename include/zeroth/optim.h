// Optimizer: the `optim:` config section, learning-rate schedules and AdamW with
// global-norm gradient clipping over a model's ParamSet.
//
// Owns: OptimConfig (its keys, constraints and docs), LrSchedule (a pure function of
// the step), AdamW's fp32 moments (of the parameters' layout, or of this rank's ZeRO-1
// share of it), its step count, and its checkpoint state. Must not: communicate beyond
// one host all-reduce of the squared gradient norm (gradients arrive already reduced:
// grad_sync.h), touch BLAS/CUDA (every computation is a Backend op), or
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

// Checkpoint state of AdamW: the moments as flat F32 tensors and the number of steps
// taken. Without ZeRO the moments have the parameters' layout (P); with it (OptimizerShard)
// they are the owned ranges one after another.
struct AdamWState {
  int64_t step = 0;
  Tensor m;  // F32 on the optimizer's backend: first moment
  Tensor v;  // F32: second moment
};

// ZeRO stage 1 (run.zero_stage 1): the part of the model whose moments this optimizer
// keeps and whose parameters it updates; GradSync::owned() of a sharded GradSync.
struct OptimizerShard {
  const ParamSet* layout = nullptr;  // the parameters' layout (names and offsets are read)
  std::vector<FlatRange> owned;      // sorted, disjoint ranges of layout->flat
  // The ranks whose owned ranges hold the model once between them (the data-parallel
  // group): the global gradient norm is the sum of their owned parts' squared norms.
  Communicator* group = nullptr;
};

// The moments of one HF-named parameter, or of the part of it an optimizer holds: for
// checkpoints, which store moments by name so that any expert-parallel or ZeRO layout can
// read them.
struct MomentPiece {
  const std::string* name = nullptr;  // the HF name
  int64_t numel = 0;                  // the parameter's elements
  bool expert = false;                // a routed expert's weight
  int64_t offset = 0;                 // the parameter's first element in the layout's flat buffer
  int64_t begin = 0;                  // the first element of the parameter held here
  Tensor m, v;                        // F32 (n) views of the optimizer's buffers
};

// AdamW on fp32 master weights (PyTorch semantics: decoupled decay lr * wd * param,
// bias-corrected moments), with global-norm clipping (PyTorch clip_grad_norm_:
// scale = grad_clip / (norm + 1e-6) when norm > grad_clip). Entries with
// trainable == false (the router bias) are left alone; entries with
// weight_decay == false (norms, biases) get no decay. Deterministic: the same inputs
// give bit-identical results on a backend (sum_squares has a fixed order).
class AdamW {
 public:
  // Moments: zeroed F32 buffers of `model`'s layout on `backend`.
  // Expert parallelism: `shard` is the model's ExpertShard (Model::expert_shard()) and
  // `expert_group` the model's expert group; the global norm then adds the routed
  // experts' squared norms over that group (one host all-reduce per step), so every
  // rank clips by the norm of the whole model.
  // ZeRO-1: with `zero`, the moments cover zero->owned only, step() updates only those
  // ranges of the parameters (the caller all-gathers them afterwards: GradSync) and the
  // norm is summed over zero->group (which then replaces the expert group's sum).
  AdamW(const OptimConfig& config, const ModelConfig& model, Backend& backend,
        ExpertShard shard = {}, Communicator* expert_group = nullptr,
        const OptimizerShard* zero = nullptr);

  // One update of `params` (F32) from `grads` (F32 or BF16), both of the model's layout
  // and already reduced over data-parallel ranks (ZeRO-1: their owned ranges), at
  // learning rate `lr` (from LrSchedule). Returns the pre-clip global L2 norm of the
  // trainable gradients. If that norm is not finite (inf/NaN gradients), nothing is
  // updated, the step count is unchanged and the non-finite norm is returned: the caller
  // decides (log, skip, abort). If `bf16_copy` is given (a BF16 ParamSet of the same
  // layout), it receives the updated trainable weights rounded to bf16.
  float step(ParamSet& params, const ParamSet& grads, double lr, ParamSet* bf16_copy = nullptr);

  int64_t step_count() const { return step_; }
  // HF tensors that optim.frozen leaves as they are.
  int64_t frozen_tensors() const { return frozen_tensors_; }
  const OptimConfig& config() const { return config_; }
  bool sharded() const { return sharded_; }
  // Elements of each moment buffer held here: the layout's P, or the owned ranges' sum.
  int64_t state_numel() const { return m_.numel(); }
  // Elements of the parameters' layout (P).
  int64_t layout_numel() const { return layout_numel_; }

  // The state for a checkpoint: views of the moment buffers (not copies) and the step.
  AdamWState state() const;
  // Restores a checkpoint written without ZeRO and expert parallelism (not for a sharded
  // optimizer): m and v are F32 (P) tensors on the host or on this backend's device; a
  // different element count or dtype is a CheckpointError naming expected and found;
  // step must be >= 0.
  void load_state(const AdamWState& state);
  // The moments by HF name: fn once per (parameter, contiguous part of it held here), in
  // flat order; the alignment gaps between parameters are not visited.
  void for_each_piece(const std::function<void(const MomentPiece&)>& fn) const;
  // Restores a checkpoint written by name (expert parallelism or ZeRO): fill receives
  // each piece for_each_piece would visit, with m and v zeroed, and writes its moments.
  // step must be >= 0.
  void load_state_by_name(int64_t step, const std::function<void(const MomentPiece&)>& fill);

 private:
  // A run of adjacent trainable parameters with the same decay: elements
  // [offset, offset + numel) of the parameters and gradients, [local, local + numel) of
  // the moment buffers.
  struct UpdateRange {
    int64_t offset, numel, local;
    bool decay;
    bool expert;  // routed experts' weights (kept apart under expert parallelism)
  };
  // A parameter of the layout: for checkpoints by name.
  struct Slot {
    std::string name;
    int64_t offset, numel;
    bool expert;
  };
  // A held range of the layout: flat [offset, offset + numel) is m_/v_ [local, ...).
  struct Piece {
    int64_t offset, numel, local;
  };

  void check_layout(const ParamSet& ps, const char* what) const;
  void visit_pieces(const std::function<void(const Slot&, int64_t begin, int64_t n, int64_t local)>& fn) const;

  OptimConfig config_;
  Backend& be_;
  bool sharded_ = false;
  int64_t layout_numel_ = 0;         // P
  std::vector<UpdateRange> ranges_;  // in flat order
  std::vector<Slot> slots_;          // every parameter, in flat order
  std::vector<Piece> pieces_;        // in flat order
  Tensor m_, v_;                     // F32, the held pieces one after another
  Communicator* expert_group_ = nullptr;  // size > 1 only (not with ZeRO)
  Communicator* zero_group_ = nullptr;    // ZeRO-1
  Tensor norm_sq_;  // F32 (2) on the backend: the others' and (expert parallelism) the experts'
  int64_t step_ = 0;
  int64_t frozen_tensors_ = 0;
};

}  // namespace zeroth
