// Launchers for kernels/softmax.cu: row-wise softmax and log-softmax.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// For each row r of a contiguous (rows, d) buffer, with m = max_j x[r, j] and
// s = sum_j exp(x[r, j] - m):
//   softmax:     out[r, j] = exp(x[r, j] - m) / s
//   log_softmax: out[r, j] = (x[r, j] - m) - log(s)
// in fp32 (a row with a NaN becomes all NaN). x and out are float dtypes; out may alias x (same
// dtype).
void launch_softmax_last(const void* x /* (rows, d) */, DType x_dtype, void* out /* (rows, d) */,
                         DType out_dtype, int64_t rows, int64_t d, bool log_softmax,
                         cudaStream_t stream);

}  // namespace zeroth
