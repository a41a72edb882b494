// Decode-time kernels over the MLA latent cache.
//
// Owns: scatter_rows_kernel (one thread per element) and mla_decode_kernel: one warp
// per (row, head), eight heads per block so the warps of a block read the same cached
// rows (L1 hits); each warp walks its sequence's positions in order with an online
// softmax (running max m, sum l, output accumulator o), lanes splitting the R latent
// columns (q and o live in registers: R <= 32 * kMaxPerLane). Four positions per
// iteration give the warp four independent dot-product reductions in flight. The order
// of operations is fixed: results are deterministic and do not depend on the batch.
// Must not: read cache positions at or past a row's length.
#include "decode.h"

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"
#include "zeroth/error.h"

namespace zeroth {

namespace {

constexpr int kHeadsPerBlock = 8;
constexpr int kMaxPerLane = 24;  // R <= 768 (DeepSeek-V3: 576)
constexpr int kUnroll = 4;

__global__ void scatter_rows_kernel(const void* src, DType src_dtype, int64_t src_stride,
                                    const int32_t* rows, void* dst, DType dst_dtype,
                                    int64_t dst_stride, int64_t n, int64_t d) {
  const int64_t total = n * d;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / d, j = e % d;
    store_from_float(dst, dst_dtype, int64_t(rows[i]) * dst_stride + j,
                     load_as_float(src, src_dtype, i * src_stride + j));
  }
}

// Grid: (n, ceil(heads / kHeadsPerBlock)); block: 32 * kHeadsPerBlock.
__global__ void __launch_bounds__(32 * kHeadsPerBlock)
    mla_decode_kernel(const float* __restrict__ q, const float* __restrict__ cache,
                      const int32_t* __restrict__ slots, const int32_t* __restrict__ lengths,
                      float scale, float* __restrict__ out, int heads, int r, int rv,
                      int64_t tmax) {
  const int lane = threadIdx.x % 32;
  const int h = blockIdx.y * kHeadsPerBlock + threadIdx.x / 32;
  const int64_t i = blockIdx.x;
  if (h >= heads) return;
  const float* qrow = q + (i * heads + h) * int64_t(r);
  const float* kv = cache + int64_t(slots[i]) * tmax * r;
  const int len = lengths[i];
  float qv[kMaxPerLane], o[kMaxPerLane];
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    const int col = lane + 32 * c;
    qv[c] = col < r ? qrow[col] * scale : 0.0f;
    o[c] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int t0 = 0; t0 < len; t0 += kUnroll) {
    float s[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      s[u] = 0.0f;
      if (t0 + u < len) {
        const float* row = kv + int64_t(t0 + u) * r;
#pragma unroll
        for (int c = 0; c < kMaxPerLane; ++c) {
          const int col = lane + 32 * c;
          if (col < r) s[u] = fmaf(qv[c], row[col], s[u]);
        }
      }
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) s[u] += __shfl_xor_sync(0xffffffffu, s[u], off);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (t0 + u >= len) break;
      const float m_new = fmaxf(m, s[u]);
      const float corr = expf(m - m_new);  // m = -inf at first: 0
      const float p = expf(s[u] - m_new);
      l = l * corr + p;
      const float* row = kv + int64_t(t0 + u) * r;
#pragma unroll
      for (int c = 0; c < kMaxPerLane; ++c) {
        const int col = lane + 32 * c;
        if (col < rv) o[c] = fmaf(p, row[col], o[c] * corr);
      }
      m = m_new;
    }
  }
  const float inv = 1.0f / l;
  float* orow = out + (i * heads + h) * int64_t(rv);
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    const int col = lane + 32 * c;
    if (col < rv) orow[col] = o[c] * inv;
  }
}

}  // namespace

void launch_scatter_rows(const void* src, DType src_dtype, int64_t src_stride,
                         const int32_t* rows, void* dst, DType dst_dtype, int64_t dst_stride,
                         int64_t n, int64_t d, cudaStream_t stream) {
  if (n <= 0 || d <= 0) return;
  scatter_rows_kernel<<<elementwise_blocks(n * d), kElementwiseThreads, 0, stream>>>(
      src, src_dtype, src_stride, rows, dst, dst_dtype, dst_stride, n, d);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_mla_decode_attention(const float* q, const float* cache, const int32_t* slots,
                                 const int32_t* lengths, float scale, float* out, int64_t n,
                                 int64_t heads, int64_t r, int64_t rv, int64_t tmax,
                                 cudaStream_t stream) {
  if (n <= 0 || heads <= 0) return;
  ZT_ASSERT(r <= 32 * kMaxPerLane, "mla_decode_attention: R = %lld exceeds the kernel's %d",
            (long long)r, 32 * kMaxPerLane);
  ZT_ASSERT(n <= INT32_MAX && heads <= INT32_MAX, "mla_decode_attention: n %lld heads %lld",
            (long long)n, (long long)heads);
  const dim3 grid(unsigned(n), unsigned((heads + kHeadsPerBlock - 1) / kHeadsPerBlock));
  mla_decode_kernel<<<grid, 32 * kHeadsPerBlock, 0, stream>>>(q, cache, slots, lengths, scale,
                                                              out, int(heads), int(r), int(rv),
                                                              tmax);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
