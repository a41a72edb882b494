// Causal attention on tensor cores (flash-attention-2 style) for BF16 operands:
// mma.sync m16n8k16 bf16 -> fp32, operands from shared memory through ldmatrix.
//
// Owns: three kernels with one shape. A block of kWarps warps (8 for the forward, 4 for
// the backward) owns kBlock = 16 kWarps consecutive rows of one (b, h) (16 per warp: one
// mma row tile) and streams the other side in tiles of 64 rows (32 for Dqk > 128 in the
// dk/dv kernel), double-buffered in shared memory (cp.async when every loaded operand is
// 16-byte aligned, plain loads otherwise). Rows are padded by 8 elements (16 bytes), so
// the 8 rows an ldmatrix phase reads fall in distinct banks.
//   forward: owns queries, streams keys/values 0 .. last query; online softmax in the
//            log2 domain, P rounded to bf16 for the P V product, O accumulated in fp32.
//   dq:      owns queries, streams keys/values; P recomputed from lse,
//            dS = P (dO V^T - D), dq = scale dS K.
//   dk, dv:  owns keys, streams queries/dout from the first owned key to T;
//            dv = P^T dO, dk = scale dS^T Q.
//   D = rowsum(dout * out) comes from attention.cu's kernel.
// Causal tiles past the diagonal are skipped (per warp on the diagonal tiles). Every
// output element is summed by one thread in a fixed order: results are deterministic.
// The head dims are template buckets (Dqk 64/96/128/192, Dv 64/128); the dims inside
// a bucket are run-time multiples of 16 (unused fragments are skipped).
// Must not: use atomics, or assume T is a multiple of any tile (rows past T load as
// zeros, are masked, and are not stored).
#include "flash_attention.h"

#include <cuda_bf16.h>

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

namespace {

// Warps per block (16 rows each). Measured on an H100 at the 1B shape (B 8, T 2048,
// H 16, Dqk 96, Dv 64): 8 warps make the forward 18% faster than 4 (0.014 s vs 0.017 s
// over 16 layers); the backward kernels time the same with 4 or 8 (0.062-0.063 s), and
// 4 keeps the 250-register dk/dv kernel at two blocks per SM.
constexpr int kForwardWarps = 8;
constexpr int kBackwardWarps = 4;
constexpr int kTile = 64;  // keys streamed per tile by the query-owning kernels
constexpr int kPad = 8;              // bf16 elements of padding per shared-memory row
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

using bf16_t = __nv_bfloat16;

// Rows streamed per tile by the dk/dv kernel (fewer for large heads: registers).
constexpr int dkdv_stream_rows(int dqk) { return dqk > 128 ? 32 : 64; }

}  // namespace

// ---- device helpers ----

namespace {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}

// Four 8x8 b16 matrices; lanes 8i .. 8i+7 give the row addresses of matrix i.
__device__ __forceinline__ void ldsm_x4(uint32_t r[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void ldsm_x4_trans(uint32_t r[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c += a (16x16, row) * b (16x8, col), bf16 in, fp32 accumulate.
__device__ __forceinline__ void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a bf16x2 register (lo in the low half), rounded to nearest even.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(smem)), "l"(gmem));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

// Waits until at most one committed group is pending.
__device__ __forceinline__ void cp_async_wait_one() {
  asm volatile("cp.async.wait_group 1;\n" ::);
}

__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Key pairs (16 keys) of the tile at k0 that hold a key <= the warp's last row
// (rows warp_row0 .. warp_row0 + 15), at most `pairs`: the pairs p with
// k0 + 16 p <= warp_row0 + 15 (later pairs are all masked for the warp).
__device__ __forceinline__ int causal_pairs(int64_t k0, int64_t warp_row0, int pairs) {
  if (warp_row0 + 15 < k0) return 0;
  const int64_t n = (warp_row0 + 15 - k0) / 16 + 1;
  return n < pairs ? int(n) : pairs;
}

__device__ __forceinline__ const bf16_t* row_ptr(const AttentionOperand& o, int64_t b, int64_t t,
                                               int64_t h) {
  return static_cast<const bf16_t*>(o.data) + b * o.stride_b + t * o.stride_t + h * o.stride_h;
}

// s[r * pitch + j] = o[b, t0 + r, h, j] for r < kRows, j < d (d a multiple of 8), and 0
// for t0 + r >= t_len. vec: 16-byte cp.async (the caller commits); else 2-byte loads.
template <int kRows>
__device__ __forceinline__ void load_tile(bf16_t* s, int pitch, const AttentionOperand& o,
                                          int64_t b, int64_t h, int64_t t0, int64_t t_len,
                                          int d, bool vec) {
  if (vec) {
    const int chunks = d >> 3;
    for (int idx = threadIdx.x; idx < kRows * chunks; idx += int(blockDim.x)) {
      const int r = idx / chunks, c = (idx - r * chunks) << 3;
      bf16_t* dst = s + r * pitch + c;
      if (t0 + r < t_len) {
        cp_async16(dst, row_ptr(o, b, t0 + r, h) + c);
      } else {
        *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
      }
    }
  } else {
    for (int idx = threadIdx.x; idx < kRows * d; idx += int(blockDim.x)) {
      const int r = idx / d, c = idx - r * d;
      s[r * pitch + c] = t0 + r < t_len ? row_ptr(o, b, t0 + r, h)[c] : __float2bfloat16_rn(0.0f);
    }
  }
}

// dst[r] = src[bh * t_len + t0 + r] * mul for r < rows (0 past t_len).
__device__ __forceinline__ void load_row_stats(float* dst, const float* src, int64_t bh,
                                               int64_t t0, int64_t t_len, int rows, float mul) {
  for (int r = threadIdx.x; r < rows; r += int(blockDim.x))
    dst[r] = t0 + r < t_len ? src[bh * t_len + t0 + r] * mul : 0.0f;
}

// A fragments (16 rows x d) of rows row0 .. row0 + 15 of a row-major tile.
template <int kChunks>
__device__ __forceinline__ void load_a_frags(uint32_t a[kChunks][4], const bf16_t* s, int pitch,
                                             int row0, int d, int lane) {
#pragma unroll
  for (int c = 0; c < kChunks; ++c)
    if (c * 16 < d) ldsm_x4(a[c], smem_addr(s + (row0 + (lane & 15)) * pitch + c * 16 + (lane >> 4) * 8));
}

// acc[n] += A (16 x d) * B where B[j][n] = tile[n][j]: for each pair p of n-tiles (16
// tile rows), B fragments from the row-major tile without transpose. Pairs p with
// p < p_lo are skipped (their acc is left as is).
template <int kChunks, int kPairs, bool kRegA>
__device__ __forceinline__ void mma_abt(float acc[2 * kPairs][4], const uint32_t a_reg[][4],
                                        const bf16_t* a_s, int a_pitch, int a_row0,
                                        const bf16_t* tile, int pitch, int d, int p_lo, int p_hi,
                                        int lane) {
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    if (c * 16 >= d) continue;
    uint32_t a[4];
    if constexpr (kRegA) {
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = a_reg[c][i];
    } else {
      ldsm_x4(a, smem_addr(a_s + (a_row0 + (lane & 15)) * a_pitch + c * 16 + (lane >> 4) * 8));
    }
#pragma unroll
    for (int p = 0; p < kPairs; ++p) {
      if (p < p_lo || p >= p_hi) continue;
      uint32_t bm[4];
      ldsm_x4(bm, smem_addr(tile + (p * 16 + (lane & 7) + (lane >> 4) * 8) * pitch + c * 16 +
                            ((lane >> 3) & 1) * 8));
      mma_bf16(acc[2 * p], a, bm[0], bm[1]);
      mma_bf16(acc[2 * p + 1], a, bm[2], bm[3]);
    }
  }
}

// acc[n] += P (16 x 16 kPairs, C fragments p[2 kPairs][4] rounded to bf16_t) * tile
// (16 kPairs rows x d, row-major, B fragments through ldmatrix.trans); key chunks
// outside [p_lo, p_hi) are skipped (their P must be 0).
template <int kPairs, int kOutTiles>
__device__ __forceinline__ void mma_pv(float acc[kOutTiles][4], const float p[2 * kPairs][4],
                                       const bf16_t* tile, int pitch, int d, int p_lo, int p_hi,
                                       int lane) {
#pragma unroll
  for (int kc = 0; kc < kPairs; ++kc) {
    if (kc < p_lo || kc >= p_hi) continue;
    uint32_t a[4];
    a[0] = pack_bf16(p[2 * kc][0], p[2 * kc][1]);
    a[1] = pack_bf16(p[2 * kc][2], p[2 * kc][3]);
    a[2] = pack_bf16(p[2 * kc + 1][0], p[2 * kc + 1][1]);
    a[3] = pack_bf16(p[2 * kc + 1][2], p[2 * kc + 1][3]);
#pragma unroll
    for (int np = 0; np < kOutTiles / 2; ++np) {
      if (np * 16 >= d) continue;
      uint32_t bm[4];
      ldsm_x4_trans(bm, smem_addr(tile + (kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * pitch +
                                  np * 16 + (lane >> 4) * 8));
      mma_bf16(acc[2 * np], a, bm[0], bm[1]);
      mma_bf16(acc[2 * np + 1], a, bm[2], bm[3]);
    }
  }
}

// o[b, row_i, h, n * 8 + 2 tg + {0, 1}] = acc[n][2 i + {0, 1}] * mul[i] for the thread's
// two rows (row_i < t_len) and n * 8 < d. vec: 4-byte bf16x2 stores.
template <int kTiles>
__device__ __forceinline__ void store_frags(const AttentionOperand& o, int64_t b, int64_t h,
                                            const int64_t row[2], int64_t t_len,
                                            const float acc[kTiles][4], const float mul[2], int d,
                                            int tg, bool vec) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (row[i] >= t_len) continue;
    bf16_t* base = static_cast<bf16_t*>(o.data) + b * o.stride_b + row[i] * o.stride_t + h * o.stride_h;
#pragma unroll
    for (int n = 0; n < kTiles; ++n) {
      if (n * 8 >= d) continue;
      const int c = n * 8 + tg * 2;
      const float x0 = acc[n][2 * i] * mul[i], x1 = acc[n][2 * i + 1] * mul[i];
      if (vec) {
        *reinterpret_cast<__nv_bfloat162*>(base + c) = __floats2bfloat162_rn(x0, x1);
      } else {
        base[c] = __float2bfloat16_rn(x0);
        base[c + 1] = __float2bfloat16_rn(x1);
      }
    }
  }
}

}  // namespace

// ---- kernels ----

// Grid: (ceil(T / kBlock), B * H), the last query tile first (causal: most work);
// block: 32 kWarps threads; dynamic shared memory flash_forward_smem<DQK, DV, kWarps>().
template <int DQK, int DV, int kWarps>
__global__ void __launch_bounds__(32 * kWarps)
    flash_attention_forward_kernel(AttentionOperand q, AttentionOperand k, AttentionOperand v,
                                   AttentionOperand out, float* lse, int64_t t_len, int64_t heads,
                                   int dqk, int dv, float scale_log2, bool vec, bool vec_out) {
  constexpr int PQ = DQK + kPad, PV = DV + kPad;
  constexpr int kBlock = 16 * kWarps;  // queries owned
  constexpr int kPairs = kTile / 16;   // key n-tile pairs per tile
  extern __shared__ uint4 smem_raw[];
  bf16_t* q_s = reinterpret_cast<bf16_t*>(smem_raw);  // (kBlock, PQ)
  bf16_t* k_s = q_s + kBlock * PQ;                    // 2 x (kTile, PQ)
  bf16_t* v_s = k_s + 2 * kTile * PQ;                 // 2 x (kTile, PV)
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, tg = lane & 3;
  const int64_t bh = blockIdx.y, b = bh / heads, h = bh % heads;
  const int64_t q0 = int64_t(gridDim.x - 1 - blockIdx.x) * kBlock;
  const int64_t q_end = q0 + kBlock < t_len ? q0 + kBlock : t_len;
  const int n_tiles = int((q_end + kTile - 1) / kTile);
  const int64_t warp_row0 = q0 + warp * 16;
  const int64_t row[2] = {warp_row0 + g, warp_row0 + g + 8};

  load_tile<kBlock>(q_s, PQ, q, b, h, q0, t_len, dqk, vec);
  load_tile<kTile>(k_s, PQ, k, b, h, 0, t_len, dqk, vec);
  load_tile<kTile>(v_s, PV, v, b, h, 0, t_len, dv, vec);
  cp_async_commit();

  uint32_t qf[DQK / 16][4];
  float o[DV / 8][4];
#pragma unroll
  for (int n = 0; n < DV / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int j = 0; j < n_tiles; ++j) {
    if (j + 1 < n_tiles) {
      const int nb = (j + 1) & 1;
      load_tile<kTile>(k_s + nb * kTile * PQ, PQ, k, b, h, int64_t(j + 1) * kTile, t_len, dqk, vec);
      load_tile<kTile>(v_s + nb * kTile * PV, PV, v, b, h, int64_t(j + 1) * kTile, t_len, dv, vec);
    }
    cp_async_commit();
    cp_async_wait_one();
    __syncthreads();
    if (j == 0) load_a_frags<DQK / 16>(qf, q_s, PQ, warp * 16, dqk, lane);
    const bf16_t* ks = k_s + (j & 1) * kTile * PQ;
    const bf16_t* vs = v_s + (j & 1) * kTile * PV;
    const int64_t k0 = int64_t(j) * kTile;
    const bool diag = k0 + kTile > warp_row0;  // some key is past some of the warp's rows
    const int p_hi = causal_pairs(k0, warp_row0, kPairs);

    float s[2 * kPairs][4];
#pragma unroll
    for (int n = 0; n < 2 * kPairs; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
    mma_abt<DQK / 16, kPairs, true>(s, qf, nullptr, 0, 0, ks, PQ, dqk, 0, p_hi, lane);

    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int n = 0; n < 2 * kPairs; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[n][e] * scale_log2;
        if (diag && k0 + n * 8 + tg * 2 + (e & 1) > row[e >> 1]) x = -INFINITY;
        s[n][e] = x;
        mx[e >> 1] = fmaxf(mx[e >> 1], x);
      }
    }
    float m_use[2], alpha[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = quad_max(mx[i]);
      m_use[i] = mx[i] == -INFINITY ? 0.0f : mx[i];  // no valid key yet: P = 0, not NaN
      alpha[i] = exp2_approx(m[i] - m_use[i]);
      m[i] = mx[i];
    }
    float rs[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < 2 * kPairs; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[n][e] = exp2_approx(s[n][e] - m_use[e >> 1]);
        rs[e >> 1] += s[n][e];
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) l[i] = l[i] * alpha[i] + rs[i];
#pragma unroll
    for (int n = 0; n < DV / 8; ++n) {
      o[n][0] *= alpha[0];
      o[n][1] *= alpha[0];
      o[n][2] *= alpha[1];
      o[n][3] *= alpha[1];
    }
    mma_pv<kPairs, DV / 8>(o, s, vs, PV, dv, 0, p_hi, lane);
    __syncthreads();  // the buffers of tile j are consumed before tile j + 2 lands there
  }

  float inv[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] = quad_sum(l[i]);
    inv[i] = 1.0f / l[i];
  }
  store_frags<DV / 8>(out, b, h, row, t_len, o, inv, dv, tg, vec_out);
  if (tg == 0) {
#pragma unroll
    for (int i = 0; i < 2; ++i)
      if (row[i] < t_len) lse[bh * t_len + row[i]] = (m[i] + log2f(l[i])) * kLn2;
  }
}

// Grid: (ceil(T / kBlock), B * H), the last query tile first; block: 32 kWarps threads;
// dynamic shared memory flash_dq_smem<DQK, DV, kWarps>(). dsum = D (B, H, T).
template <int DQK, int DV, int kWarps>
__global__ void __launch_bounds__(32 * kWarps)
    flash_attention_backward_dq_kernel(AttentionOperand dout, AttentionOperand q,
                                       AttentionOperand k, AttentionOperand v, const float* lse,
                                       const float* dsum, AttentionOperand dq, int64_t t_len,
                                       int64_t heads, int dqk, int dv, float scale,
                                       float scale_log2, bool vec, bool vec_out) {
  constexpr int PQ = DQK + kPad, PV = DV + kPad;
  constexpr int kBlock = 16 * kWarps;  // queries owned
  constexpr int kPairs = kTile / 16;
  extern __shared__ uint4 smem_raw[];
  bf16_t* q_s = reinterpret_cast<bf16_t*>(smem_raw);  // (kBlock, PQ)
  bf16_t* do_s = q_s + kBlock * PQ;                   // (kBlock, PV)
  bf16_t* k_s = do_s + kBlock * PV;                   // 2 x (kTile, PQ)
  bf16_t* v_s = k_s + 2 * kTile * PQ;                 // 2 x (kTile, PV)
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, tg = lane & 3;
  const int64_t bh = blockIdx.y, b = bh / heads, h = bh % heads;
  const int64_t q0 = int64_t(gridDim.x - 1 - blockIdx.x) * kBlock;
  const int64_t q_end = q0 + kBlock < t_len ? q0 + kBlock : t_len;
  const int n_tiles = int((q_end + kTile - 1) / kTile);
  const int64_t warp_row0 = q0 + warp * 16;
  const int64_t row[2] = {warp_row0 + g, warp_row0 + g + 8};

  load_tile<kBlock>(q_s, PQ, q, b, h, q0, t_len, dqk, vec);
  load_tile<kBlock>(do_s, PV, dout, b, h, q0, t_len, dv, vec);
  load_tile<kTile>(k_s, PQ, k, b, h, 0, t_len, dqk, vec);
  load_tile<kTile>(v_s, PV, v, b, h, 0, t_len, dv, vec);
  cp_async_commit();

  float row_lse[2], row_d[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    row_lse[i] = row[i] < t_len ? lse[bh * t_len + row[i]] * kLog2e : 0.0f;
    row_d[i] = row[i] < t_len ? dsum[bh * t_len + row[i]] : 0.0f;
  }
  // Keep the q, dout fragments in registers where that fits without spills (ptxas -v).
  constexpr bool kRegA = DQK + DV <= 256;
  uint32_t qf[kRegA ? DQK / 16 : 1][4], dof[kRegA ? DV / 16 : 1][4];
  float acc[DQK / 8][4];
#pragma unroll
  for (int n = 0; n < DQK / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

  for (int j = 0; j < n_tiles; ++j) {
    if (j + 1 < n_tiles) {
      const int nb = (j + 1) & 1;
      load_tile<kTile>(k_s + nb * kTile * PQ, PQ, k, b, h, int64_t(j + 1) * kTile, t_len, dqk, vec);
      load_tile<kTile>(v_s + nb * kTile * PV, PV, v, b, h, int64_t(j + 1) * kTile, t_len, dv, vec);
    }
    cp_async_commit();
    cp_async_wait_one();
    __syncthreads();
    if constexpr (kRegA) {
      if (j == 0) {
        load_a_frags<DQK / 16>(qf, q_s, PQ, warp * 16, dqk, lane);
        load_a_frags<DV / 16>(dof, do_s, PV, warp * 16, dv, lane);
      }
    }
    const bf16_t* ks = k_s + (j & 1) * kTile * PQ;
    const bf16_t* vs = v_s + (j & 1) * kTile * PV;
    const int64_t k0 = int64_t(j) * kTile;
    const bool diag = k0 + kTile > warp_row0;
    const int p_hi = causal_pairs(k0, warp_row0, kPairs);

    float s[2 * kPairs][4], dp[2 * kPairs][4];
#pragma unroll
    for (int n = 0; n < 2 * kPairs; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.0f;
    }
    mma_abt<DQK / 16, kPairs, kRegA>(s, qf, q_s, PQ, warp * 16, ks, PQ, dqk, 0, p_hi, lane);
    mma_abt<DV / 16, kPairs, kRegA>(dp, dof, do_s, PV, warp * 16, vs, PV, dv, 0, p_hi, lane);
#pragma unroll
    for (int n = 0; n < 2 * kPairs; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e >> 1;
        float p = exp2_approx(fmaf(s[n][e], scale_log2, -row_lse[i]));
        if (diag && k0 + n * 8 + tg * 2 + (e & 1) > row[i]) p = 0.0f;
        s[n][e] = p * (dp[n][e] - row_d[i]);  // dS
      }
    }
    mma_pv<kPairs, DQK / 8>(acc, s, ks, PQ, dqk, 0, p_hi, lane);
    __syncthreads();
  }
  const float mul[2] = {scale, scale};
  store_frags<DQK / 8>(dq, b, h, row, t_len, acc, mul, dqk, tg, vec_out);
}

// Grid: (ceil(T / kBlock), B * H), the first key tile first (most queries); block:
// 32 kWarps threads; dynamic shared memory flash_dkdv_smem<DQK, DV, kWarps>(). Owns keys
// s0 .. s0 + kBlock - 1 (16 per warp), streams kM queries per tile from s0.
template <int DQK, int DV, int kWarps>
__global__ void __launch_bounds__(32 * kWarps)
    flash_attention_backward_dkdv_kernel(AttentionOperand dout, AttentionOperand q,
                                         AttentionOperand k, AttentionOperand v, const float* lse,
                                         const float* dsum, AttentionOperand dk,
                                         AttentionOperand dv_out, int64_t t_len, int64_t heads,
                                         int dqk, int dv, float scale, float scale_log2, bool vec,
                                         bool vec_out) {
  constexpr int kBlock = 16 * kWarps;  // keys owned
  constexpr int kM = dkdv_stream_rows(DQK);
  constexpr int kPairs = kM / 16;
  constexpr int PQ = DQK + kPad, PV = DV + kPad;
  // Keep the K, V fragments in registers where that fits without spills (ptxas -v).
  constexpr bool kRegA = DQK + DV <= 192 && DV <= 64;
  extern __shared__ uint4 smem_raw[];
  bf16_t* k_s = reinterpret_cast<bf16_t*>(smem_raw);       // (kBlock, PQ)
  bf16_t* v_s = k_s + kBlock * PQ;                       // (kBlock, PV)
  bf16_t* q_s = v_s + kBlock * PV;                       // 2 x (kM, PQ)
  bf16_t* do_s = q_s + 2 * kM * PQ;                      // 2 x (kM, PV)
  float* lse_s = reinterpret_cast<float*>(do_s + 2 * kM * PV);  // 2 x kM (log2 domain)
  float* d_s = lse_s + 2 * kM;                                  // 2 x kM
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, tg = lane & 3;
  const int64_t bh = blockIdx.y, b = bh / heads, h = bh % heads;
  const int64_t s0 = int64_t(blockIdx.x) * kBlock;
  const int n_tiles = int((t_len - s0 + kM - 1) / kM);
  const int64_t key[2] = {s0 + warp * 16 + g, s0 + warp * 16 + g + 8};
  const int64_t warp_key0 = s0 + warp * 16;

  load_tile<kBlock>(k_s, PQ, k, b, h, s0, t_len, dqk, vec);
  load_tile<kBlock>(v_s, PV, v, b, h, s0, t_len, dv, vec);
  load_tile<kM>(q_s, PQ, q, b, h, s0, t_len, dqk, vec);
  load_tile<kM>(do_s, PV, dout, b, h, s0, t_len, dv, vec);
  load_row_stats(lse_s, lse, bh, s0, t_len, kM, kLog2e);
  load_row_stats(d_s, dsum, bh, s0, t_len, kM, 1.0f);
  cp_async_commit();

  uint32_t kf[kRegA ? DQK / 16 : 1][4], vf[kRegA ? DV / 16 : 1][4];
  float dk_acc[DQK / 8][4], dv_acc[DV / 8][4];
#pragma unroll
  for (int n = 0; n < DQK / 8; ++n) dk_acc[n][0] = dk_acc[n][1] = dk_acc[n][2] = dk_acc[n][3] = 0.0f;
#pragma unroll
  for (int n = 0; n < DV / 8; ++n) dv_acc[n][0] = dv_acc[n][1] = dv_acc[n][2] = dv_acc[n][3] = 0.0f;

  for (int j = 0; j < n_tiles; ++j) {
    if (j + 1 < n_tiles) {
      const int nb = (j + 1) & 1;
      const int64_t t1 = s0 + int64_t(j + 1) * kM;
      load_tile<kM>(q_s + nb * kM * PQ, PQ, q, b, h, t1, t_len, dqk, vec);
      load_tile<kM>(do_s + nb * kM * PV, PV, dout, b, h, t1, t_len, dv, vec);
      load_row_stats(lse_s + nb * kM, lse, bh, t1, t_len, kM, kLog2e);
      load_row_stats(d_s + nb * kM, dsum, bh, t1, t_len, kM, 1.0f);
    }
    cp_async_commit();
    cp_async_wait_one();
    __syncthreads();
    if constexpr (kRegA) {
      if (j == 0) {
        load_a_frags<DQK / 16>(kf, k_s, PQ, warp * 16, dqk, lane);
        load_a_frags<DV / 16>(vf, v_s, PV, warp * 16, dv, lane);
      }
    }
    const int buf = j & 1;
    const bf16_t* qs = q_s + buf * kM * PQ;
    const bf16_t* dos = do_s + buf * kM * PV;
    const float* ls = lse_s + buf * kM;
    const float* ds = d_s + buf * kM;
    const int64_t t0 = s0 + int64_t(j) * kM;
    // Query pairs p (16 queries) with t0 + 16 p + 15 < warp_key0 see none of the
    // warp's keys (only on the tiles that overlap the block's keys).
    const int64_t lo = (warp_key0 - t0 - 15 + 15) / 16;  // ceil((warp_key0 - t0 - 15) / 16)
    const int p_lo = warp_key0 - t0 - 15 <= 0 ? 0 : int(lo < kPairs ? lo : kPairs);
    const bool mask = t0 < s0 + kBlock || t0 + kM > t_len;

    float s[2 * kPairs][4], dp[2 * kPairs][4];
#pragma unroll
    for (int n = 0; n < 2 * kPairs; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.0f;
    }
    mma_abt<DQK / 16, kPairs, kRegA>(s, kf, k_s, PQ, warp * 16, qs, PQ, dqk, p_lo, kPairs, lane);
    mma_abt<DV / 16, kPairs, kRegA>(dp, vf, v_s, PV, warp * 16, dos, PV, dv, p_lo, kPairs, lane);
#pragma unroll
    for (int n = 0; n < 2 * kPairs; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int c = n * 8 + tg * 2 + (e & 1);  // query t0 + c
        float p = exp2_approx(fmaf(s[n][e], scale_log2, -ls[c]));
        if (mask && (t0 + c < key[e >> 1] || t0 + c >= t_len)) p = 0.0f;
        s[n][e] = p;
        dp[n][e] = p * (dp[n][e] - ds[c]);  // dS^T
      }
    }
    mma_pv<kPairs, DV / 8>(dv_acc, s, dos, PV, dv, p_lo, kPairs, lane);
    mma_pv<kPairs, DQK / 8>(dk_acc, dp, qs, PQ, dqk, p_lo, kPairs, lane);
    __syncthreads();
  }
  const float one[2] = {1.0f, 1.0f}, mul[2] = {scale, scale};
  store_frags<DQK / 8>(dk, b, h, key, t_len, dk_acc, mul, dqk, tg, vec_out);
  store_frags<DV / 8>(dv_out, b, h, key, t_len, dv_acc, one, dv, tg, vec_out);
}

// ---- launchers ----

namespace {

template <int DQK, int DV, int kWarps>
size_t flash_forward_smem() {
  constexpr int kBlock = 16 * kWarps;
  return sizeof(bf16_t) * size_t((kBlock + 2 * kTile) * (DQK + kPad) + 2 * kTile * (DV + kPad));
}

template <int DQK, int DV, int kWarps>
size_t flash_dq_smem() {
  constexpr int kBlock = 16 * kWarps;
  return sizeof(bf16_t) * size_t((kBlock + 2 * kTile) * (DQK + kPad + DV + kPad));
}

template <int DQK, int DV, int kWarps>
size_t flash_dkdv_smem() {
  constexpr int kBlock = 16 * kWarps;
  constexpr int kM = dkdv_stream_rows(DQK);
  return sizeof(bf16_t) * size_t((kBlock + 2 * kM) * (DQK + kPad) + (kBlock + 2 * kM) * (DV + kPad)) +
         sizeof(float) * size_t(4 * kM);
}

bool aligned16(const AttentionOperand& o) {
  return reinterpret_cast<uintptr_t>(o.data) % 16 == 0 && o.stride_b % 8 == 0 &&
         o.stride_t % 8 == 0 && o.stride_h % 8 == 0;
}

bool aligned4(const AttentionOperand& o) {
  return reinterpret_cast<uintptr_t>(o.data) % 4 == 0 && o.stride_b % 2 == 0 &&
         o.stride_t % 2 == 0 && o.stride_h % 2 == 0;
}

void allow_smem(const void* kernel, size_t bytes) {
  ZT_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

dim3 flash_grid(int64_t batch, int64_t t_len, int64_t heads, int64_t kBlock, const char* op) {
  ZT_ASSERT(batch * heads <= 65535, "%s: batch * heads = %lld exceeds 65535", op,
            (long long)(batch * heads));
  const int64_t tiles = (t_len + kBlock - 1) / kBlock;  // kBlock: rows a block owns
  ZT_ASSERT(tiles <= INT32_MAX, "%s: T = %lld", op, (long long)t_len);
  return dim3(unsigned(tiles), unsigned(batch * heads));
}

struct FwdArgs {
  AttentionOperand q, k, v, out;
  float* lse;
  int64_t batch, t_len, heads;
  int dqk, dv;
  float scale;
  cudaStream_t stream;
};

struct BwdArgs {
  AttentionOperand dout, q, k, v, dq, dk, dv;
  const float* lse;
  const float* dsum;
  int64_t batch, t_len, heads;
  int dqk, dv_dim;
  float scale;
  cudaStream_t stream;
};

template <int DQK, int DV, int kWarps>
void run_forward_kernel(const FwdArgs& a) {
  const dim3 grid = flash_grid(a.batch, a.t_len, a.heads, 16 * kWarps, "attention_forward");
  const bool vec = aligned16(a.q) && aligned16(a.k) && aligned16(a.v);
  const size_t smem = flash_forward_smem<DQK, DV, kWarps>();
  auto kernel = &flash_attention_forward_kernel<DQK, DV, kWarps>;
  allow_smem(reinterpret_cast<const void*>(kernel), smem);
  kernel<<<grid, 32 * kWarps, smem, a.stream>>>(a.q, a.k, a.v, a.out, a.lse, a.t_len, a.heads,
                                                a.dqk, a.dv, a.scale * kLog2e, vec,
                                                aligned4(a.out));
  ZT_CUDA_CHECK_LAUNCH();
}

bool bwd_vec(const BwdArgs& a) {
  return aligned16(a.q) && aligned16(a.k) && aligned16(a.v) && aligned16(a.dout);
}

template <int DQK, int DV, int kWarps>
void run_dq_kernel(const BwdArgs& a) {
  const dim3 grid = flash_grid(a.batch, a.t_len, a.heads, 16 * kWarps, "attention_backward");
  const size_t smem = flash_dq_smem<DQK, DV, kWarps>();
  auto kernel = &flash_attention_backward_dq_kernel<DQK, DV, kWarps>;
  allow_smem(reinterpret_cast<const void*>(kernel), smem);
  kernel<<<grid, 32 * kWarps, smem, a.stream>>>(a.dout, a.q, a.k, a.v, a.lse, a.dsum, a.dq,
                                                a.t_len, a.heads, a.dqk, a.dv_dim, a.scale,
                                                a.scale * kLog2e, bwd_vec(a), aligned4(a.dq));
  ZT_CUDA_CHECK_LAUNCH();
}

template <int DQK, int DV, int kWarps>
void run_dkdv_kernel(const BwdArgs& a) {
  const dim3 grid = flash_grid(a.batch, a.t_len, a.heads, 16 * kWarps, "attention_backward");
  const size_t smem = flash_dkdv_smem<DQK, DV, kWarps>();
  auto kernel = &flash_attention_backward_dkdv_kernel<DQK, DV, kWarps>;
  allow_smem(reinterpret_cast<const void*>(kernel), smem);
  kernel<<<grid, 32 * kWarps, smem, a.stream>>>(
      a.dout, a.q, a.k, a.v, a.lse, a.dsum, a.dk, a.dv, a.t_len, a.heads, a.dqk, a.dv_dim, a.scale,
      a.scale * kLog2e, bwd_vec(a), aligned4(a.dk) && aligned4(a.dv));
  ZT_CUDA_CHECK_LAUNCH();
}

template <int DQK, int DV>
void run_forward(const FwdArgs& a) {
  run_forward_kernel<DQK, DV, kForwardWarps>(a);
}

template <int DQK, int DV>
void run_backward(const BwdArgs& a) {
  run_dq_kernel<DQK, DV, kBackwardWarps>(a);
  run_dkdv_kernel<DQK, DV, kBackwardWarps>(a);
}

// Calls f.template operator()<DQK, DV> with the smallest buckets holding (dqk, dv).
template <typename F>
void dispatch_dims(int dqk, int dv, F&& f) {
  if (dv <= 64) {
    if (dqk <= 64) return f.template operator()<64, 64>();
    if (dqk <= 96) return f.template operator()<96, 64>();
    if (dqk <= 128) return f.template operator()<128, 64>();
    return f.template operator()<192, 64>();
  }
  if (dqk <= 64) return f.template operator()<64, 128>();
  if (dqk <= 96) return f.template operator()<96, 128>();
  if (dqk <= 128) return f.template operator()<128, 128>();
  return f.template operator()<192, 128>();
}

struct ForwardLauncher {
  const FwdArgs& a;
  template <int DQK, int DV>
  void operator()() const { run_forward<DQK, DV>(a); }
};

struct BackwardLauncher {
  const BwdArgs& a;
  template <int DQK, int DV>
  void operator()() const { run_backward<DQK, DV>(a); }
};

}  // namespace

bool flash_attention_supported(DType dtype, int64_t dqk, int64_t dv) {
  return dtype == DType::BF16 && dqk % 16 == 0 && dv % 16 == 0 && dqk >= 16 &&
         dqk <= kFlashMaxDqk && dv >= 16 && dv <= kFlashMaxDv;
}

void launch_flash_attention_forward(const AttentionOperand& q, const AttentionOperand& k,
                                    const AttentionOperand& v, const AttentionOperand& out,
                                    float* lse, int64_t batch, int64_t t_len, int64_t heads,
                                    int64_t dqk, int64_t dv, float scale, cudaStream_t stream) {
  if (batch <= 0 || t_len <= 0 || heads <= 0) return;
  for (const AttentionOperand* o : {&q, &k, &v, &out})
    ZT_ASSERT(o->dtype == DType::BF16, "attention_forward: flash kernels take BF16 operands only");
  ZT_ASSERT(flash_attention_supported(DType::BF16, dqk, dv),
            "attention_forward: head dims (%lld, %lld) not taken by the flash kernels",
            (long long)dqk, (long long)dv);
  const FwdArgs a{q, k, v, out, lse, batch, t_len, heads, int(dqk), int(dv), scale, stream};
  dispatch_dims(int(dqk), int(dv), ForwardLauncher{a});
}

void launch_flash_attention_backward(const AttentionOperand& dout, const AttentionOperand& q,
                                     const AttentionOperand& k, const AttentionOperand& v,
                                     const AttentionOperand& out, const float* lse,
                                     const AttentionOperand& dq, const AttentionOperand& dk,
                                     const AttentionOperand& dv, int64_t batch, int64_t t_len,
                                     int64_t heads, int64_t dqk, int64_t dv_dim, float scale,
                                     void* scratch, size_t scratch_bytes, cudaStream_t stream) {
  if (batch <= 0 || t_len <= 0 || heads <= 0) return;
  for (const AttentionOperand* o : {&dout, &q, &k, &v, &dq, &dk, &dv})
    ZT_ASSERT(o->dtype == DType::BF16, "attention_backward: flash kernels take BF16 operands only");
  ZT_ASSERT(flash_attention_supported(DType::BF16, dqk, dv_dim),
            "attention_backward: head dims (%lld, %lld) not taken by the flash kernels",
            (long long)dqk, (long long)dv_dim);
  ZT_ASSERT(scratch_bytes >= attention_backward_scratch_bytes(batch, t_len, heads),
            "attention_backward: scratch of %zu bytes, need %zu", scratch_bytes,
            attention_backward_scratch_bytes(batch, t_len, heads));
  float* dsum = static_cast<float*>(scratch);
  launch_attention_dsum(dout, out, dsum, batch, t_len, heads, dv_dim, stream);
  const BwdArgs a{dout, q, k, v, dq, dk, dv, lse, dsum, batch, t_len, heads, int(dqk), int(dv_dim),
                  scale, stream};
  dispatch_dims(int(dqk), int(dv_dim), BackwardLauncher{a});
}

}  // namespace zeroth
