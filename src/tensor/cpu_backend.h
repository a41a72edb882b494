// CpuBackend: the reference implementation of Backend (backend.h) on host memory.
//
// Owns: the class declaration and the small helpers its op files share (argument
// checks, bulk dtype conversion, a deterministic parallel-for over fixed blocks).
// Ops are split by kind: cpu_backend.cpp (memory, fill, threads), cpu_gemm.cpp
// (OpenBLAS), cpu_rows_gemm.cpp (few-row products), cpu_copy.cpp (strided copies), cpu_elementwise.cpp, cpu_reduce.cpp.
// Must not: hold global state beyond the thread counts make_cpu_backend sets for
// OpenMP and OpenBLAS; results must not depend on the number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "zeroth/backend.h"

namespace zeroth {

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(int threads);  // threads >= 1

  Device device() const override { return Device::cpu(); }
  std::string name() const override;
  int threads() const { return threads_; }

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr) override;
  void copy_to_host(void* dst_host, const void* src_dev, size_t bytes) override;
  void copy_from_host(void* dst_dev, const void* src_host, size_t bytes) override;
  void copy_on_device(void* dst_dev, const void* src_dev, size_t bytes) override;
  void synchronize() override {}

  void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
            float alpha = 1.0f, float beta = 0.0f) override;
  void set_row_invariant_gemm(bool on) override { row_invariant_ = on; }
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
  void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWArgs& args, Tensor& param_copy) override;

 private:
  int threads_;
  bool row_invariant_ = false;  // set_row_invariant_gemm
};

namespace cpu {

// Elements per block in blocked loops. Fixed, so block boundaries (and with them
// any per-block partial results) never depend on the thread count.
constexpr int64_t kBlock = 4096;

// Calls fn(begin, end) for [0, n) cut into blocks of `block` elements, spread over
// `threads` OpenMP threads. fn must only touch its own block's outputs. When n <=
// serial_up_to the blocks run on the calling thread: too little work to pay for waking
// the others (~70 us a region under OMP_WAIT_POLICY=PASSIVE, docs/perf.md). The blocks
// are the same either way, so the results are too.
void parallel_blocks(int threads, int64_t n, int64_t block,
                     const std::function<void(int64_t begin, int64_t end)>& fn, int64_t serial_up_to = 0);

// serial_up_to for element-wise ops over kBlock-element blocks: 16 blocks (64 K floats,
// e.g. a decode step's 64 x 1024 activations).
constexpr int64_t kSerialElements = 16 * kBlock;

// Bulk conversions between a float dtype and f32 (n elements, contiguous).
void to_f32(const void* src, DType dtype, int64_t n, float* dst);
void from_f32(const float* src, DType dtype, int64_t n, void* dst);

// Argument checks shared by the ops; each aborts (ZT_ASSERT) naming `op`.
void check_cpu(const Tensor& t, const char* op, const char* arg);
void check_float(const Tensor& t, const char* op, const char* arg);
void check_contiguous(const Tensor& t, const char* op, const char* arg);
void check_same_shape(const Tensor& x, const Tensor& y, const char* op);
// x (..., D) and out (...) for the row ops that reduce the last dimension.
void check_reduced_shape(const Tensor& x, const Tensor& out, const char* op);

// The few-rows product of decoding (cpu_rows_gemm.cpp): C[i, j] (+)= alpha * sum_k
// A[i, k] * W[j, k] for i < m, j < n; W (n, k) row-major with row stride ldw, as a linear
// layer stores it. `accumulate` adds to C, else C is overwritten. Each C element is one
// fixed-order reduction, whatever `threads` is.
void rows_gemm_nt(int threads, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                  const float* w, int64_t ldw, float* c, int64_t ldc, bool accumulate);
// x rows prepared once for several rows_gemm_nt_serial calls over the same rows (the
// AVX-512 kernel reads them interleaved by pairs; empty where the AVX2 kernel runs).
struct RowsPack {
  std::vector<float> data;
  int64_t rows = 0, k = 0;
};
void pack_rows(int64_t rows, const float* const* x, int64_t k, RowsPack& pack);
// The same on the calling thread for `rows` gathered rows (x[r], out[r]) and the
// outputs j0 .. j1-1. `next` (next_floats contiguous floats, or null): weights the caller
// reads after this call, prefetched into L2 while this call computes (no effect on the
// result). `pack`: pack_rows of the same rows (optional; saves the copy per call).
void rows_gemm_nt_serial(int64_t rows, const float* const* x, const float* w, int64_t ldw, int64_t j0,
                         int64_t j1, int64_t k, float alpha, float* const* out, bool accumulate,
                         const float* next = nullptr, int64_t next_floats = 0,
                         const RowsPack* pack = nullptr);
// out[r][c] = sum_j p[r][j] * v[j * ldv + c] for r < rows, c < n, j < len (P @ V with V
// row-major, e.g. attention probabilities against cached values), on the calling
// thread; each element one chain over j in order, whatever `rows` is. `next` as in
// rows_gemm_nt_serial: floats prefetched into L2 on the side, no effect on the result.
void rows_gemm_nn_serial(int64_t rows, const float* const* p, int64_t len, const float* v, int64_t ldv,
                         int64_t n, float* const* out, const float* next = nullptr,
                         int64_t next_floats = 0);
// The few-row kernels run on AVX-512 where the CPU has AVX512F + AVX512DQ (and the
// environment does not set ZEROTH_CPU_ISA=avx2), else on AVX2; both give the same bits.
bool rows_gemm_avx512_available();
// Tests: use the AVX-512 kernels (when available) or not; returns the previous setting.
bool set_rows_gemm_avx512(bool on);

}  // namespace cpu
}  // namespace zeroth
