// Multi-head latent attention (MLA, DeepSeek-V2/V3, HF layout): forward and backward.
// Owns: the q path (q_proj, or q_a_proj -> q_a_layernorm -> q_b_proj), the compressed
// kv path (kv_a_proj_with_mqa -> latent | k_rope; kv_a_layernorm; kv_b_proj -> per-head
// k_nope | v), RoPE on q's rope part and on the shared k_rope, causal attention, o_proj.
// Must not: allocate per call or call BLAS/CUDA directly (Backend ops only).
//
// RoPE with rope_interleave: the Backend rotates interleaved pairs; HF regroups the
// rope dims first. Both q and k get the same fixed permutation, so q.k (and everything
// after it) is identical.
#include "model/layers.h"
#include "zeroth/error.h"

namespace zeroth {
namespace model {

void alloc_attention(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T, AttentionActs& a,
                     DType ad) {
  const int64_t N = B * T, H = cfg.num_attention_heads, Dqk = cfg.qk_head_dim();
  const int64_t Dn = cfg.qk_nope_head_dim, Dr = cfg.qk_rope_head_dim, Dv = cfg.v_head_dim;
  const int64_t Rkv = cfg.kv_lora_rank;
  if (cfg.q_lora_rank) {
    const int64_t Rq = *cfg.q_lora_rank;
    a.q_a = Tensor::empty(be, {N, Rq}, ad);
    a.q_a_rstd = Tensor::empty(be, {N}, DType::F32);
    a.q_a_normed = Tensor::empty(be, {N, Rq}, ad);
  }
  a.q = Tensor::empty(be, {N, H * Dqk}, ad);
  a.ckv = Tensor::empty(be, {N, Rkv + Dr}, ad);
  a.kv_rstd = Tensor::empty(be, {N}, DType::F32);
  a.kv_normed = Tensor::empty(be, {N, Rkv}, ad);
  a.kv = Tensor::empty(be, {N, H * (Dn + Dv)}, ad);
  a.k = Tensor::empty(be, {N, H * Dqk}, ad);
  a.out = Tensor::empty(be, {N, H * Dv}, ad);
  a.lse = Tensor::empty(be, {B, H, T}, DType::F32);
}

void alloc_attention_scratch(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T,
                             AttentionScratch& s, DType ad) {
  const int64_t N = B * T, H = cfg.num_attention_heads, Dqk = cfg.qk_head_dim();
  const int64_t Dn = cfg.qk_nope_head_dim, Dr = cfg.qk_rope_head_dim, Dv = cfg.v_head_dim;
  const int64_t Rkv = cfg.kv_lora_rank;
  s.dout = Tensor::empty(be, {N, H * Dv}, ad);
  s.dq = Tensor::empty(be, {N, H * Dqk}, ad);
  s.dk = Tensor::empty(be, {N, H * Dqk}, ad);
  s.dv = Tensor::empty(be, {N, H * Dv}, ad);
  s.dkv = Tensor::empty(be, {N, H * (Dn + Dv)}, ad);
  if (cfg.q_lora_rank) {
    s.dq_a_normed = Tensor::empty(be, {N, *cfg.q_lora_rank}, ad);
    s.dq_a = Tensor::empty(be, {N, *cfg.q_lora_rank}, ad);
  }
  s.dkv_normed = Tensor::empty(be, {N, Rkv}, ad);
  s.dkv_lat = Tensor::empty(be, {N, Rkv}, ad);
  s.dckv = Tensor::empty(be, {N, Rkv + Dr}, ad);
  s.ones = Tensor::empty(be, {H, 1}, ad);
  be.fill(s.ones, 1.0);
}

void attention_forward(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T,
                       const AttentionParams& p, const RopeTables& rope, const Tensor& x,
                       AttentionActs& a, AttentionScratch& s, Tensor& y) {
  const int64_t N = B * T, H = cfg.num_attention_heads, Dqk = cfg.qk_head_dim();
  const int64_t Dn = cfg.qk_nope_head_dim, Dr = cfg.qk_rope_head_dim, Dv = cfg.v_head_dim;
  const int64_t Rkv = cfg.kv_lora_rank;
  const bool il = cfg.rope_interleave;

  // q: (N, H*Dqk), RoPE on each head's last Dr dims.
  if (cfg.q_lora_rank) {
    linear_forward(be, x, p.q_a_proj, a.q_a);
    be.rmsnorm_forward(a.q_a, p.q_a_norm, kLoraNormEps, a.q_a_normed, a.q_a_rstd);
    linear_forward(be, a.q_a_normed, p.q_b_proj, a.q);
  } else {
    linear_forward(be, x, p.q_proj, a.q);
  }
  Tensor q_rope = a.q.view({N, H, Dqk}).narrow(2, Dn, Dr);  // (N, H, Dr)
  be.rope(q_rope, rope.positions, rope.cos, rope.sin, il, false);

  // Compressed kv: latent (normed, then up-projected) and the shared k_rope.
  linear_forward(be, x, p.kv_a_proj, a.ckv);
  Tensor latent = a.ckv.narrow(1, 0, Rkv);  // (N, Rkv), row stride Rkv + Dr
  be.rmsnorm_forward(latent, p.kv_a_norm, kLoraNormEps, a.kv_normed, a.kv_rstd);
  Tensor k_rope = a.ckv.view({N, 1, Rkv + Dr}).narrow(2, Rkv, Dr);  // (N, 1, Dr)
  be.rope(k_rope, rope.positions, rope.cos, rope.sin, il, false);
  linear_forward(be, a.kv_normed, p.kv_b_proj, a.kv);

  // k (N, H, Dqk) = k_nope | k_rope broadcast to every head (ones (H, 1) @ k_rope).
  Tensor kv3 = a.kv.view({N, H, Dn + Dv});
  Tensor k3 = a.k.view({N, H, Dqk});
  Tensor k_nope_dst = k3.narrow(2, 0, Dn);
  be.copy(kv3.narrow(2, 0, Dn), k_nope_dst);
  Tensor k_rope_dst = k3.narrow(2, Dn, Dr);
  be.gemm(s.ones, false, k_rope, false, k_rope_dst);

  Tensor q4 = a.q.view({B, T, H, Dqk});
  Tensor k4 = a.k.view({B, T, H, Dqk});
  Tensor v4 = a.kv.view({B, T, H, Dn + Dv}).narrow(3, Dn, Dv);
  Tensor o4 = a.out.view({B, T, H, Dv});
  be.attention_forward(q4, k4, v4, float(cfg.softmax_scale()), o4, a.lse);
  linear_forward(be, a.out, p.o_proj, y);
}

void attention_backward(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T,
                        const AttentionParams& p, AttentionParams& g, const RopeTables& rope,
                        const Tensor& x, const AttentionActs& a, AttentionScratch& s,
                        const Tensor& dy, Tensor& dx) {
  const int64_t N = B * T, H = cfg.num_attention_heads, Dqk = cfg.qk_head_dim();
  const int64_t Dn = cfg.qk_nope_head_dim, Dr = cfg.qk_rope_head_dim, Dv = cfg.v_head_dim;
  const int64_t Rkv = cfg.kv_lora_rank;
  const bool il = cfg.rope_interleave;

  linear_backward(be, dy, a.out, p.o_proj, g.o_proj, &s.dout, false);
  {
    Tensor dq4 = s.dq.view({B, T, H, Dqk}), dk4 = s.dk.view({B, T, H, Dqk});
    Tensor dv4 = s.dv.view({B, T, H, Dv});
    be.attention_backward(s.dout.view({B, T, H, Dv}), a.q.view({B, T, H, Dqk}),
                          a.k.view({B, T, H, Dqk}), a.kv.view({B, T, H, Dn + Dv}).narrow(3, Dn, Dv),
                          a.out.view({B, T, H, Dv}), a.lse, float(cfg.softmax_scale()), dq4, dk4,
                          dv4);
  }

  // q path: undo RoPE on the gradient, then back through the projections.
  Tensor dq_rope = s.dq.view({N, H, Dqk}).narrow(2, Dn, Dr);
  be.rope(dq_rope, rope.positions, rope.cos, rope.sin, il, true);
  if (cfg.q_lora_rank) {
    linear_backward(be, s.dq, a.q_a_normed, p.q_b_proj, g.q_b_proj, &s.dq_a_normed, false);
    be.rmsnorm_backward(s.dq_a_normed, a.q_a, p.q_a_norm, a.q_a_rstd, s.dq_a, g.q_a_norm);
    linear_backward(be, s.dq_a, x, p.q_a_proj, g.q_a_proj, &dx, false);
  } else {
    linear_backward(be, s.dq, x, p.q_proj, g.q_proj, &dx, false);
  }

  // kv path: dkv = dk_nope | dv per head; the heads' dk_rope sum into the shared one.
  Tensor dk3 = s.dk.view({N, H, Dqk});
  Tensor dkv3 = s.dkv.view({N, H, Dn + Dv});
  Tensor dkv_nope = dkv3.narrow(2, 0, Dn), dkv_v = dkv3.narrow(2, Dn, Dv);
  be.copy(dk3.narrow(2, 0, Dn), dkv_nope);
  be.copy(s.dv.view({N, H, Dv}), dkv_v);
  linear_backward(be, s.dkv, a.kv_normed, p.kv_b_proj, g.kv_b_proj, &s.dkv_normed, false);
  be.rmsnorm_backward(s.dkv_normed, a.ckv.narrow(1, 0, Rkv), p.kv_a_norm, a.kv_rstd, s.dkv_lat,
                      g.kv_a_norm);
  Tensor dckv_lat = s.dckv.narrow(1, 0, Rkv);
  be.copy(s.dkv_lat, dckv_lat);
  Tensor dk_rope = s.dckv.view({N, 1, Rkv + Dr}).narrow(2, Rkv, Dr);  // (N, 1, Dr)
  be.gemm(s.ones, true, dk3.narrow(2, Dn, Dr), false, dk_rope);      // (1, H) @ (N, H, Dr)
  be.rope(dk_rope, rope.positions, rope.cos, rope.sin, il, true);
  linear_backward(be, s.dckv, x, p.kv_a_proj, g.kv_a_proj, &dx, true);
}

}  // namespace model
}  // namespace zeroth
