// RMSNorm forward and backward, one warp per row.
//
// Owns: the row kernels (warp w of block b handles rows b * kNormWarps + w, then every
// gridDim * kNormWarps further; lane l handles columns l, l + 32, ...; sums reduce over
// the warp in a fixed order) and the two-pass dw reduction (pass 1: block (x, y)
// sums its chunk of kDwRowsPerChunk rows for 32 columns into partials[y, :]; pass 2:
// one thread per column adds the partials in ascending chunk order to dw). Must not:
// use float atomics.
#include "rmsnorm.h"

#include <cstdint>

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

namespace {

constexpr int kNormWarps = 8;  // rows per block in the row kernels
constexpr int kNormIlp = 8;    // loads a lane issues before using them
constexpr int64_t kMaxNormBlocks = 65535;
constexpr int kDwRowsPerChunk = 256;  // rows per partial sum of dw
constexpr int kDwThreadsY = 8;        // block (32, kDwThreadsY) in the dw partial pass

int64_t dw_chunks(int64_t n) { return (n + kDwRowsPerChunk - 1) / kDwRowsPerChunk; }

unsigned row_blocks(int64_t n) {
  const int64_t b = (n + kNormWarps - 1) / kNormWarps;
  return unsigned(b < kMaxNormBlocks ? b : kMaxNormBlocks);
}

}  // namespace

// ---- kernels ----

// v[u] = p[base + j0 + 32 u] as fp32 where j0 + 32 u < c, else 0: a lane's kNormIlp
// strided loads, all issued before any is used.
__device__ __forceinline__ void load_strided(float (&v)[kNormIlp], const void* p, DType t,
                                             int64_t base, int64_t j0, int64_t c) {
#pragma unroll
  for (int u = 0; u < kNormIlp; ++u) {
    const int64_t j = j0 + 32 * u;
    v[u] = j < c ? load_as_float(p, t, base + j) : 0.0f;
  }
}

// Grid: row_blocks(n); block: (32 * kNormWarps).
// kVec4 (x and w F32, c and ld_x multiples of 4, 16-byte aligned): lane l reads float4
// number l, l + 32, ... (x then y, z, w in order), kNormIlp of them in flight: a row of
// 1024 floats is one round trip to memory per pass.
template <bool kVec4>
__global__ void rmsnorm_forward_kernel(const void* x, DType x_dtype, int64_t ld_x, const void* w,
                                       DType w_dtype, float eps, void* out, DType out_dtype,
                                       int64_t ld_out, float* rstd, int64_t n, int64_t c) {
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  for (int64_t i = int64_t(blockIdx.x) * kNormWarps + warp; i < n;
       i += int64_t(gridDim.x) * kNormWarps) {
    const int64_t xrow = i * ld_x, orow = i * ld_out;
    if (kVec4) {
      const float4* x4 = reinterpret_cast<const float4*>(static_cast<const float*>(x) + xrow);
      const float4* w4 = static_cast<const float4*>(w);
      const int64_t c4 = c / 4;
      float ss = 0.0f;
      for (int64_t j0 = lane; j0 < c4; j0 += 32 * kNormIlp) {
        float4 v[kNormIlp];
#pragma unroll
        for (int u = 0; u < kNormIlp; ++u) {
          const int64_t j = j0 + 32 * u;
          v[u] = j < c4 ? x4[j] : make_float4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < kNormIlp; ++u)
          if (j0 + 32 * u < c4) {
            ss += v[u].x * v[u].x;
            ss += v[u].y * v[u].y;
            ss += v[u].z * v[u].z;
            ss += v[u].w * v[u].w;
          }
      }
      ss = warp_reduce_sum(ss);
      const float r = rsqrtf(ss / float(c) + eps);
      for (int64_t j0 = lane; j0 < c4; j0 += 32 * kNormIlp) {
        float4 v[kNormIlp], g[kNormIlp];
#pragma unroll
        for (int u = 0; u < kNormIlp; ++u) {
          const int64_t j = j0 + 32 * u;
          v[u] = j < c4 ? x4[j] : make_float4(0, 0, 0, 0);
          g[u] = j < c4 ? w4[j] : make_float4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < kNormIlp; ++u) {
          const int64_t j = 4 * (j0 + 32 * u);
          if (j < c) {
            store_from_float(out, out_dtype, orow + j, v[u].x * r * g[u].x);
            store_from_float(out, out_dtype, orow + j + 1, v[u].y * r * g[u].y);
            store_from_float(out, out_dtype, orow + j + 2, v[u].z * r * g[u].z);
            store_from_float(out, out_dtype, orow + j + 3, v[u].w * r * g[u].w);
          }
        }
      }
      if (lane == 0) rstd[i] = r;
      continue;
    }
    // Lane l sums x[l]^2, x[l + 32]^2, ... in that order; kNormIlp loads are issued
    // before their FMAs (a row of ~1k floats is then a few memory latencies, not 32).
    float ss = 0.0f;
    for (int64_t j0 = lane; j0 < c; j0 += 32 * kNormIlp) {
      float v[kNormIlp];
      load_strided(v, x, x_dtype, xrow, j0, c);
#pragma unroll
      for (int u = 0; u < kNormIlp; ++u)
        if (j0 + 32 * u < c) ss += v[u] * v[u];
    }
    ss = warp_reduce_sum(ss);
    const float r = rsqrtf(ss / float(c) + eps);
    for (int64_t j0 = lane; j0 < c; j0 += 32 * kNormIlp) {
      float v[kNormIlp], g[kNormIlp];
      load_strided(v, x, x_dtype, xrow, j0, c);
      load_strided(g, w, w_dtype, 0, j0, c);
#pragma unroll
      for (int u = 0; u < kNormIlp; ++u) {
        const int64_t j = j0 + 32 * u;
        if (j < c) store_from_float(out, out_dtype, orow + j, v[u] * r * g[u]);
      }
    }
    if (lane == 0) rstd[i] = r;
  }
}

// Grid: row_blocks(n); block: (32 * kNormWarps).
__global__ void rmsnorm_backward_dx_kernel(const void* dout, DType dout_dtype, int64_t ld_dout,
                                           const void* x, DType x_dtype, int64_t ld_x,
                                           const void* w, DType w_dtype, const float* rstd,
                                           void* dx, DType dx_dtype, int64_t ld_dx, int64_t n,
                                           int64_t c) {
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  for (int64_t i = int64_t(blockIdx.x) * kNormWarps + warp; i < n;
       i += int64_t(gridDim.x) * kNormWarps) {
    const int64_t grow = i * ld_dout, xrow = i * ld_x, drow = i * ld_dx;
    // The same lane order as the forward, kNormIlp loads in flight.
    float dot = 0.0f;
    for (int64_t j0 = lane; j0 < c; j0 += 32 * kNormIlp) {
      float d[kNormIlp], g[kNormIlp], v[kNormIlp];
      load_strided(d, dout, dout_dtype, grow, j0, c);
      load_strided(g, w, w_dtype, 0, j0, c);
      load_strided(v, x, x_dtype, xrow, j0, c);
#pragma unroll
      for (int u = 0; u < kNormIlp; ++u)
        if (j0 + 32 * u < c) dot += d[u] * g[u] * v[u];
    }
    dot = warp_reduce_sum(dot);
    const float r = rstd[i];
    const float coef = r * r * r * dot / float(c);
    for (int64_t j0 = lane; j0 < c; j0 += 32 * kNormIlp) {
      float d[kNormIlp], g[kNormIlp], v[kNormIlp];
      load_strided(d, dout, dout_dtype, grow, j0, c);
      load_strided(g, w, w_dtype, 0, j0, c);
      load_strided(v, x, x_dtype, xrow, j0, c);
#pragma unroll
      for (int u = 0; u < kNormIlp; ++u) {
        const int64_t j = j0 + 32 * u;
        if (j < c) store_from_float(dx, dx_dtype, drow + j, r * (d[u] * g[u]) - v[u] * coef);
      }
    }
  }
}

// Grid: (ceil(c / 32), dw_chunks(n)); block: (32, kDwThreadsY). Thread (tx, ty) sums
// rows chunk_start + ty, + kDwThreadsY, ... of column blockIdx.x * 32 + tx; the block
// then adds its kDwThreadsY sums in order of ty into partials[blockIdx.y, column].
__global__ void rmsnorm_dw_partial_kernel(const void* dout, DType dout_dtype, int64_t ld_dout,
                                          const void* x, DType x_dtype, int64_t ld_x,
                                          const float* rstd, float* partials, int64_t n,
                                          int64_t c) {
  __shared__ float sums[kDwThreadsY][33];
  const int64_t col = int64_t(blockIdx.x) * 32 + threadIdx.x;
  const int64_t row0 = int64_t(blockIdx.y) * kDwRowsPerChunk;
  const int64_t row_end = row0 + kDwRowsPerChunk < n ? row0 + kDwRowsPerChunk : n;
  float acc = 0.0f;
  if (col < c) {
    for (int64_t i = row0 + threadIdx.y; i < row_end; i += kDwThreadsY)
      acc += load_as_float(dout, dout_dtype, i * ld_dout + col) *
             load_as_float(x, x_dtype, i * ld_x + col) * rstd[i];
  }
  sums[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < c) {
    float total = 0.0f;
    for (int y = 0; y < kDwThreadsY; ++y) total += sums[y][threadIdx.x];
    partials[int64_t(blockIdx.y) * c + col] = total;
  }
}

// Grid-stride over columns: dw[col] += sum over chunks (ascending) of partials[chunk, col].
__global__ void rmsnorm_dw_final_kernel(const float* partials, int64_t chunks, float* dw,
                                        int64_t c) {
  for (int64_t col = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; col < c;
       col += int64_t(gridDim.x) * blockDim.x) {
    float total = 0.0f;
    for (int64_t k = 0; k < chunks; ++k) total += partials[k * c + col];
    dw[col] += total;
  }
}

// ---- launchers ----

void launch_rmsnorm_forward(const void* x, DType x_dtype, int64_t ld_x, const void* w,
                            DType w_dtype, float eps, void* out, DType out_dtype, int64_t ld_out,
                            float* rstd, int64_t n, int64_t c, cudaStream_t stream) {
  if (n <= 0 || c <= 0) return;
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (x_dtype == DType::F32 && w_dtype == DType::F32 && c % 4 == 0 && ld_x % 4 == 0 &&
      aligned(x) && aligned(w))
    rmsnorm_forward_kernel<true><<<row_blocks(n), 32 * kNormWarps, 0, stream>>>(
        x, x_dtype, ld_x, w, w_dtype, eps, out, out_dtype, ld_out, rstd, n, c);
  else
    rmsnorm_forward_kernel<false><<<row_blocks(n), 32 * kNormWarps, 0, stream>>>(
        x, x_dtype, ld_x, w, w_dtype, eps, out, out_dtype, ld_out, rstd, n, c);
  ZT_CUDA_CHECK_LAUNCH();
}

size_t rmsnorm_backward_scratch_bytes(int64_t n, int64_t c) {
  if (n <= 0 || c <= 0) return 0;
  return sizeof(float) * size_t(dw_chunks(n)) * size_t(c);
}

void launch_rmsnorm_backward(const void* dout, DType dout_dtype, int64_t ld_dout, const void* x,
                             DType x_dtype, int64_t ld_x, const void* w, DType w_dtype,
                             const float* rstd, void* dx, DType dx_dtype, int64_t ld_dx,
                             float* dw, int64_t n, int64_t c, void* scratch, size_t scratch_bytes,
                             cudaStream_t stream) {
  if (n <= 0 || c <= 0) return;
  ZT_ASSERT(scratch_bytes >= rmsnorm_backward_scratch_bytes(n, c),
            "rmsnorm_backward: scratch of %zu bytes, need %zu", scratch_bytes,
            rmsnorm_backward_scratch_bytes(n, c));
  const int64_t chunks = dw_chunks(n);
  ZT_ASSERT(chunks <= 65535, "rmsnorm_backward: %lld rows exceed %lld", (long long)n,
            (long long)(65535 * kDwRowsPerChunk));
  float* partials = static_cast<float*>(scratch);
  const dim3 grid(unsigned((c + 31) / 32), unsigned(chunks));
  rmsnorm_dw_partial_kernel<<<grid, dim3(32, kDwThreadsY), 0, stream>>>(
      dout, dout_dtype, ld_dout, x, x_dtype, ld_x, rstd, partials, n, c);
  ZT_CUDA_CHECK_LAUNCH();
  rmsnorm_dw_final_kernel<<<elementwise_blocks(c), kElementwiseThreads, 0, stream>>>(
      partials, chunks, dw, c);
  ZT_CUDA_CHECK_LAUNCH();
  // dx last: dw reads dout, which dx may alias.
  rmsnorm_backward_dx_kernel<<<row_blocks(n), 32 * kNormWarps, 0, stream>>>(
      dout, dout_dtype, ld_dout, x, x_dtype, ld_x, w, w_dtype, rstd, dx, dx_dtype, ld_dx, n, c);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
