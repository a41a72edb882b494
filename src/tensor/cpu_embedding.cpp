// CpuBackend token embedding: embedding_forward (row gather) and embedding_backward
// (scatter-add into the table gradient).
//
// Owns: the gather over rows and the deterministic scatter-add. The backward groups
// positions by token with a stable counting sort, so each table row is owned by one
// thread and receives its positions' gradients in ascending position order: the
// result is bit-identical for any thread count.
// Must not: use atomics or OpenMP reductions; touch table rows no id names.
#include <algorithm>
#include <cstring>
#include <vector>

#include "tensor/cpu_backend.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

// ids I32 (N), contiguous, every value in [0, vocab).
void check_ids(const Tensor& ids, int64_t vocab, const char* op) {
  cpu::check_cpu(ids, op, "ids");
  cpu::check_contiguous(ids, op, "ids");
  ZT_ASSERT(ids.dtype() == DType::I32 && ids.dim() == 1, "%s: ids is %s, expected I32 (N)", op,
            ids.str().c_str());
  const int32_t* p = ids.data<int32_t>();
  for (int64_t n = 0; n < ids.numel(); ++n)
    ZT_ASSERT(p[n] >= 0 && p[n] < vocab, "%s: ids[%lld] = %d is outside [0, %lld)", op,
              (long long)n, p[n], (long long)vocab);
}

// Rows of `block` elements for a row length of c: about kBlock elements per block.
int64_t rows_per_block(int64_t c) {
  return std::max<int64_t>(1, cpu::kBlock / std::max<int64_t>(c, 1));
}

}  // namespace

void CpuBackend::embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  const char* op = "embedding_forward";
  cpu::check_float(table, op, "table");
  cpu::check_contiguous(table, op, "table");
  cpu::check_float(out, op, "out");
  cpu::check_contiguous(out, op, "out");
  ZT_ASSERT(table.dim() == 2, "%s: table is %s, expected (V, C)", op, table.str().c_str());
  const int64_t vocab = table.size(0), c = table.size(1);
  check_ids(ids, vocab, op);
  const int64_t n = ids.numel();
  ZT_ASSERT(out.shape() == (Shape{n, c}), "%s: out is %s, expected (%lld, %lld)", op,
            out.str().c_str(), (long long)n, (long long)c);
  const int32_t* id = ids.data<int32_t>();
  const char* tb = static_cast<const char*>(table.data_ptr());
  char* ob = static_cast<char*>(out.data_ptr());
  const size_t tes = table.element_size(), oes = out.element_size();
  const bool same = table.dtype() == out.dtype();
  cpu::parallel_blocks(threads_, n, rows_per_block(c), [&](int64_t b, int64_t e) {
    std::vector<float> buf(same ? 0 : size_t(c));
    for (int64_t r = b; r < e; ++r) {
      const char* src = tb + size_t(id[r]) * size_t(c) * tes;
      char* dst = ob + size_t(r) * size_t(c) * oes;
      if (same) {
        std::memcpy(dst, src, size_t(c) * tes);
      } else {
        cpu::to_f32(src, table.dtype(), c, buf.data());
        cpu::from_f32(buf.data(), out.dtype(), c, dst);
      }
    }
  });
}

void CpuBackend::embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  const char* op = "embedding_backward";
  cpu::check_float(dout, op, "dout");
  cpu::check_contiguous(dout, op, "dout");
  cpu::check_cpu(dtable, op, "dtable");
  cpu::check_contiguous(dtable, op, "dtable");
  ZT_ASSERT(dtable.dtype() == DType::F32 && dtable.dim() == 2,
            "%s: dtable is %s, expected F32 (V, C)", op, dtable.str().c_str());
  const int64_t vocab = dtable.size(0), c = dtable.size(1);
  check_ids(ids, vocab, op);
  const int64_t n = ids.numel();
  ZT_ASSERT(dout.shape() == (Shape{n, c}), "%s: dout is %s, expected (%lld, %lld)", op,
            dout.str().c_str(), (long long)n, (long long)c);
  if (n == 0 || c == 0) return;
  const int32_t* id = ids.data<int32_t>();

  // Stable counting sort of positions by token: order[start[t] .. start[t+1]) lists
  // the positions of token t, ascending.
  std::vector<int64_t> start(size_t(vocab) + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++start[size_t(id[i]) + 1];
  for (int64_t t = 0; t < vocab; ++t) start[size_t(t) + 1] += start[size_t(t)];
  std::vector<int64_t> order(static_cast<size_t>(n)), fill(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < n; ++i) order[size_t(fill[size_t(id[i])]++)] = i;
  std::vector<int32_t> tokens;  // the distinct tokens, ascending
  for (int64_t t = 0; t < vocab; ++t)
    if (start[size_t(t) + 1] > start[size_t(t)]) tokens.push_back(int32_t(t));

  float* dt = dtable.data<float>();
  const char* db = static_cast<const char*>(dout.data_ptr());
  const size_t des = dout.element_size();
  const bool f32 = dout.dtype() == DType::F32;
  cpu::parallel_blocks(threads_, int64_t(tokens.size()), rows_per_block(c),
                       [&](int64_t b, int64_t e) {
                         std::vector<float> buf(f32 ? 0 : size_t(c));
                         for (int64_t u = b; u < e; ++u) {
                           const int32_t t = tokens[size_t(u)];
                           float* dst = dt + size_t(t) * size_t(c);
                           for (int64_t k = start[size_t(t)]; k < start[size_t(t) + 1]; ++k) {
                             const char* src = db + size_t(order[size_t(k)]) * size_t(c) * des;
                             const float* g = reinterpret_cast<const float*>(src);
                             if (!f32) {
                               cpu::to_f32(src, dout.dtype(), c, buf.data());
                               g = buf.data();
                             }
                             for (int64_t j = 0; j < c; ++j) dst[j] += g[j];
                           }
                         }
                       });
}

}  // namespace zeroth
