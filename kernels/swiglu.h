// Launchers for kernels/swiglu.cu: SwiGLU activation and its gradient, element-wise on
// contiguous buffers (each operand F32, BF16 or F16 independently; fp32 math).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// out[i] = silu(gate[i]) * up[i], silu(g) = g * sigmoid(g). out may alias gate or up
// (same dtype).
void launch_swiglu_forward(const void* gate /* (n) */, DType gate_dtype, const void* up /* (n) */,
                           DType up_dtype, void* out /* (n) */, DType out_dtype, int64_t n,
                           cudaStream_t stream);

// With sg = sigmoid(gate[i]):
//   dgate[i] = dout[i] * up[i] * sg * (1 + gate[i] * (1 - sg)),  dup[i] = dout[i] * silu(gate[i]).
// Every input is read before either output of the same i is written.
void launch_swiglu_backward(const void* dout /* (n) */, DType dout_dtype,
                            const void* gate /* (n) */, DType gate_dtype, const void* up /* (n) */,
                            DType up_dtype, void* dgate /* (n) */, DType dgate_dtype,
                            void* dup /* (n) */, DType dup_dtype, int64_t n, cudaStream_t stream);

}  // namespace zeroth
