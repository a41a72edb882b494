// SwiGLU forward and backward, grid-stride element-wise kernels.
//
// Owns: the activation math in fp32 (sigmoid as 1 / (1 + exp(-g)), which is 0 or 1 at
// the extremes without NaN). Must not: fuse the gate/up projections (GEMMs live in
// cuda_gemm.cpp).
#include "swiglu.h"

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

__device__ __forceinline__ float sigmoid_f32(float g) { return 1.0f / (1.0f + expf(-g)); }

// ---- kernels ----

__global__ void swiglu_forward_kernel(const void* gate, DType gate_dtype, const void* up,
                                      DType up_dtype, void* out, DType out_dtype, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float g = load_as_float(gate, gate_dtype, i);
    const float u = load_as_float(up, up_dtype, i);
    store_from_float(out, out_dtype, i, g * sigmoid_f32(g) * u);
  }
}

__global__ void swiglu_backward_kernel(const void* dout, DType dout_dtype, const void* gate,
                                       DType gate_dtype, const void* up, DType up_dtype,
                                       void* dgate, DType dgate_dtype, void* dup,
                                       DType dup_dtype, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float go = load_as_float(dout, dout_dtype, i);
    const float g = load_as_float(gate, gate_dtype, i);
    const float u = load_as_float(up, up_dtype, i);
    const float sg = sigmoid_f32(g);
    store_from_float(dgate, dgate_dtype, i, go * u * sg * (1.0f + g * (1.0f - sg)));
    store_from_float(dup, dup_dtype, i, go * g * sg);
  }
}

// ---- launchers ----

void launch_swiglu_forward(const void* gate, DType gate_dtype, const void* up, DType up_dtype,
                           void* out, DType out_dtype, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  swiglu_forward_kernel<<<elementwise_blocks(n), kElementwiseThreads, 0, stream>>>(
      gate, gate_dtype, up, up_dtype, out, out_dtype, n);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_swiglu_backward(const void* dout, DType dout_dtype, const void* gate, DType gate_dtype,
                            const void* up, DType up_dtype, void* dgate, DType dgate_dtype,
                            void* dup, DType dup_dtype, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  swiglu_backward_kernel<<<elementwise_blocks(n), kElementwiseThreads, 0, stream>>>(
      dout, dout_dtype, gate, gate_dtype, up, up_dtype, dgate, dgate_dtype, dup, dup_dtype, n);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
