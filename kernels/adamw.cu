// The fused AdamW step: one grid-stride pass reads grad, m, v and param once and
// writes m, v, param (and the low-precision copy) once.
//
// Owns: the per-element update exactly as backend.h writes it (same operation order
// as the CPU backend's formula). Must not: reduce across elements (clipping's global
// norm arrives as grad_scale) or keep state between calls.
#include "adamw.h"

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

// ---- kernels ----

// Grid: elementwise_blocks(n); block: (kElementwiseThreads).
__global__ void adamw_kernel(float* param, const void* grad, DType grad_dtype, float* m, float* v,
                             int64_t n, float lr, float beta1, float beta2, float eps,
                             float weight_decay, float grad_scale, float bias_correction1,
                             float bias_correction2, void* param_copy, DType param_copy_dtype) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float g = load_as_float(grad, grad_dtype, i) * grad_scale;
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    const float p = param[i];
    const float update = mi / bias_correction1 / (sqrtf(vi / bias_correction2) + eps);
    const float pi = p - lr * (update + weight_decay * p);
    m[i] = mi;
    v[i] = vi;
    param[i] = pi;
    if (param_copy != nullptr) store_from_float(param_copy, param_copy_dtype, i, pi);
  }
}

// ---- launchers ----

void launch_adamw(float* param, const void* grad, DType grad_dtype, float* m, float* v, int64_t n,
                  float lr, float beta1, float beta2, float eps, float weight_decay,
                  float grad_scale, float bias_correction1, float bias_correction2,
                  void* param_copy, DType param_copy_dtype, cudaStream_t stream) {
  if (n <= 0) return;
  adamw_kernel<<<elementwise_blocks(n), kElementwiseThreads, 0, stream>>>(
      param, grad, grad_dtype, m, v, n, lr, beta1, beta2, eps, weight_decay, grad_scale,
      bias_correction1, bias_correction2, param_copy, param_copy_dtype);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
