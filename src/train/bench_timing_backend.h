// TimingBackend: a Backend that forwards every call to another backend and adds the
// call's wall time to a per-op-kind counter, for `zeroth bench train`'s breakdown.
//
// Owns: the op -> kind table (gemm, attention, grouped_gemm, ...) and the counters.
// Must not: change any result (it only forwards), or be used outside benchmarks.
// Host timers: exact for the CPU backend, whose ops are synchronous; on an
// asynchronous backend they would time launches only (bench_train refuses that).
#pragma once

#include <algorithm>
#include <unordered_map>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "zeroth/backend.h"

namespace zeroth {
namespace bench {

enum OpKind : int {
  kGemm, kGemmLmHead, kGroupedGemm, kAttention, kLogprob, kEmbedding, kRmsnorm, kRope,
  kSwiglu, kMoeRouter, kMoeDispatch, kElementwise, kReduce, kMemory, kAdamw, kSample, kNumOpKinds
};
const char* op_kind_name(int kind);

class TimingBackend : public Backend {
 public:
  // vocab: a gemm with a dimension equal to it is counted as kGemmLmHead.
  TimingBackend(Backend& inner, int64_t vocab);

  // While disabled (the default) calls are forwarded untimed.
  void set_enabled(bool on) { enabled_ = on; }
  void set_phase(int phase) { phase_ = phase; }  // 0 forward, 1 backward
  void reset();
  double seconds(int kind, int phase) const { return secs_[phase][kind]; }
  int64_t calls(int kind) const { return calls_[0][kind] + calls_[1][kind]; }

  Device device() const override { return inner_.device(); }
  // Forwarded: the decode step's linear layers must take the inner backend's decode path
  // (on the CPU the few-row kernels, not OpenBLAS), or a breakdown times another path.
  void set_row_invariant_gemm(bool on) override { inner_.set_row_invariant_gemm(on); }
  std::string name() const override { return inner_.name(); }
  // Allocations are counted (always): bytes live now and the most ever live.
  void* allocate(size_t bytes) override {
    void* p = inner_.allocate(bytes);
    live_[p] = bytes;
    live_bytes_ += bytes;
    peak_bytes_ = std::max(peak_bytes_, live_bytes_);
    return p;
  }
  void deallocate(void* ptr) override {
    auto it = live_.find(ptr);
    if (it != live_.end()) {
      live_bytes_ -= it->second;
      live_.erase(it);
    }
    inner_.deallocate(ptr);
  }
  size_t live_bytes() const { return live_bytes_; }
  size_t peak_bytes() const { return peak_bytes_; }
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy_from_host(void* dst, const void* src, size_t bytes) override;
  void copy_on_device(void* dst, const void* src, size_t bytes) override;
  void synchronize() override { inner_.synchronize(); }

  void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, float alpha,
            float beta) override;
  void fill(Tensor& x, double value) override;
  void copy(const Tensor& src, Tensor& dst) override;
  void axpby(float a, const Tensor& x, float b, Tensor& y) override;
  void scale(Tensor& x, float a) override;
  void add(const Tensor& x, const Tensor& y, Tensor& out) override;
  void mul(const Tensor& x, const Tensor& y, Tensor& out) override;
  void sum_last(const Tensor& x, Tensor& out) override;
  void max_last(const Tensor& x, Tensor& out) override;
  void sum_squares(const Tensor& x, Tensor& out, bool accumulate) override;
  void softmax_last(const Tensor& x, Tensor& out) override;
  void log_softmax_last(const Tensor& x, Tensor& out) override;
  void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) override;
  void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) override;
  void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& out,
                       Tensor& rstd) override;
  void rmsnorm_backward(const Tensor& dout, const Tensor& x, const Tensor& w, const Tensor& rstd,
                        Tensor& dx, Tensor& dw) override;
  void rope(Tensor& x, const Tensor& positions, const Tensor& cos, const Tensor& sin,
            bool interleaved, bool inverse) override;
  void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                         Tensor& out, Tensor& lse) override;
  void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& out, const Tensor& lse, float scale, Tensor& dq,
                          Tensor& dk, Tensor& dv) override;
  void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) override;
  void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                       Tensor& dup) override;
  void logprob_forward(const Tensor& logits, const Tensor& targets, float temperature,
                       Tensor& logprob, Tensor& lse, Tensor& entropy) override;
  void logprob_backward(const Tensor& logits, const Tensor& targets, float temperature,
                        const Tensor& lse, const Tensor& dlogprob, const Tensor& dentropy,
                        Tensor& dlogits) override;
  void moe_router_forward(const Tensor& logits, const Tensor& bias, int n_group, int topk_group,
                          int top_k, bool norm_topk_prob, float scaling, Tensor& scores,
                          Tensor& topk_idx, Tensor& topk_weight) override;
  void moe_router_backward(const Tensor& scores, const Tensor& topk_idx,
                           const Tensor& dtopk_weight, bool norm_topk_prob, float scaling,
                           Tensor& dlogits) override;
  void moe_sort_by_expert(const Tensor& topk_idx, int num_experts, Tensor& sorted_to_slot,
                          Tensor& slot_to_sorted, Tensor& expert_counts) override;
  void moe_gather(const Tensor& x, const Tensor& sorted_to_slot, int k, Tensor& out) override;
  void moe_gather_backward(const Tensor& dsorted, const Tensor& slot_to_sorted, int k,
                           Tensor& dx) override;
  void moe_combine(const Tensor& expert_out, const Tensor& slot_to_sorted, const Tensor& weight,
                   Tensor& out, bool accumulate) override;
  void moe_combine_backward(const Tensor& dout, const Tensor& expert_out,
                            const Tensor& slot_to_sorted, const Tensor& weight,
                            Tensor& dexpert_out, Tensor& dweight) override;
  void grouped_gemm(const Tensor& x, const Tensor& w, bool trans_w,
                    const std::vector<int64_t>& group_rows, Tensor& out, float alpha,
                    float beta) override;
  void grouped_gemm_wgrad(const Tensor& dout, const Tensor& x,
                          const std::vector<int64_t>& group_rows, Tensor& dw,
                          bool accumulate) override;
  void scatter_rows(const Tensor& src, const Tensor& rows, Tensor& dst) override;
  void mla_decode_attention(const Tensor& q, const Tensor& cache, const Tensor& slots,
                            const Tensor& lengths, float scale, Tensor& out) override;
  void sample_tokens(const Tensor& logits, const SamplingParams& params,
                     const std::vector<uint64_t>& sequence_ids, const std::vector<uint64_t>& steps,
                     Tensor& ids) override;
  void expert_rows_gemm(const Tensor& x, const Tensor& w, const Tensor& experts, int x_div,
                        Tensor& out) override;
  void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWArgs& args,
                  Tensor& param_copy) override;

 private:
  std::unordered_map<void*, size_t> live_;
  size_t live_bytes_ = 0, peak_bytes_ = 0;
  friend class OpTimer;
  Backend& inner_;
  int64_t vocab_;
  bool enabled_ = false;
  int phase_ = 0;
  double secs_[2][kNumOpKinds] = {};
  int64_t calls_[2][kNumOpKinds] = {};
};

}  // namespace bench
}  // namespace zeroth
