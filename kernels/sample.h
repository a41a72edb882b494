// Launcher for kernels/sample.cu: one token per row of fp32 logits by the rules of
// include/zeroth/sampler.h (Backend::sample_tokens).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace zeroth {

// seq_step: (b, 2) uint64 on the device, {sequence id, step} per row. ids: I32 (b), -1
// for a row that cannot be sampled (all NaN; or temperature > 0 and max not finite).
void launch_sample_tokens(const float* logits, int64_t b, int64_t v, float temperature,
                          int64_t top_k, float top_p, float min_p, uint64_t seed,
                          const uint64_t* seq_step, int32_t* ids, cudaStream_t stream);

}  // namespace zeroth
