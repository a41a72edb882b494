// cpu::rows_gemm_nt: out[r] (+)= alpha * W @ x[r] for a few rows r, W (N, K) row-major as
// a linear layer stores it: the decode-time product (a handful of token rows against a
// weight matrix read from memory once). OpenBLAS packs W for every call, which at a few
// rows costs more than the product (docs/perf.md, "CPU rollout").
//
// Owns: the register-blocked micro-kernel (AVX2 + FMA where compiled for it, 4 rows x 3
// outputs of 8-lane accumulators; a plain loop otherwise) and the split of the outputs
// over threads. Must not: depend on the thread count: every output element is one
// reduction in a fixed order (8 lane partial sums over k, then lanes 0..7, then the
// k tail), whichever thread computes it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define ZEROTH_ROWS_GEMM_AVX2 1
#endif

#include "tensor/cpu_backend.h"

namespace zeroth {
namespace cpu {
namespace {

// Cache lines a micro-kernel call prefetches into L2 on the side: `count` lines from
// `first`, a share of the W block the caller streams next (see rows_gemm_nt_serial).
struct NextLines {
  const char* first = nullptr;
  int64_t count = 0;
};

#ifdef ZEROTH_ROWS_GEMM_AVX2
inline float hsum(__m256 v) {
  // Lanes 0..7 added in a fixed tree: (0+4, 1+5, 2+6, 3+7), then pairs, then the last two.
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// R rows x C outputs (j .. j+C-1): W rows are loaded once per 8 k, each x row once per
// 8 k and reused across the C outputs.
// `pf`: W rows ahead (of row j) to prefetch while this call streams its own, one cache
// line per W row every 16 floats of k (0: none). A decode step reads every weight from
// memory once; without the prefetch one thread keeps too few misses in flight to stream
// at the memory's rate (one thread: 2x on a 4-row expert product; a 2-thread decode
// step: experts 10-15% faster, docs/perf.md). Prefetches never fault and change no
// result.
template <int R, int C>
inline void micro(const float* const* x, const float* w, int64_t ldw, int64_t j, int64_t k, float alpha,
                  float* const* out, bool accumulate, int64_t pf, const NextLines& nl) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  const float* wr[C];
  for (int c = 0; c < C; ++c) wr[c] = w + (j + c) * ldw;
  const int64_t k8 = k & ~int64_t(7);
  const int64_t pf_off = pf * ldw;
  // The next block's lines (nl) spread evenly over this call's k steps.
  const int64_t steps = k8 / 8;
  int64_t q = 0, next_at = 0;
  for (int64_t kk = 0; kk < k8; kk += 8) {
    __m256 wv[C];
    if (q < nl.count && kk / 8 >= next_at) {
      _mm_prefetch(nl.first + 64 * q, _MM_HINT_T1);
      ++q;
      next_at = q * steps / nl.count;
    }
    if (pf != 0 && (kk & 15) == 0)
      for (int c = 0; c < C; ++c)
        _mm_prefetch(reinterpret_cast<const char*>(wr[c] + kk + pf_off), _MM_HINT_T0);
    for (int c = 0; c < C; ++c) wv[c] = _mm256_loadu_ps(wr[c] + kk);
    for (int r = 0; r < R; ++r) {
      const __m256 xv = _mm256_loadu_ps(x[r] + kk);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float s = hsum(acc[r][c]);
      for (int64_t kk = k8; kk < k; ++kk) s += x[r][kk] * wr[c][kk];
      float* o = out[r] + j + c;
      *o = accumulate ? *o + alpha * s : alpha * s;
    }
}
#else
template <int R, int C>
inline void micro(const float* const* x, const float* w, int64_t ldw, int64_t j, int64_t k, float alpha,
                  float* const* out, bool accumulate, int64_t /*pf*/, const NextLines& /*nl*/) {
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      const float* wr = w + (j + c) * ldw;
      float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      const int64_t k8 = k & ~int64_t(7);
      for (int64_t kk = 0; kk < k8; kk += 8)
        for (int l = 0; l < 8; ++l) lane[l] += x[r][kk + l] * wr[kk + l];
      float s = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
      for (int64_t kk = k8; kk < k; ++kk) s += x[r][kk] * wr[kk];
      float* o = out[r] + j + c;
      *o = accumulate ? *o + alpha * s : alpha * s;
    }
}
#endif

// Hands the lines of the next block out over the micro-kernel calls of this block, in
// order: call i of `calls` gets lines [i L / calls, (i + 1) L / calls).
struct NextShare {
  const char* base = nullptr;
  int64_t lines = 0, calls = 1, call = 0;
  NextLines take() {
    NextLines nl;
    if (lines == 0) return nl;
    const int64_t lo = call * lines / calls, hi = (call + 1) * lines / calls;
    ++call;
    nl.first = base + 64 * lo;
    nl.count = hi - lo;
    return nl;
  }
};

template <int R>
void rows_block(const float* const* x, const float* w, int64_t ldw, int64_t j0, int64_t j1, int64_t k,
                float alpha, float* const* out, bool accumulate, int64_t pf, NextShare& ns) {
  int64_t j = j0;
  for (; j + 3 <= j1; j += 3) micro<R, 3>(x, w, ldw, j, k, alpha, out, accumulate, pf, ns.take());
  for (; j < j1; ++j) micro<R, 1>(x, w, ldw, j, k, alpha, out, accumulate, pf, ns.take());
}

}  // namespace

void rows_gemm_nt_serial(int64_t rows, const float* const* x, const float* w, int64_t ldw, int64_t j0,
                         int64_t j1, int64_t k, float alpha, float* const* out, bool accumulate,
                         const float* next, int64_t next_floats) {
  // Prefetch distance: the first pass over the block streams W from memory (the later
  // passes find it in L2). Best in a standalone loop (one thread, 4 and 16 rows): 6 W
  // rows ahead (the micro-kernel after next) when one pass covers all rows, 3 when more
  // passes follow.
  const int64_t pf = rows <= 4 ? 6 : 3;
  // `next` (next_floats contiguous floats): the W rows the caller streams after this
  // block. Their lines are prefetched into L2 a share per micro-kernel call, over every
  // pass: with more than 4 rows the later passes run from L2 and left the memory idle,
  // and the next block's first pass then waited for it.
  // Only over the last 4 passes: with many passes (64 rows are 16) the lines fetched
  // early sat in the caches through the whole block and the step got slower.
  const int64_t passes = (rows + 3) / 4, first_pf_pass = std::max<int64_t>(0, passes - 4);
  NextShare ns;
  if (next != nullptr && next_floats > 0) {
    const uintptr_t lo = reinterpret_cast<uintptr_t>(next) & ~uintptr_t(63);
    const uintptr_t hi = reinterpret_cast<uintptr_t>(next + next_floats);
    ns.base = reinterpret_cast<const char*>(lo);
    ns.lines = int64_t((hi - lo + 63) / 64);
    const int64_t per_pass = (j1 - j0) / 3 + (j1 - j0) % 3;
    ns.calls = std::max<int64_t>(1, (passes - first_pf_pass) * per_pass);
  }
  NextShare none;
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4)
    rows_block<4>(x + r, w, ldw, j0, j1, k, alpha, out + r, accumulate, r == 0 ? pf : 0,
                  r / 4 >= first_pf_pass ? ns : none);
  const int64_t pr = r == 0 ? pf : 0;
  NextShare& nr = r / 4 >= first_pf_pass ? ns : none;
  switch (rows - r) {
    case 3: rows_block<3>(x + r, w, ldw, j0, j1, k, alpha, out + r, accumulate, pr, nr); break;
    case 2: rows_block<2>(x + r, w, ldw, j0, j1, k, alpha, out + r, accumulate, pr, nr); break;
    case 1: rows_block<1>(x + r, w, ldw, j0, j1, k, alpha, out + r, accumulate, pr, nr); break;
    default: break;
  }
}

#ifdef ZEROTH_ROWS_GEMM_AVX2
namespace {
// R rows x 16 columns (c .. c+15) of P (rows, len) @ V (len, ldv): V's row j is loaded
// once per 16 columns and used by the R rows; one accumulator chain per element over j.
template <int R>
inline void nn_micro(const float* const* p, int64_t len, const float* v, int64_t ldv, int64_t c,
                     float* const* out) {
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t j = 0; j < len; ++j) {
    const float* vr = v + j * ldv + c;
    const __m256 v0 = _mm256_loadu_ps(vr), v1 = _mm256_loadu_ps(vr + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 pv = _mm256_broadcast_ss(p[r] + j);
      acc[r][0] = _mm256_fmadd_ps(pv, v0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(pv, v1, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(out[r] + c, acc[r][0]);
    _mm256_storeu_ps(out[r] + c + 8, acc[r][1]);
  }
}
}  // namespace
#endif

void rows_gemm_nn_serial(int64_t rows, const float* const* p, int64_t len, const float* v, int64_t ldv,
                         int64_t n, float* const* out) {
  int64_t c = 0;
#ifdef ZEROTH_ROWS_GEMM_AVX2
  for (; c + 16 <= n; c += 16) {
    int64_t r = 0;
    for (; r + 6 <= rows; r += 6) nn_micro<6>(p + r, len, v, ldv, c, out + r);
    switch (rows - r) {
      case 5: nn_micro<5>(p + r, len, v, ldv, c, out + r); break;
      case 4: nn_micro<4>(p + r, len, v, ldv, c, out + r); break;
      case 3: nn_micro<3>(p + r, len, v, ldv, c, out + r); break;
      case 2: nn_micro<2>(p + r, len, v, ldv, c, out + r); break;
      case 1: nn_micro<1>(p + r, len, v, ldv, c, out + r); break;
      default: break;
    }
  }
#endif
  // Columns the micro-kernel does not cover (all of them without AVX2): the same
  // order, one chain per element over j.
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t cc = c; cc < n; ++cc) {
      float s = 0.0f;
      for (int64_t j = 0; j < len; ++j) s = std::fma(p[r][j], v[j * ldv + cc], s);
      out[r][cc] = s;
    }
}

void rows_gemm_nt(int threads, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                  const float* w, int64_t ldw, float* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  std::vector<const float*> xr(static_cast<size_t>(m));
  std::vector<float*> outr(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) xr[size_t(i)] = a + i * lda, outr[size_t(i)] = c + i * ldc;
  // Output blocks of 48 (16 micro-kernel columns) keep each block's W rows (48 x K floats)
  // streaming from memory once while its x rows stay in L1/L2. Each thread takes one
  // contiguous range of whole 3-output groups (the micro-kernel's width), equal to within
  // one group, and walks it block by block: 144 outputs are 72 + 72, not blocks 2 + 1.
  constexpr int64_t kBlock = 48;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const int parts = int(std::max<int64_t>(1, std::min<int64_t>(threads, blocks)));
  const int64_t groups = n / 3;  // the last part also takes the n % 3 single outputs
  auto part = [&](int p, int nparts) {
    const int64_t lo = 3 * (groups * p / nparts);
    const int64_t hi = p + 1 == nparts ? n : 3 * (groups * (p + 1) / nparts);
    for (int64_t j = lo; j < hi; j += kBlock) {
      const int64_t jn = std::min(hi, j + kBlock), jn1 = std::min(hi, jn + kBlock);
      rows_gemm_nt_serial(m, xr.data(), w, ldw, j, jn, k, alpha, outr.data(), accumulate,
                          jn < jn1 ? w + jn * ldw : nullptr, (jn1 - jn) * ldw);
    }
  };
  if (parts == 1 || double(m) * double(n) * double(k) < 64.0 * 64.0 * 64.0) {
    part(0, 1);
    return;
  }
#pragma omp parallel for num_threads(parts) schedule(static, 1)
  for (int p = 0; p < parts; ++p) part(p, parts);
}

}  // namespace cpu
}  // namespace zeroth
