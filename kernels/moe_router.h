// Launchers for kernels/moe_router.cu: the DeepSeek-V3 sigmoid router (group-limited
// top-k with a selection-only bias) and its backward through the chosen weights.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// Largest expert count the forward's per-warp shared memory admits (four warps of
// (E floats + E flags + per-group data) stay within the default 48 KiB).
constexpr int kRouterMaxExperts = 1024;

// Per token n (one warp each):
//   scores[n, e] = sigmoid(logits[n, e]); biased = scores + bias;
//   group g's score = sum of its two largest biased scores; the topk_group best
//   groups are kept (ties: lower group first); topk_idx[n, j] = the j-th best kept
//   expert by biased score (ties: lower expert first); topk_weight[n, j] =
//   scores[n, topk_idx[n, j]], divided by their sum (+1e-20) when norm_topk_prob,
//   times scaling.
// logits is any float dtype; everything is contiguous. Callers check E % n_group == 0,
// E / n_group >= 2, 1 <= topk_group <= n_group, 1 <= top_k <= topk_group * E / n_group.
void launch_moe_router_forward(const void* logits /* (n, E) */, DType logits_dtype,
                               const float* bias /* (E) */, int64_t n, int E, int n_group,
                               int topk_group, int top_k, bool norm_topk_prob, float scaling,
                               float* scores /* (n, E) */, int32_t* topk_idx /* (n, top_k) */,
                               float* topk_weight /* (n, top_k) */, cudaStream_t stream);

// dlogits[n, :] = 0 except at the chosen experts e_j = topk_idx[n, j]:
//   ds_j = scaling * (dw_j / (S + 1e-20) - sum_i dw_i s_i / (S + 1e-20)^2) when
//   norm_topk_prob (S = sum_i s_i over the chosen), else scaling * dw_j;
//   dlogits[n, e_j] = ds_j * s_j * (1 - s_j), with s = scores[n, :].
void launch_moe_router_backward(const float* scores /* (n, E) */,
                                const int32_t* topk_idx /* (n, top_k) */,
                                const float* dtopk_weight /* (n, top_k) */, int64_t n, int E,
                                int top_k, bool norm_topk_prob, float scaling,
                                float* dlogits /* (n, E) */, cudaStream_t stream);

}  // namespace zeroth
