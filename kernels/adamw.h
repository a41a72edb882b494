// Launcher for kernels/adamw.cu: one fused AdamW step on fp32 master weights.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// For i in [0, n), in fp32:
//   g = grad[i] * grad_scale; m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
//   param -= lr * (m / bias_correction1 / (sqrt(v / bias_correction2) + eps)
//                  + weight_decay * param);
// then param_copy[i] = param[i] rounded to param_copy_dtype when param_copy is not null.
// grad is any float dtype; param, m, v are F32; all contiguous.
void launch_adamw(float* param /* (n) */, const void* grad /* (n) */, DType grad_dtype,
                  float* m /* (n) */, float* v /* (n) */, int64_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, float grad_scale,
                  float bias_correction1, float bias_correction2, void* param_copy /* (n) */,
                  DType param_copy_dtype, cudaStream_t stream);

}  // namespace zeroth
