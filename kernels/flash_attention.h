// Launchers for kernels/flash_attention.cu: causal attention on tensor cores for BF16
// q, k, v (and out, dout, dq, dk, dv), head dims multiples of 16. Same contract as the
// fp32 kernels of attention.h (which every other shape and dtype keeps using).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "attention.h"

namespace zeroth {

// Largest head dims the tensor-core kernels take (Dqk, Dv), both multiples of 16.
constexpr int kFlashMaxDqk = 192;
constexpr int kFlashMaxDv = 128;

// True when the flash kernels take this shape: every operand BF16, dqk and dv
// multiples of 16 in [16, kFlashMaxDqk] and [16, kFlashMaxDv].
bool flash_attention_supported(DType dtype, int64_t dqk, int64_t dv);

// As launch_attention_forward (attention.h); every operand BF16, lse F32 (B, H, T).
void launch_flash_attention_forward(const AttentionOperand& q, const AttentionOperand& k,
                                    const AttentionOperand& v, const AttentionOperand& out,
                                    float* lse /* (B, H, T) */, int64_t batch, int64_t t_len,
                                    int64_t heads, int64_t dqk, int64_t dv, float scale,
                                    cudaStream_t stream);

// As launch_attention_backward (attention.h), with the same scratch
// (attention_backward_scratch_bytes). Deterministic: dk, dv from a kernel over key
// blocks and dq from one over query blocks, no atomics.
void launch_flash_attention_backward(const AttentionOperand& dout, const AttentionOperand& q,
                                     const AttentionOperand& k, const AttentionOperand& v,
                                     const AttentionOperand& out,
                                     const float* lse /* (B, H, T) */, const AttentionOperand& dq,
                                     const AttentionOperand& dk, const AttentionOperand& dv,
                                     int64_t batch, int64_t t_len, int64_t heads, int64_t dqk,
                                     int64_t dv_dim, float scale, void* scratch,
                                     size_t scratch_bytes, cudaStream_t stream);

}  // namespace zeroth
