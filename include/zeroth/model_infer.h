// Incremental inference for the DeepSeek-V3 model: the MLA latent KV cache, prefill and
// one-token decode steps that produce next-token logits.
//
// Owns: the cache layout (per layer, per sequence slot, per position: the normalised
// latent c_kv and the roped k_rope; never full keys and values), slot bookkeeping
// (lengths, copying a prefilled prompt to other slots), and the order of layers in
// prefill and decode. Must not: sample, tokenize, own weights (it reads the Model's) or
// call BLAS/CUDA (Backend ops only). It adds no backend op: everything is composed from
// include/zeroth/backend.h and the layer functions of src/model/layers.h.
//
// Attention forms:
//  * prefill (an empty slot, positions 0..T-1) runs the training layer
//    model::attention_forward (latent decompressed through kv_b_proj, causal attention),
//    so the prompt's logits are those of Model::forward; it then stores the latent and
//    k_rope of every prompt token in the cache.
//  * decode uses MLA weight absorption (DeepSeek-V2 section 2.1.4): with W_UK_h, W_UV_h the
//    key and value parts of kv_b_proj for head h,
//      q_lat_h  = q_nope_h @ W_UK_h                       (Rkv)
//      scores_h = scale * (q_lat_h . c_kv[s] + q_rope_h . k_rope[s])   for s <= t
//      out_h    = (softmax(scores_h) @ c_kv) @ W_UV_h^T   (Dv), then o_proj.
//    Keys and values are never materialised. The new tokens' latents and k_rope go
//    into the cache with one Backend::scatter_rows each; the per-head products with
//    W_UK / W_UV are one head-batched GEMM each; the attention over each sequence's
//    cached prefix is one Backend::mla_decode_attention (a fused kernel on CUDA), whose
//    per-row arithmetic does not depend on the batch.
//
// Cache bytes per token = L * (Rkv + Dr) * dtype size (bytes_per_token()). DeepSeek-V3
// (L 61, Rkv 512, Dr 64) in bf16: 70,272 bytes (68.6 KiB) per token; this
// implementation stores F32 (the model computes in F32), twice that.
//
// Host synchronisation: each MoE layer of a prefill and of an eager decode step copies
// its expert counts to the host (as in Model::forward); a recorded decode step (CUDA
// graphs, set_graphs) has none; a decode step uploads its ids, positions, slots, lengths and cache
// rows (5 x B int32). Slot lengths are host state.
//
// Shapes: S slots, Tmax max_len, B sequences in a call, L layers, C hidden, V vocab,
// H heads, Dn/Dr/Dv head dims, Rkv kv_lora_rank.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "zeroth/backend.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/tensor.h"

namespace zeroth {

// The MLA latent cache of S sequence slots of up to Tmax tokens each.
class MlaKvCache {
 public:
  // Allocates L tensors F32 (S, Tmax, Rkv + Dr) on `be` (zeroed by ModelInference;
  // every slot starts empty).
  MlaKvCache(const ModelConfig& cfg, Backend& be, int64_t num_slots, int64_t max_len);

  // L * (Rkv + Dr) * dtype_size(dtype): what one cached token costs.
  static int64_t bytes_per_token(const ModelConfig& cfg, DType dtype);

  int64_t num_slots() const { return int64_t(length_.size()); }
  int64_t max_len() const { return max_len_; }
  int64_t length(int64_t slot) const;  // tokens cached in `slot`
  void clear(int64_t slot);            // marks the slot empty (no device work)
  // Copies the first length(src) tokens of every layer from slot src to slot dst
  // (dst's length becomes src's): G samples share one prefill of their prompt.
  void copy_slot(int64_t src, int64_t dst);

  // Layer l: F32 (S, Tmax, Rkv + Dr); row [s, t] = normalised latent c_kv (Rkv) |
  // k_rope after RoPE (Dr, halves order: see Backend::rope).
  const Tensor& layer(int64_t l) const { return layers_[size_t(l)]; }
  Tensor& layer(int64_t l) { return layers_[size_t(l)]; }

  // For the inference code: records that `slot` now holds `length` tokens.
  void set_length(int64_t slot, int64_t length);

 private:
  Backend& be_;
  int64_t max_len_;
  std::vector<Tensor> layers_;
  std::vector<int64_t> length_;
};

struct InferState;  // RoPE tables and work buffers (src/model/infer_forward.cpp)

// Prefill and decode for one Model (reads its current weights at every call, so a
// trainer's updates are seen without copying) into an MlaKvCache it owns. Slots are
// managed by the caller (rollout): prefill an empty slot, copy_slot to share a prompt,
// clear a finished one.
//
// Expert parallelism (a Model built with an expert group): prefill and decode_step are
// collective over the group (each MoE layer sends its tokens to their experts' ranks and
// back; no recorded graphs). The experts compute with grouped GEMMs, except in a CPU
// decode step, where they compute row by row (expert_rows_gemm) as the single-rank CPU
// decode does, so a decode step's logits are the single-rank model's bit for bit. The ranks of a group run their
// own sequences, but every prefill or decode_step of one rank must be matched by a
// prefill, decode_step or expert_idle_step of every other (generate() keeps them in step).
class ModelInference {
 public:
  ModelInference(Model& model, int64_t num_slots, int64_t max_len);
  ~ModelInference();
  ModelInference(const ModelInference&) = delete;
  ModelInference& operator=(const ModelInference&) = delete;

  MlaKvCache& cache() { return cache_; }
  const ModelConfig& config() const { return model_.config(); }
  Backend& backend() { return model_.backend(); }

  // Prompts ids[b] (non-empty, values in [0, V)) into the EMPTY slots slots[b] (distinct),
  // positions 0..len-1. logits() becomes F32 (B, V): row b predicts the token after
  // the last of ids[b]. Throws DataError for a prompt longer than max_len or a bad id.
  void prefill(const std::vector<int64_t>& slots, const std::vector<std::vector<int32_t>>& ids);
  // Appends next_ids[b] to slot slots[b] (distinct, non-empty, not full) at position
  // length(slot) and computes logits() F32 (B, V) predicting the token after it.
  void decode_step(const std::vector<int64_t>& slots, const std::vector<int32_t>& next_ids);

  // F32 (B, V) of the last prefill / decode_step.
  const Tensor& logits() const;

  // Expert parallelism: the model's expert group (nullptr without expert parallelism).
  Communicator* expert_group() const;
  // Takes part in a prefill (decode false) or decode_step (true) of the other ranks of the
  // expert group with no tokens of its own: every MoE layer's exchange, in layer order,
  // its experts computing the rows the others send (as that step computes them). The
  // cache and logits() are untouched.
  void expert_idle_step(bool decode);

  // Recorded decode steps (default on): on a backend that records (CUDA graphs), the
  // first decode step of each batch size is recorded with the sync-free MoE
  // (model::moe_forward_rows) and every later step of that size replays it: one launch
  // instead of ~30 per layer and no host synchronisation. Off: every op is issued
  // eagerly (the grouped-GEMM MoE with its host sync per layer). Batch sizes where the
  // per-row expert products cost more than the sync saves (many rows per expert, large
  // experts: graph_pays in infer_forward.cpp) stay eager. The CPU ignores it.
  // Set it before the first decode step. set_graphs(DecodeGraphs::kAlways) records every
  // batch size, graph_pays or not (the bench's --graphs always, to measure the crossover).
  enum class DecodeGraphs { kOff, kAuto, kAlways };
  void set_graphs(DecodeGraphs mode);
  void set_graphs(bool on) { set_graphs(on ? DecodeGraphs::kAuto : DecodeGraphs::kOff); }

 private:
  Model& model_;
  MlaKvCache cache_;
  std::unique_ptr<InferState> st_;
  DecodeGraphs graphs_ = DecodeGraphs::kAuto;
};

}  // namespace zeroth
