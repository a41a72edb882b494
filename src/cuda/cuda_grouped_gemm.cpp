// CudaBackend::grouped_gemm and grouped_gemm_wgrad: the experts' GEMMs as ONE
// cublasGemmGroupedBatchedEx call (cuBLAS 12.5+), one cuBLAS group per non-empty
// expert (group_size 1), empty experts skipped.
//
// Operand mapping (cuBLAS is column-major; a row-major matrix with row stride ld read
// column-major with the same ld is its transpose), for expert e with m_e rows starting
// at row r_e:
//   grouped_gemm: out_e (m_e, N) = x_e (m_e, K) @ op(w_e), i.e. column-major
//     out_e^T (N, m_e) = op(w_e)^T x_e^T: cuBLAS A = w_e with transa = T when trans_w
//     (w_e is (N, K), read column-major as (K, N)) and N otherwise (w_e is (K, N), read
//     as (N, K) = op(w_e)^T already); B = x_e (read as (K, m_e)) with transb = N;
//     m = N, n = m_e, k = K; lda/ldb/ldc = the row strides of w, x, out.
//   grouped_gemm_wgrad: dw_e (N, K) = dout_e^T (N, m_e) @ x_e (m_e, K), i.e.
//     column-major dw_e^T (K, N) = x_e^T (K, m_e) @ dout_e (m_e, N): A = x_e (read as
//     (K, m_e)) with transa = N; B = dout_e (read as (N, m_e)) with transb = T;
//     m = K, n = N, k = m_e; beta = 1 when accumulating, else 0 (and the dw of an
//     empty expert is zeroed by a kernel, since no GEMM writes it).
// Types: the grouped call takes A, B and C of one type (F32 or BF16, fp32 compute);
// other combinations (BF16 inputs into an F32 dw or out, F32 inputs into BF16) and a
// library that answers CUBLAS_STATUS_NOT_SUPPORTED fall back to one CudaBackend::gemm
// per non-empty expert on the same stream. Must not: synchronise with the host
// (the pointer table goes up with a stream-ordered cudaMemcpyAsync) or allocate
// anything that outlives the call.
#include <atomic>
#include <climits>
#include <cstdint>
#include <vector>

#include "cuda/cuda_backend_impl.h"
#include "cuda/cuda_check.h"
#include "elementwise.h"  // kernels/: launch_scale_matrix_stack
#include "zeroth/log.h"

namespace zeroth {

namespace {

// Host-side description of one grouped call: entry g is cuBLAS group g.
struct GroupedProblems {
  std::vector<cublasOperation_t> transa, transb;
  std::vector<int> m, n, k, lda, ldb, ldc, group_size;
  std::vector<float> alpha, beta;
  std::vector<const void*> a, b;
  std::vector<void*> c;

  void add(cublasOperation_t ta, cublasOperation_t tb, int64_t m_, int64_t n_, int64_t k_,
           const void* a_, int64_t lda_, const void* b_, int64_t ldb_, void* c_, int64_t ldc_,
           float alpha_, float beta_) {
    for (int64_t v : {m_, n_, k_, lda_, ldb_, ldc_})
      ZT_ASSERT(v >= 0 && v <= INT_MAX, "grouped gemm: size %lld exceeds cuBLAS's int",
                (long long)v);
    transa.push_back(ta);
    transb.push_back(tb);
    m.push_back(int(m_));
    n.push_back(int(n_));
    k.push_back(int(k_));
    lda.push_back(int(lda_));
    ldb.push_back(int(ldb_));
    ldc.push_back(int(ldc_));
    group_size.push_back(1);
    alpha.push_back(alpha_);
    beta.push_back(beta_);
    a.push_back(a_);
    b.push_back(b_);
    c.push_back(c_);
  }
  int count() const { return int(m.size()); }
};

// The row stride of t's last two dimensions as cuBLAS's leading dimension: the
// last dimension must be contiguous; a single row (never stepped over) reports
// max(1, cols), as cuBLAS requires ld >= cols.
int64_t leading_dim(const Tensor& t, const char* op, const char* arg) {
  const int64_t rows = t.size(-2), cols = t.size(-1);
  ZT_ASSERT(cols <= 1 || t.stride(-1) == 1, "%s: %s %s needs a contiguous last dimension", op,
            arg, t.str().c_str());
  const int64_t min_ld = cols > 1 ? cols : 1;
  const int64_t ld = (rows > 1 && cols > 0) ? t.stride(-2) : min_ld;
  ZT_ASSERT(ld >= min_ld, "%s: %s %s has row stride %lld < %lld columns", op, arg,
            t.str().c_str(), (long long)ld, (long long)cols);
  return ld;
}

cudaDataType cublas_type(DType t) { return t == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F; }

// The cuBLAS type combinations cublasGemmGroupedBatchedEx documents with
// CUBLAS_COMPUTE_32F that this backend uses: A = B = C, F32 or BF16.
bool grouped_types_supported(DType ab, DType c) {
  return ab == c && (ab == DType::F32 || ab == DType::BF16);
}

// The group sizes as checked row offsets: sum(group_rows) must equal rows.
void check_groups(const std::vector<int64_t>& group_rows, int64_t experts, int64_t rows,
                  const char* op) {
  ZT_ASSERT(int64_t(group_rows.size()) == experts, "%s: %zu group sizes for %lld experts", op,
            group_rows.size(), (long long)experts);
  int64_t total = 0;
  for (size_t e = 0; e < group_rows.size(); ++e) {
    ZT_ASSERT(group_rows[e] >= 0, "%s: group %zu has %lld rows", op, e, (long long)group_rows[e]);
    total += group_rows[e];
  }
  ZT_ASSERT(total == rows, "%s: group sizes sum to %lld, x has %lld rows", op, (long long)total,
            (long long)rows);
}

void warn_grouped_fallback(const char* op) {
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true))
    ZT_LOG_WARN("%s: cublasGemmGroupedBatchedEx is not supported here; using one GEMM per "
                "expert",
                op);
}

// Runs `p` as one grouped call; false when cuBLAS answers NOT_SUPPORTED (nothing
// was computed), any other failure throws.
bool run_grouped(Backend& be, cublasHandle_t handle, cudaStream_t stream,
                 const GroupedProblems& p, DType ab_dtype, DType c_dtype) {
  const int g = p.count();
  std::vector<const void*> table(size_t(3) * g);  // A pointers, B pointers, C pointers
  for (int i = 0; i < g; ++i) {
    table[i] = p.a[i];
    table[g + i] = p.b[i];
    table[2 * g + i] = p.c[i];
  }
  const size_t bytes = table.size() * sizeof(void*);
  void* dev_table = be.allocate(bytes);
  cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
  try {
    // Pageable source: staged before the call returns, so `table` may go away.
    ZT_CUDA_CHECK(
        cudaMemcpyAsync(dev_table, table.data(), bytes, cudaMemcpyHostToDevice, stream));
    const void* const* dev_a = static_cast<const void* const*>(dev_table);  // (3g)
    void* const* dev_c = static_cast<void* const*>(dev_table) + 2 * g;
    status = cublasGemmGroupedBatchedEx(
        handle, p.transa.data(), p.transb.data(), p.m.data(), p.n.data(), p.k.data(),
        p.alpha.data(), dev_a, cublas_type(ab_dtype), p.lda.data(), dev_a + g,
        cublas_type(ab_dtype), p.ldb.data(), p.beta.data(),
        dev_c, cublas_type(c_dtype), p.ldc.data(), g, p.group_size.data(), CUBLAS_COMPUTE_32F);
  } catch (...) {
    be.deallocate(dev_table);
    throw;
  }
  be.deallocate(dev_table);  // stream-ordered: after the GEMMs
  if (status == CUBLAS_STATUS_NOT_SUPPORTED) return false;
  ZT_CUBLAS_CHECK(status);
  return true;
}

}  // namespace

void CudaBackend::grouped_gemm(const Tensor& x, const Tensor& w, bool trans_w,
                               const std::vector<int64_t>& group_rows, Tensor& out, float alpha,
                               float beta) {
  const char* op = "grouped_gemm";
  require_here(x, op, "x");
  require_here(w, op, "w");
  require_here(out, op, "out");
  ZT_ASSERT(x.dim() == 2 && w.dim() == 3 && out.dim() == 2,
            "%s: x %s must be (M, K), w %s (E, N, K) or (E, K, N), out %s (M, N)", op,
            x.str().c_str(), w.str().c_str(), out.str().c_str());
  const int64_t M = x.size(0), K = x.size(1), E = w.size(0);
  const int64_t N = trans_w ? w.size(1) : w.size(2);
  const int64_t Kw = trans_w ? w.size(2) : w.size(1);
  ZT_ASSERT(Kw == K && out.size(0) == M && out.size(1) == N,
            "%s: shapes do not match: x %s, w %s (%s), out %s", op, x.str().c_str(),
            w.str().c_str(), trans_w ? "(E, N, K)" : "(E, K, N)", out.str().c_str());
  ZT_ASSERT(x.dtype() == w.dtype() && (x.dtype() == DType::F32 || x.dtype() == DType::BF16),
            "%s: x %s and w %s must both be F32 or both BF16", op, x.str().c_str(),
            w.str().c_str());
  ZT_ASSERT(out.dtype() == DType::F32 || out.dtype() == DType::BF16,
            "%s: out %s must be F32 or BF16", op, out.str().c_str());
  check_groups(group_rows, E, M, op);
  const int64_t ld_x = leading_dim(x, op, "x");
  const int64_t ld_w = leading_dim(w, op, "w");
  const int64_t ld_out = leading_dim(out, op, "out");
  if (M == 0 || N == 0) return;

  activate();
  if (K == 0 || alpha == 0.0f) {  // no product: out = beta * out (BLAS semantics)
    if (beta != 1.0f)
      launch_scale_matrix_stack(out.data_ptr(), out.dtype(), 1, M, N, ld_out, 0, beta, stream_);
    return;
  }

  const auto per_expert_gemms = [&]() {
    int64_t row = 0;
    for (int64_t e = 0; e < E; ++e) {
      const int64_t rows = group_rows[size_t(e)];
      if (rows > 0) {
        Tensor out_e = out.narrow(0, row, rows);
        gemm(x.narrow(0, row, rows), false, w.select(0, e), trans_w, out_e, alpha, beta);
      }
      row += rows;
    }
  };
  if (!grouped_types_supported(x.dtype(), out.dtype())) {
    per_expert_gemms();
    return;
  }

  const size_t xs = x.element_size(), ws = w.element_size(), os = out.element_size();
  const char* x_base = static_cast<const char*>(x.data_ptr());
  const char* w_base = static_cast<const char*>(w.data_ptr());
  char* out_base = static_cast<char*>(out.data_ptr());
  GroupedProblems p;
  int64_t row = 0;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = group_rows[size_t(e)];
    if (rows > 0)
      p.add(trans_w ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, N, rows, K,
            w_base + size_t(e * w.stride(0)) * ws, ld_w, x_base + size_t(row * ld_x) * xs, ld_x,
            out_base + size_t(row * ld_out) * os, ld_out, alpha, beta);
    row += rows;
  }
  if (p.count() == 0) return;
  if (!run_grouped(*this, cublas_, stream_, p, x.dtype(), out.dtype())) {
    warn_grouped_fallback(op);
    per_expert_gemms();
  }
}

void CudaBackend::grouped_gemm_wgrad(const Tensor& dout, const Tensor& x,
                                     const std::vector<int64_t>& group_rows, Tensor& dw,
                                     bool accumulate) {
  const char* op = "grouped_gemm_wgrad";
  require_here(dout, op, "dout");
  require_here(x, op, "x");
  require_here(dw, op, "dw");
  ZT_ASSERT(dout.dim() == 2 && x.dim() == 2 && dw.dim() == 3,
            "%s: dout %s must be (M, N), x %s (M, K), dw %s (E, N, K)", op, dout.str().c_str(),
            x.str().c_str(), dw.str().c_str());
  const int64_t M = x.size(0), K = x.size(1), N = dout.size(1), E = dw.size(0);
  ZT_ASSERT(dout.size(0) == M && dw.size(1) == N && dw.size(2) == K,
            "%s: shapes do not match: dout %s, x %s, dw %s", op, dout.str().c_str(),
            x.str().c_str(), dw.str().c_str());
  ZT_ASSERT(dout.dtype() == x.dtype() && (x.dtype() == DType::F32 || x.dtype() == DType::BF16),
            "%s: dout %s and x %s must both be F32 or both BF16", op, dout.str().c_str(),
            x.str().c_str());
  ZT_ASSERT(dw.dtype() == DType::F32, "%s: dw %s must be F32", op, dw.str().c_str());
  check_groups(group_rows, E, M, op);
  const int64_t ld_dout = leading_dim(dout, op, "dout");
  const int64_t ld_x = leading_dim(x, op, "x");
  const int64_t ld_dw = leading_dim(dw, op, "dw");
  if (N == 0 || K == 0 || E == 0) return;

  activate();
  const float beta = accumulate ? 1.0f : 0.0f;
  float* dw_base = static_cast<float*>(dw.data_ptr());
  // An expert without rows has dw[e] = 0 (or keeps it when accumulating).
  if (!accumulate)
    for (int64_t e = 0; e < E; ++e)
      if (group_rows[size_t(e)] == 0)
        launch_scale_matrix_stack(dw_base + e * dw.stride(0), DType::F32, 1, N, K, ld_dw, 0, 0.0f,
                                  stream_);

  const auto per_expert_gemms = [&]() {
    int64_t row = 0;
    for (int64_t e = 0; e < E; ++e) {
      const int64_t rows = group_rows[size_t(e)];
      if (rows > 0) {
        Tensor dw_e = dw.select(0, e);
        gemm(dout.narrow(0, row, rows), true, x.narrow(0, row, rows), false, dw_e, 1.0f, beta);
      }
      row += rows;
    }
  };
  if (!grouped_types_supported(x.dtype(), dw.dtype())) {
    per_expert_gemms();
    return;
  }

  const size_t es = x.element_size();  // dout and x share the dtype
  const char* x_base = static_cast<const char*>(x.data_ptr());
  const char* dout_base = static_cast<const char*>(dout.data_ptr());
  GroupedProblems p;
  int64_t row = 0;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t rows = group_rows[size_t(e)];
    if (rows > 0)
      p.add(CUBLAS_OP_N, CUBLAS_OP_T, K, N, rows, x_base + size_t(row * ld_x) * es, ld_x,
            dout_base + size_t(row * ld_dout) * es, ld_dout, dw_base + e * dw.stride(0), ld_dw,
            1.0f, beta);
    row += rows;
  }
  if (p.count() == 0) return;
  if (!run_grouped(*this, cublas_, stream_, p, x.dtype(), dw.dtype())) {
    warn_grouped_fallback(op);
    per_expert_gemms();
  }
}

}  // namespace zeroth
