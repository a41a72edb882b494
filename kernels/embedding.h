// Launchers for kernels/embedding.cu: token-embedding lookup and its gradient.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// out[i, :] = table[ids[i], :] for i in [0, n), converted to out's float dtype. An id
// outside [0, v) is a caller bug: the kernel prints it and traps (the stream's next
// check then fails).
void launch_embedding_forward(const int32_t* ids /* (n) */, const void* table /* (v, c) */,
                              DType table_dtype, void* out /* (n, c) */, DType out_dtype,
                              int64_t n, int64_t v, int64_t c, cudaStream_t stream);

// Bytes of device scratch launch_embedding_backward needs for n ids.
size_t embedding_backward_scratch_bytes(int64_t n);

// dtable[ids[i], :] += dout[i, :], deterministic: the ids are stably radix-sorted with
// their positions (cub), then one block per distinct id sums its rows in ascending
// position order and adds the sum to dtable once (no atomics). An id outside [0, v)
// traps as in the forward. scratch: embedding_backward_scratch_bytes(n) bytes.
void launch_embedding_backward(const int32_t* ids /* (n) */, const void* dout /* (n, c) */,
                               DType dout_dtype, float* dtable /* (v, c) */, int64_t n, int64_t v,
                               int64_t c, void* scratch, size_t scratch_bytes,
                               cudaStream_t stream);

}  // namespace zeroth
