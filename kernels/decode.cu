// Decode-time kernels over the MLA latent cache.
//
// Owns: scatter_rows_kernel (one thread per element); mla_decode_kernel: one block per
// (row, head), its kDecodeWarps warps splitting the sequence's positions (flash-decoding
// within a block), each with an online softmax (running max m, sum l, output
// accumulator o), lanes splitting the R latent columns (q and o in registers: R <= 32 *
// kMaxPerLane), four positions per iteration for four independent reductions in flight,
// the warps' states merged in a fixed order; expert_rows_gemm_kernel (below). The order of
// operations is fixed: results are deterministic and do not depend on the batch.
// Must not: read cache positions at or past a row's length.
#include "decode.h"

#include <algorithm>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"
#include "zeroth/error.h"

namespace zeroth {

namespace {

constexpr int kDecodeWarps = 4;
constexpr int kMaxPerLane = 20;  // R <= 640 (DeepSeek-V3: 576)
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

// Grid: (n, heads); block: 32 * kDecodeWarps. Warp w walks positions
// w*kUnroll .. in strides of kDecodeWarps*kUnroll with its own online softmax (running
// max m, sum l, accumulator o); the warps' states merge in warp order at the end.
__global__ void __launch_bounds__(32 * kDecodeWarps)
    mla_decode_kernel(const float* __restrict__ q, const float* __restrict__ cache,
                      const int32_t* __restrict__ slots, const int32_t* __restrict__ lengths,
                      float scale, float* __restrict__ out, int heads, int r, int rv,
                      int64_t tmax) {
  __shared__ float sm_m[kDecodeWarps], sm_l[kDecodeWarps];
  __shared__ float sm_o[kDecodeWarps][32 * kMaxPerLane];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t i = blockIdx.x;
  const int h = blockIdx.y;
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
  for (int t0 = warp * kUnroll; t0 < len; t0 += kDecodeWarps * kUnroll) {
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
  if (lane == 0) {
    sm_m[warp] = m;
    sm_l[warp] = l;
  }
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    const int col = lane + 32 * c;
    if (col < rv) sm_o[warp][col] = o[c];
  }
  __syncthreads();
  float mx = -INFINITY;
  for (int w = 0; w < kDecodeWarps; ++w) mx = fmaxf(mx, sm_m[w]);
  float lsum = 0.0f;
  for (int w = 0; w < kDecodeWarps; ++w)
    if (sm_l[w] > 0.0f) lsum += sm_l[w] * expf(sm_m[w] - mx);
  const float inv = 1.0f / lsum;
  float* orow = out + (i * heads + h) * int64_t(rv);
  for (int col = threadIdx.x; col < rv; col += blockDim.x) {
    float acc = 0.0f;
    for (int w = 0; w < kDecodeWarps; ++w)
      if (sm_l[w] > 0.0f) acc += sm_o[w][col] * expf(sm_m[w] - mx);
    orow[col] = acc * inv;
  }
}

constexpr int kRowsGemmWarps = 8;
constexpr int kRowsPerPassMax = 8;       // rows sharing one load of the weights

// Grid: (ceil(n / (8 * kOutPerWarp)), E); block: 32 * kRowsGemmWarps; dynamic shared:
// rows_per_pass * k floats. Block (tile, e) computes outputs tile * 8 * kOutPerWarp .. of
// every row routed to expert e (every row when experts is null). The rows are taken in
// chunks of 256: the block tests a chunk's ids at once and lists its hits in row order in
// shared memory (an expert no row chose costs m / 256 such tests), then runs them
// rows_per_pass at a time: a pass stages its x rows in shared memory (all loads in flight
// first) and loads each weight element once for all its rows. Each warp computes
// kOutPerWarp outputs (1 for a few rows: more blocks streaming weights at once; 2
// otherwise). With kVec (F32 weights, k and the row strides multiples of 4, 16-byte
// aligned pointers) lane l reads float4 number l, l + 32, ... of a weight row, kLoads of
// them in flight before their FMAs (a K = 1024 row is one round trip to memory); without
// it, lanes stride over single elements. Either way each (output, row) is one sequence of
// FMAs in a fixed order and one warp reduction, so a row's result is the same whichever
// rows share its pass.
template <bool kVec, int kOutPerWarp, int kLoads>
__global__ void __launch_bounds__(32 * kRowsGemmWarps)
    expert_rows_gemm_kernel(const void* __restrict__ x, DType x_dtype, int64_t ld_x,
                            const void* __restrict__ w, DType w_dtype, int64_t ld_w,
                            const int32_t* __restrict__ experts, int x_div, void* __restrict__ out,
                            DType out_dtype, int64_t ld_out, int64_t m, int64_t n, int64_t k,
                            int rows_per_pass) {
  extern __shared__ float4 xs4[];
  float* xs = reinterpret_cast<float*>(xs4);
  __shared__ int32_t list[32 * kRowsGemmWarps];  // a chunk's rows of expert e, ascending
  __shared__ int warp_hits[kRowsGemmWarps];
  const int e = blockIdx.y;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t wbase = int64_t(e) * n * ld_w;
  const int64_t j0 = int64_t(blockIdx.x) * (kRowsGemmWarps * kOutPerWarp) + warp * kOutPerWarp;
  const int64_t k4 = k / 4;
  for (int64_t base = 0; base < m; base += blockDim.x) {
    const int64_t r = base + threadIdx.x;
    const bool hit = r < m && (experts == nullptr || experts[r] == e);
    const unsigned ballot = __ballot_sync(0xffffffffu, hit);
    if (lane == 0) warp_hits[warp] = __popc(ballot);
    __syncthreads();  // warp_hits written; the previous chunk's passes are done with list, xs
    int before = 0, total = 0;
#pragma unroll
    for (int w2 = 0; w2 < kRowsGemmWarps; ++w2) {
      const int h = warp_hits[w2];
      before += w2 < warp ? h : 0;
      total += h;
    }
    if (hit) list[before + __popc(ballot & ((1u << lane) - 1u))] = int32_t(r);
    __syncthreads();  // list complete; every thread has read warp_hits
    for (int p = 0; p < total; p += rows_per_pass) {
      const int cnt = total - p < rows_per_pass ? total - p : rows_per_pass;
      if (p > 0) __syncthreads();  // the previous pass's readers are done with xs
      // Stage the pass's x rows: every row's load in flight before the shared stores.
      if (kVec && x_dtype == DType::F32) {
        for (int64_t c = threadIdx.x; c < k4; c += blockDim.x) {
          float4 v[kRowsPerPassMax];
#pragma unroll
          for (int qq = 0; qq < kRowsPerPassMax; ++qq)
            if (qq < cnt)
              v[qq] = reinterpret_cast<const float4*>(static_cast<const float*>(x) +
                                                      (int64_t(list[p + qq]) / x_div) * ld_x)[c];
#pragma unroll
          for (int qq = 0; qq < kRowsPerPassMax; ++qq)
            if (qq < cnt) xs4[qq * k4 + c] = v[qq];
        }
      } else {
        for (int64_t c = threadIdx.x; c < k; c += blockDim.x) {
          float v[kRowsPerPassMax];
#pragma unroll
          for (int qq = 0; qq < kRowsPerPassMax; ++qq)
            if (qq < cnt)
              v[qq] = load_as_float(x, x_dtype, (int64_t(list[p + qq]) / x_div) * ld_x + c);
#pragma unroll
          for (int qq = 0; qq < kRowsPerPassMax; ++qq)
            if (qq < cnt) xs[qq * k + c] = v[qq];
        }
      }
      __syncthreads();
      float acc[kOutPerWarp][kRowsPerPassMax];
#pragma unroll
      for (int o = 0; o < kOutPerWarp; ++o)
#pragma unroll
        for (int qq = 0; qq < kRowsPerPassMax; ++qq) acc[o][qq] = 0.0f;
      if (kVec) {
        const float4* wrow[kOutPerWarp];
#pragma unroll
        for (int o = 0; o < kOutPerWarp; ++o)
          wrow[o] = reinterpret_cast<const float4*>(static_cast<const float*>(w) + wbase +
                                                    (j0 + o < n ? j0 + o : 0) * ld_w);
        for (int64_t c0 = lane; c0 < k4; c0 += 32 * kLoads) {
          float4 wv[kLoads][kOutPerWarp];
#pragma unroll
          for (int u = 0; u < kLoads; ++u)
#pragma unroll
            for (int o = 0; o < kOutPerWarp; ++o) {
              const int64_t c = c0 + u * 32;
              wv[u][o] = (c < k4 && j0 + o < n) ? __ldg(wrow[o] + c) : make_float4(0, 0, 0, 0);
            }
#pragma unroll
          for (int u = 0; u < kLoads; ++u) {
            const int64_t c = c0 + u * 32;
            if (c >= k4) break;
#pragma unroll
            for (int qq = 0; qq < kRowsPerPassMax; ++qq) {
              if (qq >= cnt) break;
              const float4 xv = xs4[qq * k4 + c];
#pragma unroll
              for (int o = 0; o < kOutPerWarp; ++o) {
                float a = acc[o][qq];
                a = fmaf(wv[u][o].x, xv.x, a);
                a = fmaf(wv[u][o].y, xv.y, a);
                a = fmaf(wv[u][o].z, xv.z, a);
                acc[o][qq] = fmaf(wv[u][o].w, xv.w, a);
              }
            }
          }
        }
      } else {
        for (int64_t c = lane; c < k; c += 32) {
          float xv[kRowsPerPassMax];
#pragma unroll
          for (int qq = 0; qq < kRowsPerPassMax; ++qq) xv[qq] = qq < cnt ? xs[qq * k + c] : 0.0f;
#pragma unroll
          for (int o = 0; o < kOutPerWarp; ++o) {
            if (j0 + o >= n) continue;
            const float wv = load_as_float(w, w_dtype, wbase + (j0 + o) * ld_w + c);
#pragma unroll
            for (int qq = 0; qq < kRowsPerPassMax; ++qq) acc[o][qq] = fmaf(wv, xv[qq], acc[o][qq]);
          }
        }
      }
#pragma unroll
      for (int o = 0; o < kOutPerWarp; ++o)
#pragma unroll
        for (int qq = 0; qq < kRowsPerPassMax; ++qq) {
          const float v = warp_reduce_sum(acc[o][qq]);
          if (lane == 0 && qq < cnt && j0 + o < n)
            store_from_float(out, out_dtype, int64_t(list[p + qq]) * ld_out + j0 + o, v);
        }
    }
  }
}

}  // namespace

void launch_expert_rows_gemm(const void* x, DType x_dtype, int64_t ld_x, const void* w,
                             DType w_dtype, int64_t ld_w, const int32_t* experts, int x_div,
                             void* out, DType out_dtype, int64_t ld_out, int64_t m, int64_t n,
                             int64_t k, int64_t num_experts, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  ZT_ASSERT(num_experts <= 65535 && k <= kExpertRowsSharedFloats,
            "expert_rows_gemm: %lld experts (max 65535), k %lld (max %lld)",
            (long long)num_experts, (long long)k, (long long)kExpertRowsSharedFloats);
  ZT_ASSERT(experts != nullptr || num_experts == 1,
            "expert_rows_gemm: no expert ids for %lld experts", (long long)num_experts);
  ZT_ASSERT(m <= INT32_MAX, "expert_rows_gemm: %lld rows (max 2^31 - 1)", (long long)m);
  const int rows_per_pass = int(std::min<int64_t>(kRowsPerPassMax, kExpertRowsSharedFloats / k));
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool vec = w_dtype == DType::F32 && k % 4 == 0 && ld_w % 4 == 0 && aligned(w) &&
                   (x_dtype != DType::F32 || (ld_x % 4 == 0 && aligned(x)));
  const size_t smem = size_t(rows_per_pass) * size_t(k) * sizeof(float);
  // A few rows: one output a warp (twice the blocks streaming weights) and 8 float4 loads
  // in flight per lane; more rows: two outputs a warp (each x load from shared memory
  // feeds two FMAs) and 4 loads in flight (fewer registers: at 12 rows an expert of
  // r1zero-1b, 14.7 ms a decode step against 16.0 with 8).
  const bool few = m <= kRowsPerPassMax;
  const int64_t per_block = kRowsGemmWarps * (few ? 1 : 2);
  const dim3 grid(unsigned((n + per_block - 1) / per_block), unsigned(num_experts));
  const dim3 block(32 * kRowsGemmWarps);
#define ZT_ROWS_GEMM(VEC, OUT)                                                                   \
  expert_rows_gemm_kernel<VEC, OUT, OUT == 1 ? 8 : 4><<<grid, block, smem, stream>>>(            \
      x, x_dtype, ld_x, w, w_dtype, ld_w, experts, x_div, out, out_dtype, ld_out, m, n, k,      \
      rows_per_pass)
  if (vec && few)
    ZT_ROWS_GEMM(true, 1);
  else if (vec)
    ZT_ROWS_GEMM(true, 2);
  else if (few)
    ZT_ROWS_GEMM(false, 1);
  else
    ZT_ROWS_GEMM(false, 2);
#undef ZT_ROWS_GEMM
  ZT_CUDA_CHECK_LAUNCH();
}

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
  ZT_ASSERT(heads <= 65535, "mla_decode_attention: %lld heads (max 65535)", (long long)heads);
  const dim3 grid{unsigned(n), unsigned(heads)};
  mla_decode_kernel<<<grid, 32 * kDecodeWarps, 0, stream>>>(q, cache, slots, lengths, scale,
                                                              out, int(heads), int(r), int(rv),
                                                              tmax);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
