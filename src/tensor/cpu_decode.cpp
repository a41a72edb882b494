// CpuBackend's inference ops other than attention: scatter_rows (writing new tokens'
// latents into the KV cache) and sample_tokens (one draw per row by sampler.h).
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
      bool any = false;
      for (int64_t j = 0; j < v; ++j)
        if (!std::isnan(row[j])) {
          any = true;
          mx = std::max(mx, row[j]);
        }
      if (!any || (params.temperature > 0.0f && !std::isfinite(mx))) {
        out[i] = -1;
        continue;
      }
      out[i] = sample_token(row, v, params, sequence_ids[size_t(i)], steps[size_t(i)]);
    }
  });
}

}  // namespace zeroth
