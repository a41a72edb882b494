// cpu::rows_gemm_nt: out[r] (+)= alpha * W @ x[r] for a few rows r, W (N, K) row-major as
// a linear layer stores it: the decode-time product (a handful of token rows against a
// weight matrix read from memory once). OpenBLAS packs W for every call, which at a few
// rows costs more than the product (docs/perf.md, "CPU rollout").
//
// Owns: the register-blocked micro-kernels (AVX2 + FMA where compiled for it, 4 rows x 3
// outputs of 8-lane accumulators; a plain loop otherwise; AVX-512 where the CPU has it,
// chosen at run time, see below) and the split of the outputs over threads. Must not:
// depend on the thread count or on the instruction set: every output element is one
// reduction in a fixed order (8 lane partial sums over k, then lanes 0..7, then the
// k tail), whichever thread and whichever kernel computes it.
//
// AVX-512 (rows_gemm_nt_serial and rows_gemm_nn_serial, where the CPU has AVX512F and
// AVX512DQ and ZEROTH_CPU_ISA is not "avx2"): the build targets x86-64-v3 (AVX2), whose
// 256-bit FMAs peak at ~110 GFLOP/s a core on the 2026-11-25 development machine (the
// AVX2 kernels reach 85-97), while its 512-bit FMAs reach ~229 (OpenBLAS's sgemm uses
// them). The AVX-512 kernels
// compute exactly the AVX2 kernels' arithmetic, wider: the nt kernel holds two rows in
// one zmm (lanes 0-7 row r, 8-15 row r+1, each half the AVX2 kernel's 8-lane
// accumulator of that row) against a W row broadcast to both halves (4 pairs x 4 outputs
// a call, or all of a call's pairs up to 6; the x rows interleaved by pairs once,
// cpu::pack_rows), and reduces 16 halves at
// a time with the same additions as the AVX2 tree (hsum8x16); the nn kernel's lanes are
// 16 output columns, each one chain over j as before. Results are bit-identical to the
// AVX2 kernels (tested), so a run gives the same bits on machines with and without
// AVX-512. On the development machine (2 cores, 2026-11-25) the decode step at batch 64
// is 1.27x faster with them (docs/perf.md, "AVX-512 few-row kernels").
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
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

// The end of one output's reduction, shared by the AVX2 and AVX-512 kernels: the k tail
// after the 8-lane sums, then alpha and the accumulate, with explicit fused multiply-adds
// (left to the compiler, `s += x * w` was contracted in one kernel and not the other).
inline void finish(float s, const float* x, const float* w, int64_t k8, int64_t k, float alpha,
                   float* o, bool accumulate) {
  for (int64_t kk = k8; kk < k; ++kk) s = std::fma(x[kk], w[kk], s);
  *o = accumulate ? std::fma(alpha, s, *o) : alpha * s;
}

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
      finish(hsum(acc[r][c]), x[r], wr[c], k8, k, alpha, out[r] + j + c, accumulate);
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
      const float s = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
      finish(s, x[r], wr, k8, k, alpha, out[r] + j + c, accumulate);
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

// The lines of `next` (next_floats floats, or none) handed out over `calls` calls.
NextShare next_share(const float* next, int64_t next_floats, int64_t calls) {
  NextShare ns;
  if (next != nullptr && next_floats > 0) {
    const uintptr_t lo = reinterpret_cast<uintptr_t>(next) & ~uintptr_t(63);
    const uintptr_t hi = reinterpret_cast<uintptr_t>(next + next_floats);
    ns.base = reinterpret_cast<const char*>(lo);
    ns.lines = int64_t((hi - lo + 63) / 64);
    ns.calls = std::max<int64_t>(1, calls);
  }
  return ns;
}

template <int R>
void rows_block(const float* const* x, const float* w, int64_t ldw, int64_t j0, int64_t j1, int64_t k,
                float alpha, float* const* out, bool accumulate, int64_t pf, NextShare& ns) {
  int64_t j = j0;
  for (; j + 3 <= j1; j += 3) micro<R, 3>(x, w, ldw, j, k, alpha, out, accumulate, pf, ns.take());
  for (; j < j1; ++j) micro<R, 1>(x, w, ldw, j, k, alpha, out, accumulate, pf, ns.take());
}

}  // namespace

namespace {
void rows_gemm_nt_serial_avx2(int64_t rows, const float* const* x, const float* w, int64_t ldw, int64_t j0,
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
  NextShare ns = next_share(next, next_floats, (passes - first_pf_pass) * ((j1 - j0) / 3 + (j1 - j0) % 3));
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
}  // namespace

#ifdef ZEROTH_ROWS_GEMM_AVX2
namespace {
// R rows x 16 columns (c .. c+15) of P (rows, len) @ V (len, ldv): V's row j is loaded
// once per 16 columns and used by the R rows; one accumulator chain per element over j.
template <int R>
inline void nn_micro(const float* const* p, int64_t len, const float* v, int64_t ldv, int64_t c,
                     float* const* out, const NextLines& nl) {
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const char* nlp = nl.first;
  int64_t nl_left = nl.count;
  const int64_t nl_per = len != 0 ? (nl_left + len - 1) / len : 0;
  for (int64_t j = 0; j < len; ++j) {
    for (int64_t t = 0; t < nl_per && nl_left > 0; ++t, --nl_left, nlp += 64)
      _mm_prefetch(nlp, _MM_HINT_T1);
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

namespace {
void rows_gemm_nn_serial_avx2(int64_t rows, const float* const* p, int64_t len, const float* v,
                              int64_t ldv, int64_t n, float* const* out, int64_t c,
                              const float* next, int64_t next_floats) {
#ifdef ZEROTH_ROWS_GEMM_AVX2
  NextShare ns = next_share(next, next_floats, (n - c) / 16 * ((rows + 5) / 6));
  for (; c + 16 <= n; c += 16) {
    int64_t r = 0;
    for (; r + 6 <= rows; r += 6) nn_micro<6>(p + r, len, v, ldv, c, out + r, ns.take());
    switch (rows - r) {
      case 5: nn_micro<5>(p + r, len, v, ldv, c, out + r, ns.take()); break;
      case 4: nn_micro<4>(p + r, len, v, ldv, c, out + r, ns.take()); break;
      case 3: nn_micro<3>(p + r, len, v, ldv, c, out + r, ns.take()); break;
      case 2: nn_micro<2>(p + r, len, v, ldv, c, out + r, ns.take()); break;
      case 1: nn_micro<1>(p + r, len, v, ldv, c, out + r, ns.take()); break;
      default: break;
    }
  }
#else
  (void)next;
  (void)next_floats;
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
}  // namespace

// ---- AVX-512 (see the top of the file) ----
namespace {
#if defined(ZEROTH_ROWS_GEMM_AVX2) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ZEROTH_ROWS_GEMM_AVX512 1
#define ZT_AVX512 __attribute__((target("avx512f,avx512dq")))

// The 16 8-lane sums of 8 zmm (halves A = lanes 0-7 and B = 8-15 of each), each added
// exactly as hsum adds one ymm: t_i = a_i + a_{i+4}, u_0 = t_0 + t_2, u_1 = t_1 + t_3,
// then u_0 + u_1. Lane 4m + i of the result is half m % 2 (A for even m) of v[2i + m / 2].
ZT_AVX512 inline __m512 hsum8x16(const __m512 (&v)[8]) {
  // 128-bit chunks of v[x]: A.lo, A.hi, B.lo, B.hi. s1[i] = [v2i.A, v2i.B, v2i+1.A,
  // v2i+1.B] as 4 lanes of t each. (maskz_ forms: the plain shuffle's undefined source
  // trips GCC 12's -Wuninitialized.)
  __m512 s1[4];
  for (int i = 0; i < 4; ++i) {
    const __m512 lo = _mm512_maskz_shuffle_f32x4(0xFFFF, v[2 * i], v[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 hi = _mm512_maskz_shuffle_f32x4(0xFFFF, v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1));
    s1[i] = _mm512_add_ps(lo, hi);
  }
  // s2[h] chunk m = [u0, u1 of s1[2h] chunk m, u0, u1 of s1[2h+1] chunk m].
  __m512 s2[2];
  for (int h = 0; h < 2; ++h) {
    const __m512 a = _mm512_shuffle_ps(s1[2 * h], s1[2 * h + 1], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 b = _mm512_shuffle_ps(s1[2 * h], s1[2 * h + 1], _MM_SHUFFLE(3, 2, 3, 2));
    s2[h] = _mm512_add_ps(a, b);
  }
  // Chunk m = [u0 + u1 of s1[0], s1[1], s1[2], s1[3]], chunk m.
  const __m512 a = _mm512_shuffle_ps(s2[0], s2[1], _MM_SHUFFLE(2, 0, 2, 0));
  const __m512 b = _mm512_shuffle_ps(s2[0], s2[1], _MM_SHUFFLE(3, 1, 3, 1));
  return _mm512_add_ps(a, b);
}

// One k step (8 floats) of micro512: xc is the step's chunk of the pass's pack (P pairs
// of 16 floats), row c of W at (c < 3 ? w0 : w3) + (c % 3) ldb bytes.
template <int P, int C>
ZT_AVX512 __attribute__((always_inline)) inline void step512(__m512 (&acc)[P][C], const float* xc,
                                                            const char* w0, const char* w3,
                                                            int64_t ldb, int64_t kk) {
  __m512 xv[P];
  for (int p = 0; p < P; ++p) xv[p] = _mm512_loadu_ps(xc + 16 * p);
  const int64_t kb = kk * int64_t(sizeof(float));
  for (int c = 0; c < C; ++c) {
    const char* row = c < 3 ? w0 + c * ldb : w3 + (c - 3) * ldb;
    // (The masked form with a zero source: the plain intrinsic's undefined source trips
    // GCC 12's -Wuninitialized.)
    const __m512 wv = _mm512_mask_broadcast_f32x8(
        _mm512_setzero_ps(), 0xFFFF, _mm256_loadu_ps(reinterpret_cast<const float*>(row + kb)));
    for (int p = 0; p < P; ++p) acc[p][c] = _mm512_fmadd_ps(xv[p], wv, acc[p][c]);
  }
}

// P row pairs x C outputs (j .. j+C-1). xp: the pass's rows interleaved by pairs
// (pack_pairs), pair p's 8-float chunk i at xp + 16 (i P + p) as [x[2p][8i..8i+7],
// x[2p+1][8i..8i+7]]; each W row's 8 floats are broadcast to both halves, so each half
// runs the AVX2 kernel's accumulator chain of its row. pf / nl: the AVX2 kernel's
// prefetches.
template <int P, int C>
ZT_AVX512 inline void micro512(const float* xp, const float* const* x, const float* w,
                               int64_t ldw, int64_t j, int64_t k, float alpha, float* const* out,
                               bool accumulate, int64_t pf, const NextLines& nl) {
  __m512 acc[P][C];
  for (int p = 0; p < P; ++p)
    for (int c = 0; c < C; ++c) acc[p][c] = _mm512_setzero_ps();
  const int64_t k8 = k & ~int64_t(7), steps = k8 / 8;
  // The C W rows through two base pointers (rows j and j + 3) and the row stride in
  // bytes, to keep the loop's general registers few (one pointer per row, with the
  // prefetch state, spilled to the stack).
  const int64_t ldb = ldw * int64_t(sizeof(float));
  const char* w0 = reinterpret_cast<const char*>(w + j * ldw);
  const char* w3 = w0 + 3 * ldb;
  // Prefetches, both as linear runs of cache lines spread over the k steps: the C rows
  // pf ahead (the call after next, or the next), and this call's share of the next block.
  const char* pfp = nullptr;
  int64_t pf_left = 0;
  if (pf != 0) {
    pfp = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(w0 + pf * ldb) & ~uintptr_t(63));
    pf_left = (C * ldb + 63) / 64;
  }
  const char* nlp = nl.first;
  int64_t nl_left = nl.count;
  const int64_t pf_per = steps != 0 ? (pf_left + steps - 1) / steps : 0;
  const int64_t nl_per = steps != 0 ? (nl_left + steps - 1) / steps : 0;
  // Two k steps an iteration (the prefetch bookkeeping once per two), then the odd one.
  int64_t kk = 0;
  for (; kk + 16 <= k8; kk += 16) {
    for (int64_t t = 0; t < 2 * pf_per && pf_left > 0; ++t, --pf_left, pfp += 64)
      _mm_prefetch(pfp, _MM_HINT_T1);
    for (int64_t t = 0; t < 2 * nl_per && nl_left > 0; ++t, --nl_left, nlp += 64)
      _mm_prefetch(nlp, _MM_HINT_T1);
    step512<P, C>(acc, xp + 2 * P * kk, w0, w3, ldb, kk);
    step512<P, C>(acc, xp + 2 * P * (kk + 8), w0, w3, ldb, kk + 8);
  }
  if (kk < k8) {
    for (; pf_left > 0; --pf_left, pfp += 64) _mm_prefetch(pfp, _MM_HINT_T1);
    for (; nl_left > 0; --nl_left, nlp += 64) _mm_prefetch(nlp, _MM_HINT_T1);
    step512<P, C>(acc, xp + 2 * P * kk, w0, w3, ldb, kk);
  }
  // The accumulators in batches of 8 zmm (16 row halves), each batch reduced to one zmm
  // of 16 sums by hsum8x16: the same additions as hsum, 14 shuffles and 7 adds instead
  // of 16 separate trees. Unused slots of the last batch hold zeros.
  if constexpr (C == 4) {
    // Batch b: pairs 2b and 2b+1, placed v[2i + s] = acc[2b + s][i], so that lanes 4m ..
    // 4m+3 of the sums are row 4b + m's outputs j .. j+3 (hsum8x16's lane order), stored
    // as one 4-float vector (alpha and the accumulate lane by lane, as finish does).
    for (int b = 0; 2 * b < P; ++b) {
      __m512 v[8];
      for (int i = 0; i < 4; ++i)
        for (int sft = 0; sft < 2; ++sft)
          v[2 * i + sft] = 2 * b + sft < P ? acc[2 * b + sft][i] : _mm512_setzero_ps();
      const __m512 sums = hsum8x16(v);
      const int rows_here = std::min(4, 2 * P - 4 * b);
      if (k8 == k) {
        const __m128 va = _mm_set1_ps(alpha);
        for (int m = 0; m < rows_here; ++m) {
          float* o = out[4 * b + m] + j;
          const __m128 sm = _mm512_mask_extractf32x4_ps(_mm_setzero_ps(), 0xF, sums, m);
          _mm_storeu_ps(o, accumulate ? _mm_fmadd_ps(va, sm, _mm_loadu_ps(o)) : _mm_mul_ps(va, sm));
        }
      } else {
        alignas(64) float sm[16];
        _mm512_store_ps(sm, sums);
        for (int m = 0; m < rows_here; ++m)
          for (int c = 0; c < 4; ++c)
            finish(sm[4 * m + c], x[4 * b + m], w + (j + c) * ldw, k8, k, alpha,
                   out[4 * b + m] + j + c, accumulate);
      }
    }
    return;
  }
  const float* wr[C];
  for (int c = 0; c < C; ++c) wr[c] = w + (j + c) * ldw;
  constexpr int kAcc = P * C, kBatches = (kAcc + 7) / 8;
  for (int b = 0; b < kBatches; ++b) {
    __m512 v[8];
    for (int i = 0; i < 8; ++i) {
      const int a = 8 * b + i;
      v[i] = a < kAcc ? acc[a / C][a % C] : _mm512_setzero_ps();
    }
    alignas(64) float sums[16];
    _mm512_store_ps(sums, hsum8x16(v));
    for (int lane = 0; lane < 16; ++lane) {
      // Lane 4m + i holds half m % 2 of v[2i + m / 2] (see hsum8x16).
      const int m = lane / 4, i = lane % 4, a = 8 * b + 2 * i + m / 2;
      if (a >= kAcc) continue;
      const int p = a / C, c = a % C, r = 2 * p + m % 2;
      finish(sums[lane], x[r], wr[c], k8, k, alpha, out[r] + j + c, accumulate);
    }
  }
}

constexpr int kCols512 = 4;  // outputs per micro-kernel call (the epilogue's 4-float stores)
constexpr int kPairs512 = 4;  // row pairs per pass (8 rows) when a call has more than ...
constexpr int kMaxPairs512 = 6;  // ... this many pairs (12 rows), which take one pass
// The pairs of one pass for a call of `pairs` row pairs: all of them up to kMaxPairs512
// (24 accumulators: a routed expert's 9-12 rows in one pass, not 8 + a few, which read
// the block's weights again for little work), else kPairs512 (16 accumulators; passes of
// 5-6 pairs were ~3% slower on the 64-row linear layers).
inline int64_t pass_pairs(int64_t pairs) { return pairs <= kMaxPairs512 ? pairs : kPairs512; }

template <int P>
ZT_AVX512 void block512(const float* xp, const float* const* x, const float* w,
                        int64_t ldw, int64_t j0, int64_t j1, int64_t k, float alpha,
                        float* const* out, bool accumulate, int64_t pf, NextShare& ns) {
  int64_t j = j0;
  for (; j + kCols512 <= j1; j += kCols512)
    micro512<P, kCols512>(xp, x, w, ldw, j, k, alpha, out, accumulate, pf, ns.take());
  switch (j1 - j) {  // the last 1-3 outputs
    case 3: micro512<P, 3>(xp, x, w, ldw, j, k, alpha, out, accumulate, pf, ns.take()); break;
    case 2: micro512<P, 2>(xp, x, w, ldw, j, k, alpha, out, accumulate, pf, ns.take()); break;
    case 1: micro512<P, 1>(xp, x, w, ldw, j, k, alpha, out, accumulate, pf, ns.take()); break;
    default: break;
  }
}

// The packed rows start on a 64-byte boundary inside their vector (kAlignPad floats of
// slack): every zmm load of them is then one cache line. At the 16-byte alignment of
// std::vector's storage each one spanned two lines, and the kernel ran ~15% slower
// (docs/perf.md, session 12).
constexpr size_t kAlignPad = 15;
template <typename T>
inline T* align64(T* p) {
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
}

// The rows interleaved by pairs into dst (pairs x 2 k8 floats), an odd last row paired
// with itself.
ZT_AVX512 void pack_pairs(int64_t rows, const float* const* x, int64_t k8, float* dst) {
  const int64_t pairs = (rows + 1) / 2, ps = 2 * k8, pp = pass_pairs(pairs);
  for (int64_t q = 0; q < pairs; ++q) {
    const float* a = x[2 * q];
    const float* b = x[std::min(2 * q + 1, rows - 1)];
    // Pass g (pairs g pp .. g pp + P - 1, pp = pass_pairs) at dst + g pp ps, chunk-major:
    // chunk i's P pairs of 16 floats at + i P 16, so that a micro-kernel reads one
    // pointer at fixed offsets.
    const int64_t g = q / pp, in = q % pp;
    const int64_t np = std::min<int64_t>(pp, pairs - g * pp);
    float* d = dst + g * pp * ps + in * 16;
    for (int64_t i = 0; i < k8; i += 8) {
      __m512 v = _mm512_mask_broadcast_f32x8(_mm512_setzero_ps(), 0xFFFF, _mm256_loadu_ps(a + i));
      v = _mm512_mask_broadcast_f32x8(v, 0xFF00, _mm256_loadu_ps(b + i));
      _mm512_storeu_ps(d + (i / 8) * np * 16, v);
    }
  }
}

ZT_AVX512 void rows_gemm_nt_serial_avx512(int64_t rows, const float* const* x, const float* w,
                                          int64_t ldw, int64_t j0, int64_t j1, int64_t k,
                                          float alpha, float* const* out, bool accumulate,
                                          const float* next, int64_t next_floats,
                                          const RowsPack* pack) {
  const int64_t pairs = (rows + 1) / 2, k8 = k & ~int64_t(7), ps = 2 * k8;
  // The rows interleaved by pairs: the caller's pack, or a copy made here (rows x k8
  // floats, small against the (j1 - j0) x k weights every row multiplies).
  const float* packed = nullptr;
  if (pack != nullptr && pack->rows == rows && pack->k == k && !pack->data.empty()) {
    packed = align64(pack->data.data());
  } else {
    thread_local std::vector<float> own;
    own.resize(size_t(std::max<int64_t>(1, pairs * ps)) + kAlignPad);
    pack_pairs(rows, x, k8, align64(own.data()));
    packed = align64(own.data());
  }
  // An odd last row is computed twice (both halves of its pair); the second copy's
  // results go to a scratch row.
  const float* const* xs = x;
  float* const* os = out;
  thread_local std::vector<const float*> xodd;
  thread_local std::vector<float*> oodd;
  thread_local std::vector<float> scratch;
  if (rows % 2 != 0) {
    xodd.assign(x, x + rows);
    xodd.push_back(x[rows - 1]);
    scratch.resize(size_t(j1));
    oodd.assign(out, out + rows);
    oodd.push_back(scratch.data());
    xs = xodd.data();
    os = oodd.data();
  }
  // Prefetch: W rows two calls ahead when this call is a single pass (few rows, bound by
  // the memory); none with more passes, whose block the previous call's `next` brought
  // into L2 (in the hot loop that prefetch cost ~15%). The next block's lines over the
  // last passes.
  const int64_t pp = pass_pairs(pairs);
  const int64_t passes = (pairs + pp - 1) / pp;
  const int64_t pf = passes <= 1 ? 2 * kCols512 : 0;
  const int64_t first_pf_pass = std::max<int64_t>(0, passes - 4);
  const int64_t per_pass = (j1 - j0) / kCols512 + ((j1 - j0) % kCols512 != 0);
  NextShare ns = next_share(next, next_floats, (passes - first_pf_pass) * per_pass);
  NextShare none;
  int64_t pass = 0;
  for (int64_t q = 0; q < pairs; q += pp, ++pass) {
    const float* xq = packed + q * ps;
    const int64_t ppf = pass == 0 ? pf : 0;
    NextShare& nq = pass >= first_pf_pass ? ns : none;
    const float* const* xr = xs + 2 * q;
    float* const* orow = os + 2 * q;
    switch (std::min<int64_t>(pp, pairs - q)) {
      case 6: block512<6>(xq, xr, w, ldw, j0, j1, k, alpha, orow, accumulate, ppf, nq); break;
      case 5: block512<5>(xq, xr, w, ldw, j0, j1, k, alpha, orow, accumulate, ppf, nq); break;
      case 4: block512<4>(xq, xr, w, ldw, j0, j1, k, alpha, orow, accumulate, ppf, nq); break;
      case 3: block512<3>(xq, xr, w, ldw, j0, j1, k, alpha, orow, accumulate, ppf, nq); break;
      case 2: block512<2>(xq, xr, w, ldw, j0, j1, k, alpha, orow, accumulate, ppf, nq); break;
      default: block512<1>(xq, xr, w, ldw, j0, j1, k, alpha, orow, accumulate, ppf, nq); break;
    }
  }
}

// R rows x Z zmm of 16 columns (c .. c+16Z-1) of P @ V: V's row j loaded once per call
// and used by the R rows; one chain per element over j, as nn_micro.
template <int R, int Z>
ZT_AVX512 inline void nn_micro512(const float* const* p, int64_t len, const float* v, int64_t ldv,
                                  int64_t c, float* const* out, const NextLines& nl) {
  __m512 acc[R][Z];
  for (int r = 0; r < R; ++r)
    for (int z = 0; z < Z; ++z) acc[r][z] = _mm512_setzero_ps();
  const char* nlp = nl.first;
  int64_t nl_left = nl.count;
  const int64_t nl_per = len != 0 ? (nl_left + len - 1) / len : 0;
  for (int64_t j = 0; j < len; ++j) {
    for (int64_t t = 0; t < nl_per && nl_left > 0; ++t, --nl_left, nlp += 64)
      _mm_prefetch(nlp, _MM_HINT_T1);
    const float* vr = v + j * ldv + c;
    __m512 vz[Z];
    for (int z = 0; z < Z; ++z) vz[z] = _mm512_loadu_ps(vr + 16 * z);
    for (int r = 0; r < R; ++r) {
      const __m512 pv = _mm512_set1_ps(p[r][j]);
      for (int z = 0; z < Z; ++z) acc[r][z] = _mm512_fmadd_ps(pv, vz[z], acc[r][z]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int z = 0; z < Z; ++z) _mm512_storeu_ps(out[r] + c + 16 * z, acc[r][z]);
}

template <int Z>
ZT_AVX512 void nn_cols512(int64_t rows, const float* const* p, int64_t len, const float* v,
                          int64_t ldv, int64_t c, float* const* out, NextShare& ns) {
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) nn_micro512<8, Z>(p + r, len, v, ldv, c, out + r, ns.take());
  switch (rows - r) {
    case 7: nn_micro512<7, Z>(p + r, len, v, ldv, c, out + r, ns.take()); break;
    case 6: nn_micro512<6, Z>(p + r, len, v, ldv, c, out + r, ns.take()); break;
    case 5: nn_micro512<5, Z>(p + r, len, v, ldv, c, out + r, ns.take()); break;
    case 4: nn_micro512<4, Z>(p + r, len, v, ldv, c, out + r, ns.take()); break;
    case 3: nn_micro512<3, Z>(p + r, len, v, ldv, c, out + r, ns.take()); break;
    case 2: nn_micro512<2, Z>(p + r, len, v, ldv, c, out + r, ns.take()); break;
    case 1: nn_micro512<1, Z>(p + r, len, v, ldv, c, out + r, ns.take()); break;
    default: break;
  }
}

ZT_AVX512 int64_t rows_gemm_nn_avx512(int64_t rows, const float* const* p, int64_t len,
                                      const float* v, int64_t ldv, int64_t n, float* const* out,
                                      const float* next, int64_t next_floats) {
  NextShare ns = next_share(next, next_floats, (n / 32 + n % 32 / 16) * ((rows + 7) / 8));
  int64_t c = 0;
  for (; c + 32 <= n; c += 32) nn_cols512<2>(rows, p, len, v, ldv, c, out, ns);
  for (; c + 16 <= n; c += 16) nn_cols512<1>(rows, p, len, v, ldv, c, out, ns);
  return c;  // the columns done
}
#endif

// The kernels in use: AVX-512 where the CPU has it, unless ZEROTH_CPU_ISA=avx2 (or a
// test's set_rows_gemm_avx512) says otherwise. -1: not decided yet.
std::atomic<int> g_use_avx512{-1};

bool cpu_has_avx512() {
#ifdef ZEROTH_ROWS_GEMM_AVX512
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

bool use_avx512() {
  int v = g_use_avx512.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("ZEROTH_CPU_ISA");
    const bool avx2_only = e != nullptr && std::string(e) == "avx2";
    v = !avx2_only && cpu_has_avx512() ? 1 : 0;
    g_use_avx512.store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

}  // namespace

bool rows_gemm_avx512_available() { return cpu_has_avx512(); }

void pack_rows(int64_t rows, const float* const* x, int64_t k, RowsPack& pack) {
  pack.rows = rows;
  pack.k = k;
#ifdef ZEROTH_ROWS_GEMM_AVX512
  if (rows >= 1 && use_avx512()) {
    const int64_t k8 = k & ~int64_t(7);
    pack.data.resize(size_t(std::max<int64_t>(1, (rows + 1) / 2 * 2 * k8)) + kAlignPad);
    pack_pairs(rows, x, k8, align64(pack.data.data()));
    return;
  }
#endif
  (void)x;
  pack.data.clear();
}

bool set_rows_gemm_avx512(bool on) {
  const bool prev = use_avx512();
  g_use_avx512.store(on && cpu_has_avx512() ? 1 : 0, std::memory_order_relaxed);
  return prev;
}

void rows_gemm_nt_serial(int64_t rows, const float* const* x, const float* w, int64_t ldw, int64_t j0,
                         int64_t j1, int64_t k, float alpha, float* const* out, bool accumulate,
                         const float* next, int64_t next_floats, const RowsPack* pack) {
#ifdef ZEROTH_ROWS_GEMM_AVX512
  if (rows >= 2 && use_avx512()) {
    rows_gemm_nt_serial_avx512(rows, x, w, ldw, j0, j1, k, alpha, out, accumulate, next, next_floats,
                               pack);
    return;
  }
#endif
  rows_gemm_nt_serial_avx2(rows, x, w, ldw, j0, j1, k, alpha, out, accumulate, next, next_floats);
}

void rows_gemm_nn_serial(int64_t rows, const float* const* p, int64_t len, const float* v, int64_t ldv,
                         int64_t n, float* const* out, const float* next, int64_t next_floats) {
  int64_t c = 0;
#ifdef ZEROTH_ROWS_GEMM_AVX512
  if (use_avx512()) {
    c = rows_gemm_nn_avx512(rows, p, len, v, ldv, n, out, next, next_floats);
    next = nullptr, next_floats = 0;
  }
#endif
  rows_gemm_nn_serial_avx2(rows, p, len, v, ldv, n, out, c, next, next_floats);
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
    thread_local RowsPack pack;  // the rows, prepared once for every block of this part
    pack_rows(m, xr.data(), k, pack);
    for (int64_t j = lo; j < hi; j += kBlock) {
      const int64_t jn = std::min(hi, j + kBlock), jn1 = std::min(hi, jn + kBlock);
      rows_gemm_nt_serial(m, xr.data(), w, ldw, j, jn, k, alpha, outr.data(), accumulate,
                          jn < jn1 ? w + jn * ldw : nullptr, (jn1 - jn) * ldw, &pack);
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
