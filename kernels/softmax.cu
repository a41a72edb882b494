// Numerically stable softmax / log-softmax over the last dimension, one block per row.
//
// Owns: the three passes over a row (max, sum of exp(x - max), write). Thread t
// handles elements t, t + blockDim, ... in every pass and reads x[j] before it
// writes out[j] for the same j; other threads never touch that j after pass 2's
// barrier, so out may alias x. Must not: normalise over any other dimension.
#include "softmax.h"

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

// ---- kernels ----

// Grid: (rows); block: (kRowThreads).
__global__ void softmax_last_kernel(const void* x, DType x_dtype, void* out, DType out_dtype,
                                    int64_t d, bool log_softmax) {
  __shared__ float shared[32];
  const int64_t base = int64_t(blockIdx.x) * d;

  float row_max = -INFINITY;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
    row_max = max_propagate_nan(row_max, load_as_float(x, x_dtype, base + j));
  row_max = block_reduce_max(row_max, shared);

  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
    sum += expf(load_as_float(x, x_dtype, base + j) - row_max);
  sum = block_reduce_sum(sum, shared);

  if (log_softmax) {
    const float log_sum = logf(sum);
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
      store_from_float(out, out_dtype, base + j,
                       (load_as_float(x, x_dtype, base + j) - row_max) - log_sum);
  } else {
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
      store_from_float(out, out_dtype, base + j,
                       expf(load_as_float(x, x_dtype, base + j) - row_max) / sum);
  }
}

// ---- launchers ----

void launch_softmax_last(const void* x, DType x_dtype, void* out, DType out_dtype, int64_t rows,
                         int64_t d, bool log_softmax, cudaStream_t stream) {
  if (rows <= 0 || d <= 0) return;
  ZT_ASSERT(rows <= INT32_MAX, "softmax over %lld rows", (long long)rows);
  softmax_last_kernel<<<unsigned(rows), kRowThreads, 0, stream>>>(x, x_dtype, out, out_dtype, d,
                                                                  log_softmax);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
