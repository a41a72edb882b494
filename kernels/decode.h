// Launchers for kernels/decode.cu: the KV-cache row scatter and the absorbed-MLA decode
// attention over a latent cache (Backend::scatter_rows / mla_decode_attention).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "zeroth/dtype.h"

namespace zeroth {

// dst[rows[i] * dst_stride + j] = src[i * src_stride + j] for i < n, j < d (any float
// dtypes, converted through fp32).
void launch_scatter_rows(const void* src, DType src_dtype, int64_t src_stride,
                         const int32_t* rows, void* dst, DType dst_dtype, int64_t dst_stride,
                         int64_t n, int64_t d, cudaStream_t stream);

// out[i, h, :rv] = softmax_t(scale * q[i, h, :] . cache[slots[i], t, :]) @ cache[slots[i], t, :rv]
// over t < lengths[i]. q (n, heads, r), cache (num_slots, tmax, r), out (n, heads, rv), F32.
void launch_mla_decode_attention(const float* q, const float* cache, const int32_t* slots,
                                 const int32_t* lengths, float scale, float* out, int64_t n,
                                 int64_t heads, int64_t r, int64_t rv, int64_t tmax,
                                 cudaStream_t stream);

// Floats of staged x rows a block of launch_expert_rows_gemm holds: 48 KiB (a block's
// default shared-memory limit) less 2 KiB for its static row list. k must not exceed it;
// rows_per_pass = min(8, this / k).
constexpr int64_t kExpertRowsSharedFloats = 12288 - 512;

// out[r, :] = x[r / x_div, :] @ w[experts[r]]^T for r < m, w (E, n, k) float with row
// stride ld_w (expert stride n * ld_w), x and out with row strides ld_x and ld_out, fp32
// accumulation. experts == nullptr: every row uses w[0] (num_experts must be 1), which
// makes it a few-row GEMM, out = x @ w^T (CudaBackend::gemm's small-M path).
void launch_expert_rows_gemm(const void* x, DType x_dtype, int64_t ld_x, const void* w,
                             DType w_dtype, int64_t ld_w, const int32_t* experts, int x_div,
                             void* out, DType out_dtype, int64_t ld_out, int64_t m, int64_t n,
                             int64_t k, int64_t num_experts, cudaStream_t stream);

}  // namespace zeroth
