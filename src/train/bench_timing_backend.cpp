// TimingBackend (bench_timing_backend.h): forwards each op to the wrapped backend and,
// when enabled, adds its host wall time to the counter of its kind and phase.
// Must not: alter arguments or results.
#include "train/bench_timing_backend.h"

#include "zeroth/error.h"

namespace zeroth {
namespace bench {

const char* op_kind_name(int kind) {
  static const char* const kNames[kNumOpKinds] = {
      "gemm",    "gemm_lm_head", "grouped_gemm", "attention",    "logprob",
      "embedding", "rmsnorm",    "rope",         "swiglu",       "moe_router",
      "moe_dispatch", "elementwise", "reduce",   "memory",       "adamw",
      "sample"};
  ZT_ASSERT(kind >= 0 && kind < kNumOpKinds, "op kind %d out of range", kind);
  return kNames[kind];
}

// Adds the wall time of its scope to one counter (when the backend is enabled). The
// wrapped backend is synchronized on both sides, so on an asynchronous backend (CUDA)
// the time is the op's device time plus one launch latency (a no-op on the CPU).
class OpTimer {
 public:
  OpTimer(TimingBackend& tb, int kind) : tb_(tb), kind_(kind) {
    if (!tb_.enabled_) return;
    tb_.inner_.synchronize();
    start_ = std::chrono::steady_clock::now();
  }
  ~OpTimer() {
    if (!tb_.enabled_) return;
    tb_.inner_.synchronize();
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - start_;
    tb_.secs_[tb_.phase_][kind_] += dt.count();
    tb_.calls_[tb_.phase_][kind_] += 1;
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  TimingBackend& tb_;
  int kind_;
  std::chrono::steady_clock::time_point start_;
};

TimingBackend::TimingBackend(Backend& inner, int64_t vocab) : inner_(inner), vocab_(vocab) {}

void TimingBackend::reset() {
  for (int p = 0; p < 2; ++p)
    for (int k = 0; k < kNumOpKinds; ++k) {
      secs_[p][k] = 0.0;
      calls_[p][k] = 0;
    }
}

void TimingBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  OpTimer t(*this, kMemory);
  inner_.copy_to_host(dst, src, bytes);
}
void TimingBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
  OpTimer t(*this, kMemory);
  inner_.copy_from_host(dst, src, bytes);
}
void TimingBackend::copy_on_device(void* dst, const void* src, size_t bytes) {
  OpTimer t(*this, kMemory);
  inner_.copy_on_device(dst, src, bytes);
}

void TimingBackend::gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
                         float alpha, float beta) {
  const bool lm_head = c.size(-1) == vocab_ || c.size(-2) == vocab_ || a.size(-1) == vocab_ ||
                       a.size(-2) == vocab_;
  OpTimer t(*this, lm_head ? kGemmLmHead : kGemm);
  inner_.gemm(a, trans_a, b, trans_b, c, alpha, beta);
}
void TimingBackend::fill(Tensor& x, double value) {
  OpTimer t(*this, kElementwise);
  inner_.fill(x, value);
}
void TimingBackend::copy(const Tensor& src, Tensor& dst) {
  OpTimer t(*this, kElementwise);
  inner_.copy(src, dst);
}
void TimingBackend::axpby(float a, const Tensor& x, float b, Tensor& y) {
  OpTimer t(*this, kElementwise);
  inner_.axpby(a, x, b, y);
}
void TimingBackend::scale(Tensor& x, float a) {
  OpTimer t(*this, kElementwise);
  inner_.scale(x, a);
}
void TimingBackend::add(const Tensor& x, const Tensor& y, Tensor& out) {
  OpTimer t(*this, kElementwise);
  inner_.add(x, y, out);
}
void TimingBackend::mul(const Tensor& x, const Tensor& y, Tensor& out) {
  OpTimer t(*this, kElementwise);
  inner_.mul(x, y, out);
}
void TimingBackend::sum_last(const Tensor& x, Tensor& out) {
  OpTimer t(*this, kReduce);
  inner_.sum_last(x, out);
}
void TimingBackend::max_last(const Tensor& x, Tensor& out) {
  OpTimer t(*this, kReduce);
  inner_.max_last(x, out);
}
void TimingBackend::sum_squares(const Tensor& x, Tensor& out, bool accumulate) {
  OpTimer t(*this, kReduce);
  inner_.sum_squares(x, out, accumulate);
}
void TimingBackend::softmax_last(const Tensor& x, Tensor& out) {
  OpTimer t(*this, kReduce);
  inner_.softmax_last(x, out);
}
void TimingBackend::log_softmax_last(const Tensor& x, Tensor& out) {
  OpTimer t(*this, kReduce);
  inner_.log_softmax_last(x, out);
}
void TimingBackend::embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  OpTimer t(*this, kEmbedding);
  inner_.embedding_forward(ids, table, out);
}
void TimingBackend::embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  OpTimer t(*this, kEmbedding);
  inner_.embedding_backward(ids, dout, dtable);
}
void TimingBackend::rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& out,
                                    Tensor& rstd) {
  OpTimer t(*this, kRmsnorm);
  inner_.rmsnorm_forward(x, w, eps, out, rstd);
}
void TimingBackend::rmsnorm_backward(const Tensor& dout, const Tensor& x, const Tensor& w,
                                     const Tensor& rstd, Tensor& dx, Tensor& dw) {
  OpTimer t(*this, kRmsnorm);
  inner_.rmsnorm_backward(dout, x, w, rstd, dx, dw);
}
void TimingBackend::rope(Tensor& x, const Tensor& positions, const Tensor& cos, const Tensor& sin,
                         bool interleaved, bool inverse) {
  OpTimer t(*this, kRope);
  inner_.rope(x, positions, cos, sin, interleaved, inverse);
}
void TimingBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                      float scale, Tensor& out, Tensor& lse) {
  OpTimer t(*this, kAttention);
  inner_.attention_forward(q, k, v, scale, out, lse);
}
void TimingBackend::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                       const Tensor& v, const Tensor& out, const Tensor& lse,
                                       float scale, Tensor& dq, Tensor& dk, Tensor& dv) {
  OpTimer t(*this, kAttention);
  inner_.attention_backward(dout, q, k, v, out, lse, scale, dq, dk, dv);
}
void TimingBackend::swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  OpTimer t(*this, kSwiglu);
  inner_.swiglu_forward(gate, up, out);
}
void TimingBackend::swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                                    Tensor& dgate, Tensor& dup) {
  OpTimer t(*this, kSwiglu);
  inner_.swiglu_backward(dout, gate, up, dgate, dup);
}
void TimingBackend::logprob_forward(const Tensor& logits, const Tensor& targets,
                                    float temperature, Tensor& logprob, Tensor& lse,
                                    Tensor& entropy) {
  OpTimer t(*this, kLogprob);
  inner_.logprob_forward(logits, targets, temperature, logprob, lse, entropy);
}
void TimingBackend::logprob_backward(const Tensor& logits, const Tensor& targets,
                                     float temperature, const Tensor& lse, const Tensor& dlogprob,
                                     const Tensor& dentropy, Tensor& dlogits) {
  OpTimer t(*this, kLogprob);
  inner_.logprob_backward(logits, targets, temperature, lse, dlogprob, dentropy, dlogits);
}
void TimingBackend::moe_router_forward(const Tensor& logits, const Tensor& bias, int n_group,
                                       int topk_group, int top_k, bool norm_topk_prob,
                                       float scaling, Tensor& scores, Tensor& topk_idx,
                                       Tensor& topk_weight) {
  OpTimer t(*this, kMoeRouter);
  inner_.moe_router_forward(logits, bias, n_group, topk_group, top_k, norm_topk_prob, scaling,
                            scores, topk_idx, topk_weight);
}
void TimingBackend::moe_router_backward(const Tensor& scores, const Tensor& topk_idx,
                                        const Tensor& dtopk_weight, bool norm_topk_prob,
                                        float scaling, Tensor& dlogits) {
  OpTimer t(*this, kMoeRouter);
  inner_.moe_router_backward(scores, topk_idx, dtopk_weight, norm_topk_prob, scaling, dlogits);
}
void TimingBackend::moe_sort_by_expert(const Tensor& topk_idx, int num_experts,
                                       Tensor& sorted_to_slot, Tensor& slot_to_sorted,
                                       Tensor& expert_counts) {
  OpTimer t(*this, kMoeDispatch);
  inner_.moe_sort_by_expert(topk_idx, num_experts, sorted_to_slot, slot_to_sorted, expert_counts);
}
void TimingBackend::moe_gather(const Tensor& x, const Tensor& sorted_to_slot, int k, Tensor& out) {
  OpTimer t(*this, kMoeDispatch);
  inner_.moe_gather(x, sorted_to_slot, k, out);
}
void TimingBackend::moe_gather_backward(const Tensor& dsorted, const Tensor& slot_to_sorted, int k,
                                        Tensor& dx) {
  OpTimer t(*this, kMoeDispatch);
  inner_.moe_gather_backward(dsorted, slot_to_sorted, k, dx);
}
void TimingBackend::moe_combine(const Tensor& expert_out, const Tensor& slot_to_sorted,
                                const Tensor& weight, Tensor& out, bool accumulate) {
  OpTimer t(*this, kMoeDispatch);
  inner_.moe_combine(expert_out, slot_to_sorted, weight, out, accumulate);
}
void TimingBackend::moe_combine_backward(const Tensor& dout, const Tensor& expert_out,
                                         const Tensor& slot_to_sorted, const Tensor& weight,
                                         Tensor& dexpert_out, Tensor& dweight) {
  OpTimer t(*this, kMoeDispatch);
  inner_.moe_combine_backward(dout, expert_out, slot_to_sorted, weight, dexpert_out, dweight);
}
void TimingBackend::grouped_gemm(const Tensor& x, const Tensor& w, bool trans_w,
                                 const std::vector<int64_t>& group_rows, Tensor& out, float alpha,
                                 float beta) {
  OpTimer t(*this, kGroupedGemm);
  inner_.grouped_gemm(x, w, trans_w, group_rows, out, alpha, beta);
}
void TimingBackend::grouped_gemm_wgrad(const Tensor& dout, const Tensor& x,
                                       const std::vector<int64_t>& group_rows, Tensor& dw,
                                       bool accumulate) {
  OpTimer t(*this, kGroupedGemm);
  inner_.grouped_gemm_wgrad(dout, x, group_rows, dw, accumulate);
}
void TimingBackend::adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                               const AdamWArgs& args, Tensor& param_copy) {
  OpTimer t(*this, kAdamw);
  inner_.adamw_step(param, grad, m, v, args, param_copy);
}

void TimingBackend::scatter_rows(const Tensor& src, const Tensor& rows, Tensor& dst) {
  OpTimer t(*this, kMemory);
  inner_.scatter_rows(src, rows, dst);
}

void TimingBackend::mla_decode_attention(const Tensor& q, const Tensor& cache, const Tensor& slots,
                                         const Tensor& lengths, float scale, Tensor& out) {
  OpTimer t(*this, kAttention);
  inner_.mla_decode_attention(q, cache, slots, lengths, scale, out);
}

void TimingBackend::expert_rows_gemm(const Tensor& x, const Tensor& w, const Tensor& experts,
                                     int x_div, Tensor& out) {
  OpTimer t(*this, kGroupedGemm);
  inner_.expert_rows_gemm(x, w, experts, x_div, out);
}

void TimingBackend::sample_tokens(const Tensor& logits, const SamplingParams& params,
                                  const std::vector<uint64_t>& sequence_ids,
                                  const std::vector<uint64_t>& steps, Tensor& ids) {
  OpTimer t(*this, kSample);
  inner_.sample_tokens(logits, params, sequence_ids, steps, ids);
}

}  // namespace bench
}  // namespace zeroth
