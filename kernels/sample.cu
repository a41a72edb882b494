// Token sampling on the GPU, one block per row, matching the CPU reference
// (src/tensor/sampler.cpp, the rules in include/zeroth/sampler.h) token for token.
//
// Owns:
//  * the counter-based uniform (the same SplitMix64 chain as sampling_uniform);
//  * greedy: argmax, ties to the lowest id, NaN skipped;
//  * no filter: p_i = exp(x_i / T - zmax) in fp64 in id order; each thread sums a
//    contiguous chunk of ids, an exclusive scan over the chunks finds the chunk where the
//    running sum passes u * total, and its thread walks it id by id (as the CPU walk);
//  * filters (top-k, top-p, min-p): tokens ordered by a unique 64-bit key (the logit's
//    order-preserving bits, then the complement of the id, so ties go to the lower id as
//    in the CPU's sort); every kept set is a prefix of that order, {key >= tau}, and each
//    tau is found by binary search over the key space (64 block reductions of the count
//    or fp64 mass of keys >= tau): top-k's k-th key, top-p's smallest prefix with mass >=
//    top_p * kept mass, min-p's floor (one min-reduction), and the draw: the smallest
//    prefix whose mass exceeds u * total.
// The fp64 sums run in a different order than the CPU's, so a token can differ only when
// u * total lands within rounding (~1e-15 relative) of a boundary.
// Must not: sort or allocate (everything is recomputed from the row in global memory).
#include "sample.h"

#include <cfloat>

#include "cuda/cuda_check.h"
#include "kernel_common.cuh"
#include "zeroth/error.h"

namespace zeroth {

namespace {

constexpr int kSampleThreads = 512;
constexpr int kWarps = kSampleThreads / 32;

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__device__ __forceinline__ double uniform(uint64_t seed, uint64_t seq, uint64_t step) {
  const uint64_t h = splitmix64(splitmix64(splitmix64(seed) ^ seq) ^ step);
  return double(h >> 11) * 0x1.0p-53;
}

// Larger key = more probable; NaN lowest; ties (equal logits) -> lower id larger.
__device__ __forceinline__ uint64_t sort_key(float x, int64_t id) {
  uint32_t bits = __float_as_uint(x);
  bits = isnan(x) ? 0u : ((bits & 0x80000000u) ? ~bits : (bits | 0x80000000u));
  return (uint64_t(bits) << 32) | uint64_t(0xffffffffu - uint32_t(id));
}

__device__ __forceinline__ double warp_sum_d(double v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

struct Shared {
  double d[kWarps];
  unsigned long long u[kWarps];
  long long c[kWarps];
  float f[kWarps];
  int i[kWarps];
  double chunk[kSampleThreads];
  int pick;
};

// Block sums (fixed order, every thread gets the result).
__device__ double block_sum_d(double v, Shared& sh) {
  v = warp_sum_d(v);
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.d[threadIdx.x / 32] = v;
  __syncthreads();
  double t = 0.0;
  for (int w = 0; w < kWarps; ++w) t += sh.d[w];
  return t;
}

__device__ long long block_sum_ll(long long v, Shared& sh) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.c[threadIdx.x / 32] = v;
  __syncthreads();
  long long t = 0;
  for (int w = 0; w < kWarps; ++w) t += sh.c[w];
  return t;
}

__device__ uint64_t block_min_u64(uint64_t v, Shared& sh) {
  for (int off = 16; off > 0; off >>= 1) {
    const uint64_t o = __shfl_xor_sync(0xffffffffu, v, off);
    v = o < v ? o : v;
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.u[threadIdx.x / 32] = v;
  __syncthreads();
  uint64_t t = ~0ull;
  for (int w = 0; w < kWarps; ++w) t = sh.u[w] < t ? sh.u[w] : t;
  return t;
}

__device__ uint64_t block_max_u64(uint64_t v, Shared& sh) {
  for (int off = 16; off > 0; off >>= 1) {
    const uint64_t o = __shfl_xor_sync(0xffffffffu, v, off);
    v = o > v ? o : v;
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.u[threadIdx.x / 32] = v;
  __syncthreads();
  uint64_t t = 0;
  for (int w = 0; w < kWarps; ++w) t = sh.u[w] > t ? sh.u[w] : t;
  return t;
}

__device__ __forceinline__ double prob(float x, double inv_t, double zmax) {
  const double z = double(x) * inv_t;
  return isnan(z) ? 0.0 : exp(z - zmax);
}

// Count (count_mode) or mass of the tokens with key >= tau.
__device__ double at_least(const float* row, int64_t v, uint64_t tau, bool count_mode,
                           double inv_t, double zmax, Shared& sh) {
  if (count_mode) {
    long long c = 0;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) c += sort_key(row[j], j) >= tau;
    return double(block_sum_ll(c, sh));
  }
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    const float x = row[j];
    if (sort_key(x, j) >= tau) s += prob(x, inv_t, zmax);
  }
  return block_sum_d(s, sh);
}

// The largest tau in [lo, hi] with f(tau) >= target (strict: > target), f being the
// count or mass of keys >= tau (non-increasing in tau); lo when none.
__device__ uint64_t search(const float* row, int64_t v, uint64_t lo, uint64_t hi, double target,
                           bool strict, bool count_mode, double inv_t, double zmax, Shared& sh) {
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2 + 1;
    const double f = at_least(row, v, mid, count_mode, inv_t, zmax, sh);
    if (strict ? f > target : f >= target)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

__global__ void __launch_bounds__(kSampleThreads)
    sample_kernel(const float* __restrict__ logits, int64_t v, float temperature, int64_t top_k,
                  float top_p, float min_p, uint64_t seed, const uint64_t* __restrict__ seq_step,
                  int32_t* __restrict__ ids) {
  __shared__ Shared sh;
  const int64_t b = blockIdx.x;
  const float* row = logits + b * v;
  // argmax, ties -> lowest id, NaN skipped (key order without the NaN case is the same).
  uint64_t best = 0;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    const float x = row[j];
    if (isnan(x)) continue;
    const uint64_t k = sort_key(x, j);  // > 0 for every non-NaN logit
    best = k > best ? k : best;
  }
  best = block_max_u64(best, sh);
  if (best == 0) {  // every logit NaN
    if (threadIdx.x == 0) ids[b] = -1;
    return;
  }
  const int32_t arg = int32_t(0xffffffffu - uint32_t(best & 0xffffffffu));
  if (temperature == 0.0f) {
    if (threadIdx.x == 0) ids[b] = arg;
    return;
  }
  const float xmax = row[arg];
  if (!isfinite(xmax)) {
    if (threadIdx.x == 0) ids[b] = -1;
    return;
  }
  const double inv_t = 1.0 / double(temperature);
  const double zmax = double(xmax) * inv_t;
  const double u = uniform(seed, seq_step[2 * b], seq_step[2 * b + 1]);
  const bool filtered = (top_k > 0 && top_k < v) || top_p < 1.0f || min_p > 0.0f;

  if (!filtered) {
    // Contiguous chunks in id order; the walk mirrors the CPU's.
    const int64_t chunk = (v + blockDim.x - 1) / blockDim.x;
    const int64_t j0 = threadIdx.x * chunk, j1 = min(v, j0 + chunk);
    double s = 0.0;
    int64_t last = -1;
    for (int64_t j = j0; j < j1; ++j) {
      const double p = prob(row[j], inv_t, zmax);
      if (p > 0.0) {
        s += p;
        last = j;
      }
    }
    sh.chunk[threadIdx.x] = s;
    if (threadIdx.x == 0) sh.pick = -1;
    __syncthreads();
    // The CPU sums in id order: cum before this chunk = the chunks before it, summed in
    // order; total = all chunks in order.
    double before = 0.0;
    for (int t = 0; t < int(threadIdx.x); ++t) before += sh.chunk[t];
    double total = before;
    for (int t = threadIdx.x; t < int(blockDim.x); ++t) total += sh.chunk[t];
    const double target = u * total;
    // This chunk holds the draw when the running sum passes target inside it.
    if (s > 0.0 && before + s > target && before <= target) atomicMax(&sh.pick, int(threadIdx.x));
    // lowest such thread: chunks before a passing one end at or below target, so at
    // most one chunk satisfies both conditions except through rounding; the first wins.
    __syncthreads();
    if (sh.pick < 0) {  // target within rounding of total: the last positive token
      const uint64_t lastk = block_max_u64(last < 0 ? 0ull : uint64_t(last) + 1, sh);
      if (threadIdx.x == 0) ids[b] = lastk == 0 ? arg : int32_t(lastk - 1);
      return;
    }
    if (int(threadIdx.x) == sh.pick) {
      double cum = before;
      int64_t pick = last;
      for (int64_t j = j0; j < j1; ++j) {
        const double p = prob(row[j], inv_t, zmax);
        if (p <= 0.0) continue;
        cum += p;
        pick = j;
        if (target < cum) break;
      }
      ids[b] = int32_t(pick);
    }
    return;
  }

  // Filters: every set is {key >= tau} for a tau in [tau_lo, best].
  uint64_t tau = 0;
  if (top_k > 0 && top_k < v)
    tau = search(row, v, 0, best, double(top_k), false, true, inv_t, zmax, sh);
  double mass = at_least(row, v, tau, false, inv_t, zmax, sh);
  if (top_p < 1.0f) {
    tau = search(row, v, tau, best, double(top_p) * mass, false, false, inv_t, zmax, sh);
  }
  if (min_p > 0.0f) {
    // p_max = exp(0) = 1: keep p >= min_p (a prefix); its smallest key.
    const double floor = double(min_p);
    uint64_t kmin = ~0ull;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
      const float x = row[j];
      const uint64_t k = sort_key(x, j);
      if (k >= tau && prob(x, inv_t, zmax) >= floor && k < kmin) kmin = k;
    }
    kmin = block_min_u64(kmin, sh);
    if (kmin != ~0ull && kmin > tau) tau = kmin;
  }
  const double total = at_least(row, v, tau, false, inv_t, zmax, sh);
  const uint64_t pick = search(row, v, tau, best, u * total, true, false, inv_t, zmax, sh);
  if (threadIdx.x == 0) ids[b] = int32_t(0xffffffffu - uint32_t(pick & 0xffffffffu));
}

}  // namespace

void launch_sample_tokens(const float* logits, int64_t b, int64_t v, float temperature,
                          int64_t top_k, float top_p, float min_p, uint64_t seed,
                          const uint64_t* seq_step, int32_t* ids, cudaStream_t stream) {
  if (b <= 0) return;
  ZT_ASSERT(b <= INT32_MAX && v > 0 && v < int64_t(UINT32_MAX), "sample_tokens: b %lld v %lld",
            (long long)b, (long long)v);
  sample_kernel<<<unsigned(b), kSampleThreads, 0, stream>>>(logits, v, temperature, top_k, top_p,
                                                             min_p, seed, seq_step, ids);
  ZT_CUDA_CHECK_LAUNCH();
}

}  // namespace zeroth
