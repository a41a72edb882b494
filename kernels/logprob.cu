// Log-probabilities of target tokens over a large vocabulary, one block per row.
//
// Owns: the single-pass online logsumexp (thread t keeps a running max m and
// s = sum exp(z - m), plus t_ = sum exp(z - m) (z - m) for the entropy, over columns t,
// t + blockDim, ...; states merge across the warp then the block in a fixed order, so
// results are deterministic) and the gradient (one pass for Ez when the entropy term
// is present, then one write pass). Must not: materialise softmax(z) in memory.
#include "logprob.h"

#include <cstdio>

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

namespace {

constexpr int kLogprobThreads = 512;

}  // namespace

// Running softmax statistics of raw logits x at inverse temperature it, kept relative
// to the running max so that nothing cancels when the logits are large (|x| ~ 1e3):
// m = max x, s = sum exp((x - m) it), t = sum exp((x - m) it) (x - m) it.
// An empty set (or all -inf) is m = -inf, s = t = 0.
struct SoftmaxState {
  float m, s, t;
};

__device__ __forceinline__ void state_add(SoftmaxState& st, float x, float it, bool with_t) {
  if (x == -INFINITY) return;  // contributes nothing (and would make 0 * -inf = NaN)
  if (x > st.m) {
    if (st.m == -INFINITY) {
      st = SoftmaxState{x, 1.0f, 0.0f};
      return;
    }
    const float d = (st.m - x) * it;  // < 0
    const float r = expf(d);
    if (with_t) st.t = (st.t + st.s * d) * r;  // re-centre the old terms on the new max
    st.s = st.s * r + 1.0f;
    st.m = x;
  } else {
    const float d = (x - st.m) * it;  // NaN x lands here and propagates through s
    const float e = expf(d);
    st.s += e;
    if (with_t) st.t += e * d;
  }
}

__device__ __forceinline__ SoftmaxState state_merge(SoftmaxState a, SoftmaxState b, float it) {
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  const float m = max_propagate_nan(a.m, b.m);
  const float da = (a.m - m) * it, db = (b.m - m) * it;
  const float ra = expf(da), rb = expf(db);
  return SoftmaxState{m, a.s * ra + b.s * rb, (a.t + a.s * da) * ra + (b.t + b.s * db) * rb};
}

__device__ __forceinline__ SoftmaxState warp_merge(SoftmaxState st, float it) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    SoftmaxState o{__shfl_xor_sync(0xffffffffu, st.m, offset),
                   __shfl_xor_sync(0xffffffffu, st.s, offset),
                   __shfl_xor_sync(0xffffffffu, st.t, offset)};
    st = state_merge(st, o, it);
  }
  return st;
}

__device__ __forceinline__ void trap_bad_target(int64_t i, int32_t target, int64_t v) {
  printf("zeroth logprob: targets[%lld] = %d is not below the vocabulary size %lld\n",
         (long long)i, target, (long long)v);
  __trap();
}

// log p = x it - lse, formed in double: x it and lse may both be ~1e3, where a float
// difference would lose four digits.
__device__ __forceinline__ float log_prob(float x, double it, double lse) {
  return float(double(x) * it - lse);
}

// ---- kernels ----

// Grid: (n); block: (kLogprobThreads).
__global__ void logprob_forward_kernel(const void* logits, DType logits_dtype,
                                       const int32_t* targets, float inv_temperature,
                                       float* logprob, float* lse, float* entropy, int64_t v) {
  __shared__ SoftmaxState warp_states[32];
  const int64_t row = blockIdx.x;
  const int64_t base = row * v;
  const bool with_t = entropy != nullptr;
  const float it = inv_temperature;
  SoftmaxState st{-INFINITY, 0.0f, 0.0f};
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x)
    state_add(st, load_as_float(logits, logits_dtype, base + j), it, with_t);
  st = warp_merge(st, it);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_states[warp] = st;
  __syncthreads();
  if (warp != 0) return;
  const int num_warps = blockDim.x / 32;
  st = lane < num_warps ? warp_states[lane] : SoftmaxState{-INFINITY, 0.0f, 0.0f};
  st = warp_merge(st, it);
  if (lane != 0) return;
  const int32_t target = targets[row];
  if (target >= v) trap_bad_target(row, target, v);
  if (!(st.m > -INFINITY && st.m < INFINITY)) {  // NaN, +inf or all -inf: undefined (as CPU)
    lse[row] = logprob[row] = NAN;
    if (with_t) entropy[row] = NAN;
    return;
  }
  const float log_s = logf(st.s);
  lse[row] = float(double(st.m) * double(it) + double(log_s));
  logprob[row] = target < 0 ? 0.0f
                            : (load_as_float(logits, logits_dtype, base + target) - st.m) * it -
                                  log_s;
  if (with_t) entropy[row] = log_s - st.t / st.s;
}

// Grid: (n); block: (kLogprobThreads).
__global__ void logprob_backward_kernel(const void* logits, DType logits_dtype,
                                        const int32_t* targets, float inv_temperature,
                                        const float* lse, const float* dlogprob,
                                        const float* dentropy, void* dlogits, DType dlogits_dtype,
                                        int64_t v) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const int64_t base = row * v;
  const float row_lse = lse[row];
  const double lse_d = row_lse, it_d = inv_temperature;
  const int32_t target = targets[row];
  if (threadIdx.x == 0 && target >= v) trap_bad_target(row, target, v);
  const float dlp = target < 0 ? 0.0f : dlogprob[row];
  const float dent = dentropy != nullptr ? dentropy[row] : 0.0f;
  const bool use_entropy = dent != 0.0f;  // uniform across the block
  // H = -sum p log p, recomputed from lse; its gradient is -p (log p + H).
  float neg_h = 0.0f;
  if (use_entropy) {
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
      const float lp = log_prob(load_as_float(logits, logits_dtype, base + j), it_d, lse_d);
      const float p = expf(lp);
      if (p > 0.0f) neg_h += p * lp;  // skips x = -inf (p = 0), where p * lp would be NaN
    }
    neg_h = block_reduce_sum(neg_h, shared);
  }
  const bool finite_lse = isfinite(row_lse);
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    float g;
    if (!finite_lse) {
      g = NAN;
    } else {
      const float lp = log_prob(load_as_float(logits, logits_dtype, base + j), it_d, lse_d);
      const float p = expf(lp);
      g = dlp * ((j == target ? 1.0f : 0.0f) - p);
      if (use_entropy && p > 0.0f) g -= dent * p * (lp - neg_h);
    }
    store_from_float(dlogits, dlogits_dtype, base + j, g * inv_temperature);
  }
}

// ---- launchers ----

void launch_logprob_forward(const void* logits, DType logits_dtype, const int32_t* targets,
                            float temperature, float* logprob, float* lse, float* entropy,
                            int64_t n, int64_t v, cudaStream_t stream) {
  if (n <= 0) return;
  ZT_ASSERT(n <= INT32_MAX && v > 0, "logprob_forward: n %lld, v %lld", (long long)n,
            (long long)v);
  logprob_forward_kernel<<<unsigned(n), kLogprobThreads, 0, stream>>>(
      logits, logits_dtype, targets, 1.0f / temperature, logprob, lse, entropy, v);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_logprob_backward(const void* logits, DType logits_dtype, const int32_t* targets,
                             float temperature, const float* lse, const float* dlogprob,
                             const float* dentropy, void* dlogits, DType dlogits_dtype, int64_t n,
                             int64_t v, cudaStream_t stream) {
  if (n <= 0 || v <= 0) return;
  ZT_ASSERT(n <= INT32_MAX, "logprob_backward: n %lld", (long long)n);
  logprob_backward_kernel<<<unsigned(n), kLogprobThreads, 0, stream>>>(
      logits, logits_dtype, targets, 1.0f / temperature, lse, dlogprob, dentropy, dlogits,
      dlogits_dtype, v);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
