// DeepSeekMoE layer: sigmoid router with the aux-loss-free bias and group-limited
// top-k, dispatch (sort by expert, gather), grouped SwiGLU experts, weighted combine,
// shared experts; forward and backward; the sequence-wise balance loss (host).
// Owns: the order of MoE ops and the one host sync per layer (expert counts, which
// size the grouped GEMMs); the sync-free inference variant (moe_forward_rows). Must
// not: communicate (the expert-parallel exchange is layer_moe_ep.cpp's), allocate per
// call (except the balance loss's host vectors), or call BLAS.
#include <vector>

#include "model/layers.h"
#include "zeroth/error.h"

namespace zeroth {
namespace model {

void alloc_moe(Backend& be, const ModelConfig& cfg, int64_t N, MoeActs& a, DType ad,
               bool expert_parallel) {
  const int64_t E = cfg.n_routed_experts, k = cfg.num_experts_per_tok;
  const int64_t C = cfg.hidden_size, Im = cfg.moe_intermediate_size;
  a.logits = Tensor::empty(be, {N, E}, DType::F32);
  a.scores = Tensor::empty(be, {N, E}, DType::F32);
  a.topk_idx = Tensor::empty(be, {N, k}, DType::I32);
  a.topk_weight = Tensor::empty(be, {N, k}, DType::F32);
  a.sorted_to_slot = Tensor::empty(be, {N * k}, DType::I32);
  a.slot_to_sorted = Tensor::empty(be, {N * k}, DType::I32);
  a.counts = Tensor::empty(be, {E}, DType::I32);
  a.load.assign(size_t(E), 0);
  a.xs = Tensor::empty(be, {N * k, C}, ad);
  if (!expert_parallel) {
    a.gate = Tensor::empty(be, {N * k, Im}, ad);
    a.up = Tensor::empty(be, {N * k, Im}, ad);
    a.h = Tensor::empty(be, {N * k, Im}, ad);
  }
  a.eo = Tensor::empty(be, {N * k, C}, ad);
  if (cfg.n_shared_experts > 0) alloc_mlp(be, N, Im * cfg.n_shared_experts, a.shared, ad);
}

void alloc_moe_scratch(Backend& be, const ModelConfig& cfg, int64_t N, MoeScratch& s,
                       DType ad, bool expert_parallel) {
  const int64_t E = cfg.n_routed_experts, k = cfg.num_experts_per_tok;
  const int64_t C = cfg.hidden_size, Im = cfg.moe_intermediate_size;
  s.deo = Tensor::empty(be, {N * k, C}, ad);
  s.dweight = Tensor::empty(be, {N, k}, DType::F32);
  if (!expert_parallel) {
    s.dh = Tensor::empty(be, {N * k, Im}, ad);
    s.dgate = Tensor::empty(be, {N * k, Im}, ad);
    s.dup = Tensor::empty(be, {N * k, Im}, ad);
  }
  s.dxs = Tensor::empty(be, {N * k, C}, DType::F32);
  s.dlogits = Tensor::empty(be, {N, E}, DType::F32);
  s.dlogits_c = ad == DType::F32 ? s.dlogits : Tensor::empty(be, {N, E}, ad);
  s.daux = Tensor::empty(be, {N, E}, DType::F32);
  s.dx_part = Tensor::empty(be, {N, C}, DType::F32);
}

float balance_loss_host(const std::vector<float>& scores, const std::vector<int32_t>& topk_idx,
                        int64_t B, int64_t T, int64_t E, int64_t k, float alpha,
                        std::vector<float>& dlogits, const std::vector<int64_t>* lengths,
                        int64_t sequences) {
  ZT_ASSERT(int64_t(scores.size()) == B * T * E && int64_t(topk_idx.size()) == B * T * k,
            "balance loss: %zu scores, %zu choices for B=%lld T=%lld", scores.size(),
            topk_idx.size(), (long long)B, (long long)T);
  ZT_ASSERT(!lengths || int64_t(lengths->size()) == B, "balance loss: %zu lengths for %lld rows",
            lengths ? lengths->size() : size_t(0), (long long)B);
  ZT_ASSERT(sequences >= 0, "balance loss: %lld sequences", (long long)sequences);
  const int64_t over = sequences > 0 ? sequences : B;  // the mean is over this many sequences
  dlogits.assign(size_t(B * T * E), 0.0f);
  std::vector<double> f(static_cast<size_t>(E)), p(static_cast<size_t>(E));
  double total = 0.0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = lengths ? (*lengths)[size_t(b)] : T;  // the sequence: tokens [0, L)
    ZT_ASSERT(L >= 0 && L <= T, "balance loss: row length %lld outside [0, %lld]", (long long)L, (long long)T);
    if (L == 0) continue;
    // f_i = E / (k L) * count_i (no gradient); P_i = mean_t s_i,t / sum_j s_j,t.
    std::fill(f.begin(), f.end(), 0.0);
    std::fill(p.begin(), p.end(), 0.0);
    for (int64_t t = 0; t < L; ++t)
      for (int64_t j = 0; j < k; ++j) {
        int32_t e = topk_idx[size_t((b * T + t) * k + j)];
        ZT_ASSERT(e >= 0 && e < E, "expert index %d out of range", int(e));
        f[size_t(e)] += double(E) / double(k * L);
      }
    for (int64_t t = 0; t < L; ++t) {
      const float* s = &scores[size_t((b * T + t) * E)];
      double sum = 0.0, fs = 0.0;
      for (int64_t i = 0; i < E; ++i) {
        sum += s[i];
        fs += f[size_t(i)] * s[i];
      }
      for (int64_t i = 0; i < E; ++i) p[size_t(i)] += s[i] / sum / double(L);
      // d/ds_i of alpha/over * sum_i f_i s_i / (L sum) = alpha/(over L) (f_i - fs/sum) / sum;
      // through the sigmoid: * s (1 - s).
      float* d = &dlogits[size_t((b * T + t) * E)];
      for (int64_t i = 0; i < E; ++i) {
        double ds = double(alpha) / double(over * L) * (f[size_t(i)] - fs / sum) / sum;
        d[i] = float(ds * s[i] * (1.0 - s[i]));
      }
    }
    double lb = 0.0;
    for (int64_t i = 0; i < E; ++i) lb += f[size_t(i)] * p[size_t(i)];
    total += double(alpha) * lb;
  }
  return float(total / double(over));
}

void moe_forward(Backend& be, const ModelConfig& cfg, int64_t B, int64_t T, const MoeParams& p,
                 const Tensor& x, MoeActs& a, const BalanceLoss& bal, Tensor& y, const ExpertGroup& eg) {
  const int64_t N = B * T, E = cfg.n_routed_experts, k = cfg.num_experts_per_tok;
  linear_forward(be, x, p.router, a.logits);
  be.moe_router_forward(a.logits, p.router_bias, int(cfg.n_group), int(cfg.topk_group), int(k),
                        cfg.norm_topk_prob, float(cfg.routed_scaling_factor), a.scores,
                        a.topk_idx, a.topk_weight);
  be.moe_sort_by_expert(a.topk_idx, int(E), a.sorted_to_slot, a.slot_to_sorted, a.counts);
  std::vector<int32_t> counts(static_cast<size_t>(E));
  a.counts.copy_to_host(counts.data(), counts.size() * sizeof(int32_t));  // host sync
  int64_t total = 0;
  for (int64_t e = 0; e < E; ++e) {
    a.load[size_t(e)] = counts[size_t(e)];
    total += counts[size_t(e)];
  }
  ZT_ASSERT(total == N * k, "expert counts sum to %lld, expected %lld", (long long)total,
            (long long)(N * k));

  be.moe_gather(x, a.sorted_to_slot, int(k), a.xs);
  if (eg.active()) {
    moe_ep_experts_forward(be, cfg, p, eg, a);
  } else {
    be.grouped_gemm(a.xs, p.experts_gate, true, a.load, a.gate);
    be.grouped_gemm(a.xs, p.experts_up, true, a.load, a.up);
    be.swiglu_forward(a.gate, a.up, a.h);
    be.grouped_gemm(a.h, p.experts_down, true, a.load, a.eo);
  }
  if (cfg.n_shared_experts > 0) {
    mlp_forward(be, p.shared, x, a.shared, y);
    be.moe_combine(a.eo, a.slot_to_sorted, a.topk_weight, y, true);
  } else {
    be.moe_combine(a.eo, a.slot_to_sorted, a.topk_weight, y, false);
  }

  a.aux_loss = 0.0f;
  a.aux_dlogits.clear();
  if (bal.alpha > 0.0f) {
    std::vector<float> scores(size_t(N * E));
    std::vector<int32_t> idx(size_t(N * k));
    a.scores.copy_to_host(scores.data(), scores.size() * sizeof(float));
    a.topk_idx.copy_to_host(idx.data(), idx.size() * sizeof(int32_t));
    a.aux_loss = balance_loss_host(scores, idx, B, T, E, k, bal.alpha, a.aux_dlogits, bal.lengths,
                                   bal.sequences);
  }
}

void moe_forward_rows(Backend& be, const ModelConfig& cfg, int64_t N, const MoeParams& p,
                      const Tensor& x, MoeActs& a, Tensor& y) {
  const int64_t k = cfg.num_experts_per_tok;
  linear_forward(be, x, p.router, a.logits);
  be.moe_router_forward(a.logits, p.router_bias, int(cfg.n_group), int(cfg.topk_group), int(k),
                        cfg.norm_topk_prob, float(cfg.routed_scaling_factor), a.scores,
                        a.topk_idx, a.topk_weight);
  const Tensor experts = a.topk_idx.view({N * k});
  be.expert_rows_gemm(x, p.experts_gate, experts, int(k), a.gate);
  be.expert_rows_gemm(x, p.experts_up, experts, int(k), a.up);
  be.swiglu_forward(a.gate, a.up, a.h);
  be.expert_rows_gemm(a.h, p.experts_down, experts, 1, a.eo);
  if (cfg.n_shared_experts > 0) {
    mlp_forward(be, p.shared, x, a.shared, y);
    be.moe_combine(a.eo, a.slot_to_sorted, a.topk_weight, y, true);
  } else {
    be.moe_combine(a.eo, a.slot_to_sorted, a.topk_weight, y, false);
  }
}

void moe_backward(Backend& be, const ModelConfig& cfg, const MoeParams& p, MoeParams& g,
                  const Tensor& x, const MoeActs& a, MoeScratch& s, MlpScratch& ms,
                  bool with_aux, const Tensor& dy, Tensor& dx, const ExpertGroup& eg) {
  const int64_t k = cfg.num_experts_per_tok;
  const bool shared = cfg.n_shared_experts > 0;
  if (shared) mlp_backward(be, p.shared, g.shared, x, a.shared, ms, dy, dx, false);

  // Routed experts, in reverse: combine, down, SwiGLU, gate/up, gather.
  be.moe_combine_backward(dy, a.eo, a.slot_to_sorted, a.topk_weight, s.deo, s.dweight);
  if (eg.active()) {
    moe_ep_experts_backward(be, p, g, eg, a, s);
  } else {
    be.grouped_gemm_wgrad(s.deo, a.h, a.load, g.experts_down, true);
    be.grouped_gemm(s.deo, p.experts_down, false, a.load, s.dh);
    be.swiglu_backward(s.dh, a.gate, a.up, s.dgate, s.dup);
    be.grouped_gemm_wgrad(s.dgate, a.xs, a.load, g.experts_gate, true);
    be.grouped_gemm_wgrad(s.dup, a.xs, a.load, g.experts_up, true);
    be.grouped_gemm(s.dgate, p.experts_gate, false, a.load, s.dxs);
    be.grouped_gemm(s.dup, p.experts_up, false, a.load, s.dxs, 1.0f, 1.0f);
  }
  if (shared) {
    be.moe_gather_backward(s.dxs, a.slot_to_sorted, int(k), s.dx_part);
    be.add(dx, s.dx_part, dx);
  } else {
    be.moe_gather_backward(s.dxs, a.slot_to_sorted, int(k), dx);
  }

  // Router: through the top-k weights (and the balance loss), then the gate GEMM.
  be.moe_router_backward(a.scores, a.topk_idx, s.dweight, cfg.norm_topk_prob,
                         float(cfg.routed_scaling_factor), s.dlogits);
  if (with_aux) {
    ZT_ASSERT(int64_t(a.aux_dlogits.size()) == s.daux.numel(),
              "balance-loss gradient missing: was forward run with the loss enabled?");
    s.daux.copy_from_host(a.aux_dlogits.data(), a.aux_dlogits.size() * sizeof(float));
    be.add(s.dlogits, s.daux, s.dlogits);
  }
  if (s.dlogits_c.data_ptr() != s.dlogits.data_ptr()) be.copy(s.dlogits, s.dlogits_c);
  linear_backward(be, s.dlogits_c, x, p.router, g.router, &dx, true);
}

}  // namespace model
}  // namespace zeroth
