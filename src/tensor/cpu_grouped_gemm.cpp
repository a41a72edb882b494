// CpuBackend grouped GEMMs for the routed experts: grouped_gemm (each expert's rows of
// x times that expert's weight) and grouped_gemm_wgrad (each expert's weight gradient).
//
// Owns: the group bookkeeping (row ranges from the host counts, zero-row groups
// skipped, or zeroed in the weight gradient). Each group is one CpuBackend::gemm on
// row-range views, so the arithmetic is OpenBLAS sgemm (BF16 operands go through the
// f32 scratch of cpu_gemm.cpp, converting only the rows and experts used).
// Must not: compute products itself, or reorder rows (the caller sorted them by expert).
#include <vector>

#include "tensor/cpu_backend.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

void check_groups(const std::vector<int64_t>& group_rows, int64_t experts, int64_t m,
                  const char* op) {
  ZT_ASSERT(int64_t(group_rows.size()) == experts, "%s: %zu group sizes for %lld experts", op,
            group_rows.size(), (long long)experts);
  int64_t sum = 0;
  for (size_t e = 0; e < group_rows.size(); ++e) {
    ZT_ASSERT(group_rows[e] >= 0, "%s: group %zu has %lld rows", op, e, (long long)group_rows[e]);
    sum += group_rows[e];
  }
  ZT_ASSERT(sum == m, "%s: group sizes sum to %lld, but the input has %lld rows", op,
            (long long)sum, (long long)m);
}

}  // namespace

void CpuBackend::grouped_gemm(const Tensor& x, const Tensor& w, bool trans_w,
                              const std::vector<int64_t>& group_rows, Tensor& out, float alpha,
                              float beta) {
  const char* op = "grouped_gemm";
  cpu::check_cpu(x, op, "x");
  cpu::check_cpu(w, op, "w");
  cpu::check_cpu(out, op, "out");
  ZT_ASSERT(x.dim() == 2 && w.dim() == 3 && out.dim() == 2,
            "%s: x %s, w %s, out %s: expected (M, K), (E, N, K) or (E, K, N), (M, N)", op,
            x.str().c_str(), w.str().c_str(), out.str().c_str());
  const int64_t m = x.size(0), k = x.size(1);
  const int64_t wk = trans_w ? w.size(2) : w.size(1), n = trans_w ? w.size(1) : w.size(2);
  ZT_ASSERT(wk == k && out.size(0) == m && out.size(1) == n,
            "%s: x %s @ w %s%s -> out %s: shapes do not match", op, x.str().c_str(),
            w.str().c_str(), trans_w ? " (transposed)" : "", out.str().c_str());
  check_groups(group_rows, w.size(0), m, op);
  int64_t start = 0;
  for (size_t e = 0; e < group_rows.size(); ++e) {
    const int64_t rows = group_rows[e];
    if (rows == 0) continue;
    Tensor xe = x.narrow(0, start, rows);
    Tensor oe = out.narrow(0, start, rows);
    gemm(xe, false, w.select(0, int64_t(e)), trans_w, oe, alpha, beta);
    start += rows;
  }
}

void CpuBackend::grouped_gemm_wgrad(const Tensor& dout, const Tensor& x,
                                    const std::vector<int64_t>& group_rows, Tensor& dw,
                                    bool accumulate) {
  const char* op = "grouped_gemm_wgrad";
  cpu::check_cpu(dout, op, "dout");
  cpu::check_cpu(x, op, "x");
  cpu::check_cpu(dw, op, "dw");
  cpu::check_contiguous(dw, op, "dw");
  ZT_ASSERT(dw.dtype() == DType::F32, "%s: dw is %s, expected F32", op, dw.str().c_str());
  ZT_ASSERT(dout.dim() == 2 && x.dim() == 2 && dw.dim() == 3 && dout.size(0) == x.size(0) &&
                dw.size(1) == dout.size(1) && dw.size(2) == x.size(1),
            "%s: dout %s, x %s, dw %s: expected (M, N), (M, K), (E, N, K)", op,
            dout.str().c_str(), x.str().c_str(), dw.str().c_str());
  check_groups(group_rows, dw.size(0), x.size(0), op);
  int64_t start = 0;
  for (size_t e = 0; e < group_rows.size(); ++e) {
    const int64_t rows = group_rows[e];
    Tensor dwe = dw.select(0, int64_t(e));
    if (rows == 0) {
      // No token chose this expert: its gradient is exactly zero (or unchanged).
      if (!accumulate) fill(dwe, 0.0);
      continue;
    }
    gemm(dout.narrow(0, start, rows), true, x.narrow(0, start, rows), false, dwe, 1.0f,
         accumulate ? 1.0f : 0.0f);
    start += rows;
  }
}

}  // namespace zeroth
