// CpuBackend::attention_forward / attention_backward: causal scaled-dot-product
// attention per (batch, head), blocked over tiles of kQueryTile query rows, with
// every matrix product in cblas_sgemm and the softmax in vectorised fp32 loops.
// CpuBackend::mla_decode_attention (the decode step over the latent cache, at the end):
// one work item per sequence, its products in the few-row kernels of
// cpu_rows_gemm.cpp instead of cblas_sgemm.
//
// Owns: the attention math on the CPU (scores, causal mask, softmax with its saved
// log-sum-exp, the flash-attention style backward that recomputes probabilities
// from lse) and how it is spread over threads.
// Must not: materialise the (T, T) score matrix (a tile holds kQueryTile rows of
// scores against their causal prefix of keys), or let results depend on the thread
// count: each tile's arithmetic is the same whichever thread runs it, and the
// gradient sums over query tiles (dk, dv) run in a fixed order within one thread.
//
// Threads: the forward's work items are (batch, head, query tile), independent of
// each other; the backward's are (batch, head) pairs, because dk and dv sum over
// all query tiles of a pair (with fewer pairs than threads, the extra threads
// idle). Items are spread over the backend's OpenMP threads with OpenBLAS held at
// one thread meanwhile: the Debian OpenBLAS is the pthread build, whose own pool
// knows nothing of OpenMP: sgemm called concurrently from OpenMP threads while
// OpenBLAS is set to N threads makes every call queue on its one thread pool
// (measured on the 2-core dev box, B=8 T=512 H=8 Dqk=48 Dv=32: forward 20-30x and
// backward 20-30x slower than with OpenBLAS at one thread inside the region). A
// multi-threaded OpenBLAS sgemm is also not bitwise equal to a single-threaded
// one on these shapes, so OpenBLAS never runs threaded here: each item's sgemm
// calls are the same whatever the thread count.
#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tensor/cpu_backend.h"
#include "tensor/cpu_math.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

using cpu::exp_args;
using cpu::exp_f32_clamped;

// Query rows per tile: the score tile is (kQueryTile, T) floats per thread.
constexpr int64_t kQueryTile = 64;

// A (B, T, H, D) tensor read as fp32 rows: row (b, t, h) starts at
// data + b*sb + t*st + h*sh and its D elements are contiguous. `ld` is the row
// stride along T handed to sgemm.
struct Rows {
  const float* data = nullptr;
  int64_t sb = 0, st = 0, sh = 0;
  int64_t d = 0;
  int ld = 1;
  const float* row(int64_t b, int64_t t, int64_t h) const { return data + b * sb + t * st + h * sh; }
};

// Writes fp32 rows into a (B, T, H, D) float tensor of any float dtype and strides
// (last dimension contiguous).
struct RowWriter {
  char* data = nullptr;
  DType dtype = DType::F32;
  size_t esize = 4;
  int64_t sb = 0, st = 0, sh = 0, d = 0;
  void store(int64_t b, int64_t t, int64_t h, const float* src) const {
    cpu::from_f32(src, dtype, d, data + size_t(b * sb + t * st + h * sh) * esize);
  }
};

void check_heads(const Tensor& x, const char* op, const char* arg) {
  cpu::check_float(x, op, arg);
  ZT_ASSERT(x.dim() == 4, "%s: %s is %s, expected (B, T, H, D)", op, arg, x.str().c_str());
  ZT_ASSERT(x.size(3) >= 1, "%s: %s is %s, expected a head dimension >= 1", op, arg,
            x.str().c_str());
  ZT_ASSERT(x.size(3) == 1 || x.stride(3) == 1,
            "%s: %s (%s, strides %s) needs a contiguous last dimension", op, arg, x.str().c_str(),
            shape_str(x.strides()).c_str());
  ZT_ASSERT(x.size(1) <= 1 || x.stride(1) >= x.size(3),
            "%s: %s (%s, strides %s) has a T stride below its head dimension", op, arg,
            x.str().c_str(), shape_str(x.strides()).c_str());
  ZT_ASSERT(x.size(1) <= INT_MAX && x.size(3) <= INT_MAX && x.stride(1) <= INT_MAX,
            "%s: %s (%s) is too large for 32-bit BLAS indices", op, arg, x.str().c_str());
}

void check_lse(const Tensor& lse, int64_t B, int64_t H, int64_t T, const char* op) {
  cpu::check_cpu(lse, op, "lse");
  ZT_ASSERT(lse.dtype() == DType::F32 && lse.shape() == (Shape{B, H, T}),
            "%s: lse is %s, expected f32[%lld, %lld, %lld]", op, lse.str().c_str(), (long long)B,
            (long long)H, (long long)T);
  cpu::check_contiguous(lse, op, "lse");
}

void check_shape(const Tensor& x, const Shape& expect, const char* op, const char* arg) {
  ZT_ASSERT(x.shape() == expect, "%s: %s is %s, expected shape %s", op, arg, x.str().c_str(),
            shape_str(expect).c_str());
}

// x as fp32 rows: F32 tensors are read in place; other float dtypes are converted
// once into *scratch, a contiguous (B, T, H, D) copy.
Rows f32_rows(const Tensor& x, int threads, std::unique_ptr<float[]>* scratch) {
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3);
  Rows r;
  r.d = D;
  if (x.dtype() == DType::F32) {
    r.data = x.data<float>();
    r.sb = x.stride(0);
    r.st = x.stride(1);
    r.sh = x.stride(2);
  } else {
    scratch->reset(new float[size_t(std::max<int64_t>(x.numel(), 1))]);
    float* dst = scratch->get();
    const char* src = static_cast<const char*>(x.data_ptr());
    const size_t es = x.element_size();
    const int64_t sb = x.stride(0), st = x.stride(1), sh = x.stride(2);
    cpu::parallel_blocks(threads, B * T * H, 256, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t h = i % H, t = (i / H) % T, b = i / (H * T);
        cpu::to_f32(src + size_t(b * sb + t * st + h * sh) * es, x.dtype(), D, dst + i * D);
      }
    });
    r.data = dst;
    r.sb = T * H * D;
    r.st = H * D;
    r.sh = D;
  }
  r.ld = int(T > 1 ? r.st : std::max<int64_t>(r.st, D));
  if (r.ld < D) r.ld = int(D);  // T == 1 with a small stride: only one row is read
  return r;
}

RowWriter writer(Tensor& x) {
  RowWriter w;
  w.data = static_cast<char*>(x.data_ptr());
  w.dtype = x.dtype();
  w.esize = x.element_size();
  w.sb = x.stride(0);
  w.st = x.stride(1);
  w.sh = x.stride(2);
  w.d = x.size(3);
  return w;
}

// Sets OpenBLAS's thread count for a scope and restores the previous one after.
class BlasThreads {
 public:
  explicit BlasThreads(int n) : saved_(openblas_get_num_threads()) {
    if (n != saved_) openblas_set_num_threads(n);
  }
  ~BlasThreads() {
    if (openblas_get_num_threads() != saved_) openblas_set_num_threads(saved_);
  }
  BlasThreads(const BlasThreads&) = delete;
  BlasThreads& operator=(const BlasThreads&) = delete;

 private:
  int saved_;
};

// Forward softmax of one score row in place: x[j] = exp(scale*x[j] - m) for
// j < valid (m = the row's max of scale*x), 0 for valid <= j < n. Returns the sum of
// the exponentials; *row_max receives m.
float softmax_row_unnormalised(float* x, int64_t valid, int64_t n, float scale, float* row_max) {
  // Two loops: with the store and the max in one, GCC kept it scalar (a chain of
  // vmaxss, 4 cycles an element: most of a decode step's softmax). The max is exact in
  // any order (only a zero's sign could differ, which changes no x - m).
#pragma omp simd
  for (int64_t j = 0; j < valid; ++j) x[j] *= scale;
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < valid; ++j) m = x[j] > m ? x[j] : m;  // NaN: false
  exp_args(x, valid, 1.0f, m);
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < valid; ++j) {
    const float e = exp_f32_clamped(x[j]);
    x[j] = e;
    sum += e;
  }
  std::fill(x + valid, x + n, 0.0f);
  *row_max = m;
  return sum;
}

// Backward probabilities of one score row in place: x[j] = exp(scale*x[j] - lse)
// for j < valid, 0 after.
void probs_row(float* x, int64_t valid, int64_t n, float scale, float lse) {
  exp_args(x, valid, scale, lse);
#pragma omp simd
  for (int64_t j = 0; j < valid; ++j) x[j] = exp_f32_clamped(x[j]);
  std::fill(x + valid, x + n, 0.0f);
}

// dS = scale * P * (dP - delta) in place over dp, for j < valid; 0 after.
void dscores_row(const float* p, float* dp, int64_t valid, int64_t n, float scale, float delta) {
#pragma omp simd
  for (int64_t j = 0; j < valid; ++j) dp[j] = scale * p[j] * (dp[j] - delta);
  std::fill(dp + valid, dp + n, 0.0f);
}

struct Dims {
  int64_t B, T, H, dqk, dv;
  int64_t pairs() const { return B * H; }
  int64_t tiles() const { return (T + kQueryTile - 1) / kQueryTile; }
};

// One forward work item: query tile `tile` of pair (b, h). s: (kQueryTile, T)
// scratch, o: (kQueryTile, dv) scratch, m and l: (kQueryTile).
void forward_tile(const Dims& dm, const Rows& q, const Rows& k, const Rows& v, float scale,
                  int64_t b, int64_t h, int64_t tile, const RowWriter& out, float* lse, float* s,
                  float* o, float* m, float* l) {
  const int64_t i0 = tile * kQueryTile, i1 = std::min(dm.T, i0 + kQueryTile);
  const int bq = int(i1 - i0), n = int(i1);  // rows and keys (the causal prefix)
  // S (bq, n) = Q[i0:i1] K[0:n]^T.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bq, n, int(dm.dqk), 1.0f, q.row(b, i0, h),
              q.ld, k.row(b, 0, h), k.ld, 0.0f, s, n);
  for (int r = 0; r < bq; ++r)
    l[r] = softmax_row_unnormalised(s + int64_t(r) * n, i0 + r + 1, n, scale, &m[r]);
  // O (bq, dv) = P V[0:n], then each row divided by its sum.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bq, int(dm.dv), n, 1.0f, s, n,
              v.row(b, 0, h), v.ld, 0.0f, o, int(dm.dv));
  float* lse_row = lse + (b * dm.H + h) * dm.T;
  for (int r = 0; r < bq; ++r) {
    float* orow = o + int64_t(r) * dm.dv;
    const float inv = 1.0f / l[r];
    for (int64_t j = 0; j < dm.dv; ++j) orow[j] *= inv;
    out.store(b, i0 + r, h, orow);
    lse_row[i0 + r] = m[r] + std::log(l[r]);
  }
}

// Per-thread scratch of the backward pass.
struct BackwardScratch {
  std::vector<float> p, ds, dq, dk, dv, delta;
  BackwardScratch(const Dims& dm)
      : p(size_t(kQueryTile * dm.T)), ds(size_t(kQueryTile * dm.T)),
        dq(size_t(kQueryTile * dm.dqk)), dk(size_t(dm.T * dm.dqk)), dv(size_t(dm.T * dm.dv)),
        delta(size_t(dm.T)) {}
};

// The whole backward of pair (b, h): query tiles in ascending order, dk and dv
// accumulated in fp32 scratch and written at the end.
void backward_pair(const Dims& dm, const Rows& dout, const Rows& q, const Rows& k, const Rows& v,
                   const Rows& out, const float* lse, float scale, int64_t b, int64_t h,
                   const RowWriter& dq, const RowWriter& dk, const RowWriter& dv,
                   BackwardScratch& w) {
  const int64_t T = dm.T;
  const int dqk = int(dm.dqk), dvd = int(dm.dv);
  // delta[t] = dot(dout[t], out[t]) = sum_s P[t, s] dP[t, s].
  for (int64_t t = 0; t < T; ++t) {
    const float* g = dout.row(b, t, h);
    const float* o = out.row(b, t, h);
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < dm.dv; ++j) acc += g[j] * o[j];
    w.delta[size_t(t)] = acc;
  }
  std::fill(w.dk.begin(), w.dk.end(), 0.0f);
  std::fill(w.dv.begin(), w.dv.end(), 0.0f);
  const float* lse_row = lse + (b * dm.H + h) * T;
  for (int64_t tile = 0; tile < dm.tiles(); ++tile) {
    const int64_t i0 = tile * kQueryTile, i1 = std::min(T, i0 + kQueryTile);
    const int bq = int(i1 - i0), n = int(i1);
    float* p = w.p.data();
    float* ds = w.ds.data();
    // P (bq, n) = exp(scale * Q[i0:i1] K[0:n]^T - lse), causal.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bq, n, dqk, 1.0f, q.row(b, i0, h), q.ld,
                k.row(b, 0, h), k.ld, 0.0f, p, n);
    for (int r = 0; r < bq; ++r) probs_row(p + int64_t(r) * n, i0 + r + 1, n, scale, lse_row[i0 + r]);
    // dV[0:n] += P^T dO[i0:i1].
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, dvd, bq, 1.0f, p, n,
                dout.row(b, i0, h), dout.ld, 1.0f, w.dv.data(), dvd);
    // dP (bq, n) = dO[i0:i1] V[0:n]^T, then dS = scale * P * (dP - delta).
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bq, n, dvd, 1.0f, dout.row(b, i0, h),
                dout.ld, v.row(b, 0, h), v.ld, 0.0f, ds, n);
    for (int r = 0; r < bq; ++r)
      dscores_row(p + int64_t(r) * n, ds + int64_t(r) * n, i0 + r + 1, n, scale,
                  w.delta[size_t(i0 + r)]);
    // dQ[i0:i1] = dS K[0:n] (complete: every key of these queries is in the prefix).
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bq, dqk, n, 1.0f, ds, n,
                k.row(b, 0, h), k.ld, 0.0f, w.dq.data(), dqk);
    for (int r = 0; r < bq; ++r) dq.store(b, i0 + r, h, w.dq.data() + int64_t(r) * dqk);
    // dK[0:n] += dS^T Q[i0:i1].
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, dqk, bq, 1.0f, ds, n,
                q.row(b, i0, h), q.ld, 1.0f, w.dk.data(), dqk);
  }
  for (int64_t t = 0; t < T; ++t) {
    dk.store(b, t, h, w.dk.data() + t * dqk);
    dv.store(b, t, h, w.dv.data() + t * dvd);
  }
}

}  // namespace

void CpuBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                                   Tensor& out, Tensor& lse) {
  const char* op = "attention_forward";
  check_heads(q, op, "q");
  check_heads(k, op, "k");
  check_heads(v, op, "v");
  check_heads(out, op, "out");
  const Dims dm{q.size(0), q.size(1), q.size(2), q.size(3), v.size(3)};
  check_shape(k, q.shape(), op, "k");
  check_shape(v, {dm.B, dm.T, dm.H, dm.dv}, op, "v");
  check_shape(out, v.shape(), op, "out");
  check_lse(lse, dm.B, dm.H, dm.T, op);
  if (dm.B == 0 || dm.T == 0 || dm.H == 0) return;

  std::unique_ptr<float[]> sq, sk, sv;
  const Rows rq = f32_rows(q, threads_, &sq), rk = f32_rows(k, threads_, &sk),
             rv = f32_rows(v, threads_, &sv);
  const RowWriter wout = writer(out);
  float* plse = lse.data<float>();
  const int64_t pairs = dm.pairs(), tiles = dm.tiles(), items = pairs * tiles;
  const int nthreads = int(std::min<int64_t>(threads_, items));
  BlasThreads blas(1);
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<float> s(size_t(kQueryTile * dm.T)), o(size_t(kQueryTile * dm.dv));
    std::vector<float> m(kQueryTile), l(kQueryTile);
    // Longest tiles (latest queries) first, for load balance under the causal mask.
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t tile = tiles - 1 - item / pairs, pair = item % pairs;
      forward_tile(dm, rq, rk, rv, scale, pair / dm.H, pair % dm.H, tile, wout, plse, s.data(),
                   o.data(), m.data(), l.data());
    }
  }
}

void CpuBackend::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                    const Tensor& v, const Tensor& out, const Tensor& lse,
                                    float scale, Tensor& dq, Tensor& dk, Tensor& dv) {
  const char* op = "attention_backward";
  const std::pair<const Tensor*, const char*> args[] = {
      {&dout, "dout"}, {&q, "q"}, {&k, "k"}, {&v, "v"}, {&out, "out"},
      {&dq, "dq"},     {&dk, "dk"}, {&dv, "dv"}};
  for (const auto& a : args) check_heads(*a.first, op, a.second);
  const Dims dm{q.size(0), q.size(1), q.size(2), q.size(3), v.size(3)};
  check_shape(k, q.shape(), op, "k");
  check_shape(v, {dm.B, dm.T, dm.H, dm.dv}, op, "v");
  check_shape(out, v.shape(), op, "out");
  check_shape(dout, v.shape(), op, "dout");
  check_shape(dq, q.shape(), op, "dq");
  check_shape(dk, q.shape(), op, "dk");
  check_shape(dv, v.shape(), op, "dv");
  check_lse(lse, dm.B, dm.H, dm.T, op);
  if (dm.B == 0 || dm.T == 0 || dm.H == 0) return;

  std::unique_ptr<float[]> sg, sq, sk, sv, so;
  const Rows rg = f32_rows(dout, threads_, &sg), rq = f32_rows(q, threads_, &sq),
             rk = f32_rows(k, threads_, &sk), rv = f32_rows(v, threads_, &sv),
             ro = f32_rows(out, threads_, &so);
  const RowWriter wdq = writer(dq), wdk = writer(dk), wdv = writer(dv);
  const float* plse = lse.data<float>();
  const int64_t pairs = dm.pairs();
  const int nthreads = int(std::min<int64_t>(threads_, pairs));
  BlasThreads blas(1);
#pragma omp parallel num_threads(nthreads)
  {
    BackwardScratch w(dm);
#pragma omp for schedule(dynamic, 1)
    for (int64_t pair = 0; pair < pairs; ++pair)
      backward_pair(dm, rg, rq, rk, rv, ro, plse, scale, pair / dm.H, pair % dm.H, wdq, wdk, wdv, w);
  }
}

}  // namespace zeroth

namespace zeroth {

// Absorbed-MLA decode attention (backend.h): one work item per row n, all heads at once:
// S (H, len) = scale * q[n] (H, R) @ K^T with K = cache[slots[n], :len, :] (len, R),
// softmax per head row, out[n] (H, Rv) = P @ K[:, :Rv] / rowsum. Two few-row products per
// row (cpu_rows_gemm.cpp) on one thread, so a row's arithmetic is the same whatever N, the
// other rows and the thread count.
void CpuBackend::mla_decode_attention(const Tensor& q, const Tensor& cache, const Tensor& slots,
                                      const Tensor& lengths, float scale, Tensor& out) {
  const char* op = "mla_decode_attention";
  for (const Tensor* t : {&q, &cache, &slots, &lengths, const_cast<const Tensor*>(&out)}) {
    cpu::check_cpu(*t, op, "argument");
    cpu::check_contiguous(*t, op, "argument");
  }
  ZT_ASSERT(q.dtype() == DType::F32 && q.dim() == 3, "%s: q is %s, expected F32 (N, H, R)", op,
            q.str().c_str());
  const int64_t n = q.size(0), h = q.size(1), r = q.size(2);
  ZT_ASSERT(cache.dtype() == DType::F32 && cache.dim() == 3 && cache.size(2) == r,
            "%s: cache is %s, expected F32 (S, Tmax, %lld)", op, cache.str().c_str(), (long long)r);
  ZT_ASSERT(out.dtype() == DType::F32 && out.dim() == 3 && out.size(0) == n && out.size(1) == h &&
                out.size(2) <= r,
            "%s: out is %s, expected F32 (%lld, %lld, Rv <= %lld)", op, out.str().c_str(),
            (long long)n, (long long)h, (long long)r);
  for (const Tensor* t : {&slots, &lengths})
    ZT_ASSERT(t->dtype() == DType::I32 && t->dim() == 1 && t->size(0) == n,
              "%s: slots/lengths is %s, expected I32 (%lld)", op, t->str().c_str(), (long long)n);
  const int64_t num_slots = cache.size(0), tmax = cache.size(1), rv = out.size(2);
  const int32_t* ps = slots.data<int32_t>();
  const int32_t* pl = lengths.data<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    ZT_ASSERT(ps[i] >= 0 && ps[i] < num_slots && pl[i] >= 1 && pl[i] <= tmax,
              "%s: row %lld: slot %d of %lld, length %d of max %lld", op, (long long)i, ps[i],
              (long long)num_slots, pl[i], (long long)tmax);
  if (n == 0 || h == 0) return;
  const float* pq = q.data<float>();
  const float* pc = cache.data<float>();
  float* po = out.data<float>();
  // Per row (sequence): scores S (H, len) = q K^T and O (H, Rv) = softmax(S) K[:, :Rv]
  // with the register-blocked few-row kernels of cpu_rows_gemm.cpp (OpenBLAS packs the
  // cached keys on every call, which at H = 8 query rows costs more than the product).
  // Each element is one fixed-order reduction: a row's result depends neither on the
  // other rows nor on the thread count.
  // Each thread takes one contiguous range of rows with an equal share of the cached
  // positions, so that it knows the row it does next: that row's cache (len x R floats)
  // is prefetched into L2 while this row is computed (it comes from memory once per
  // step; without the prefetch the thread waited for it): kScoresShare of it during the
  // scores, the rest during P K, so the memory is busy during both.
  constexpr double kScoresShare = 0.5;
  const int nthreads = int(std::min<int64_t>(threads_, n));
  std::vector<int64_t> first(static_cast<size_t>(nthreads) + 1, n);
  {
    int64_t total = 0;
    for (int64_t i = 0; i < n; ++i) total += pl[i];
    int64_t acc = 0, t = 0;
    first[0] = 0;
    for (int64_t i = 0; i < n && t + 1 < nthreads; ++i) {
      acc += pl[i];
      // Row i ends thread t's share once the positions so far reach its end.
      while (t + 1 < nthreads && acc * nthreads >= (t + 1) * total) first[size_t(++t)] = i + 1;
    }
  }
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<float> s;
    std::vector<const float*> qr(static_cast<size_t>(h)), pr(static_cast<size_t>(h));
    std::vector<float*> sr(static_cast<size_t>(h)), orow(static_cast<size_t>(h));
#ifdef _OPENMP
    const int tid = omp_get_thread_num(), team = omp_get_num_threads();
#else
    const int tid = 0, team = 1;
#endif
    // (A team smaller than asked for takes the shares in turn.)
    for (int part = tid; part < nthreads; part += team) {
      const int64_t i_end = first[size_t(part) + 1];
      for (int64_t i = first[size_t(part)]; i < i_end; ++i) {
        const int64_t len = pl[i];
        const float* k = pc + int64_t(ps[i]) * tmax * r;
        s.resize(size_t(h * len));
        float* o = po + i * h * rv;
        for (int64_t hh = 0; hh < h; ++hh) {
          qr[size_t(hh)] = pq + (i * h + hh) * r;
          sr[size_t(hh)] = s.data() + hh * len;
          pr[size_t(hh)] = sr[size_t(hh)];
          orow[size_t(hh)] = o + hh * rv;
        }
        const bool more = i + 1 < i_end;
        const float* next = more ? pc + int64_t(ps[i + 1]) * tmax * r : nullptr;
        const int64_t next_n = more ? int64_t(pl[i + 1]) * r : 0;
        const int64_t next_s = int64_t(double(next_n) * kScoresShare) / 16 * 16;
        cpu::rows_gemm_nt_serial(h, qr.data(), k, r, 0, len, r, 1.0f, sr.data(), false, next,
                                 next_s);
        for (int64_t hh = 0; hh < h; ++hh) {
          float m;
          const float inv = 1.0f / softmax_row_unnormalised(sr[size_t(hh)], len, len, scale, &m);
          float* sp = sr[size_t(hh)];
          // Normalised before the product: O = P K, P summing to 1.
          for (int64_t j = 0; j < len; ++j) sp[j] *= inv;
        }
        cpu::rows_gemm_nn_serial(h, pr.data(), len, k, r, rv, orow.data(),
                                 more ? next + next_s : nullptr, next_n - next_s);
      }
    }
  }
}

}  // namespace zeroth
