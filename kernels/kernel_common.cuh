// Device helpers shared by the kernels in kernels/*.cu (included only by .cu files).
//
// Owns: element loads/stores that convert any float dtype to and from fp32 (and
// integer dtypes to int64), warp/block reductions, and the grid size of
// element-wise launches. Must not: launch anything or hold state.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

constexpr int kElementwiseThreads = 256;
constexpr int64_t kMaxElementwiseBlocks = 65536;  // grid-stride loops cover the rest
constexpr int kRowThreads = 256;                  // one block per row (reductions, softmax)

// Blocks for a grid-stride loop over n > 0 elements.
inline unsigned elementwise_blocks(int64_t n) {
  int64_t b = (n + kElementwiseThreads - 1) / kElementwiseThreads;
  return unsigned(b < kMaxElementwiseBlocks ? b : kMaxElementwiseBlocks);
}

// p[i] of float dtype t, as fp32 (bf16 and f16 convert exactly).
__device__ __forceinline__ float load_as_float(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case DType::F16: return __half2float(static_cast<const __half*>(p)[i]);
    default: return static_cast<const float*>(p)[i];  // F32 (callers check dtypes)
  }
}

// p[i] = v, rounded to nearest even for bf16 and f16.
__device__ __forceinline__ void store_from_float(void* p, DType t, int64_t i, float v) {
  switch (t) {
    case DType::BF16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v); break;
    case DType::F16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
    default: static_cast<float*>(p)[i] = v; break;  // F32
  }
}

// p[i] of integer dtype t (I32 sign-extended), as int64.
__device__ __forceinline__ int64_t load_as_int64(const void* p, DType t, int64_t i) {
  if (t == DType::I32) return int64_t(static_cast<const int32_t*>(p)[i]);
  return static_cast<const int64_t*>(p)[i];  // I64
}

// p[i] = v, truncated to 32 bits for I32 (two's complement wrap; the CPU backend
// aborts on such a value instead: an out-of-range I64 -> I32 copy is a caller bug).
__device__ __forceinline__ void store_from_int64(void* p, DType t, int64_t i, int64_t v) {
  if (t == DType::I32) {
    static_cast<int32_t*>(p)[i] = int32_t(uint32_t(uint64_t(v)));
  } else {
    static_cast<int64_t*>(p)[i] = v;  // I64
  }
}

// max(a, b) that propagates NaN (as the CPU backend's row max does; fmaxf drops it).
__device__ __forceinline__ float max_propagate_nan(float a, float b) {
  if (isnan(a)) return a;
  if (isnan(b)) return b;
  return fmaxf(a, b);
}

__device__ __forceinline__ float warp_reduce_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_reduce_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = max_propagate_nan(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum of v over the block; every thread gets the result. blockDim.x must be a
// multiple of 32 and at most 1024; `shared` holds 32 floats. Safe to call several
// times in a row with the same `shared` (the leading barrier protects reuse).
// The order of additions is fixed, so the result is deterministic.
__device__ __forceinline__ float block_reduce_sum(float v, float* shared) {
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int num_warps = blockDim.x / 32;
  v = warp_reduce_sum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < num_warps ? shared[lane] : 0.0f;
  return warp_reduce_sum(v);
}

// Max of v over the block (NaN if any v is NaN), as block_reduce_sum (identity -inf).
__device__ __forceinline__ float block_reduce_max(float v, float* shared) {
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int num_warps = blockDim.x / 32;
  v = warp_reduce_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < num_warps ? shared[lane] : -INFINITY;
  return warp_reduce_max(v);
}

}  // namespace zeroth
