// ModelInference: prefill and decode steps over the MLA latent cache (model_infer.h).
// Owns: the work buffers of one call (per token count), the layer order of inference,
// the absorbed-MLA decode attention, and writing the cache. Must not: sample or
// tokenize, change the Model's weights or activations, call BLAS/CUDA, or add backend
// ops (everything is composed from Backend ops and src/model/layers.h).
//
// Prefill packs the tokens of all its sequences (N = sum of lengths) through the norms,
// MLPs and MoE layers (MoE routing is per token, so packing changes nothing) and runs
// model::attention_forward per sequence. Decode packs one token per sequence.
#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "model/layers.h"
#include "zeroth/error.h"
#include "zeroth/model_infer.h"

namespace zeroth {

struct InferBuffers {
  int64_t N = 0, B = 0;             // tokens, sequences
  Tensor ids, positions;            // I32 (N)
  Tensor resid, in_normed, branch;  // (N, C)
  Tensor x_mid, post_normed;        // (N, C)
  Tensor in_rstd, post_rstd;        // (N)
  model::MlpActs mlp;               // (N, I) dense layers (shared: no backward here)
  model::MoeActs moe;               // N tokens, MoE layers
  // decode attention (absorbed form)
  Tensor q_a, q_a_rstd, q_a_normed;  // (N, Rq), (N), (N, Rq)
  Tensor q;                          // (N, H*Dqk) RoPE applied to each head's last Dr
  Tensor ckv;                        // (N, Rkv + Dr) latent (raw) | k_rope (roped)
  Tensor kv_rstd;                    // (N)
  Tensor kv_normed;                  // (N, Rkv)
  Tensor q_cat;                      // (N, H, Rkv + Dr): q_lat_h = q_nope_h W_UK_h | q_rope_h
  Tensor o_lat;                      // (N, H, Rkv): softmax @ c_kv, gathered back to batch order
  Tensor attn_out;                   // (N, H*Dv)
  Tensor slots, lengths, cache_rows; // I32 (N): slot, tokens cached after this step, and
                                     // the new token's row slot * Tmax + pos in the cache
  // prefill attention: one set per sequence, (1, T_b)
  std::vector<model::AttentionActs> seq_attn;
  // logits of the last token of each sequence
  Tensor last, final_normed;  // (B, C)
  Tensor final_rstd;          // (B)
  Tensor logits;              // F32 (B, V)
  // decode with a recorded graph (Backend::capture): the step after the uploads
  std::unique_ptr<Backend::OpGraph> graph;
  bool graph_tried = false;
  bool rows_ready = false;  // moe.slot_to_sorted holds the identity (moe_forward_rows)
};

struct InferState {
  model::RopeTables rope;          // cos, sin (Tmax, Dr/2); positions 0..Tmax-1
  model::AttentionScratch attn_s;  // only `ones` (H, 1): all attention_forward reads
  // Decode work buffers per batch size (sizes seen so far; at most num_slots of them, so
  // a batch that shrinks as sequences finish reallocates nothing).
  std::map<int64_t, std::unique_ptr<InferBuffers>> decode;
  std::unique_ptr<InferBuffers> prefill;
  const InferBuffers* last = nullptr;
  model::ExpertGroup eg;  // expert parallelism (inactive without)
  model::MoeActs idle;    // expert_idle_step: zero local rows, the exchange's buffers
};

namespace {

std::unique_ptr<InferBuffers> alloc_buffers(Backend& be, const ModelConfig& c, int64_t N,
                                            int64_t B, bool decode, bool expert_parallel) {
  auto w = std::make_unique<InferBuffers>();
  const int64_t C = c.hidden_size, H = c.num_attention_heads, Rkv = c.kv_lora_rank;
  const int64_t Dr = c.qk_rope_head_dim, Dv = c.v_head_dim;
  w->N = N;
  w->B = B;
  w->ids = Tensor::empty(be, {N}, DType::I32);
  w->positions = Tensor::empty(be, {N}, DType::I32);
  for (Tensor* t : {&w->resid, &w->in_normed, &w->branch, &w->x_mid, &w->post_normed})
    *t = Tensor::empty(be, {N, C}, DType::F32);
  w->in_rstd = Tensor::empty(be, {N}, DType::F32);
  w->post_rstd = Tensor::empty(be, {N}, DType::F32);
  bool any_dense = false, any_moe = false;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) (c.is_moe_layer(l) ? any_moe : any_dense) = true;
  if (any_dense) model::alloc_mlp(be, N, c.intermediate_size, w->mlp);
  if (any_moe) model::alloc_moe(be, c, N, w->moe, DType::F32, expert_parallel);
  if (decode) {
    if (c.q_lora_rank) {
      w->q_a = Tensor::empty(be, {N, *c.q_lora_rank}, DType::F32);
      w->q_a_rstd = Tensor::empty(be, {N}, DType::F32);
      w->q_a_normed = Tensor::empty(be, {N, *c.q_lora_rank}, DType::F32);
    }
    w->q = Tensor::empty(be, {N, H * c.qk_head_dim()}, DType::F32);
    w->ckv = Tensor::empty(be, {N, Rkv + Dr}, DType::F32);
    w->kv_rstd = Tensor::empty(be, {N}, DType::F32);
    w->kv_normed = Tensor::empty(be, {N, Rkv}, DType::F32);
    w->q_cat = Tensor::empty(be, {N, H, Rkv + Dr}, DType::F32);
    w->o_lat = Tensor::empty(be, {N, H, Rkv}, DType::F32);
    w->attn_out = Tensor::empty(be, {N, H * Dv}, DType::F32);
    for (Tensor* t : {&w->slots, &w->lengths, &w->cache_rows}) *t = Tensor::empty(be, {N}, DType::I32);
  }
  w->last = Tensor::empty(be, {B, C}, DType::F32);
  w->final_normed = Tensor::empty(be, {B, C}, DType::F32);
  w->final_rstd = Tensor::empty(be, {B}, DType::F32);
  w->logits = Tensor::empty(be, {B, c.vocab_size}, DType::F32);
  return w;
}

// The MLP / MoE half of a layer: resid += ffn(norm(resid + branch)), with branch the
// attention output (same order of adds as Model::forward).
// rows: the sync-free MoE (model::moe_forward_rows), for recorded decode steps.
// eg: expert parallelism (the MoE with its exchange; `rows`, moe_forward_rows, is then false).
void ffn_block(Backend& be, const ModelConfig& c, const LayerParams& lp, InferBuffers& w,
               const model::ExpertGroup& eg, bool rows = false) {
  be.add(w.resid, w.branch, w.x_mid);
  be.rmsnorm_forward(w.x_mid, lp.post_attn_norm, float(c.rms_norm_eps), w.post_normed,
                     w.post_rstd);
  if (lp.is_moe && rows)
    model::moe_forward_rows(be, c, w.N, lp.moe, w.post_normed, w.moe, w.branch);
  else if (lp.is_moe)
    model::moe_forward(be, c, 1, w.N, lp.moe, w.post_normed, w.moe, model::BalanceLoss(), w.branch, eg);
  else
    model::mlp_forward(be, lp.mlp, w.post_normed, w.mlp, w.branch);
  be.add(w.x_mid, w.branch, w.resid);
}

// Final norm and lm_head on rows `rows` of w.resid -> w.logits (B, V).
// Empty `rows`: every row of w.resid (decode: one row per sequence already).
void final_logits(Backend& be, const ModelConfig& c, const ModelParams& p, InferBuffers& w,
                  const std::vector<int64_t>& rows) {
  for (size_t b = 0; b < rows.size(); ++b) {
    Tensor dst = w.last.narrow(0, int64_t(b), 1);
    be.copy(w.resid.narrow(0, rows[b], 1), dst);
  }
  be.rmsnorm_forward(rows.empty() ? w.resid : w.last, p.final_norm, float(c.rms_norm_eps),
                     w.final_normed, w.final_rstd);
  model::linear_forward(be, w.final_normed, p.lm_head, w.logits);
}

void check_ids(const std::vector<int32_t>& ids, int64_t vocab, const char* what, size_t b) {
  for (size_t i = 0; i < ids.size(); ++i)
    ZT_THROW_IF_NOT(ids[i] >= 0 && ids[i] < vocab, DataError,
                    "%s: sequence %zu, token %zu: expected an id in [0, %lld), found %d", what, b,
                    i, (long long)vocab, ids[i]);
}

void check_distinct(const std::vector<int64_t>& slots, int64_t num_slots, const char* what) {
  std::vector<int64_t> s = slots;
  std::sort(s.begin(), s.end());
  ZT_ASSERT(std::adjacent_find(s.begin(), s.end()) == s.end(), "%s: repeated slot", what);
  ZT_ASSERT(s.empty() || (s.front() >= 0 && s.back() < num_slots),
            "%s: slot out of [0, %lld)", what, (long long)num_slots);
}

// Absorbed MLA attention of one new token per sequence (see model_infer.h):
// w.in_normed (B, C) -> w.branch (B, C). Writes the tokens' latent and k_rope to the
// cache rows w.cache_rows (one scatter_rows each), then attends over each sequence's
// cached prefix with Backend::mla_decode_attention (w.slots, w.lengths).
void decode_attention(Backend& be, const ModelConfig& c, const AttentionParams& p,
                      const model::RopeTables& rope, Tensor& cache_layer, InferBuffers& w) {
  const int64_t N = w.N, H = c.num_attention_heads, Dqk = c.qk_head_dim();
  const int64_t Dn = c.qk_nope_head_dim, Dr = c.qk_rope_head_dim, Dv = c.v_head_dim;
  const int64_t Rkv = c.kv_lora_rank, R = Rkv + Dr;
  const bool il = c.rope_interleave;
  const float scale = float(c.softmax_scale());

  if (c.q_lora_rank) {
    model::linear_forward(be, w.in_normed, p.q_a_proj, w.q_a);
    be.rmsnorm_forward(w.q_a, p.q_a_norm, model::kLoraNormEps, w.q_a_normed, w.q_a_rstd);
    model::linear_forward(be, w.q_a_normed, p.q_b_proj, w.q);
  } else {
    model::linear_forward(be, w.in_normed, p.q_proj, w.q);
  }
  Tensor q3 = w.q.view({N, H, Dqk});
  Tensor q_rope = q3.narrow(2, Dn, Dr);  // (N, H, Dr)
  be.rope(q_rope, w.positions, rope.cos, rope.sin, il, false);

  model::linear_forward(be, w.in_normed, p.kv_a_proj, w.ckv);
  be.rmsnorm_forward(w.ckv.narrow(1, 0, Rkv), p.kv_a_norm, model::kLoraNormEps, w.kv_normed,
                     w.kv_rstd);
  Tensor k_rope = w.ckv.view({N, 1, Rkv + Dr}).narrow(2, Rkv, Dr);  // (N, 1, Dr)
  be.rope(k_rope, w.positions, rope.cos, rope.sin, il, false);
  {
    Tensor rows = cache_layer.view({cache_layer.size(0) * cache_layer.size(1), R});
    Tensor lat_dst = rows.narrow(1, 0, Rkv), rope_dst = rows.narrow(1, Rkv, Dr);
    be.scatter_rows(w.kv_normed, w.cache_rows, lat_dst);
    be.scatter_rows(w.ckv.narrow(1, Rkv, Dr), w.cache_rows, rope_dst);
  }

  // q_cat[:, h] = q_nope[:, h] @ W_UK_h (N, Dn) @ (Dn, Rkv) | q_rope[:, h]: one GEMM
  // batched over heads (h-major views of the token-major tensors).
  Tensor wkv = p.kv_b_proj.view({H, Dn + Dv, Rkv});
  {
    Tensor ql = w.q_cat.narrow(2, 0, Rkv).transpose(0, 1);  // (H, N, Rkv)
    be.gemm(q3.narrow(2, 0, Dn).transpose(0, 1), false, wkv.narrow(1, 0, Dn), false, ql);
  }
  Tensor qr_dst = w.q_cat.narrow(2, Rkv, Dr);
  be.copy(q_rope, qr_dst);

  be.mla_decode_attention(w.q_cat, cache_layer, w.slots, w.lengths, scale, w.o_lat);

  // out[:, h] = o_lat[:, h] @ W_UV_h^T: (N, Rkv) @ (Rkv, Dv), batched over heads; o_proj.
  {
    Tensor o = w.attn_out.view({N, H, Dv}).transpose(0, 1);  // (H, N, Dv)
    be.gemm(w.o_lat.transpose(0, 1), false, wkv.narrow(1, Dn, Dv), true, o);
  }
  model::linear_forward(be, w.attn_out, p.o_proj, w.branch);
}

// Whether a recorded step (sync-free MoE: expert_rows_gemm, SIMT) beats the eager step
// (grouped tensor-core GEMMs after a host sync per layer) at decode batch B: while the
// expert work per chosen expert, rows x K x N_out, stays small. Measured on an H100 with
// the streaming row-list kernel (docs/gpu.md, "Decode: few-row kernels", 2026-11-25):
// bench-small (K 512, N 256) wins at 64 rows per expert (8.4M: 6.06 against 6.68 ms a
// step); r1zero-1b (K 1024, N 512) wins at 12 (6.3M: 9.96 against 16.1 ms) and loses at
// 48 (25M: 31.5 against 30.1 ms). The crossover is taken at 10M.
bool graph_pays(const ModelConfig& c, int64_t B) {
  if (c.n_routed_experts <= 0) return true;
  const double rows_per_expert =
      double(B * c.num_experts_per_tok) / double(c.n_routed_experts);
  return rows_per_expert * double(c.hidden_size) * double(c.moe_intermediate_size) <= 1.0e7;
}


}  // namespace

ModelInference::ModelInference(Model& model, int64_t num_slots, int64_t max_len)
    : model_(model),
      cache_(model.config(), model.backend(), num_slots, max_len),
      st_(std::make_unique<InferState>()) {
  ZT_THROW_IF_NOT(num_slots * max_len < int64_t(INT32_MAX), ConfigError,
                  "rollout: %lld cache slots x max_len %lld = %lld cached tokens, expected fewer "
                  "than 2^31 (lower rollout.num_slots or rollout.max_len)",
                  (long long)num_slots, (long long)max_len, (long long)(num_slots * max_len));
  Backend& be = model_.backend();
  model::build_rope_tables(be, model_.config(), 1, max_len, st_->rope);
  st_->attn_s.ones = Tensor::empty(be, {model_.config().num_attention_heads, 1}, DType::F32);
  be.fill(st_->attn_s.ones, 1.0);
  const ModelConfig& c = model_.config();
  // Positions past a slot's length are never read; zeros keep a fresh cache's bytes
  // defined (copy_slot and checkpoints of it see no garbage).
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) be.fill(cache_.layer(l), 0.0);
  st_->eg = model.expert_group_args();
  if (st_->eg.active()) {
    // The idle step's own rows: none (views of zero rows of one-row buffers).
    const int64_t k = c.num_experts_per_tok;
    st_->idle.xs = Tensor::empty(be, {k, c.hidden_size}, DType::F32).narrow(0, 0, 0);
    st_->idle.eo = Tensor::empty(be, {k, c.hidden_size}, DType::F32).narrow(0, 0, 0);
    st_->idle.load.assign(size_t(c.n_routed_experts), 0);
  }
}

ModelInference::~ModelInference() = default;

Communicator* ModelInference::expert_group() const { return st_->eg.comm; }

void ModelInference::expert_idle_step(bool decode) {
  ZT_ASSERT(st_->eg.active(), "expert_idle_step without an expert group");
  const ModelConfig& c = model_.config();
  const ModelParams& p = model_.params().params;
  model::ExpertGroup eg = st_->eg;
  eg.rows = decode && model_.backend().device().is_cpu();  // as decode_step computes
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    if (p.layers[size_t(l)].is_moe)
      model::moe_ep_experts_forward(model_.backend(), c, p.layers[size_t(l)].moe, eg, st_->idle);
}

void ModelInference::set_graphs(DecodeGraphs mode) {
  ZT_ASSERT(st_->decode.empty(), "set_graphs after a decode step");
  graphs_ = mode;
}

const Tensor& ModelInference::logits() const {
  ZT_ASSERT(st_->last != nullptr, "logits() before prefill() or decode_step()");
  return st_->last->logits;
}

void ModelInference::prefill(const std::vector<int64_t>& slots,
                             const std::vector<std::vector<int32_t>>& ids) {
  ZT_ASSERT(!slots.empty() && slots.size() == ids.size(), "prefill: %zu slots for %zu prompts",
            slots.size(), ids.size());
  const ModelConfig& c = model_.config();
  Backend& be = model_.backend();
  const ModelParams& p = model_.params().params;
  const int64_t B = int64_t(slots.size()), Rkv = c.kv_lora_rank, Dr = c.qk_rope_head_dim;
  check_distinct(slots, cache_.num_slots(), "prefill");
  std::vector<int32_t> flat;
  std::vector<int64_t> off, len, last_rows;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int32_t>& s = ids[size_t(b)];
    ZT_THROW_IF_NOT(!s.empty() && int64_t(s.size()) <= cache_.max_len(), DataError,
                    "prefill: prompt %lld has %zu tokens, expected 1 to %lld (max_len)",
                    (long long)b, s.size(), (long long)cache_.max_len());
    check_ids(s, c.vocab_size, "prefill", size_t(b));
    ZT_ASSERT(cache_.length(slots[size_t(b)]) == 0, "prefill: slot %lld is not empty",
              (long long)slots[size_t(b)]);
    off.push_back(int64_t(flat.size()));
    len.push_back(int64_t(s.size()));
    flat.insert(flat.end(), s.begin(), s.end());
    last_rows.push_back(int64_t(flat.size()) - 1);
  }
  const int64_t N = int64_t(flat.size());
  st_->last = nullptr;
  st_->prefill.reset();
  st_->prefill = alloc_buffers(be, c, N, B, false, st_->eg.active());
  InferBuffers& w = *st_->prefill;
  w.seq_attn.resize(size_t(B));
  for (int64_t b = 0; b < B; ++b) model::alloc_attention(be, c, 1, len[size_t(b)], w.seq_attn[size_t(b)]);
  w.ids.copy_from_host(flat.data(), flat.size() * sizeof(int32_t));

  be.embedding_forward(w.ids, p.embed, w.resid);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerParams& lp = p.layers[size_t(l)];
    be.rmsnorm_forward(w.resid, lp.input_norm, float(c.rms_norm_eps), w.in_normed, w.in_rstd);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t T = len[size_t(b)];
      model::RopeTables rope{st_->rope.positions.narrow(0, 0, T), st_->rope.cos, st_->rope.sin};
      model::AttentionActs& a = w.seq_attn[size_t(b)];
      Tensor y = w.branch.narrow(0, off[size_t(b)], T);
      model::attention_forward(be, c, 1, T, lp.attn, rope, w.in_normed.narrow(0, off[size_t(b)], T),
                               a, st_->attn_s, y);
      Tensor dst = cache_.layer(l).select(0, slots[size_t(b)]).narrow(0, 0, T);  // (T, Rkv + Dr)
      Tensor lat_dst = dst.narrow(1, 0, Rkv), rope_dst = dst.narrow(1, Rkv, Dr);
      be.copy(a.kv_normed, lat_dst);
      be.copy(a.ckv.narrow(1, Rkv, Dr), rope_dst);
    }
    ffn_block(be, c, lp, w, st_->eg);
  }
  final_logits(be, c, p, w, last_rows);
  for (int64_t b = 0; b < B; ++b) cache_.set_length(slots[size_t(b)], len[size_t(b)]);
  st_->last = &w;
}

void ModelInference::decode_step(const std::vector<int64_t>& slots,
                                 const std::vector<int32_t>& next_ids) {
  ZT_ASSERT(!slots.empty() && slots.size() == next_ids.size(),
            "decode_step: %zu slots for %zu tokens", slots.size(), next_ids.size());
  const ModelConfig& c = model_.config();
  Backend& be = model_.backend();
  const ModelParams& p = model_.params().params;
  const int64_t B = int64_t(slots.size());
  check_distinct(slots, cache_.num_slots(), "decode_step");
  check_ids(next_ids, c.vocab_size, "decode_step", 0);
  std::vector<int64_t> pos(static_cast<size_t>(B));
  std::vector<int32_t> pos32(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = cache_.length(slots[size_t(b)]);
    ZT_ASSERT(n > 0 && n < cache_.max_len(),
              "decode_step: slot %lld holds %lld tokens (must be prefilled and not full, max %lld)",
              (long long)slots[size_t(b)], (long long)n, (long long)cache_.max_len());
    pos[size_t(b)] = n;
    pos32[size_t(b)] = int32_t(n);
  }
  std::unique_ptr<InferBuffers>& wp = st_->decode[B];
  if (!wp) wp = alloc_buffers(be, c, B, B, true, st_->eg.active());
  InferBuffers& w = *wp;
  w.ids.copy_from_host(next_ids.data(), next_ids.size() * sizeof(int32_t));
  w.positions.copy_from_host(pos32.data(), pos32.size() * sizeof(int32_t));

  std::vector<int32_t> slots32(static_cast<size_t>(B)), len32(static_cast<size_t>(B)),
      rows32(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    slots32[size_t(b)] = int32_t(slots[size_t(b)]);
    len32[size_t(b)] = int32_t(pos[size_t(b)] + 1);
    rows32[size_t(b)] = int32_t(slots[size_t(b)] * cache_.max_len() + pos[size_t(b)]);
  }
  w.slots.copy_from_host(slots32.data(), slots32.size() * sizeof(int32_t));
  w.lengths.copy_from_host(len32.data(), len32.size() * sizeof(int32_t));
  w.cache_rows.copy_from_host(rows32.data(), rows32.size() * sizeof(int32_t));

  // Everything after the uploads: eager, or recorded once per batch size and replayed
  // (no host synchronisation inside: the MoE runs per row, model::moe_forward_rows).
  auto step = [&](bool rows) {
    be.embedding_forward(w.ids, p.embed, w.resid);
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const LayerParams& lp = p.layers[size_t(l)];
      be.rmsnorm_forward(w.resid, lp.input_norm, float(c.rms_norm_eps), w.in_normed, w.in_rstd);
      decode_attention(be, c, lp.attn, st_->rope, cache_.layer(l), w);
      ffn_block(be, c, lp, w, st_->eg, rows);
    }
    final_logits(be, c, p, w, {});
  };
  auto slot_order = [&]() {  // moe_forward_rows combines in slot order
    if (w.rows_ready || !w.moe.slot_to_sorted.defined()) return;
    std::vector<int32_t> iota(size_t(w.moe.slot_to_sorted.numel()));
    for (size_t i = 0; i < iota.size(); ++i) iota[i] = int32_t(i);
    w.moe.slot_to_sorted.copy_from_host(iota.data(), iota.size() * sizeof(int32_t));
    w.rows_ready = true;
  };
  if (st_->eg.active()) {
    // Expert parallelism: the MoE with its exchange (a host sync per layer), eager. On the
    // CPU row by row like the single-rank path below: the dense layers through the
    // row-invariant gemm, the experts through expert_rows_gemm on the rows they receive.
    const bool cpu = be.device().is_cpu();
    st_->eg.rows = cpu;
    if (cpu) be.set_row_invariant_gemm(true);
    try {
      step(false);
    } catch (...) {
      st_->eg.rows = false;
      if (cpu) be.set_row_invariant_gemm(false);
      throw;
    }
    st_->eg.rows = false;
    if (cpu) be.set_row_invariant_gemm(false);
  } else if (be.device().is_cpu()) {
    // Row by row, whatever the batch: each linear layer through the row-invariant gemm
    // and the MoE per row (expert_rows_gemm), so a sequence's logits do not depend on the
    // other sequences of the step. Both are also the fastest CPU paths at decode batch
    // sizes (docs/perf.md, "CPU rollout": 1.5x at B = 64, 1.2x at B = 256 over OpenBLAS
    // and the grouped GEMM).
    slot_order();
    be.set_row_invariant_gemm(true);
    try {
      step(true);
    } catch (...) {
      be.set_row_invariant_gemm(false);
      throw;
    }
    be.set_row_invariant_gemm(false);
  } else if (graphs_ == DecodeGraphs::kAlways ||
             (graphs_ == DecodeGraphs::kAuto && graph_pays(c, B))) {
    if (!w.graph_tried) {
      w.graph_tried = true;
      slot_order();
      w.graph = be.capture([&]() { step(true); });
    }
    if (w.graph)
      be.replay(*w.graph);
    else
      step(false);
  } else {
    step(false);
  }
  for (int64_t b = 0; b < B; ++b) cache_.set_length(slots[size_t(b)], pos[size_t(b)] + 1);
  st_->last = &w;
}

}  // namespace zeroth
