// Launchers for kernels/attention.cu: causal scaled-dot-product attention (forward with
// log-sum-exp, and backward recomputing the probabilities), fp32 accumulation.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// Largest head dimension (Dqk and Dv) the kernels handle: each lane of a warp owns
// head-dim elements lane, lane + 32, ..., at most kAttentionMaxHeadDim / 32 of them.
constexpr int kAttentionMaxHeadDim = 256;

// A (B, T, H, D) operand: element (b, t, h, j) at data[b * stride_b + t * stride_t +
// h * stride_h + j] (the last dimension is contiguous). Inputs are only read.
struct AttentionOperand {
  void* data;
  DType dtype;
  int64_t stride_b, stride_t, stride_h;
};

// out[b, t, h, :] = sum_{s <= t} softmax_s(scale * q[b, t, h] . k[b, s, h]) v[b, s, h],
// lse[(b * heads + h) * t_len + t] = logsumexp_{s <= t}(scale * q . k).
// q, k: (B, T, H, dqk); v, out: (B, T, H, dv); 1 <= dqk, dv <= kAttentionMaxHeadDim.
void launch_attention_forward(const AttentionOperand& q, const AttentionOperand& k,
                              const AttentionOperand& v, const AttentionOperand& out,
                              float* lse /* (B, H, T) */, int64_t batch, int64_t t_len,
                              int64_t heads, int64_t dqk, int64_t dv, float scale,
                              cudaStream_t stream);

// Bytes of device scratch launch_attention_backward needs (D = rowsum(dout * out)).
size_t attention_backward_scratch_bytes(int64_t batch, int64_t t_len, int64_t heads);

// dsum[(b * heads + h) * t_len + t] = dout[b, t, h] . out[b, t, h] (D of the backward;
// dout, out (B, T, H, dv), any float dtype).
void launch_attention_dsum(const AttentionOperand& dout, const AttentionOperand& out, float* dsum,
                           int64_t batch, int64_t t_len, int64_t heads, int64_t dv,
                           cudaStream_t stream);

// With P[t, s] = exp(scale * q[t] . k[s] - lse[t]) for s <= t (0 otherwise),
// D[t] = dout[t] . out[t] and dS = P * (dout[t] . v[s] - D[t]):
//   dq[t] = scale * sum_s dS[t, s] k[s],  dk[s] = scale * sum_t dS[t, s] q[t],
//   dv[s] = sum_t P[t, s] dout[t]   (all overwritten; per (b, h)).
// Deterministic: dq and (dk, dv) come from separate kernels, each output element
// summed by one thread in a fixed order (no atomics).
void launch_attention_backward(const AttentionOperand& dout, const AttentionOperand& q,
                               const AttentionOperand& k, const AttentionOperand& v,
                               const AttentionOperand& out, const float* lse /* (B, H, T) */,
                               const AttentionOperand& dq, const AttentionOperand& dk,
                               const AttentionOperand& dv, int64_t batch, int64_t t_len,
                               int64_t heads, int64_t dqk, int64_t dv_dim, float scale,
                               void* scratch, size_t scratch_bytes, cudaStream_t stream);

}  // namespace zeroth
