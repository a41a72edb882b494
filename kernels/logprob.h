// Launchers for kernels/logprob.cu: per-token log-probabilities at a temperature, with
// optional entropy, and their gradient with respect to the logits.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// z = logits[i, :] / temperature (fp32), lse[i] = logsumexp(z),
// logprob[i] = z[targets[i]] - lse[i], or 0 when targets[i] < 0 (ignored position);
// entropy (when not null) [i] = lse[i] - sum_j softmax(z)_j z_j. A target >= v is a
// caller bug: the kernel prints it and traps.
void launch_logprob_forward(const void* logits /* (n, v) */, DType logits_dtype,
                            const int32_t* targets /* (n) */, float temperature,
                            float* logprob /* (n) */, float* lse /* (n) */,
                            float* entropy /* (n) or null */, int64_t n, int64_t v,
                            cudaStream_t stream);

// With p = softmax(z) = exp(z - lse[i]) and Ez = sum_j p_j z_j:
//   dlogits[i, j] = (dlogprob[i] * ([j == targets[i]] - p_j)
//                    - dentropy[i] * p_j * (z_j - Ez)) / temperature
// (overwritten). The dlogprob term is 0 on ignored rows (targets[i] < 0); the entropy
// term is present when dentropy is not null, on every row.
void launch_logprob_backward(const void* logits /* (n, v) */, DType logits_dtype,
                             const int32_t* targets /* (n) */, float temperature,
                             const float* lse /* (n) */, const float* dlogprob /* (n) */,
                             const float* dentropy /* (n) or null */, void* dlogits /* (n, v) */,
                             DType dlogits_dtype, int64_t n, int64_t v, cudaStream_t stream);

}  // namespace zeroth
