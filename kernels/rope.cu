// Rotary position embedding (forward and its transpose), in place.
//
// Owns: one warp per (row i, head h) vector: lane l reads the pairs f = l, l + 32, ...
// (at most kRopeMaxDim / 64 per lane) into registers, the warp syncs, then each lane
// writes its rotated pairs. The interleaved layouts move elements between positions
// (pairs in, halves out), so every read of the vector precedes every write; only this
// warp touches it. Must not: build the cos/sin tables (the caller does: rope_theta, yarn).
#include "rope.h"

#include <cstdio>

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"

namespace zeroth {

namespace {

constexpr int kRopeWarps = 8;  // (row, head) vectors per block
constexpr int kRopeMaxPairsPerLane = int(kRopeMaxDim / 64);
constexpr int64_t kMaxRopeBlocks = 65535;

}  // namespace

// ---- kernels ----

// Grid-stride over the n * heads vectors, one per warp; block: (32 * kRopeWarps).
__global__ void rope_kernel(void* x, DType x_dtype, int64_t stride_n, int64_t stride_h,
                            const int32_t* positions, const float* cos, const float* sin,
                            int64_t n, int64_t heads, int64_t d, int64_t max_pos,
                            bool interleaved, bool inverse) {
  const int lane = threadIdx.x % 32;
  const int64_t half = d / 2;
  const int64_t vectors = n * heads;
  for (int64_t vec = int64_t(blockIdx.x) * kRopeWarps + threadIdx.x / 32; vec < vectors;
       vec += int64_t(gridDim.x) * kRopeWarps) {
    const int64_t i = vec / heads, h = vec % heads;
    const int32_t p = positions[i];
    if (p < 0 || p >= max_pos) {
      printf("zeroth rope: positions[%lld] = %d is outside [0, %lld)\n", (long long)i, p,
             (long long)max_pos);
      __trap();
    }
    const int64_t base = i * stride_n + h * stride_h;
    const bool read_pairs = interleaved && !inverse;
    const bool write_pairs = interleaved && inverse;
    float a[kRopeMaxPairsPerLane], b[kRopeMaxPairsPerLane];
#pragma unroll
    for (int e = 0; e < kRopeMaxPairsPerLane; ++e) {
      const int64_t f = lane + 32 * e;
      if (f < half) {
        a[e] = load_as_float(x, x_dtype, base + (read_pairs ? 2 * f : f));
        b[e] = load_as_float(x, x_dtype, base + (read_pairs ? 2 * f + 1 : f + half));
      }
    }
    __syncwarp();  // every read of this vector happens before any write
#pragma unroll
    for (int e = 0; e < kRopeMaxPairsPerLane; ++e) {
      const int64_t f = lane + 32 * e;
      if (f < half) {
        const float c = cos[int64_t(p) * half + f];
        const float s = inverse ? -sin[int64_t(p) * half + f] : sin[int64_t(p) * half + f];
        store_from_float(x, x_dtype, base + (write_pairs ? 2 * f : f), a[e] * c - b[e] * s);
        store_from_float(x, x_dtype, base + (write_pairs ? 2 * f + 1 : f + half),
                         b[e] * c + a[e] * s);
      }
    }
    __syncwarp();  // this vector's writes are done before the warp moves on
  }
}

// ---- launchers ----

void launch_rope(void* x, DType x_dtype, int64_t stride_n, int64_t stride_h,
                 const int32_t* positions, const float* cos, const float* sin, int64_t n,
                 int64_t heads, int64_t d, int64_t max_pos, bool interleaved, bool inverse,
                 cudaStream_t stream) {
  ZT_ASSERT(d <= kRopeMaxDim, "rope: head dim %lld exceeds %lld on CUDA", (long long)d,
            (long long)kRopeMaxDim);
  const int64_t vectors = n * heads;
  if (vectors <= 0 || d <= 0) return;
  const int64_t blocks64 = (vectors + kRopeWarps - 1) / kRopeWarps;
  const unsigned blocks = unsigned(blocks64 < kMaxRopeBlocks ? blocks64 : kMaxRopeBlocks);
  rope_kernel<<<blocks, 32 * kRopeWarps, 0, stream>>>(x, x_dtype, stride_n, stride_h, positions,
                                                      cos, sin, n, heads, d, max_pos,
                                                      interleaved, inverse);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
