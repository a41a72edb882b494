// CpuBackend mixture-of-experts ops: the DeepSeek-V3 router (forward and backward),
// the stable counting sort of slots by expert, and the gather / combine that move token
// rows into expert order and back (with their backward passes).
//
// Owns: the reference semantics of these ops on the CPU (backend.h is the contract).
// Every output row depends only on its own inputs and is summed in a fixed order, so
// results never depend on the thread count. Must not: run matrix products (the expert
// GEMMs are cpu_grouped_gemm.cpp) or allocate per element.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tensor/cpu_backend.h"
#include "zeroth/error.h"

namespace zeroth {
namespace {

// Rows per parallel block for the row-wise loops below: about kBlock elements of work
// per block, so small ops stay on one thread. Depends only on the shape, never on the
// thread count.
int64_t row_block(int64_t work_per_row) {
  return std::max<int64_t>(1, cpu::kBlock / std::max<int64_t>(1, work_per_row));
}

void check_2d(const Tensor& t, const char* op, const char* arg) {
  cpu::check_cpu(t, op, arg);
  cpu::check_contiguous(t, op, arg);
  ZT_ASSERT(t.dim() == 2, "%s: %s is %s, expected 2-D", op, arg, t.str().c_str());
}

void check_dtype(const Tensor& t, DType dt, const char* op, const char* arg) {
  ZT_ASSERT(t.dtype() == dt, "%s: %s is %s, expected %s", op, arg, t.str().c_str(),
            dtype_name(dt));
}

// An I32 permutation index tensor with n elements whose values lie in [0, n).
const int32_t* check_index(const Tensor& t, int64_t n, const char* op, const char* arg) {
  cpu::check_cpu(t, op, arg);
  cpu::check_contiguous(t, op, arg);
  check_dtype(t, DType::I32, op, arg);
  ZT_ASSERT(t.numel() == n, "%s: %s is %s, expected %lld elements", op, arg, t.str().c_str(),
            (long long)n);
  const int32_t* p = t.data<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    ZT_ASSERT(p[i] >= 0 && p[i] < n, "%s: %s[%lld] = %d is outside [0, %lld)", op, arg,
              (long long)i, p[i], (long long)n);
  return p;
}

// Row r (cols elements) of a contiguous float tensor as f32: its own memory for F32,
// else converted into buf.
const float* row_f32(const Tensor& t, int64_t r, int64_t cols, float* buf) {
  const char* p = static_cast<const char*>(t.data_ptr()) + size_t(r * cols) * t.element_size();
  if (t.dtype() == DType::F32) return reinterpret_cast<const float*>(p);
  cpu::to_f32(p, t.dtype(), cols, buf);
  return buf;
}

void store_row(Tensor& t, int64_t r, int64_t cols, const float* vals) {
  char* p = static_cast<char*>(t.data_ptr()) + size_t(r * cols) * t.element_size();
  if (t.dtype() == DType::F32) {
    if (reinterpret_cast<const float*>(p) != vals) std::memcpy(p, vals, size_t(cols) * 4);
  } else {
    cpu::from_f32(vals, t.dtype(), cols, p);
  }
}

// Ranks the top `count` of vals[0..n) among those with keep[i] (keep null: all) by
// descending value, ties to the lower index, into out[0..count). Insertion into a
// sorted list of `count`: O(n * count), with count small (top_k, topk_group).
void top_indices(const float* vals, const unsigned char* keep, int n, int count, int* out,
                 float* out_vals) {
  int filled = 0;
  for (int i = 0; i < n; ++i) {
    if (keep && !keep[i]) continue;
    float v = vals[i];
    // Strictly greater moves ahead: an equal value with a lower index stays first.
    int pos = filled;
    while (pos > 0 && v > out_vals[pos - 1]) --pos;
    if (pos >= count) continue;
    int last = filled < count ? filled : count - 1;
    for (int q = last; q > pos; --q) {
      out[q] = out[q - 1];
      out_vals[q] = out_vals[q - 1];
    }
    out[pos] = i;
    out_vals[pos] = v;
    if (filled < count) ++filled;
  }
  ZT_ASSERT(filled == count, "top_indices: %d candidates for %d places", filled, count);
}

}  // namespace

void CpuBackend::moe_router_forward(const Tensor& logits, const Tensor& bias, int n_group,
                                    int topk_group, int top_k, bool norm_topk_prob, float scaling,
                                    Tensor& scores, Tensor& topk_idx, Tensor& topk_weight) {
  const char* op = "moe_router_forward";
  check_2d(logits, op, "logits");
  check_dtype(logits, DType::F32, op, "logits");
  const int64_t n = logits.size(0), e64 = logits.size(1);
  cpu::check_cpu(bias, op, "bias");
  cpu::check_contiguous(bias, op, "bias");
  check_dtype(bias, DType::F32, op, "bias");
  ZT_ASSERT(bias.numel() == e64, "%s: bias is %s, expected (%lld)", op, bias.str().c_str(),
            (long long)e64);
  ZT_ASSERT(e64 >= 1 && e64 <= (1 << 30), "%s: %lld experts", op, (long long)e64);
  const int e = int(e64);
  ZT_ASSERT(n_group >= 1 && e % n_group == 0,
            "%s: n_group %d must divide the %d experts", op, n_group, e);
  const int per = e / n_group;
  ZT_ASSERT(per >= 2, "%s: %d experts in %d groups: a group's score is the sum of its top 2, so "
            "each group needs at least 2 experts", op, e, n_group);
  ZT_ASSERT(topk_group >= 1 && topk_group <= n_group, "%s: topk_group %d outside [1, %d]", op,
            topk_group, n_group);
  ZT_ASSERT(top_k >= 1 && top_k <= topk_group * per,
            "%s: top_k %d outside [1, %d] (topk_group %d x %d experts per group)", op, top_k,
            topk_group * per, topk_group, per);
  check_2d(scores, op, "scores");
  check_dtype(scores, DType::F32, op, "scores");
  cpu::check_same_shape(logits, scores, op);
  check_2d(topk_idx, op, "topk_idx");
  check_dtype(topk_idx, DType::I32, op, "topk_idx");
  check_2d(topk_weight, op, "topk_weight");
  check_dtype(topk_weight, DType::F32, op, "topk_weight");
  ZT_ASSERT(topk_idx.shape() == Shape({n, top_k}) && topk_weight.shape() == Shape({n, top_k}),
            "%s: topk_idx %s and topk_weight %s must be (%lld, %d)", op, topk_idx.str().c_str(),
            topk_weight.str().c_str(), (long long)n, top_k);

  const float* lg = logits.data<float>();
  const float* b = bias.data<float>();
  float* s = scores.data<float>();
  int32_t* idx = topk_idx.data<int32_t>();
  float* w = topk_weight.data<float>();
  cpu::parallel_blocks(threads_, n, row_block(e * 4), [&](int64_t rb, int64_t re) {
    std::vector<float> biased(static_cast<size_t>(e)), group_score(static_cast<size_t>(n_group));
    std::vector<float> top_vals(size_t(top_k > topk_group ? top_k : topk_group));
    std::vector<int> top(top_vals.size());
    std::vector<unsigned char> keep(static_cast<size_t>(e));
    for (int64_t r = rb; r < re; ++r) {
      const float* lr = lg + r * e;
      float* sr = s + r * e;
      for (int i = 0; i < e; ++i) {
        sr[i] = 1.0f / (1.0f + std::exp(-lr[i]));
        biased[size_t(i)] = sr[i] + b[i];
      }
      // Group score: the sum of the group's two largest biased scores.
      for (int g = 0; g < n_group; ++g) {
        const float* bg = biased.data() + g * per;
        float m1 = bg[0] >= bg[1] ? bg[0] : bg[1], m2 = bg[0] >= bg[1] ? bg[1] : bg[0];
        for (int i = 2; i < per; ++i) {
          if (bg[i] > m1) {
            m2 = m1;
            m1 = bg[i];
          } else if (bg[i] > m2) {
            m2 = bg[i];
          }
        }
        group_score[size_t(g)] = m1 + m2;
      }
      top_indices(group_score.data(), nullptr, n_group, topk_group, top.data(), top_vals.data());
      std::fill(keep.begin(), keep.end(), 0);
      for (int q = 0; q < topk_group; ++q)
        std::fill(keep.begin() + top[size_t(q)] * per, keep.begin() + (top[size_t(q)] + 1) * per, 1);
      top_indices(biased.data(), keep.data(), e, top_k, top.data(), top_vals.data());
      int32_t* ir = idx + r * top_k;
      float* wr = w + r * top_k;
      float sum = 0.0f;
      for (int q = 0; q < top_k; ++q) {
        ir[q] = top[size_t(q)];
        wr[q] = sr[top[size_t(q)]];
        sum += wr[q];
      }
      // As the reference: w / (sum + 1e-20), then times the scaling factor.
      const float denom = norm_topk_prob ? sum + 1e-20f : 1.0f;
      for (int q = 0; q < top_k; ++q) wr[q] = wr[q] / denom * scaling;
    }
  });
}

void CpuBackend::moe_router_backward(const Tensor& scores, const Tensor& topk_idx,
                                     const Tensor& dtopk_weight, bool norm_topk_prob,
                                     float scaling, Tensor& dlogits) {
  const char* op = "moe_router_backward";
  check_2d(scores, op, "scores");
  check_dtype(scores, DType::F32, op, "scores");
  check_2d(topk_idx, op, "topk_idx");
  check_dtype(topk_idx, DType::I32, op, "topk_idx");
  check_2d(dtopk_weight, op, "dtopk_weight");
  check_dtype(dtopk_weight, DType::F32, op, "dtopk_weight");
  check_2d(dlogits, op, "dlogits");
  check_dtype(dlogits, DType::F32, op, "dlogits");
  cpu::check_same_shape(scores, dlogits, op);
  cpu::check_same_shape(topk_idx, dtopk_weight, op);
  const int64_t n = scores.size(0), e = scores.size(1), k = topk_idx.size(1);
  ZT_ASSERT(topk_idx.size(0) == n, "%s: topk_idx %s has %lld rows, scores %s", op,
            topk_idx.str().c_str(), (long long)topk_idx.size(0), scores.str().c_str());
  const float* s = scores.data<float>();
  const int32_t* idx = topk_idx.data<int32_t>();
  const float* dw = dtopk_weight.data<float>();
  float* dl = dlogits.data<float>();
  cpu::parallel_blocks(threads_, n, row_block(e), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const float* sr = s + r * e;
      const int32_t* ir = idx + r * k;
      const float* dr = dw + r * k;
      float* out = dl + r * e;
      std::fill(out, out + e, 0.0f);
      for (int64_t q = 0; q < k; ++q)
        ZT_ASSERT(ir[q] >= 0 && ir[q] < e, "%s: topk_idx[%lld, %lld] = %d outside [0, %lld)", op,
                  (long long)r, (long long)q, ir[q], (long long)e);
      // w_q = c * s_q / S with S = sum s + 1e-20 (or w_q = c * s_q): the gradient with
      // respect to the chosen scores, then through the sigmoid.
      float inner = 0.0f, inv_sum = 1.0f;
      if (norm_topk_prob) {
        float sum = 0.0f;
        for (int64_t q = 0; q < k; ++q) sum += sr[ir[q]];
        inv_sum = 1.0f / (sum + 1e-20f);
        for (int64_t q = 0; q < k; ++q) inner += dr[q] * sr[ir[q]];
        inner *= inv_sum;
      }
      for (int64_t q = 0; q < k; ++q) {
        const float sq = sr[ir[q]];
        const float ds = scaling * inv_sum * (dr[q] - inner);
        out[ir[q]] += ds * sq * (1.0f - sq);
      }
    }
  });
}

void CpuBackend::moe_sort_by_expert(const Tensor& topk_idx, int num_experts,
                                    Tensor& sorted_to_slot, Tensor& slot_to_sorted,
                                    Tensor& expert_counts) {
  const char* op = "moe_sort_by_expert";
  cpu::check_cpu(topk_idx, op, "topk_idx");
  cpu::check_contiguous(topk_idx, op, "topk_idx");
  check_dtype(topk_idx, DType::I32, op, "topk_idx");
  ZT_ASSERT(num_experts >= 1, "%s: num_experts %d", op, num_experts);
  const int64_t slots = topk_idx.numel();
  for (Tensor* t : {&sorted_to_slot, &slot_to_sorted}) {
    cpu::check_cpu(*t, op, "sorted_to_slot/slot_to_sorted");
    cpu::check_contiguous(*t, op, "sorted_to_slot/slot_to_sorted");
    check_dtype(*t, DType::I32, op, "sorted_to_slot/slot_to_sorted");
    ZT_ASSERT(t->numel() == slots, "%s: %s must have %lld elements (topk_idx %s)", op,
              t->str().c_str(), (long long)slots, topk_idx.str().c_str());
  }
  cpu::check_cpu(expert_counts, op, "expert_counts");
  cpu::check_contiguous(expert_counts, op, "expert_counts");
  check_dtype(expert_counts, DType::I32, op, "expert_counts");
  ZT_ASSERT(expert_counts.numel() == num_experts, "%s: expert_counts %s, expected (%d)", op,
            expert_counts.str().c_str(), num_experts);
  ZT_ASSERT(slots <= INT32_MAX, "%s: %lld slots overflow I32 indices", op, (long long)slots);

  const int32_t* idx = topk_idx.data<int32_t>();
  int32_t* counts = expert_counts.data<int32_t>();
  int32_t* s2slot = sorted_to_slot.data<int32_t>();
  int32_t* slot2s = slot_to_sorted.data<int32_t>();
  std::fill(counts, counts + num_experts, 0);
  for (int64_t i = 0; i < slots; ++i) {
    ZT_ASSERT(idx[i] >= 0 && idx[i] < num_experts, "%s: topk_idx[%lld] = %d outside [0, %d)", op,
              (long long)i, idx[i], num_experts);
    ++counts[idx[i]];
  }
  // Exclusive prefix sum gives each expert's first row; slots are then placed in
  // ascending order, which makes the sort stable.
  std::vector<int64_t> next(static_cast<size_t>(num_experts));
  int64_t start = 0;
  for (int e = 0; e < num_experts; ++e) {
    next[size_t(e)] = start;
    start += counts[e];
  }
  for (int64_t i = 0; i < slots; ++i) {
    int64_t r = next[size_t(idx[i])]++;
    s2slot[r] = int32_t(i);
    slot2s[i] = int32_t(r);
  }
}

void CpuBackend::moe_gather(const Tensor& x, const Tensor& sorted_to_slot, int k, Tensor& out) {
  const char* op = "moe_gather";
  check_2d(x, op, "x");
  cpu::check_float(x, op, "x");
  check_2d(out, op, "out");
  check_dtype(out, x.dtype(), op, "out");
  ZT_ASSERT(k >= 1, "%s: k = %d", op, k);
  const int64_t n = x.size(0), c = x.size(1), rows = n * k;
  ZT_ASSERT(out.shape() == Shape({rows, c}), "%s: out is %s, expected (%lld, %lld) for x %s, k %d",
            op, out.str().c_str(), (long long)rows, (long long)c, x.str().c_str(), k);
  const int32_t* s2slot = check_index(sorted_to_slot, rows, op, "sorted_to_slot");
  const size_t row_bytes = size_t(c) * x.element_size();
  const char* src = static_cast<const char*>(x.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  cpu::parallel_blocks(threads_, rows, row_block(c), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r)
      std::memcpy(dst + size_t(r) * row_bytes, src + size_t(s2slot[r] / k) * row_bytes, row_bytes);
  });
}

void CpuBackend::moe_gather_backward(const Tensor& dsorted, const Tensor& slot_to_sorted, int k,
                                     Tensor& dx) {
  const char* op = "moe_gather_backward";
  check_2d(dsorted, op, "dsorted");
  cpu::check_float(dsorted, op, "dsorted");
  check_2d(dx, op, "dx");
  cpu::check_float(dx, op, "dx");
  ZT_ASSERT(k >= 1, "%s: k = %d", op, k);
  const int64_t n = dx.size(0), c = dx.size(1), rows = n * k;
  ZT_ASSERT(dsorted.shape() == Shape({rows, c}), "%s: dsorted is %s, expected (%lld, %lld) for dx %s, k %d",
            op, dsorted.str().c_str(), (long long)rows, (long long)c, dx.str().c_str(), k);
  const int32_t* slot2s = check_index(slot_to_sorted, rows, op, "slot_to_sorted");
  cpu::parallel_blocks(threads_, n, row_block(int64_t(k) * c), [&](int64_t rb, int64_t re) {
    std::vector<float> acc(static_cast<size_t>(c)), buf(static_cast<size_t>(c));
    for (int64_t t = rb; t < re; ++t) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int j = 0; j < k; ++j) {
        const float* src = row_f32(dsorted, slot2s[t * k + j], c, buf.data());
        for (int64_t i = 0; i < c; ++i) acc[size_t(i)] += src[i];
      }
      store_row(dx, t, c, acc.data());
    }
  });
}

void CpuBackend::moe_combine(const Tensor& expert_out, const Tensor& slot_to_sorted,
                             const Tensor& weight, Tensor& out, bool accumulate) {
  const char* op = "moe_combine";
  check_2d(expert_out, op, "expert_out");
  cpu::check_float(expert_out, op, "expert_out");
  check_2d(weight, op, "weight");
  check_dtype(weight, DType::F32, op, "weight");
  check_2d(out, op, "out");
  cpu::check_float(out, op, "out");
  const int64_t n = out.size(0), c = out.size(1), k = weight.size(1), rows = n * k;
  ZT_ASSERT(weight.size(0) == n && expert_out.shape() == Shape({rows, c}),
            "%s: expert_out %s, weight %s, out %s: expected (N*k, C), (N, k), (N, C)", op,
            expert_out.str().c_str(), weight.str().c_str(), out.str().c_str());
  const int32_t* slot2s = check_index(slot_to_sorted, rows, op, "slot_to_sorted");
  const float* w = weight.data<float>();
  cpu::parallel_blocks(threads_, n, row_block(k * c), [&](int64_t rb, int64_t re) {
    // Per-thread buffers, sized once (a batch-64 decode step has 32 blocks of 2 rows
    // here: three zero-filled vectors per block were a visible part of the op).
    thread_local std::vector<float> acc, buf, obuf;
    acc.resize(static_cast<size_t>(c));
    if (expert_out.dtype() != DType::F32) buf.resize(static_cast<size_t>(c));
    if (out.dtype() != DType::F32) obuf.resize(static_cast<size_t>(c));
    for (int64_t t = rb; t < re; ++t) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j = 0; j < k; ++j) {
        const float wj = w[t * k + j];
        const float* src = row_f32(expert_out, slot2s[t * k + j], c, buf.data());
        for (int64_t i = 0; i < c; ++i) acc[size_t(i)] += wj * src[i];
      }
      if (accumulate) {
        const float* old = row_f32(out, t, c, obuf.data());
        for (int64_t i = 0; i < c; ++i) acc[size_t(i)] += old[i];
      }
      store_row(out, t, c, acc.data());
    }
  });
}

void CpuBackend::moe_combine_backward(const Tensor& dout, const Tensor& expert_out,
                                      const Tensor& slot_to_sorted, const Tensor& weight,
                                      Tensor& dexpert_out, Tensor& dweight) {
  const char* op = "moe_combine_backward";
  check_2d(dout, op, "dout");
  cpu::check_float(dout, op, "dout");
  check_2d(expert_out, op, "expert_out");
  cpu::check_float(expert_out, op, "expert_out");
  check_2d(weight, op, "weight");
  check_dtype(weight, DType::F32, op, "weight");
  check_2d(dexpert_out, op, "dexpert_out");
  cpu::check_float(dexpert_out, op, "dexpert_out");
  check_2d(dweight, op, "dweight");
  check_dtype(dweight, DType::F32, op, "dweight");
  const int64_t n = dout.size(0), c = dout.size(1), k = weight.size(1), rows = n * k;
  ZT_ASSERT(weight.size(0) == n && expert_out.shape() == Shape({rows, c}) &&
                dexpert_out.shape() == Shape({rows, c}) && dweight.shape() == weight.shape(),
            "%s: dout %s, expert_out %s, weight %s, dexpert_out %s, dweight %s: expected "
            "(N, C), (N*k, C), (N, k), (N*k, C), (N, k)",
            op, dout.str().c_str(), expert_out.str().c_str(), weight.str().c_str(),
            dexpert_out.str().c_str(), dweight.str().c_str());
  const int32_t* slot2s = check_index(slot_to_sorted, rows, op, "slot_to_sorted");
  const float* w = weight.data<float>();
  float* dw = dweight.data<float>();
  cpu::parallel_blocks(threads_, n, row_block(k * c), [&](int64_t rb, int64_t re) {
    std::vector<float> dbuf(static_cast<size_t>(c)), ebuf(static_cast<size_t>(c)), prod(static_cast<size_t>(c));
    for (int64_t t = rb; t < re; ++t) {
      const float* d = row_f32(dout, t, c, dbuf.data());
      for (int64_t j = 0; j < k; ++j) {
        const int64_t r = slot2s[t * k + j];
        const float* eo = row_f32(expert_out, r, c, ebuf.data());
        double dot = 0.0;
        for (int64_t i = 0; i < c; ++i) dot += double(d[i]) * double(eo[i]);
        dw[t * k + j] = float(dot);
        const float wj = w[t * k + j];
        for (int64_t i = 0; i < c; ++i) prod[size_t(i)] = wj * d[i];
        store_row(dexpert_out, r, c, prod.data());
      }
    }
  });
}

}  // namespace zeroth
