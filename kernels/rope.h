// Launcher for kernels/rope.cu: rotary position embedding, in place.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// For row i, head h, frequency f in [0, d/2), with p = positions[i], c = cos[p, f],
// s = sin[p, f], the pair (a, b) read from x[i, h] and written back as
//   forward: (a c - b s, b c + a s);  inverse (the transpose): (a c + b s, b c - a s).
// Halves layout: read from and written to (x[f], x[f + d/2]). Interleaved (as the CPU
// reference, Hugging Face's de-interleaved output): the forward reads (x[2f], x[2f+1])
// and writes (x[f], x[f + d/2]); the inverse reads halves and writes pairs.
// x element (i, h, j) is at i * stride_n + h * stride_h + j; d <= kRopeMaxDim. A
// position outside [0, max_pos) is a caller bug: the kernel prints it and traps.
constexpr int64_t kRopeMaxDim = 512;

void launch_rope(void* x /* (n, heads, d) strided */, DType x_dtype, int64_t stride_n,
                 int64_t stride_h, const int32_t* positions /* (n) */,
                 const float* cos /* (max_pos, d/2) */, const float* sin /* (max_pos, d/2) */,
                 int64_t n, int64_t heads, int64_t d, int64_t max_pos, bool interleaved,
                 bool inverse, cudaStream_t stream);

}  // namespace zeroth
