// CpuBackend's inference ops other than attention: scatter_rows (writing new tokens'
// latents into the KV cache), expert_rows_gemm (the decode-time MoE without host group
// sizes) and sample_tokens (one draw per row by sampler.h).
//
// Owns: argument checks and the per-row loops. Must not: implement the sampling rules
// (sampler.cpp is the reference every backend matches) or depend on the thread count:
// every row's result is computed by one thread, whichever.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tensor/cpu_backend.h"
#include "zeroth/error.h"
#include "zeroth/sampler.h"

namespace zeroth {

void CpuBackend::scatter_rows(const Tensor& src, const Tensor& rows, Tensor& dst) {
  const char* op = "scatter_rows";
  cpu::check_cpu(src, op, "src");
  cpu::check_cpu(rows, op, "rows");
  cpu::check_cpu(dst, op, "dst");
  cpu::check_float(src, op, "src");
  cpu::check_float(dst, op, "dst");
  cpu::check_contiguous(rows, op, "rows");
  ZT_ASSERT(src.dim() == 2 && dst.dim() == 2 && src.size(1) == dst.size(1),
            "%s: src %s and dst %s must be (N, D) and (M, D)", op, src.str().c_str(),
            dst.str().c_str());
  const int64_t n = src.size(0), d = src.size(1), m = dst.size(0);
  ZT_ASSERT(rows.dtype() == DType::I32 && rows.dim() == 1 && rows.size(0) == n,
            "%s: rows is %s, expected I32 (%lld)", op, rows.str().c_str(), (long long)n);
  ZT_ASSERT(d <= 1 || (src.stride(1) == 1 && dst.stride(1) == 1),
            "%s: src %s and dst %s need a contiguous last dimension", op, src.str().c_str(),
            dst.str().c_str());
  const int32_t* r = rows.data<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    ZT_ASSERT(r[i] >= 0 && r[i] < m, "%s: rows[%lld] = %d is outside [0, %lld)", op,
              (long long)i, r[i], (long long)m);
  const char* s = static_cast<const char*>(src.data_ptr());
  char* o = static_cast<char*>(dst.data_ptr());
  const size_t se = src.element_size(), de = dst.element_size();
  const int64_t ss = src.stride(0), ds = dst.stride(0);
  std::vector<float> row(static_cast<size_t>(d));
  for (int64_t i = 0; i < n; ++i) {
    const char* from = s + size_t(i * ss) * se;
    char* to = o + size_t(int64_t(r[i]) * ds) * de;
    if (src.dtype() == dst.dtype()) {
      std::memcpy(to, from, size_t(d) * se);
    } else {
      cpu::to_f32(from, src.dtype(), d, row.data());
      cpu::from_f32(row.data(), dst.dtype(), d, to);
    }
  }
}

void CpuBackend::sample_tokens(const Tensor& logits, const SamplingParams& params,
                               const std::vector<uint64_t>& sequence_ids,
                               const std::vector<uint64_t>& steps, Tensor& ids) {
  const char* op = "sample_tokens";
  cpu::check_cpu(logits, op, "logits");
  cpu::check_cpu(ids, op, "ids");
  cpu::check_contiguous(logits, op, "logits");
  cpu::check_contiguous(ids, op, "ids");
  ZT_ASSERT(logits.dtype() == DType::F32 && logits.dim() == 2 && logits.size(1) > 0,
            "%s: logits is %s, expected F32 (B, V)", op, logits.str().c_str());
  const int64_t b = logits.size(0), v = logits.size(1);
  ZT_ASSERT(ids.dtype() == DType::I32 && ids.dim() == 1 && ids.size(0) == b,
            "%s: ids is %s, expected I32 (%lld)", op, ids.str().c_str(), (long long)b);
  ZT_ASSERT(int64_t(sequence_ids.size()) == b && int64_t(steps.size()) == b,
            "%s: %zu sequence ids and %zu steps for %lld rows", op, sequence_ids.size(),
            steps.size(), (long long)b);
  const float* x = logits.data<float>();
  int32_t* out = ids.data<int32_t>();
  cpu::parallel_blocks(threads_, b, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* row = x + i * v;
      // Rows sample_token would refuse: all NaN, or (T > 0) a largest logit that is
      // +inf (a NaN-free row whose max is -inf is all -inf: also unsamplable).
      float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
      for (int64_t j = 0; j < v; ++j) mx = row[j] > mx ? row[j] : mx;  // NaN: false
      bool any = mx > -INFINITY;
      for (int64_t j = 0; j < v && !any; ++j) any = !std::isnan(row[j]);  // all -inf or NaN?
      if (!any || (params.temperature > 0.0f && !std::isfinite(mx))) {
        out[i] = -1;
        continue;
      }
      out[i] = sample_token(row, v, params, sequence_ids[size_t(i)], steps[size_t(i)]);
    }
  });
}

}  // namespace zeroth

namespace zeroth {

// Rows grouped by expert; each thread takes the same contiguous share of every used
// expert's outputs and walks it in blocks of 48. A block runs the register-blocked
// few-row kernel (cpu::rows_gemm_nt_serial, cpu_rows_gemm.cpp) on each pass of up to 8
// of the expert's rows: the block's weights
// come from memory once and from cache for further passes, instead of being packed
// (OpenBLAS's small-M sgemm packs a transposed B at a few GB/s, docs/perf.md). Each (row,
// output) is one reduction in a fixed order, so a row's result does not depend on the
// other rows or the threads.
// Non-f32 operands are converted to f32 first.
void CpuBackend::expert_rows_gemm(const Tensor& x, const Tensor& w, const Tensor& experts,
                                  int x_div, Tensor& out) {
  const char* op = "expert_rows_gemm";
  for (const Tensor* t : {&x, &w, &experts, const_cast<const Tensor*>(&out)}) {
    cpu::check_cpu(*t, op, "argument");
    cpu::check_contiguous(*t, op, "argument");
  }
  cpu::check_float(x, op, "x");
  cpu::check_float(w, op, "w");
  cpu::check_float(out, op, "out");
  ZT_ASSERT(x_div >= 1 && w.dim() == 3 && x.dim() == 2 && out.dim() == 2 &&
                x.size(1) == w.size(2) && out.size(1) == w.size(1) &&
                out.size(0) == x.size(0) * x_div,
            "%s: x %s, w %s, out %s, x_div %d do not fit", op, x.str().c_str(), w.str().c_str(),
            out.str().c_str(), x_div);
  const int64_t m = out.size(0), n = w.size(1), k = w.size(2), e_count = w.size(0);
  ZT_ASSERT(experts.dtype() == DType::I32 && experts.dim() == 1 && experts.size(0) == m,
            "%s: experts is %s, expected I32 (%lld)", op, experts.str().c_str(), (long long)m);
  const int32_t* ex = experts.data<int32_t>();
  std::vector<std::vector<int64_t>> rows_of(static_cast<size_t>(e_count));
  for (int64_t r = 0; r < m; ++r) {
    ZT_ASSERT(ex[r] >= 0 && ex[r] < e_count, "%s: experts[%lld] = %d is outside [0, %lld)", op,
              (long long)r, ex[r], (long long)e_count);
    rows_of[size_t(ex[r])].push_back(r);
  }
  if (m == 0 || n == 0) return;
  // f32 views (converted copies for other dtypes).
  std::vector<float> xc, wc, oc;
  auto f32_view = [](const Tensor& t, std::vector<float>& copy) -> const float* {
    if (t.dtype() == DType::F32) return t.data<float>();
    copy.resize(size_t(t.numel()));
    cpu::to_f32(t.data_ptr(), t.dtype(), t.numel(), copy.data());
    return copy.data();
  };
  const float* px = f32_view(x, xc);
  const float* pw = f32_view(w, wc);
  float* po = nullptr;
  if (out.dtype() == DType::F32) {
    po = out.data<float>();
  } else {
    oc.resize(size_t(out.numel()));
    po = oc.data();
  }
  // Outputs in blocks of 48 (16 micro-kernel columns); an expert's rows in passes of at
  // most 12 (one pass of the few-row kernel, cpu_rows_gemm.cpp's kMaxPairs512).
  constexpr int64_t kOut = 48, kPass = 12;
  std::vector<int64_t> used;  // experts with rows, in id order
  for (int64_t e = 0; e < e_count; ++e)
    if (!rows_of[size_t(e)].empty()) used.push_back(e);
  // The split over threads. With at least two used experts a thread, each thread takes
  // a contiguous run of whole experts (all their outputs): it packs only its experts'
  // rows and streams each expert's weights as one linear run, its prefetch running on
  // into its next expert. The runs are balanced by an estimate of their time: a
  // memory part per expert (its weights streamed once) plus a compute part per row
  // (kRowsPerWeightRead rows cost about as much as one read of the weights, at ~14 GB/s
  // a thread and ~150 GFLOP/s). At batch 64 the routed-expert op was ~8% faster than
  // with the split below (docs/perf.md, session 12). With fewer experts, every thread
  // takes the same contiguous share of each used expert's outputs (whole 3-output
  // groups, the micro-kernel's width) and walks it in blocks of kOut. Either way each
  // output is computed by one thread in the same order, so the split changes no bit.
  const int64_t groups = n / 3;  // the last share also takes the n % 3 single outputs
  const int nthreads = int(std::max<int64_t>(1, std::min<int64_t>(threads_, groups)));
  const bool by_experts = nthreads > 1 && int64_t(used.size()) >= 2 * int64_t(nthreads);
  std::vector<size_t> run_begin(static_cast<size_t>(nthreads) + 1, used.size());
  run_begin[0] = 0;
  if (by_experts) {
    constexpr double kRowsPerWeightRead = 21.0;
    double total = 0.0;
    for (int64_t e : used) total += kRowsPerWeightRead + double(rows_of[size_t(e)].size());
    double acc = 0.0;
    size_t t = 1;
    for (size_t ui = 0; ui < used.size() && t < size_t(nthreads); ++ui) {
      const double cost = kRowsPerWeightRead + double(rows_of[size_t(used[ui])].size());
      // Expert ui goes to the run whose share of the total its middle falls in.
      while (t < size_t(nthreads) && acc + 0.5 * cost >= total * double(t) / nthreads)
        run_begin[t++] = ui;
      acc += cost;
    }
    for (size_t r = 1; r <= size_t(nthreads); ++r) run_begin[r] = std::max(run_begin[r], run_begin[r - 1]);
  }
#pragma omp parallel for num_threads(nthreads) schedule(static, 1)
  for (int t = 0; t < nthreads; ++t) {
    const int64_t lo = by_experts ? 0 : 3 * (groups * t / nthreads);
    const int64_t hi = by_experts || t + 1 == nthreads ? n : 3 * (groups * (t + 1) / nthreads);
    const size_t u0 = by_experts ? run_begin[size_t(t)] : 0;
    const size_t u1 = by_experts ? run_begin[size_t(t) + 1] : used.size();
    // Each pass's rows prepared once for all of this thread's blocks (cpu::pack_rows).
    thread_local std::vector<cpu::RowsPack> packs;
    for (size_t ui = u0; ui < u1; ++ui) {
      const int64_t e = used[ui];
      const std::vector<int64_t>& rs = rows_of[size_t(e)];
      const float* we = pw + e * n * k;
      // The expert's rows in the fewest passes of at most kPass, of balanced whole pairs
      // (19 rows: 10 + 9, not 8 + 8 + 3): every pass reads the block's weights again from
      // L2 and pays the kernel's fixed costs, so a short last pass costs nearly a full
      // one. The routed-expert op at batch 64: ~5% faster than passes of 8 (docs/perf.md,
      // session 13). Which rows share a pass changes no bit (each row's sums are its own).
      const size_t npass = (rs.size() + size_t(kPass) - 1) / size_t(kPass);
      const size_t npairs = (rs.size() + 1) / 2;
      thread_local std::vector<size_t> pass_row;
      pass_row.resize(npass + 1);
      for (size_t pi = 0; pi <= npass; ++pi) pass_row[pi] = std::min(rs.size(), 2 * (npairs * pi / npass));
      if (packs.size() < npass) packs.resize(npass);
      for (size_t pi = 0; pi < npass; ++pi) {
        const size_t p0 = pass_row[pi], cnt = pass_row[pi + 1] - p0;
        const float* xr[kPass];
        for (size_t q = 0; q < cnt; ++q) xr[q] = px + (rs[p0 + q] / x_div) * k;
        cpu::pack_rows(int64_t(cnt), xr, k, packs[pi]);
      }
      for (int64_t j0 = lo; j0 < hi; j0 += kOut) {
        const int64_t j1 = std::min(hi, j0 + kOut);
        // The block this thread streams next (this expert's next block, else the next
        // used expert's first), prefetched into L2 over this block's passes: a share
        // of it per pass.
        const float* next = nullptr;
        int64_t next_n = 0;
        if (j1 < hi) {
          next = we + j1 * k, next_n = (std::min(hi, j1 + kOut) - j1) * k;
        } else if (ui + 1 < u1) {
          next = pw + used[ui + 1] * n * k + lo * k, next_n = (std::min(hi, lo + kOut) - lo) * k;
        }
        const int64_t passes = int64_t(npass);
        for (size_t pi = 0; pi < npass; ++pi) {
          const size_t p0 = pass_row[pi], cnt = pass_row[pi + 1] - p0;
          const int64_t f0 = next_n * int64_t(pi) / passes, f1 = next_n * int64_t(pi + 1) / passes;
          const float* xr[kPass];
          float* orow[kPass];
          for (size_t q = 0; q < cnt; ++q) {
            const int64_t r = rs[p0 + q];
            xr[q] = px + (r / x_div) * k;
            orow[q] = po + r * n;
          }
          cpu::rows_gemm_nt_serial(int64_t(cnt), xr, we, k, j0, j1, k, 1.0f, orow, false,
                                   next == nullptr ? nullptr : next + f0, f1 - f0,
                                   &packs[pi]);
        }
      }
    }
  }
  if (out.dtype() != DType::F32) cpu::from_f32(oc.data(), out.dtype(), out.numel(), out.data_ptr());
}

}  // namespace zeroth
