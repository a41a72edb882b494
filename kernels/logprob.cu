// Log-probabilities of target tokens over a large vocabulary, one block per row.
//
// Owns: the single-pass online logsumexp (thread t keeps a running max m and
// s = sum exp(z - m), plus t_ = sum exp(z - m) z for the entropy, over columns t,
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

// Running softmax statistics of a set of values z: m = max z, s = sum exp(z - m),
// t = sum exp(z - m) z. An empty set (or all -inf) is m = -inf, s = t = 0.
struct SoftmaxState {
  float m, s, t;
};

__device__ __forceinline__ void state_add(SoftmaxState& st, float z, bool with_t) {
  if (z == -INFINITY) return;  // contributes nothing (and would make 0 * -inf = NaN)
  if (z > st.m) {
    const float r = expf(st.m - z);  // 0 when st.m == -inf
    st.s = st.s * r + 1.0f;
    if (with_t) st.t = st.t * r + z;
    st.m = z;
  } else {
    const float e = expf(z - st.m);  // NaN z lands here and propagates through s
    st.s += e;
    if (with_t) st.t += e * z;
  }
}

__device__ __forceinline__ SoftmaxState state_merge(SoftmaxState a, SoftmaxState b) {
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  const float m = max_propagate_nan(a.m, b.m);
  const float ra = expf(a.m - m), rb = expf(b.m - m);
  return SoftmaxState{m, a.s * ra + b.s * rb, a.t * ra + b.t * rb};
}

__device__ __forceinline__ SoftmaxState warp_merge(SoftmaxState st) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    SoftmaxState o{__shfl_xor_sync(0xffffffffu, st.m, offset),
                   __shfl_xor_sync(0xffffffffu, st.s, offset),
                   __shfl_xor_sync(0xffffffffu, st.t, offset)};
    st = state_merge(st, o);
  }
  return st;
}

__device__ __forceinline__ void trap_bad_target(int64_t i, int32_t target, int64_t v) {
  printf("zeroth logprob: targets[%lld] = %d is not below the vocabulary size %lld\n",
         (long long)i, target, (long long)v);
  __trap();
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
  SoftmaxState st{-INFINITY, 0.0f, 0.0f};
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x)
    state_add(st, load_as_float(logits, logits_dtype, base + j) * inv_temperature, with_t);
  st = warp_merge(st);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_states[warp] = st;
  __syncthreads();
  if (warp != 0) return;
  const int num_warps = blockDim.x / 32;
  st = lane < num_warps ? warp_states[lane] : SoftmaxState{-INFINITY, 0.0f, 0.0f};
  st = warp_merge(st);
  if (lane != 0) return;
  const float row_lse = st.m + logf(st.s);  // -inf for an all -inf row (as CPU's log(0))
  lse[row] = row_lse;
  const int32_t target = targets[row];
  if (target >= v) trap_bad_target(row, target, v);
  logprob[row] =
      target < 0 ? 0.0f
                 : load_as_float(logits, logits_dtype, base + target) * inv_temperature - row_lse;
  if (with_t) entropy[row] = row_lse - st.t / st.s;
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
  const int32_t target = targets[row];
  if (threadIdx.x == 0 && target >= v) trap_bad_target(row, target, v);
  const float dlp = target < 0 ? 0.0f : dlogprob[row];
  const float dent = dentropy != nullptr ? dentropy[row] : 0.0f;
  float ez = 0.0f;
  if (dentropy != nullptr) {
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
      const float z = load_as_float(logits, logits_dtype, base + j) * inv_temperature;
      const float p = expf(z - row_lse);
      if (p > 0.0f) ez += p * z;  // skips z = -inf (p = 0), where p * z would be NaN
    }
    ez = block_reduce_sum(ez, shared);
  }
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    const float z = load_as_float(logits, logits_dtype, base + j) * inv_temperature;
    const float p = expf(z - row_lse);
    float g = dlp * ((j == target ? 1.0f : 0.0f) - p);
    if (dentropy != nullptr && p > 0.0f) g -= dent * p * (z - ez);
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
