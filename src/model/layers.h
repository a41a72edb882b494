// Layers of the DeepSeek-V3 model: each a forward that saves its activations into a
// struct and a backward that reads them, in llm.c style. Model (model.cpp) allocates
// the structs once per (B, T) and calls the layers in order and in reverse.
//
// Owns: the per-layer activation structs and the layer functions (linear, MLA
// attention, SwiGLU MLP, DeepSeekMoE, RoPE tables, balance loss). Must not: allocate
// per call (buffers come in through the structs; the expert-parallel buffers grow to
// the largest routing seen), call BLAS/CUDA (Backend ops only), or communicate except
// through the ExpertGroup the MoE layer is handed (expert parallelism). Backward functions OVERWRITE the input gradient they return and
// ACCUMULATE into parameter gradients.
//
// Shapes: N tokens (B*T), C hidden, H heads, Dn/Dr/Dqk/Dv head dims, Rq/Rkv LoRA
// ranks, W an MLP's width, E routed experts, k experts per token, Im expert width.
#pragma once

#include <cstdint>
#include <vector>

#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/tensor.h"

namespace zeroth {
namespace model {

constexpr float kLoraNormEps = 1e-6f;  // q_a_layernorm / kv_a_layernorm (HF default)

// ---- linear: y = x @ w^T (nn.Linear, no bias) ----
// x (M, in) (rows may be strided), w (out, in), y (M, out).
void linear_forward(Backend& be, const Tensor& x, const Tensor& w, Tensor& y);
// dw (out, in) += dy^T @ x; dx (M, in) = dy @ w (or += when accumulate_dx); dx may be
// nullptr (no input gradient wanted).
void linear_backward(Backend& be, const Tensor& dy, const Tensor& x, const Tensor& w, Tensor& dw,
                     Tensor* dx, bool accumulate_dx);

// ---- RoPE tables ----
struct RopeTables {
  Tensor positions;  // I32 (N): t of token b*T + t
  Tensor cos, sin;   // F32 (T, Dr/2), attention_factor folded in (yarn)
};
// Host computation of inv_freq (default or yarn, HF rules) and the tables.
void build_rope_tables(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T, RopeTables& out);

// ---- MLA attention ----
struct AttentionActs {
  Tensor q_a;        // (N, Rq)          q_a_proj(x), q-LoRA only
  Tensor q_a_rstd;   // (N)
  Tensor q_a_normed; // (N, Rq)
  Tensor q;          // (N, H*Dqk)       after RoPE on each head's last Dr
  Tensor ckv;        // (N, Rkv + Dr)    latent (before its norm) | k_rope (after RoPE)
  Tensor kv_rstd;    // (N)
  Tensor kv_normed;  // (N, Rkv)
  Tensor kv;         // (N, H*(Dn+Dv))   kv_b_proj output: per head k_nope | v
  Tensor k;          // (N, H*Dqk)       per head k_nope | shared k_rope
  Tensor out;        // (N, H*Dv)        attention output before o_proj
  Tensor lse;        // F32 (B, H, T)
};
struct AttentionScratch {  // backward buffers shared by all layers
  Tensor dout;        // (N, H*Dv)
  Tensor dq, dk;      // (N, H*Dqk)
  Tensor dv;          // (N, H*Dv)
  Tensor dkv;         // (N, H*(Dn+Dv))
  Tensor dq_a_normed; // (N, Rq)
  Tensor dq_a;        // (N, Rq)
  Tensor dkv_normed;  // (N, Rkv)
  Tensor dkv_lat;     // (N, Rkv)
  Tensor dckv;        // (N, Rkv + Dr)
  Tensor ones;        // F32 (H, 1): broadcasts k_rope to every head (and sums back)
};
// `ad` is the activation dtype of GEMM inputs/outputs (F32, or BF16 with bf16 compute
// weights); norms' rstd, attention lse, router tensors stay F32.
void alloc_attention(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T, AttentionActs& a,
                     DType ad = DType::F32);
void alloc_attention_scratch(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T,
                             AttentionScratch& s, DType ad = DType::F32);
// x (N, C) -> y (N, C) = o_proj(attention(x)).
void attention_forward(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T,
                       const AttentionParams& p, const RopeTables& rope, const Tensor& x,
                       AttentionActs& a, AttentionScratch& s, Tensor& y);
// dy (N, C) -> dx (N, C) (overwritten); parameter gradients accumulate into g.
void attention_backward(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T,
                        const AttentionParams& p, AttentionParams& g, const RopeTables& rope,
                        const Tensor& x, const AttentionActs& a, AttentionScratch& s,
                        const Tensor& dy, Tensor& dx);

// ---- SwiGLU MLP (dense layers and shared experts) ----
struct MlpActs {
  Tensor gate, up, h;  // (N, W): gate(x), up(x), silu(gate) * up
};
struct MlpScratch {
  Tensor dh, dgate, dup;  // (N, Wmax), narrowed to (N, W)
};
void alloc_mlp(Backend& be, int64_t N, int64_t W, MlpActs& a, DType ad = DType::F32);
void alloc_mlp_scratch(Backend& be, int64_t N, int64_t Wmax, MlpScratch& s, DType ad = DType::F32);
// x (N, C) -> y (N, C).
void mlp_forward(Backend& be, const MlpParams& p, const Tensor& x, MlpActs& a, Tensor& y);
// dy (N, C) -> dx (N, C) (overwritten, or accumulated when accumulate_dx).
void mlp_backward(Backend& be, const MlpParams& p, MlpParams& g, const Tensor& x, const MlpActs& a,
                  MlpScratch& s, const Tensor& dy, Tensor& dx, bool accumulate_dx);

// ---- DeepSeekMoE: router, routed experts, shared experts ----

// Expert parallelism: this rank holds experts [first, first + count) of every MoE layer
// (count = E / comm->size(), ExpertShard::of). Each token row goes to its experts'
// ranks and back with two all_to_all_v over `comm` in the forward and two in the
// backward (layer_moe_ep.cpp); the per-expert row counts are exchanged first with one
// host all-reduce. Inactive (comm null or of size 1): every expert is local.
struct ExpertGroup {
  Communicator* comm = nullptr;
  int64_t first = 0, count = 0;
  // The local experts' products per row (Backend::expert_rows_gemm, row-invariant: a
  // row's output does not depend on the others) instead of grouped GEMMs: the CPU decode,
  // whose rows path the single-rank decode also takes. Forward only.
  bool rows = false;
  bool active() const { return comm != nullptr && comm->size() > 1; }
};

// Per MoE layer under expert parallelism. R = rows this rank's experts receive from
// every rank of the group (it varies with the routing); buffers grow to the largest R
// seen and are used through (R, ...) views.
struct MoeEpActs {
  std::vector<int64_t> send_rows, recv_rows;  // (P) rows sent to / received from rank q
  std::vector<int64_t> load;                  // (count) rows per local expert
  int64_t rows = 0;                           // R
  Tensor to_expert;  // I32 (cap): row i of the (expert, source) order is row to_expert[i] of
                     // the received (source, expert) order; with ExpertGroup::rows, the
                     // local expert of each received row instead
  Tensor to_source;  // I32 (cap): the inverse permutation
  Tensor xr;         // (cap, C) received rows; reused for the outputs sent back
  Tensor xe;         // (cap, C) the same rows grouped by local expert
  Tensor gate, up, h;  // (cap, Im)
  Tensor eo;         // (cap, C) expert outputs, grouped by local expert
};
struct MoeEpScratch {  // backward, shared by all layers
  Tensor d_r, d_e;        // (cap, C) output gradients received / grouped by expert
  Tensor dh, dgate, dup;  // (cap, Im)
  Tensor dx_e, dx_r;      // F32 (cap, C) input gradients grouped by expert / by source
};

struct MoeActs {
  Tensor logits;          // F32 (N, E) router logits
  Tensor scores;          // F32 (N, E) sigmoid
  Tensor topk_idx;        // I32 (N, k)
  Tensor topk_weight;     // F32 (N, k)
  Tensor sorted_to_slot;  // I32 (N*k)
  Tensor slot_to_sorted;  // I32 (N*k)
  Tensor counts;          // I32 (E) on the device
  std::vector<int64_t> load;  // (E) counts on the host
  Tensor xs;              // (N*k, C)  tokens gathered in expert order
  Tensor gate, up, h;     // (N*k, Im)
  Tensor eo;              // (N*k, C)  expert outputs (before the weights)
  MlpActs shared;         // (N, Im*Ns); undefined when Ns = 0
  float aux_loss = 0.0f;            // balance loss of this layer (alpha included)
  std::vector<float> aux_dlogits;   // (N*E) its gradient w.r.t. the router logits
  MoeEpActs ep;                     // expert parallelism only; gate/up/h above are then
                                    // undefined (the experts' rows live here)
};
struct MoeScratch {
  Tensor deo;       // (N*k, C)
  Tensor dweight;   // F32 (N, k)
  Tensor dh, dgate, dup;  // (N*k, Im)
  Tensor dxs;       // F32 (N*k, C) (two grouped GEMMs accumulate into it)
  Tensor dlogits;   // F32 (N, E)
  Tensor dlogits_c; // (N, E) in the activation dtype (the router GEMM's operand); aliases
                    // dlogits when that is F32
  Tensor daux;      // F32 (N, E) balance-loss gradient (uploaded from the host)
  Tensor dx_part;   // (N, C)
  MoeEpScratch ep;  // expert parallelism only (dh/dgate/dup above are then undefined)
};
// expert_parallel: leave out the (N*k, Im) buffers; the EP buffers grow on first use.
void alloc_moe(Backend& be, const ModelConfig& cfg, int64_t N, MoeActs& a, DType ad = DType::F32,
               bool expert_parallel = false);
void alloc_moe_scratch(Backend& be, const ModelConfig& cfg, int64_t N, MoeScratch& s,
                       DType ad = DType::F32, bool expert_parallel = false);
// The sequence-wise balance loss of one forward: its weight alpha (0 = off); the rows'
// real lengths (nullptr: every row is all T tokens; a row of length 0 adds nothing); and
// how many sequences its mean is over (0: this forward's B rows; a trainer that splits a
// batch into micro-batches and ranks passes the global count, so the summed loss is alpha
// times the mean over every sequence of the batch whatever the split).
struct BalanceLoss {
  float alpha = 0.0f;
  const std::vector<int64_t>* lengths = nullptr;
  int64_t sequences = 0;
  BalanceLoss(float a = 0.0f, const std::vector<int64_t>* l = nullptr, int64_t n = 0)
      : alpha(a), lengths(l), sequences(n) {}
};

// x (N, C) -> y (N, C). Copies the expert counts to the host (sync). With
// bal.alpha > 0 also computes the sequence-wise balance loss on the host (B
// sequences of T tokens) into a.aux_loss / a.aux_dlogits. With an active expert group,
// p's stacked experts are the group's shard and the call is collective over the group.
void moe_forward(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T, const MoeParams& p,
                 const Tensor& x, MoeActs& a, const BalanceLoss& bal, Tensor& y,
                 const ExpertGroup& eg = ExpertGroup{});
// Inference forward without a host synchronisation (decode; a captured graph): the
// routed experts run per (token, choice) row with Backend::expert_rows_gemm in slot
// order, so no sort and no expert counts on the host. a.slot_to_sorted must hold the
// identity 0..N*k-1 (the caller fills it once); a.load is not updated.
void moe_forward_rows(Backend& be, const ModelConfig& cfg, int64_t N, const MoeParams& p,
                      const Tensor& x, MoeActs& a, Tensor& y);
// dy (N, C) -> dx (N, C) (overwritten). with_aux adds the balance loss's gradient.
// Collective over an active expert group, like the forward.
void moe_backward(Backend& be, const ModelConfig& cfg, const MoeParams& p, MoeParams& g,
                  const Tensor& x, const MoeActs& a, MoeScratch& s, MlpScratch& ms,
                  bool with_aux, const Tensor& dy, Tensor& dx,
                  const ExpertGroup& eg = ExpertGroup{});

// Expert parallelism (layer_moe_ep.cpp). Forward: a.xs (N*k, C, sorted by expert) and
// a.load (E) -> a.eo (N*k, C), the outputs of the experts on whichever rank holds them.
void moe_ep_experts_forward(Backend& be, const ModelConfig& cfg, const MoeParams& p,
                            const ExpertGroup& eg, MoeActs& a);
// Backward: s.deo (N*k, C) -> s.dxs (N*k, C, F32); the local experts' weight gradients
// accumulate into g.
void moe_ep_experts_backward(Backend& be, const MoeParams& p, MoeParams& g,
                             const ExpertGroup& eg, const MoeActs& a, MoeScratch& s);

// Host reference of the balance loss (DeepSeek-V3 eqs. 17-20) for one MoE layer:
// scores (B*T, E) sigmoid scores, topk_idx (B*T, k). Row b's sequence is its first
// lengths[b] tokens (all T without lengths). Returns the loss (alpha included, summed over
// the rows and divided by `sequences`, or by B when 0) and fills dlogits (B*T*E) =
// d loss / d router logits (zero at padding).
float balance_loss_host(const std::vector<float>& scores, const std::vector<int32_t>& topk_idx,
                        int64_t B, int64_t T, int64_t E, int64_t k, float alpha,
                        std::vector<float>& dlogits, const std::vector<int64_t>* lengths = nullptr,
                        int64_t sequences = 0);

}  // namespace model
}  // namespace zeroth
