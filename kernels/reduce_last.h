// Launchers for kernels/reduce_last.cu: sum and max over the last dimension.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// out[r] = sum_j x[r * d + j] (fp32 accumulation), r in [0, rows). x contiguous
// (rows, d) of a float dtype; out F32 (rows). d == 0 gives zeros.
void launch_sum_last(const void* x /* (rows, d) */, DType x_dtype, float* out /* (rows) */,
                     int64_t rows, int64_t d, cudaStream_t stream);

// out[r] = max_j x[r * d + j]; NaN if the row has a NaN; d == 0 gives -inf.
void launch_max_last(const void* x /* (rows, d) */, DType x_dtype, float* out /* (rows) */,
                     int64_t rows, int64_t d, cudaStream_t stream);

}  // namespace zeroth
