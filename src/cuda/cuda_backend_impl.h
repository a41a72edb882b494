// CudaBackend: the Backend (backend.h) on one CUDA device, private to src/cuda/.
//
// Owns: the device's stream (non-blocking; every op, copy, allocation and free is
// enqueued on it, so program order on the stream is the backend's queue order),
// the cuBLAS handle bound to that stream with its workspace, and small scratch
// buffers. Memory comes from the device's stream-ordered pool (cudaMallocAsync /
// cudaFreeAsync on the stream). Must not: synchronise with the host except in
// copy_to_host, copy_from_host, synchronize and the destructor.
//
// Split: cuda_backend.cpp (lifetime, memory, copies), cuda_gemm.cpp (gemm),
// cuda_ops.cpp (the element-wise, reduction and softmax ops over kernels/).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

#include "elementwise.h"  // kernels/: BinaryOp
#include "zeroth/backend.h"

namespace zeroth {

class CudaBackend final : public Backend {
 public:
  // Throws RuntimeError naming the device when it cannot be used.
  explicit CudaBackend(int device_index);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::cuda(device_index_); }
  std::string name() const override { return name_; }

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr) override;
  void copy_to_host(void* dst_host, const void* src_dev, size_t bytes) override;
  void copy_from_host(void* dst_dev, const void* src_host, size_t bytes) override;
  void copy_on_device(void* dst_dev, const void* src_dev, size_t bytes) override;
  void synchronize() override;

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

  // ---- model ops (see backend.h) ----
  void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) override;
  void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) override;
  void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& out, Tensor& rstd) override;
  void rmsnorm_backward(const Tensor& dout, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx, Tensor& dw) override;
  void rope(Tensor& x, const Tensor& positions, const Tensor& cos, const Tensor& sin, bool interleaved, bool inverse) override;
  void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale, Tensor& out, Tensor& lse) override;
  void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse, float scale, Tensor& dq, Tensor& dk, Tensor& dv) override;
  void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) override;
  void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) override;
  void logprob_forward(const Tensor& logits, const Tensor& targets, float temperature, Tensor& logprob, Tensor& lse, Tensor& entropy) override;
  void logprob_backward(const Tensor& logits, const Tensor& targets, float temperature, const Tensor& lse, const Tensor& dlogprob, const Tensor& dentropy, Tensor& dlogits) override;
  void moe_router_forward(const Tensor& logits, const Tensor& bias, int n_group, int topk_group, int top_k, bool norm_topk_prob, float scaling, Tensor& scores, Tensor& topk_idx, Tensor& topk_weight) override;
  void moe_router_backward(const Tensor& scores, const Tensor& topk_idx, const Tensor& dtopk_weight, bool norm_topk_prob, float scaling, Tensor& dlogits) override;
  void moe_sort_by_expert(const Tensor& topk_idx, int num_experts, Tensor& sorted_to_slot, Tensor& slot_to_sorted, Tensor& expert_counts) override;
  void moe_gather(const Tensor& x, const Tensor& sorted_to_slot, int k, Tensor& out) override;
  void moe_gather_backward(const Tensor& dsorted, const Tensor& slot_to_sorted, int k, Tensor& dx) override;
  void moe_combine(const Tensor& expert_out, const Tensor& slot_to_sorted, const Tensor& weight, Tensor& out, bool accumulate) override;
  void moe_combine_backward(const Tensor& dout, const Tensor& expert_out, const Tensor& slot_to_sorted, const Tensor& weight, Tensor& dexpert_out, Tensor& dweight) override;
  void grouped_gemm(const Tensor& x, const Tensor& w, bool trans_w, const std::vector<int64_t>& group_rows, Tensor& out, float alpha = 1.0f, float beta = 0.0f) override;
  void grouped_gemm_wgrad(const Tensor& dout, const Tensor& x, const std::vector<int64_t>& group_rows, Tensor& dw, bool accumulate) override;
  void scatter_rows(const Tensor& src, const Tensor& rows, Tensor& dst) override;
  void mla_decode_attention(const Tensor& q, const Tensor& cache, const Tensor& slots,
                            const Tensor& lengths, float scale, Tensor& out) override;
  void sample_tokens(const Tensor& logits, const SamplingParams& params,
                     const std::vector<uint64_t>& sequence_ids, const std::vector<uint64_t>& steps,
                     Tensor& ids) override;
  void expert_rows_gemm(const Tensor& x, const Tensor& w, const Tensor& experts, int x_div,
                        Tensor& out) override;
  std::unique_ptr<OpGraph> capture(const std::function<void()>& fn) override;
  void replay(OpGraph& graph) override;
  void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWArgs& args, Tensor& param_copy) override;

  cudaStream_t stream() const { return stream_; }

 private:
  // Makes this backend's device current for the calling thread (cheap; every
  // public entry point calls it, so several backends can share a thread).
  void activate() const;
  // Releases what the constructor created (also on a failed construction).
  void release() noexcept;
  // Aborts unless t is defined and lives on this backend's device.
  void require_here(const Tensor& t, const char* op, const char* arg) const;
  void binary_op(BinaryOp op, const Tensor& x, const Tensor& y, Tensor& out, const char* name);
  void softmax_op(const Tensor& x, Tensor& out, bool log_softmax, const char* name);

  int device_index_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* cublas_workspace_ = nullptr;       // kCublasWorkspaceBytes
  float* sum_squares_partials_ = nullptr;  // (kSumSquaresBlocks)
};

}  // namespace zeroth
