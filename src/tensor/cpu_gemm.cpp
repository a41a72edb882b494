// CpuBackend::gemm: C = alpha * op(A) @ op(B) + beta * C through OpenBLAS cblas_sgemm,
// or, under set_row_invariant_gemm (a decode step's linear layers: a few rows against a
// transposed B), through cpu::rows_gemm_nt (cpu_rows_gemm.cpp), which does not pack B and
// computes each row alone.
//
// Owns: operand description (batch, row stride, batch stride), BF16 <-> f32 scratch
// conversion, the batch loop and the fold of a row-contiguous 3-D A into one GEMM,
// and how a product is spread over threads.
// Must not: implement a matrix product itself (OpenBLAS, or cpu_rows_gemm.cpp).
//
// Threads: OpenBLAS runs single-threaded (make_cpu_backend sets it to one thread);
// this file splits each product into one block of C per OpenMP thread (rows when M
// >= N, else columns), and a batched product over batch items. The Debian OpenBLAS
// is the pthread build: its pool and libgomp's are separate, and libgomp's workers
// spin for milliseconds after every parallel region of the other ops (no
// OMP_WAIT_POLICY set), starving a threaded sgemm that follows. Measured on the
// 2-core box (docs/perf.md): expert GEMMs (256, 512) x (512, 256) at ~2 GFLOP/s with
// a threaded OpenBLAS after an OpenMP op, ~25 GFLOP/s with one pool. A C element's
// reduction is one single-threaded sgemm call either way, so the row or column block
// it falls in does not change its value.
#include <cblas.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "tensor/cpu_backend.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

// A stack of matrices as stored (before any transpose): (batch, rows, cols) with
// unit column stride, row stride `ld` and batch stride `batch_stride` (elements; 0
// when a 2-D operand is broadcast across the batch).
struct Operand {
  void* data = nullptr;
  DType dtype = DType::F32;
  int64_t batch = 1;
  int64_t batch_stride = 0;
  int64_t rows = 0, cols = 0, ld = 1;
  bool batched = false;  // a 3-D tensor
};

Operand describe(const Tensor& t, const char* arg) {
  cpu::check_cpu(t, "gemm", arg);
  ZT_ASSERT(t.dim() == 2 || t.dim() == 3, "gemm: %s is %s, expected 2-D or 3-D", arg,
            t.str().c_str());
  ZT_ASSERT(t.dtype() == DType::F32 || t.dtype() == DType::BF16,
            "gemm: %s is %s, expected F32 or BF16", arg, t.str().c_str());
  Operand o;
  o.data = t.data_ptr();
  o.dtype = t.dtype();
  o.batched = t.dim() == 3;
  o.batch = o.batched ? t.size(0) : 1;
  o.batch_stride = o.batched ? t.stride(0) : 0;
  o.rows = t.size(-2);
  o.cols = t.size(-1);
  ZT_ASSERT(o.cols <= 1 || t.stride(-1) == 1, "gemm: %s (%s, strides %s) needs a contiguous last dimension",
            arg, t.str().c_str(), shape_str(t.strides()).c_str());
  o.ld = o.rows > 1 ? t.stride(-2) : std::max<int64_t>(o.cols, 1);
  ZT_ASSERT(o.ld >= std::max<int64_t>(o.cols, 1), "gemm: %s (%s) has row stride %lld < %lld columns",
            arg, t.str().c_str(), (long long)o.ld, (long long)o.cols);
  ZT_ASSERT(o.rows <= INT_MAX && o.cols <= INT_MAX && o.ld <= INT_MAX,
            "gemm: %s (%s) is too large for 32-bit BLAS indices", arg, t.str().c_str());
  return o;
}

// BF16 operand -> dense f32 scratch (batch, rows, cols), converted row by row in parallel.
Operand to_dense_f32(const Operand& o, int threads, std::vector<float>* scratch) {
  int64_t nrows = o.batch * o.rows;
  scratch->assign(size_t(nrows * o.cols), 0.0f);
  float* dst = scratch->data();
  const uint16_t* src = static_cast<const uint16_t*>(o.data);
  cpu::parallel_blocks(threads, nrows, 64, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      int64_t bi = r / o.rows, ri = r % o.rows;
      cpu::to_f32(src + bi * o.batch_stride + ri * o.ld, DType::BF16, o.cols, dst + r * o.cols);
    }
  });
  Operand d = o;
  d.data = dst;
  d.dtype = DType::F32;
  d.ld = std::max<int64_t>(o.cols, 1);
  d.batch_stride = o.batched ? o.rows * o.cols : 0;
  return d;
}

// Dense f32 scratch -> BF16 operand's strided storage, rounding to nearest even.
void from_dense_f32(const float* src, const Operand& o, int threads) {
  int64_t nrows = o.batch * o.rows;
  uint16_t* dst = static_cast<uint16_t*>(o.data);
  cpu::parallel_blocks(threads, nrows, 64, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      int64_t bi = r / o.rows, ri = r % o.rows;
      cpu::from_f32(src + r * o.cols, DType::BF16, o.cols, dst + bi * o.batch_stride + ri * o.ld);
    }
  });
}

// C *= beta over the (batch, rows, cols) f32 stack; beta == 0 writes zeros (NaNs dropped).
void scale_f32(const Operand& c, float beta, int threads) {
  if (beta == 1.0f) return;
  float* base = static_cast<float*>(c.data);
  cpu::parallel_blocks(threads, c.batch * c.rows, 64, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      float* row = base + (r / c.rows) * c.batch_stride + (r % c.rows) * c.ld;
      if (beta == 0.0f) {
        std::fill(row, row + c.cols, 0.0f);
      } else {
        for (int64_t j = 0; j < c.cols; ++j) row[j] *= beta;
      }
    }
  });
}

// Below this many multiply-adds a product runs on the calling thread.
constexpr double kMinParallelMacs = 64.0 * 64.0 * 64.0;

// One row-major sgemm with beta = 1 (C already scaled), split over `threads` OpenMP
// threads by blocks of C rows (M >= N) or columns, each block a single-threaded call.
void sgemm_split(int threads, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k,
                 float alpha, const float* a, int lda, const float* b, int ldb, float* c, int ldc) {
  const bool by_rows = m >= n;
  const int len = by_rows ? m : n;
  int parts = threads;
  if (double(m) * double(n) * double(k) < kMinParallelMacs) parts = 1;
  parts = std::max(1, std::min(parts, (len + 15) / 16));
  if (parts == 1) {
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, 1.0f, c, ldc);
    return;
  }
  const int chunk = ((len + parts - 1) / parts + 15) / 16 * 16;  // multiples of 16
#pragma omp parallel for num_threads(parts) schedule(static, 1)
  for (int p = 0; p < parts; ++p) {
    const int begin = p * chunk, size = std::min(len, begin + chunk) - begin;
    if (size <= 0) continue;
    if (by_rows) {  // rows of op(A) and C
      const float* ap = ta == CblasNoTrans ? a + int64_t(begin) * lda : a + begin;
      cblas_sgemm(CblasRowMajor, ta, tb, size, n, k, alpha, ap, lda, b, ldb, 1.0f,
                  c + int64_t(begin) * ldc, ldc);
    } else {  // columns of op(B) and C
      const float* bp = tb == CblasNoTrans ? b + begin : b + int64_t(begin) * ldb;
      cblas_sgemm(CblasRowMajor, ta, tb, m, size, k, alpha, a, lda, bp, ldb, 1.0f, c + begin, ldc);
    }
  }
}

}  // namespace

void CpuBackend::gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
                      float alpha, float beta) {
  Operand oa = describe(a, "A"), ob = describe(b, "B"), oc = describe(c, "C");
  ZT_ASSERT(oa.dtype == ob.dtype, "gemm: A is %s but B is %s; both must be F32 or both BF16",
            a.str().c_str(), b.str().c_str());
  const int64_t m = trans_a ? oa.cols : oa.rows;
  const int64_t k = trans_a ? oa.rows : oa.cols;
  const int64_t kb = trans_b ? ob.cols : ob.rows;
  const int64_t n = trans_b ? ob.rows : ob.cols;
  ZT_ASSERT(k == kb && oc.rows == m && oc.cols == n,
            "gemm: op(A) (%lld, %lld) @ op(B) (%lld, %lld) -> C (%lld, %lld) mismatch "
            "(A %s%s, B %s%s, C %s)",
            (long long)m, (long long)k, (long long)kb, (long long)n, (long long)oc.rows,
            (long long)oc.cols, a.str().c_str(), trans_a ? " transposed" : "", b.str().c_str(),
            trans_b ? " transposed" : "", c.str().c_str());
  int64_t batch = 1;
  for (const Operand* o : {&oa, &ob, &oc})
    if (o->batched) batch = std::max(batch, o->batch);
  for (const Operand* o : {&oa, &ob, &oc})
    ZT_ASSERT(!o->batched || o->batch == batch,
              "gemm: batch sizes differ (A %s, B %s, C %s)", a.str().c_str(), b.str().c_str(),
              c.str().c_str());
  ZT_ASSERT(oc.batched || batch == 1, "gemm: C (%s) must carry the batch dimension %lld",
            c.str().c_str(), (long long)batch);
  if (m == 0 || n == 0 || batch == 0) return;

  std::vector<float> sa, sb, sc;
  if (oa.dtype == DType::BF16) {
    oa = to_dense_f32(oa, threads_, &sa);
    ob = to_dense_f32(ob, threads_, &sb);
  }
  Operand c32 = oc;
  if (oc.dtype == DType::BF16) {
    if (beta != 0.0f) {
      c32 = to_dense_f32(oc, threads_, &sc);
    } else {
      sc.assign(size_t(oc.batch * oc.rows * oc.cols), 0.0f);
      c32.data = sc.data();
      c32.dtype = DType::F32;
      c32.ld = std::max<int64_t>(oc.cols, 1);
      c32.batch_stride = oc.rows * oc.cols;
    }
  }
  // A (batch, M, K) whose batches follow each other row after row, B shared, C
  // likewise row-contiguous: one (batch*M, K) @ (K, N) product.
  const bool fold = batch > 1 && oa.batched && !trans_a && !ob.batched &&
                    oa.batch_stride == m * oa.ld && c32.batch_stride == m * c32.ld &&
                    batch * m <= INT_MAX;
  const bool rows_path = row_invariant_ && (batch == 1 || fold) && !trans_a && trans_b;
  // The few-row kernel writes C itself where beta = 0 and alpha > 0 (no zeroing pass
  // first: alpha * s equals fma(alpha, s, +0) bit for bit, as its sums are never -0).
  const bool overwrite = rows_path && k > 0 && beta == 0.0f && alpha > 0.0f;
  // beta is applied here, so OpenBLAS always runs with beta = 1 and never reads
  // stale NaNs as 0 * NaN; this also covers K == 0 and alpha == 0.
  if (!overwrite) scale_f32(c32, beta, threads_);

  if (k > 0 && alpha != 0.0f) {
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    const float* pa = static_cast<const float*>(oa.data);
    const float* pb = static_cast<const float*>(ob.data);
    float* pc = static_cast<float*>(c32.data);
    if (rows_path) {
      cpu::rows_gemm_nt(threads_, batch * m, n, k, alpha, pa, oa.ld, pb, ob.ld, pc, c32.ld,
                        !overwrite);
    } else if (fold) {
      sgemm_split(threads_, ta, tb, int(batch * m), int(n), int(k), alpha, pa, int(oa.ld), pb,
                  int(ob.ld), pc, int(c32.ld));
    } else if (batch >= threads_ && threads_ > 1) {
      // Whole batch items per thread (each item's sgemm as in the serial loop).
#pragma omp parallel for num_threads(threads_) schedule(static)
      for (int64_t i = 0; i < batch; ++i)
        cblas_sgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), alpha, pa + i * oa.batch_stride,
                    int(oa.ld), pb + i * ob.batch_stride, int(ob.ld), 1.0f,
                    pc + i * c32.batch_stride, int(c32.ld));
    } else {
      for (int64_t i = 0; i < batch; ++i)
        sgemm_split(threads_, ta, tb, int(m), int(n), int(k), alpha, pa + i * oa.batch_stride,
                    int(oa.ld), pb + i * ob.batch_stride, int(ob.ld), pc + i * c32.batch_stride,
                    int(c32.ld));
    }
  }
  if (oc.dtype == DType::BF16) from_dense_f32(sc.data(), oc, threads_);
}

}  // namespace zeroth
