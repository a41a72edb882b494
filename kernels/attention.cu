// Causal attention, flash-attention style, in fp32 on CUDA cores (no tensor cores).
//
// Owns: three tiled kernels with one shape. A block (kWarps warps) owns kRows = 16
// consecutive rows of one (b, h): warp w owns rows w * 4 .. w * 4 + 3 of them, held
// transposed in shared memory ((d, kRows), so the 4 values a warp needs at one d are
// one float4). The block streams the other side in tiles of kTile = 32 rows (row pitch
// d + 1, so lane l reading row l at column j hits bank (l * (d + 1) + j) % 32: distinct
// lanes, distinct banks for even d). Lane l computes the 4 scores of tile row l; the
// warp then walks the tile's rows j, broadcasting row j's 4 coefficients by shuffle,
// and each lane accumulates head-dim elements lane, lane + 32, ... (at most 8).
//   forward:   owns queries, streams keys/values 0 .. last query; online softmax.
//   dq:        owns queries, streams keys/values; dS recomputed from lse and D.
//   dk, dv:    owns keys, streams queries/dout from the first owned key to T.
//   D:         one warp per (b, t, h) row, D = dout . out.
// Every output element is written by one thread, summed in a fixed order: results are
// deterministic. Must not: use atomics, or assume T is a multiple of any tile (rows
// past T load as zeros and are masked).
#include "attention.h"

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;  // read as one float4: the kernels below assume 4
constexpr int kRows = kWarps * kRowsPerWarp;
constexpr int kTile = 32;  // one streamed row per lane
constexpr int kThreads = 32 * kWarps;
constexpr int kMaxPerLane = kAttentionMaxHeadDim / 32;
static_assert(kRowsPerWarp == 4, "owned rows are read as float4");
static_assert(kAttentionMaxHeadDim % 32 == 0, "head-dim elements are spread over 32 lanes");

size_t forward_smem_bytes(int64_t dqk, int64_t dv) {
  return sizeof(float) * size_t(kRows * dqk + kTile * (dqk + 1) + kTile * dv);
}

size_t dq_smem_bytes(int64_t dqk, int64_t dv) {
  return sizeof(float) * size_t(kRows * (dqk + dv) + kTile * (dqk + 1) + kTile * (dv + 1));
}

size_t dkdv_smem_bytes(int64_t dqk, int64_t dv) {
  return dq_smem_bytes(dqk, dv) + sizeof(float) * 2 * kTile;
}

}  // namespace

// ---- device helpers ----

__device__ __forceinline__ int64_t row_offset(const AttentionOperand& o, int64_t b, int64_t t,
                                              int64_t h) {
  return b * o.stride_b + t * o.stride_t + h * o.stride_h;
}

// smem[r * row_step + j * col_step] = o[b, t0 + r, h, j] for r < rows, j < d, and 0 for
// t0 + r >= t_len. (row_step, col_step) = (d or d + 1, 1) for a row-major tile,
// (1, kRows) for a transposed one.
__device__ __forceinline__ void load_rows(const AttentionOperand& o, int64_t b, int64_t h,
                                          int64_t t0, int rows, int64_t t_len, int d,
                                          float* smem, int row_step, int col_step) {
  for (int idx = threadIdx.x; idx < rows * d; idx += blockDim.x) {
    const int r = idx / d, j = idx - r * d;
    const int64_t t = t0 + r;
    smem[r * row_step + j * col_step] =
        t < t_len ? load_as_float(o.data, o.dtype, row_offset(o, b, t, h) + j) : 0.0f;
  }
}

// acc[r] += sum_j owned_t[j * kRows + r0 + r] * tile_row[j], j < d: the 4 dot products
// of a warp's owned rows (transposed, from r0) with one streamed row.
__device__ __forceinline__ void dot4(const float* owned_t, int r0, const float* tile_row, int d,
                                     float acc[kRowsPerWarp]) {
  for (int j = 0; j < d; ++j) {
    const float4 o = *reinterpret_cast<const float4*>(owned_t + j * kRows + r0);
    const float x = tile_row[j];
    acc[0] += o.x * x;
    acc[1] += o.y * x;
    acc[2] += o.z * x;
    acc[3] += o.w * x;
  }
}

// acc[r][e] += sum_{j < jmax} coef_j[r] * tile[j * pitch + lane + 32 e] for
// lane + 32 e < d, where coef_j[r] is lane j's coef[r].
__device__ __forceinline__ void accumulate_tile(const float coef[kRowsPerWarp], const float* tile,
                                                int pitch, int d, int jmax, int lane,
                                                float acc[kRowsPerWarp][kMaxPerLane]) {
  for (int j = 0; j < jmax; ++j) {
    float cj[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) cj[r] = __shfl_sync(0xffffffffu, coef[r], j);
    const float* row = tile + j * pitch;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      const int c = lane + 32 * e;
      if (c < d) {
        const float x = row[c];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) acc[r][e] += cj[r] * x;
      }
    }
  }
}

// o[b, t, h, lane + 32 e] = acc[e] * mul for lane + 32 e < d.
__device__ __forceinline__ void store_row(const AttentionOperand& o, int64_t b, int64_t t,
                                          int64_t h, int d, int lane,
                                          const float acc[kMaxPerLane], float mul) {
  const int64_t base = row_offset(o, b, t, h);
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    const int c = lane + 32 * e;
    if (c < d) store_from_float(o.data, o.dtype, base + c, acc[e] * mul);
  }
}

// ---- kernels ----

// Grid: (ceil(T / kRows), B * H); block: (kThreads); dynamic shared memory
// forward_smem_bytes(dqk, dv).
__global__ void attention_forward_kernel(AttentionOperand q, AttentionOperand k,
                                         AttentionOperand v, AttentionOperand out, float* lse,
                                         int64_t t_len, int64_t heads, int dqk, int dv,
                                         float scale) {
  extern __shared__ float4 smem4[];
  float* q_s = reinterpret_cast<float*>(smem4);  // (dqk, kRows) transposed
  float* k_s = q_s + kRows * dqk;                // (kTile, dqk + 1)
  float* v_s = k_s + kTile * (dqk + 1);          // (kTile, dv)
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t b = blockIdx.y / heads, h = blockIdx.y % heads;
  const int64_t q0 = int64_t(blockIdx.x) * kRows;
  const int64_t q_last = (q0 + kRows < t_len ? q0 + kRows : t_len) - 1;
  const int r0 = warp * kRowsPerWarp;
  load_rows(q, b, h, q0, kRows, t_len, dqk, q_s, 1, kRows);

  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kMaxPerLane];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) acc[r][e] = 0.0f;
  }

  for (int64_t k0 = 0; k0 <= q_last; k0 += kTile) {
    __syncthreads();  // q_s is loaded; the previous tile is consumed
    load_rows(k, b, h, k0, kTile, t_len, dqk, k_s, dqk + 1, 1);
    load_rows(v, b, h, k0, kTile, t_len, dv, v_s, dv, 1);
    __syncthreads();
    float sc[kRowsPerWarp] = {0.0f, 0.0f, 0.0f, 0.0f};
    dot4(q_s, r0, k_s + lane * (dqk + 1), dqk, sc);
    const int64_t key = k0 + lane;
    float p[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int64_t t = q0 + r0 + r;
      const float s = (key <= t && t < t_len) ? sc[r] * scale : -INFINITY;
      const float m_new = max_propagate_nan(m[r], warp_reduce_max(s));
      float alpha = 1.0f;
      if (m_new == -INFINITY) {  // warp-uniform: no valid key yet (rows past T)
        p[r] = 0.0f;
      } else {
        p[r] = expf(s - m_new);
        alpha = expf(m[r] - m_new);
      }
      l[r] = l[r] * alpha + warp_reduce_sum(p[r]);
      m[r] = m_new;
#pragma unroll
      for (int e = 0; e < kMaxPerLane; ++e) acc[r][e] *= alpha;
    }
    const int jmax = int(q_last - k0 + 1 < kTile ? q_last - k0 + 1 : kTile);
    accumulate_tile(p, v_s, dv, dv, jmax, lane, acc);
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t t = q0 + r0 + r;
    if (t >= t_len) continue;
    store_row(out, b, t, h, dv, lane, acc[r], 1.0f / l[r]);
    if (lane == 0) lse[blockIdx.y * t_len + t] = m[r] + logf(l[r]);
  }
}

// D[(b * H + h) * T + t] = dout[b, t, h] . out[b, t, h]. Grid-stride: warp w of the
// grid handles rows w, w + (total warps), ... of the flat (b, t, h) index.
__global__ void attention_dsum_kernel(AttentionOperand dout, AttentionOperand out, float* dsum,
                                      int64_t batch, int64_t t_len, int64_t heads, int dv) {
  const int lane = threadIdx.x % 32;
  const int64_t rows = batch * t_len * heads;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; row < rows;
       row += warps) {
    const int64_t h = row % heads, t = (row / heads) % t_len, b = row / (heads * t_len);
    const int64_t go = row_offset(dout, b, t, h), oo = row_offset(out, b, t, h);
    float acc = 0.0f;
    for (int c = lane; c < dv; c += 32)
      acc += load_as_float(dout.data, dout.dtype, go + c) * load_as_float(out.data, out.dtype, oo + c);
    acc = warp_reduce_sum(acc);
    if (lane == 0) dsum[(b * heads + h) * t_len + t] = acc;
  }
}

// Grid: (ceil(T / kRows), B * H); block: (kThreads); dynamic shared memory
// dq_smem_bytes(dqk, dv).
__global__ void attention_backward_dq_kernel(AttentionOperand dout, AttentionOperand q,
                                             AttentionOperand k, AttentionOperand v,
                                             const float* lse, const float* dsum,
                                             AttentionOperand dq, int64_t t_len, int64_t heads,
                                             int dqk, int dv, float scale) {
  extern __shared__ float4 smem4[];
  float* q_s = reinterpret_cast<float*>(smem4);  // (dqk, kRows) transposed
  float* do_s = q_s + kRows * dqk;               // (dv, kRows) transposed
  float* k_s = do_s + kRows * dv;                // (kTile, dqk + 1)
  float* v_s = k_s + kTile * (dqk + 1);          // (kTile, dv + 1)
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t b = blockIdx.y / heads, h = blockIdx.y % heads;
  const int64_t q0 = int64_t(blockIdx.x) * kRows;
  const int64_t q_last = (q0 + kRows < t_len ? q0 + kRows : t_len) - 1;
  const int r0 = warp * kRowsPerWarp;
  load_rows(q, b, h, q0, kRows, t_len, dqk, q_s, 1, kRows);
  load_rows(dout, b, h, q0, kRows, t_len, dv, do_s, 1, kRows);

  float row_lse[kRowsPerWarp], row_d[kRowsPerWarp], acc[kRowsPerWarp][kMaxPerLane];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t t = q0 + r0 + r;
    row_lse[r] = t < t_len ? lse[blockIdx.y * t_len + t] : 0.0f;
    row_d[r] = t < t_len ? dsum[blockIdx.y * t_len + t] : 0.0f;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) acc[r][e] = 0.0f;
  }

  for (int64_t k0 = 0; k0 <= q_last; k0 += kTile) {
    __syncthreads();
    load_rows(k, b, h, k0, kTile, t_len, dqk, k_s, dqk + 1, 1);
    load_rows(v, b, h, k0, kTile, t_len, dv, v_s, dv + 1, 1);
    __syncthreads();
    float sc[kRowsPerWarp] = {0.0f, 0.0f, 0.0f, 0.0f};
    float dp[kRowsPerWarp] = {0.0f, 0.0f, 0.0f, 0.0f};
    dot4(q_s, r0, k_s + lane * (dqk + 1), dqk, sc);
    dot4(do_s, r0, v_s + lane * (dv + 1), dv, dp);
    const int64_t key = k0 + lane;
    float ds[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int64_t t = q0 + r0 + r;
      const bool valid = key <= t && t < t_len;
      ds[r] = valid ? expf(sc[r] * scale - row_lse[r]) * (dp[r] - row_d[r]) : 0.0f;
    }
    const int jmax = int(q_last - k0 + 1 < kTile ? q_last - k0 + 1 : kTile);
    accumulate_tile(ds, k_s, dqk + 1, dqk, jmax, lane, acc);
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t t = q0 + r0 + r;
    if (t < t_len) store_row(dq, b, t, h, dqk, lane, acc[r], scale);
  }
}

// Grid: (ceil(T / kRows), B * H); block: (kThreads); dynamic shared memory
// dkdv_smem_bytes(dqk, dv). Owns keys s0 .. s0 + kRows - 1; streams queries from s0.
__global__ void attention_backward_dkdv_kernel(AttentionOperand dout, AttentionOperand q,
                                               AttentionOperand k, AttentionOperand v,
                                               const float* lse, const float* dsum,
                                               AttentionOperand dk, AttentionOperand dv_out,
                                               int64_t t_len, int64_t heads, int dqk, int dv,
                                               float scale) {
  extern __shared__ float4 smem4[];
  float* k_s = reinterpret_cast<float*>(smem4);  // (dqk, kRows) transposed
  float* v_s = k_s + kRows * dqk;                // (dv, kRows) transposed
  float* q_s = v_s + kRows * dv;                 // (kTile, dqk + 1)
  float* do_s = q_s + kTile * (dqk + 1);         // (kTile, dv + 1)
  float* lse_s = do_s + kTile * (dv + 1);        // (kTile)
  float* d_s = lse_s + kTile;                    // (kTile)
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t b = blockIdx.y / heads, h = blockIdx.y % heads;
  const int64_t s0 = int64_t(blockIdx.x) * kRows;
  const int r0 = warp * kRowsPerWarp;
  load_rows(k, b, h, s0, kRows, t_len, dqk, k_s, 1, kRows);
  load_rows(v, b, h, s0, kRows, t_len, dv, v_s, 1, kRows);

  float dk_acc[kRowsPerWarp][kMaxPerLane], dv_acc[kRowsPerWarp][kMaxPerLane];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      dk_acc[r][e] = 0.0f;
      dv_acc[r][e] = 0.0f;
    }
  }

  for (int64_t t0 = s0; t0 < t_len; t0 += kTile) {
    __syncthreads();
    load_rows(q, b, h, t0, kTile, t_len, dqk, q_s, dqk + 1, 1);
    load_rows(dout, b, h, t0, kTile, t_len, dv, do_s, dv + 1, 1);
    if (threadIdx.x < kTile) {
      const int64_t t = t0 + threadIdx.x;
      lse_s[threadIdx.x] = t < t_len ? lse[blockIdx.y * t_len + t] : 0.0f;
      d_s[threadIdx.x] = t < t_len ? dsum[blockIdx.y * t_len + t] : 0.0f;
    }
    __syncthreads();
    float sc[kRowsPerWarp] = {0.0f, 0.0f, 0.0f, 0.0f};
    float dp[kRowsPerWarp] = {0.0f, 0.0f, 0.0f, 0.0f};
    dot4(k_s, r0, q_s + lane * (dqk + 1), dqk, sc);
    dot4(v_s, r0, do_s + lane * (dv + 1), dv, dp);
    const int64_t t = t0 + lane;
    float p[kRowsPerWarp], ds[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int64_t key = s0 + r0 + r;
      const bool valid = key <= t && t < t_len;
      p[r] = valid ? expf(sc[r] * scale - lse_s[lane]) : 0.0f;
      ds[r] = p[r] * (dp[r] - d_s[lane]);
    }
    const int jmax = int(t_len - t0 < kTile ? t_len - t0 : kTile);
    accumulate_tile(p, do_s, dv + 1, dv, jmax, lane, dv_acc);
    accumulate_tile(ds, q_s, dqk + 1, dqk, jmax, lane, dk_acc);
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t key = s0 + r0 + r;
    if (key >= t_len) continue;
    store_row(dk, b, key, h, dqk, lane, dk_acc[r], scale);
    store_row(dv_out, b, key, h, dv, lane, dv_acc[r], 1.0f);
  }
}

// ---- launchers ----

namespace {

// Grid of the row-owning kernels; checks the limits every launcher shares.
dim3 attention_grid(int64_t batch, int64_t t_len, int64_t heads, int64_t dqk, int64_t dv,
                    const char* op) {
  ZT_ASSERT(dqk >= 1 && dqk <= kAttentionMaxHeadDim && dv >= 1 && dv <= kAttentionMaxHeadDim,
            "%s: head dims (%lld, %lld) outside [1, %d]", op, (long long)dqk, (long long)dv,
            kAttentionMaxHeadDim);
  ZT_ASSERT(batch * heads <= 65535, "%s: batch * heads = %lld exceeds 65535", op,
            (long long)(batch * heads));
  const int64_t tiles = (t_len + kRows - 1) / kRows;
  ZT_ASSERT(tiles <= INT32_MAX, "%s: T = %lld", op, (long long)t_len);
  return dim3(unsigned(tiles), unsigned(batch * heads));
}

// Allows `kernel` the dynamic shared memory it needs (over the 48 KiB default).
void allow_smem(const void* kernel, size_t bytes) {
  ZT_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

}  // namespace

void launch_attention_forward(const AttentionOperand& q, const AttentionOperand& k,
                              const AttentionOperand& v, const AttentionOperand& out, float* lse,
                              int64_t batch, int64_t t_len, int64_t heads, int64_t dqk,
                              int64_t dv, float scale, cudaStream_t stream) {
  if (batch <= 0 || t_len <= 0 || heads <= 0) return;
  const dim3 grid = attention_grid(batch, t_len, heads, dqk, dv, "attention_forward");
  const size_t smem = forward_smem_bytes(dqk, dv);
  allow_smem(reinterpret_cast<const void*>(&attention_forward_kernel), smem);
  attention_forward_kernel<<<grid, kThreads, smem, stream>>>(q, k, v, out, lse, t_len, heads,
                                                             int(dqk), int(dv), scale);
  ZT_CUDA_CHECK_LAUNCH();
}

void launch_attention_dsum(const AttentionOperand& dout, const AttentionOperand& out, float* dsum,
                           int64_t batch, int64_t t_len, int64_t heads, int64_t dv,
                           cudaStream_t stream) {
  if (batch <= 0 || t_len <= 0 || heads <= 0) return;
  const int64_t rows = batch * t_len * heads;
  const int64_t blocks64 = (rows * 32 + kElementwiseThreads - 1) / kElementwiseThreads;
  const unsigned blocks =
      unsigned(blocks64 < kMaxElementwiseBlocks ? blocks64 : kMaxElementwiseBlocks);
  attention_dsum_kernel<<<blocks, kElementwiseThreads, 0, stream>>>(dout, out, dsum, batch, t_len,
                                                                    heads, int(dv));
  ZT_CUDA_CHECK_LAUNCH();
}

size_t attention_backward_scratch_bytes(int64_t batch, int64_t t_len, int64_t heads) {
  if (batch <= 0 || t_len <= 0 || heads <= 0) return 0;
  return sizeof(float) * size_t(batch * t_len * heads);
}

void launch_attention_backward(const AttentionOperand& dout, const AttentionOperand& q,
                               const AttentionOperand& k, const AttentionOperand& v,
                               const AttentionOperand& out, const float* lse,
                               const AttentionOperand& dq, const AttentionOperand& dk,
                               const AttentionOperand& dv, int64_t batch, int64_t t_len,
                               int64_t heads, int64_t dqk, int64_t dv_dim, float scale,
                               void* scratch, size_t scratch_bytes, cudaStream_t stream) {
  if (batch <= 0 || t_len <= 0 || heads <= 0) return;
  const dim3 grid = attention_grid(batch, t_len, heads, dqk, dv_dim, "attention_backward");
  ZT_ASSERT(scratch_bytes >= attention_backward_scratch_bytes(batch, t_len, heads),
            "attention_backward: scratch of %zu bytes, need %zu", scratch_bytes,
            attention_backward_scratch_bytes(batch, t_len, heads));
  float* dsum = static_cast<float*>(scratch);
  launch_attention_dsum(dout, out, dsum, batch, t_len, heads, dv_dim, stream);

  const size_t dq_smem = dq_smem_bytes(dqk, dv_dim);
  allow_smem(reinterpret_cast<const void*>(&attention_backward_dq_kernel), dq_smem);
  attention_backward_dq_kernel<<<grid, kThreads, dq_smem, stream>>>(
      dout, q, k, v, lse, dsum, dq, t_len, heads, int(dqk), int(dv_dim), scale);
  ZT_CUDA_CHECK_LAUNCH();

  const size_t dkdv_smem = dkdv_smem_bytes(dqk, dv_dim);
  allow_smem(reinterpret_cast<const void*>(&attention_backward_dkdv_kernel), dkdv_smem);
  attention_backward_dkdv_kernel<<<grid, kThreads, dkdv_smem, stream>>>(
      dout, q, k, v, lse, dsum, dk, dv, t_len, heads, int(dqk), int(dv_dim), scale);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
