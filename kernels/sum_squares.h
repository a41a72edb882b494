// Launcher for kernels/sum_squares.cu: deterministic sum of squares of a buffer.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// Number of fp32 partial sums the launcher needs in `partials`.
constexpr int kSumSquaresBlocks = 256;

// out[0] = (accumulate ? out[0] : 0) + sum_i x[i]^2, i in [0, n), fp32 throughout.
// Two passes with a fixed grid (kSumSquaresBlocks blocks, then one block), so the
// order of additions depends only on n: the result is bit-reproducible.
// `partials` (kSumSquaresBlocks floats) is scratch; it must not be used by anything
// else between the two launches (stream order guarantees this for one stream).
void launch_sum_squares(const void* x /* (n) */, DType x_dtype, int64_t n, float* out /* (1) */,
                        bool accumulate, float* partials /* (kSumSquaresBlocks) */,
                        cudaStream_t stream);

}  // namespace zeroth
