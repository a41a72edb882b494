// Sum of squares in two deterministic passes (for gradient norms).
//
// Owns: pass 1 (a fixed grid of kSumSquaresBlocks blocks; thread t of block b sums
// x[i]^2 for i = b * blockDim + t, then every gridDim * blockDim further, and the
// block reduces to partials[b]) and pass 2 (one block sums the partials and writes
// or accumulates out[0]). Must not: use atomics (their order is not reproducible).
#include "sum_squares.h"

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

constexpr int kSumSquaresThreads = 256;
static_assert(kSumSquaresBlocks % 32 == 0 && kSumSquaresBlocks <= 1024,
              "the final pass runs one thread per partial");

// ---- kernels ----

// Grid: (kSumSquaresBlocks); block: (kSumSquaresThreads).
__global__ void sum_squares_partial_kernel(const void* x, DType x_dtype, int64_t n,
                                           float* partials) {
  __shared__ float shared[32];
  float acc = 0.0f;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float v = load_as_float(x, x_dtype, i);
    acc += v * v;
  }
  acc = block_reduce_sum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// Grid: (1); block: (kSumSquaresBlocks), one thread per partial.
__global__ void sum_squares_final_kernel(const float* partials, float* out, bool accumulate) {
  __shared__ float shared[32];
  float total = block_reduce_sum(partials[threadIdx.x], shared);
  if (threadIdx.x == 0) out[0] = accumulate ? out[0] + total : total;
}

// ---- launchers ----

void launch_sum_squares(const void* x, DType x_dtype, int64_t n, float* out, bool accumulate,
                        float* partials, cudaStream_t stream) {
  if (n <= 0) {
    if (!accumulate) ZT_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(float), stream));
    return;
  }
  sum_squares_partial_kernel<<<kSumSquaresBlocks, kSumSquaresThreads, 0, stream>>>(x, x_dtype, n,
                                                                                    partials);
  ZT_CUDA_CHECK_LAUNCH();
  sum_squares_final_kernel<<<1, kSumSquaresBlocks, 0, stream>>>(partials, out, accumulate);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
