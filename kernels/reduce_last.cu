// Row reductions over the last dimension: one block of kRowThreads per row.
//
// Owns: sum_last and max_last. Thread t accumulates elements t, t + blockDim, ...
// of its row in fp32, then the block reduces (kernel_common.cuh) in a fixed order,
// so results are deterministic. Must not: reduce over any other dimension.
#include "reduce_last.h"

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

// ---- kernels ----

// Grid: (rows); block: (kRowThreads).
__global__ void sum_last_kernel(const void* x, DType x_dtype, float* out, int64_t d) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const int64_t base = row * d;
  float acc = 0.0f;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) acc += load_as_float(x, x_dtype, base + j);
  acc = block_reduce_sum(acc, shared);
  if (threadIdx.x == 0) out[row] = acc;
}

__global__ void max_last_kernel(const void* x, DType x_dtype, float* out, int64_t d) {
  __shared__ float shared[32];
  const int64_t row = blockIdx.x;
  const int64_t base = row * d;
  float acc = -INFINITY;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
    acc = max_propagate_nan(acc, load_as_float(x, x_dtype, base + j));
  acc = block_reduce_max(acc, shared);
  if (threadIdx.x == 0) out[row] = acc;
}

// ---- launchers ----

void launch_sum_last(const void* x, DType x_dtype, float* out, int64_t rows, int64_t d,
                     cudaStream_t stream) {
  if (rows <= 0) return;
  ZT_ASSERT(rows <= INT32_MAX, "sum_last over %lld rows", (long long)rows);
  sum_last_kernel<<<unsigned(rows), kRowThreads, 0, stream>>>(x, x_dtype, out, d);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_max_last(const void* x, DType x_dtype, float* out, int64_t rows, int64_t d,
                     cudaStream_t stream) {
  if (rows <= 0) return;
  ZT_ASSERT(rows <= INT32_MAX, "max_last over %lld rows", (long long)rows);
  max_last_kernel<<<unsigned(rows), kRowThreads, 0, stream>>>(x, x_dtype, out, d);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
