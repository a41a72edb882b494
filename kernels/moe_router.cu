// The DeepSeek-V3 router on the GPU: one warp per token, forward and backward.
//
// Owns: the per-token selection (sigmoid, biased scores, group ranking by the sum of
// each group's top two, top groups, top-k experts) and the gradient through the
// chosen weights. Selection order equals the CPU backend's: every argmax ranks by
// (value descending, index ascending), which is a total order for non-NaN values, so
// the warp's shuffle tree finds the same winner as a sequential scan. Must not: touch
// other tokens' rows or use atomics.
#include "moe_router.h"

#include <climits>

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

namespace {

constexpr int kRouterWarps = 4;  // tokens per block
constexpr int kNone = INT_MAX;   // "no candidate yet" index in an argmax

// True when candidate (v, i) ranks before the current best (best_v, best_i).
__device__ __forceinline__ bool ranks_before(float v, int i, float best_v, int best_i) {
  return best_i == kNone || v > best_v || (v == best_v && i < best_i);
}

// Warp-wide argmax of (v, i) under ranks_before; every lane gets the winner.
__device__ __forceinline__ void warp_argmax(float& v, int& i) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, offset);
    const int oi = __shfl_xor_sync(0xffffffffu, i, offset);
    if (oi != kNone && ranks_before(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
}

__device__ __forceinline__ float sigmoid_f32(float x) { return 1.0f / (1.0f + expf(-x)); }

// Bytes of one warp's shared scratch: biased scores (E floats), group scores
// (G floats), expert availability (E bytes), group kept flags (G bytes).
size_t router_warp_bytes(int E, int G) {
  const size_t bytes = size_t(E + G) * sizeof(float) + size_t(E + G);
  return (bytes + 15) & ~size_t(15);
}

}  // namespace

// ---- kernels ----

// Grid: (ceil(n / kRouterWarps)); block: (32 * kRouterWarps); dynamic shared memory:
// kRouterWarps * warp_bytes. Warp w of block b handles token b * kRouterWarps + w.
__global__ void moe_router_forward_kernel(const void* logits, DType logits_dtype,
                                          const float* bias, int64_t n_tokens, int E, int G,
                                          int topk_group, int top_k, bool norm_topk_prob,
                                          float scaling, size_t warp_bytes, float* scores,
                                          int32_t* topk_idx, float* topk_weight) {
  extern __shared__ __align__(16) unsigned char router_smem[];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int64_t n = int64_t(blockIdx.x) * kRouterWarps + warp;
  if (n >= n_tokens) return;  // the whole warp leaves together (no block barriers below)

  unsigned char* mine = router_smem + size_t(warp) * warp_bytes;
  float* biased = reinterpret_cast<float*>(mine);         // (E)
  float* group_score = biased + E;                        // (G)
  unsigned char* available = mine + size_t(E + G) * 4;    // (E) 1: a candidate expert
  unsigned char* group_kept = available + E;              // (G)
  const int per_group = E / G;
  const int64_t row = n * E;

  for (int e = lane; e < E; e += 32) {
    const float s = sigmoid_f32(load_as_float(logits, logits_dtype, row + e));
    scores[row + e] = s;
    biased[e] = s + bias[e];
  }
  __syncwarp();

  // Group scores: lane-strided over groups, each group scanned in expert order.
  for (int g = lane; g < G; g += 32) {
    float top1 = -INFINITY, top2 = -INFINITY;
    for (int i = 0; i < per_group; ++i) {
      const float v = biased[g * per_group + i];
      if (v > top1) {
        top2 = top1;
        top1 = v;
      } else if (v > top2) {
        top2 = v;
      }
    }
    group_score[g] = top1 + top2;  // per_group >= 2 (callers check)
    group_kept[g] = 0;
  }
  __syncwarp();

  // The topk_group best groups. Group g is only read and written by lane g % 32.
  for (int it = 0; it < topk_group; ++it) {
    float best_v = -INFINITY;
    int best_i = kNone;
    for (int g = lane; g < G; g += 32)
      if (!group_kept[g] && ranks_before(group_score[g], g, best_v, best_i)) {
        best_v = group_score[g];
        best_i = g;
      }
    warp_argmax(best_v, best_i);
    if (best_i != kNone && best_i % 32 == lane) group_kept[best_i] = 1;
  }
  __syncwarp();  // group_kept is read by other lanes below
  for (int e = lane; e < E; e += 32) available[e] = group_kept[e / per_group];
  // Expert e is only read and written by lane e % 32 from here on.

  // The top_k experts of the kept groups, in descending biased score; lane 0 writes
  // the raw (unbiased) scores as weights and normalises them at the end.
  float sum = 0.0f;
  for (int j = 0; j < top_k; ++j) {
    float best_v = -INFINITY;
    int best_i = kNone;
    for (int e = lane; e < E; e += 32)
      if (available[e] && ranks_before(biased[e], e, best_v, best_i)) {
        best_v = biased[e];
        best_i = e;
      }
    warp_argmax(best_v, best_i);
    if (best_i == kNone) best_i = 0;  // unreachable: top_k <= kept experts (callers check)
    if (best_i % 32 == lane) available[best_i] = 0;
    if (lane == 0) {
      const float s = sigmoid_f32(load_as_float(logits, logits_dtype, row + best_i));
      topk_idx[n * top_k + j] = best_i;
      topk_weight[n * top_k + j] = s;
      sum += s;
    }
  }
  if (lane == 0) {
    const float denom = sum + 1e-20f;
    for (int j = 0; j < top_k; ++j) {
      const float w = topk_weight[n * top_k + j];
      topk_weight[n * top_k + j] = (norm_topk_prob ? w / denom : w) * scaling;
    }
  }
}

// Grid: (ceil(n / kRouterWarps)); block: (32 * kRouterWarps); one warp per token.
__global__ void moe_router_backward_kernel(const float* scores, const int32_t* topk_idx,
                                           const float* dtopk_weight, int64_t n_tokens, int E,
                                           int top_k, bool norm_topk_prob, float scaling,
                                           float* dlogits) {
  const int lane = threadIdx.x % 32;
  const int64_t n = int64_t(blockIdx.x) * kRouterWarps + threadIdx.x / 32;
  if (n >= n_tokens) return;
  const int64_t row = n * E;
  const int64_t krow = n * top_k;

  for (int e = lane; e < E; e += 32) dlogits[row + e] = 0.0f;

  float sum_s = 0.0f, sum_ds = 0.0f;  // S = sum_i s_i, D = sum_i dw_i s_i
  for (int j = lane; j < top_k; j += 32) {
    const float s = scores[row + topk_idx[krow + j]];
    sum_s += s;
    sum_ds += dtopk_weight[krow + j] * s;
  }
  sum_s = warp_reduce_sum(sum_s);
  sum_ds = warp_reduce_sum(sum_ds);
  __syncwarp();  // orders the zero stores above before the stores below (other lanes)

  const float denom = sum_s + 1e-20f;
  for (int j = lane; j < top_k; j += 32) {
    const int e = topk_idx[krow + j];
    const float s = scores[row + e];
    const float dw = dtopk_weight[krow + j];
    const float ds = norm_topk_prob ? scaling * (dw / denom - sum_ds / (denom * denom))
                                    : scaling * dw;
    dlogits[row + e] = ds * s * (1.0f - s);
  }
}

// ---- launchers ----

void launch_moe_router_forward(const void* logits, DType logits_dtype, const float* bias,
                               int64_t n, int E, int n_group, int topk_group, int top_k,
                               bool norm_topk_prob, float scaling, float* scores,
                               int32_t* topk_idx, float* topk_weight, cudaStream_t stream) {
  if (n <= 0) return;
  ZT_ASSERT(E >= 1 && E <= kRouterMaxExperts && n_group >= 1 && E % n_group == 0,
            "moe_router_forward: %d experts in %d groups (at most %d experts)", E, n_group,
            kRouterMaxExperts);
  const int64_t blocks = (n + kRouterWarps - 1) / kRouterWarps;
  ZT_ASSERT(blocks <= INT32_MAX, "moe_router_forward: %lld tokens", (long long)n);
  const size_t warp_bytes = router_warp_bytes(E, n_group);
  moe_router_forward_kernel<<<unsigned(blocks), 32 * kRouterWarps, kRouterWarps * warp_bytes,
                              stream>>>(logits, logits_dtype, bias, n, E, n_group, topk_group,
                                        top_k, norm_topk_prob, scaling, warp_bytes, scores,
                                        topk_idx, topk_weight);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_moe_router_backward(const float* scores, const int32_t* topk_idx,
                                const float* dtopk_weight, int64_t n, int E, int top_k,
                                bool norm_topk_prob, float scaling, float* dlogits,
                                cudaStream_t stream) {
  if (n <= 0 || E <= 0) return;
  const int64_t blocks = (n + kRouterWarps - 1) / kRouterWarps;
  ZT_ASSERT(blocks <= INT32_MAX, "moe_router_backward: %lld tokens", (long long)n);
  moe_router_backward_kernel<<<unsigned(blocks), 32 * kRouterWarps, 0, stream>>>(
      scores, topk_idx, dtopk_weight, n, E, top_k, norm_topk_prob, scaling, dlogits);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
