// Launchers for kernels/rmsnorm.cu: RMSNorm over the last dimension and its gradient.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// rstd[i] = 1 / sqrt(mean_j x[i, j]^2 + eps); out[i, j] = x[i, j] * rstd[i] * w[j], fp32.
// x rows are ld_x elements apart, out rows ld_out apart (last dim contiguous).
void launch_rmsnorm_forward(const void* x /* (n, c) row stride ld_x */, DType x_dtype,
                            int64_t ld_x, const void* w /* (c) */, DType w_dtype, float eps,
                            void* out /* (n, c) row stride ld_out */, DType out_dtype,
                            int64_t ld_out, float* rstd /* (n) */, int64_t n, int64_t c,
                            cudaStream_t stream);

// Bytes of device scratch launch_rmsnorm_backward needs (the dw partials).
size_t rmsnorm_backward_scratch_bytes(int64_t n, int64_t c);

// With g = dout * w and a = mean_j(g[i, j] x[i, j]):
//   dx[i, j] = rstd[i] * g[i, j] - x[i, j] * rstd[i]^3 * a   (overwritten)
//   dw[j] += sum_i dout[i, j] x[i, j] rstd[i]                 (deterministic, no atomics)
void launch_rmsnorm_backward(const void* dout /* (n, c) row stride ld_dout */, DType dout_dtype,
                             int64_t ld_dout, const void* x /* (n, c) row stride ld_x */,
                             DType x_dtype, int64_t ld_x, const void* w /* (c) */, DType w_dtype,
                             const float* rstd /* (n) */, void* dx /* (n, c) row stride ld_dx */,
                             DType dx_dtype, int64_t ld_dx, float* dw /* (c) */, int64_t n,
                             int64_t c, void* scratch, size_t scratch_bytes, cudaStream_t stream);

}  // namespace zeroth
