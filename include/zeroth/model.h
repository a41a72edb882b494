// Model: the DeepSeek-V3 transformer's forward and backward (llm.c style: explicit
// layers, no autograd), on any Backend.
//
// Owns: the weights and gradients (two ParamSets of one layout), the activation
// buffers for one (B, T) (allocated at the first forward of a shape and reused), the
// order of layers in forward and backward, RoPE tables, token log-probabilities and
// cross-entropy on the logits, MoE routing statistics, the aux-loss-free router-bias
// update and the optional sequence-wise balance loss.
// Must not: touch BLAS/CUDA (every computation is a Backend op), communicate except
// through the expert group it was built with (callers all-reduce gradients and expert
// loads), own optimizer state or training settings.
//
// Expert parallelism: built with an expert group of P > 1 ranks, the model holds only
// its shard of every MoE layer's routed experts (ExpertShard::of(config, rank, P); every
// other parameter whole) and forward/backward are collective over the group: each MoE
// layer sends its token rows to the ranks that hold their experts and gets the outputs
// back (src/model/layer_moe_ep.cpp). The ranks of a group may hold different batches and
// shapes, but must call forward/backward the same number of times, in the same order.
//
// Host synchronisation: every MoE layer copies its expert counts to the host in the
// forward (to size the grouped GEMMs); the balance loss (alpha > 0) copies the router
// scores and choices to the host; cross_entropy_step returns a host float. Nothing else
// waits on the device.
//
// Shapes: B batch, T sequence, N = B*T tokens, C hidden, V vocab, E routed experts,
// k experts per token.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "zeroth/backend.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/tensor.h"

namespace zeroth {

class Communicator;
class ModelInference;     // model_infer.h
struct ModelActivations;  // per-shape buffers (src/model/model.cpp)
namespace model {
struct ExpertGroup;  // src/model/layers.h
}

// Expert-load statistics of one MoE layer from the last forward.
struct MoeLayerStats {
  int64_t layer = 0;
  std::vector<int64_t> load;  // (E) tokens routed to each expert
  int64_t min_load = 0, max_load = 0;
  double imbalance = 0.0;     // max_load / mean_load (1 = perfectly balanced)
};

class Model {
 public:
  // Allocates F32 weights (uninitialised: call init_params or load_hf_weights on
  // params()) and F32 gradients (zeroed) on `backend`. Validates the config.
  // compute_dtype BF16 (mixed precision, the GPU setting): the fp32 weights stay the
  // masters that the optimizer updates and checkpoints hold; forward and backward run
  // on a bf16 copy of them (made at the first forward after params() was handed out
  // mutably), GEMM activations are bf16 with fp32 accumulation, and the residual
  // stream, norms' statistics, router scores, logits, log-probabilities and all
  // gradients of weights stay fp32.
  // expert_group: expert parallelism over its ranks (see above); nullptr or a group of
  // one: every expert is local. It must outlive the model.
  Model(const ModelConfig& config, Backend& backend, DType compute_dtype = DType::F32,
        Communicator* expert_group = nullptr);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  Backend& backend() { return be_; }
  // Mutable access marks the bf16 compute copy stale (refreshed at the next forward).
  ParamSet& params() {
    compute_stale_ = true;
    return params_;
  }
  const ParamSet& params() const { return params_; }
  DType compute_dtype() const { return compute_dtype_; }
  // The routed experts this model holds (all of them without expert parallelism).
  const ExpertShard& expert_shard() const { return params_.experts; }
  // The expert group (nullptr when every expert is local).
  Communicator* expert_group() const;
  ParamSet& grads() { return grads_; }
  void zero_grad();
  // Frees the gradients of a model that is never trained (a frozen reference, an
  // inference-only command): 4 bytes per parameter. backward and zero_grad are then errors.
  void release_grads();
  bool has_grads() const { return grads_.flat.defined(); }

  // Activation recomputation per block: forward keeps only each layer's input (the
  // residual stream) and one shared set of layer buffers; backward re-runs each layer's
  // forward from its input before its backward. Gradients are bit-identical to those
  // without it (every op is deterministic); memory for activations drops from L layers'
  // worth to one, for one extra forward of the blocks. routing_*() are unavailable
  // while it is on (moe_stats() is). Off by default.
  void set_recompute(bool on);
  bool recompute() const { return recompute_; }

  // Sequence-wise balance loss weight (DeepSeek-V3 eqs. 17-20, tests/golden/README.md);
  // 0 (default) disables it. When > 0, forward() computes aux_loss() and every backward
  // adds its gradient (into the routers) to the gradient of the caller's loss.
  void set_aux_loss_alpha(float alpha);
  float aux_loss_alpha() const { return aux_alpha_; }
  float aux_loss() const { return aux_loss_; }  // of the last forward (0 when disabled)
  // What the balance loss is a mean over: 0 (default) = each forward's B rows; n > 0 =
  // n sequences, so a trainer that splits a batch of n sequences into micro-batches (and
  // ranks) and adds up their losses and gradients gets alpha times the mean over the
  // batch, whatever the split. A forward with row_lengths takes each row's sequence as
  // its real tokens only.
  void set_aux_loss_sequences(int64_t sequences);

  // ids: I32 (B, T) on the backend, values in [0, V). Computes logits() and keeps
  // what backward needs. Positions are 0..T-1 in every row. row_lengths (B entries, in
  // [0, T]), when given: row b's real tokens are its first row_lengths[b], the rest is
  // padding; moe_stats() then counts the routing of the real tokens only (a copy of the
  // top-k ids to the host per MoE layer), and the balance loss (when enabled) takes each
  // row's real tokens as its sequence. The rest of the computation is the same.
  void forward(const Tensor& ids, const std::vector<int64_t>* row_lengths = nullptr);
  // F32 (N, V) of the last forward; row b*T + t predicts token t+1 of row b.
  const Tensor& logits() const;

  // Per-token log-probabilities of the last forward's logits at `temperature`.
  // targets: I32 (N), -1 = ignored (logprob 0). logprob: F32 (N). entropy: F32 (N) or
  // nullptr. Saves targets/temperature for backward_from_logprob_grad.
  void token_logprobs(const Tensor& targets, float temperature, Tensor& logprob, Tensor* entropy);
  // Backward of the last token_logprobs: dlogprob F32 (N), dentropy F32 (N) or nullptr.
  // ACCUMULATES every parameter's gradient into grads() (plus the balance loss's when
  // enabled). router_bias gets no gradient.
  void backward_from_logprob_grad(const Tensor& dlogprob, const Tensor* dentropy);

  // Pretraining / SFT step: forward, mean next-token NLL over the targets with
  // loss_mask != 0, backward (accumulating). ids I32 (B, T); loss_mask F32 (B, T):
  // loss_mask[b, t] weights the prediction made at t (of token t+1); the last column
  // is ignored. Returns the CE loss (plus aux_loss() when enabled): a host sync.
  float cross_entropy_step(const Tensor& ids, const Tensor& loss_mask);
  float last_ce_loss() const { return ce_loss_; }

  // Routing of the last forward, for MoE layer `layer`: topk_idx I32 (N, k) ordered by
  // descending biased score, topk_weight F32 (N, k), scores F32 (N, E).
  const Tensor& routing_topk_idx(int64_t layer) const;
  const Tensor& routing_topk_weight(int64_t layer) const;
  const Tensor& routing_scores(int64_t layer) const;

  // Expert loads of the last forward: one entry per MoE layer (in layer order); of the
  // real tokens only when forward() had row_lengths.
  std::vector<MoeLayerStats> moe_stats() const;
  // Aux-loss-free balancing: for every MoE layer i (in moe_stats() order),
  // router_bias[e] += gamma * sign(mean(load) - load[e]). global_loads[i] has E entries
  // (the caller sums loads over data-parallel ranks first).
  void update_router_bias(float gamma, const std::vector<std::vector<int64_t>>& global_loads);

 private:
  friend class ModelInference;  // runs the MoE layers with expert_group_args()
  void ensure_shape(int64_t B, int64_t T);
  model::ExpertGroup expert_group_args() const;
  void backward_from_logits_grad();
  void layer_forward(const ModelParams& p, size_t l);
  const ModelParams& compute_params();
  const LayerParams& layer_compute_params(const ModelParams& p, size_t l);

  ModelConfig config_;
  Backend& be_;
  Communicator* ep_comm_ = nullptr;  // expert group of size > 1, else nullptr
  ParamSet params_;
  ParamSet grads_;
  DType compute_dtype_ = DType::F32;
  ParamSet compute_;           // bf16 copy of params_ (compute_dtype_ != F32 only)
  bool compute_stale_ = true;
  bool recompute_ = false;
  LayerParams layer_scratch_;  // a compute layer with the fp32 router bias swapped in
  std::unique_ptr<ModelActivations> act_;
  float aux_alpha_ = 0.0f;
  int64_t aux_sequences_ = 0;
  float aux_loss_ = 0.0f;
  float ce_loss_ = 0.0f;
  float temperature_ = 1.0f;
  bool have_forward_ = false;
  bool have_logprob_ = false;
};

}  // namespace zeroth
