// Backend: the one op interface. CPU (reference: OpenBLAS + OpenMP threads) and
// CUDA (kernels/, cuBLAS) implement it; model, rollout and RL code call only this.
//
// Owns: the list of ops and their exact semantics. Each op is synchronous in
// program order with respect to the backend's queue (CUDA: its stream); results
// are visible to later ops on the same backend without an explicit sync. Reading a
// result on the host needs copy_to_host (which waits).
//
// Adding an op (as in ggml's test-backend-ops):
//   1. declare it here with its shapes, dtypes and semantics;
//   2. implement it in src/tensor/cpu_*.cpp (the reference) and in
//      src/cuda/ + kernels/ (the CUDA twin);
//   3. add one case to tests/tensor/test_ops.cpp, which checks every backend
//      against a float64 reference with a stated tolerance.
//
// Conventions: float ops accept F32 and BF16 (and F16 where noted), computing in
// fp32; an op's inputs and outputs live on this backend's device; unless an op says
// otherwise, tensors must be contiguous. Misuse (wrong device, shape or dtype) is a
// bug in the caller and aborts with a message (ZT_ASSERT).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "zeroth/error.h"
#include "zeroth/sampler.h"
#include "zeroth/tensor.h"

namespace zeroth {

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Device device() const = 0;
  // Human-readable, e.g. "cpu (2 threads, OpenBLAS 0.3.21)" or "cuda:0 (NVIDIA H100)".
  virtual std::string name() const = 0;

  // ---- memory ----
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr) = 0;
  // Synchronous copies between host memory and this device (or within it).
  virtual void copy_to_host(void* dst_host, const void* src_dev, size_t bytes) = 0;
  virtual void copy_from_host(void* dst_dev, const void* src_host, size_t bytes) = 0;
  virtual void copy_on_device(void* dst_dev, const void* src_dev, size_t bytes) = 0;
  // Waits until every queued op has finished (no-op on CPU).
  virtual void synchronize() = 0;

  // ---- recorded op sequences (CUDA graphs) ----

  // A recording of the ops a function enqueued, replayed with the same arguments (the
  // tensors' contents are read at replay time, so uploads made before a replay are seen).
  class OpGraph {
   public:
    virtual ~OpGraph() = default;
  };
  // Records the ops fn enqueues without running them. fn must not synchronise with the
  // host (no copy_to_host / copy_from_host / synchronize) and must enqueue the same ops
  // on every replay: shapes and pointers are frozen. Returns nullptr when the backend
  // does not record (the CPU: its ops run as they are called) or when recording failed
  // (the CUDA backend logs why); the caller then runs fn directly. A recording is valid
  // while every tensor it touches stays allocated.
  virtual std::unique_ptr<OpGraph> capture(const std::function<void()>& fn) {
    (void)fn;
    return nullptr;
  }
  // Enqueues a recording made by capture() on this backend.
  virtual void replay(OpGraph& graph) {
    (void)graph;
    ZT_ASSERT(false, "replay: this backend makes no recordings");
  }

  // ---- ops ----

  // C = alpha * op(A) @ op(B) + beta * C, accumulated in fp32.
  //   op(A): (M, K) — A is stored (M, K), or (K, M) when trans_a.
  //   op(B): (K, N) — B is stored (K, N), or (N, K) when trans_b.
  //   C: (M, N).
  // Batched: any of A, B, C may carry a leading batch dimension (batch, rows, cols);
  // a 2-D operand is broadcast across the batch (batch stride 0). Every operand's
  // last dimension must be contiguous; its row stride (leading dimension) and batch
  // stride may be anything, so narrowed views work without copies.
  // dtypes: A and B both F32 or both BF16; C F32 or BF16. With beta == 0, C's
  // previous contents are ignored (NaNs included).
  virtual void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
                    float alpha = 1.0f, float beta = 0.0f) = 0;
  // While on, gemm of a plain A against a transposed B (a linear layer, A @ W^T) computes
  // every row of C the same whatever the other rows are, and is fastest at a few rows:
  // set by the decode step (ModelInference), so that a sequence's tokens do not depend
  // on which others share its batch. The CPU switches to cpu::rows_gemm_nt (no packing
  // of W); other backends may ignore it. Off by default (training, prefill).
  virtual void set_row_invariant_gemm(bool on) { (void)on; }

  // Every element of x = value (converted to x's dtype). Any dtype.
  virtual void fill(Tensor& x, double value) = 0;

  // dst = src elementwise, converting dtype (float <-> float, int <-> int, int -> float).
  // Same shape; both may have any strides (up to 6 dimensions).
  virtual void copy(const Tensor& src, Tensor& dst) = 0;

  // y = a * x + b * y. Same shape, float dtypes (x and y may differ). With b == 0, y is
  // not read (NaNs in y are dropped, as in BLAS).
  virtual void axpby(float a, const Tensor& x, float b, Tensor& y) = 0;

  // x *= a. Float dtypes.
  virtual void scale(Tensor& x, float a) = 0;

  // out = x + y and out = x * y. y's shape equals x's, or the trailing dimensions of
  // x's (broadcast over the leading ones, e.g. x (N, D), y (D)). out has x's shape
  // and may alias x. Float dtypes.
  virtual void add(const Tensor& x, const Tensor& y, Tensor& out) = 0;
  virtual void mul(const Tensor& x, const Tensor& y, Tensor& out) = 0;

  // out[..] = sum / max of x over its last dimension. x (..., D) -> out (...), out F32.
  virtual void sum_last(const Tensor& x, Tensor& out) = 0;
  virtual void max_last(const Tensor& x, Tensor& out) = 0;

  // out[0] (+)= sum of x[i]^2 over all elements, fp32 accumulation, deterministic
  // order (independent of thread count). out: F32 with one element. With
  // accumulate, adds to out's value (for a global gradient norm over many tensors).
  virtual void sum_squares(const Tensor& x, Tensor& out, bool accumulate) = 0;

  // Row-wise softmax and log-softmax over the last dimension, in fp32 internally.
  // out has x's shape (may alias x). A row that is all -inf gives NaN (as PyTorch).
  virtual void softmax_last(const Tensor& x, Tensor& out) = 0;
  virtual void log_softmax_last(const Tensor& x, Tensor& out) = 0;

  // ---- model ops (transformer layers; each backward is checked by finite differences) ----
  // N = number of tokens (B*T flattened), C = hidden size, V = vocabulary, E = experts.

  // out[n, :] = table[ids[n], :]. ids: I32 (N), values in [0, V); table (V, C); out (N, C).
  virtual void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) = 0;
  // dtable[ids[n], :] += dout[n, :] (accumulates; deterministic on CPU). dtable F32 (V, C).
  virtual void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) = 0;

  // RMSNorm over the last dimension: out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps),
  // computed in fp32. x (N, C) (rows may be strided: last dim contiguous), w (C),
  // out (N, C), rstd F32 (N) saved for backward.
  virtual void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& out,
                               Tensor& rstd) = 0;
  // dx = d/dx (overwritten), dw += d/dw (accumulated, F32 (C)).
  virtual void rmsnorm_backward(const Tensor& dout, const Tensor& x, const Tensor& w,
                                const Tensor& rstd, Tensor& dx, Tensor& dw) = 0;

  // Rotary embedding, in place, on x (N, H, D) (N rows, H heads; D even; rows and heads
  // may be strided, last dim contiguous; F32 or BF16). positions: I32 (N), in [0, P).
  // cos, sin: F32 (P, D/2), c = cos[positions[n], i], s = sin[positions[n], i] for
  // frequency i (the caller builds them: rope_theta, yarn scaling, and yarn's attention
  // factor multiplied in, so (c, s) need not be a pure rotation). Pair i is rotated
  // (a, b) -> (a c - b s, b c + a s), read and written as follows:
  //   halves (!interleaved): a = x[i], b = x[i + D/2], written back to the same places
  //     (HF rotate_half).
  //   interleaved: a = x[2i], b = x[2i+1], written to x[i] and x[i + D/2]: the output is
  //     in de-interleaved (halves) order, exactly what HF's DeepSeek-V3
  //     apply_rotary_pos_emb_interleave returns (it regroups to [x0, x2, .., x1, x3, ..]
  //     and then applies rotate_half). q and k must both go through this op so that
  //     their rope parts share the layout (a cached k_rope is stored in halves order).
  // inverse applies the transpose of the forward map (the backward): (a, b) ->
  // (a c + b s, b c - a s), read from halves; when interleaved, written back to the
  // pairs (x[2i], x[2i+1]), so dx comes out in the input's interleaved layout.
  virtual void rope(Tensor& x, const Tensor& positions, const Tensor& cos, const Tensor& sin,
                    bool interleaved, bool inverse) = 0;

  // Causal scaled-dot-product attention per (batch, head):
  //   q (B, T, H, Dqk), k (B, T, H, Dqk), v (B, T, H, Dv) -> out (B, T, H, Dv),
  //   out[t] = sum_{s<=t} softmax_s(scale * q[t].k[s]) v[s]; lse F32 (B, H, T) saved.
  // Inputs may be strided in T and H (last dim contiguous).
  virtual void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                                 Tensor& out, Tensor& lse) = 0;
  // Gradients dq, dk, dv (overwritten) from dout, recomputing probabilities from lse.
  virtual void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& out, const Tensor& lse,
                                  float scale, Tensor& dq, Tensor& dk, Tensor& dv) = 0;

  // SwiGLU: out = silu(gate) * up. gate, up, out (N, I).
  virtual void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) = 0;
  // dgate, dup (overwritten).
  virtual void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                               Tensor& dgate, Tensor& dup) = 0;

  // Per-token log-probabilities at a temperature: z = logits / temperature,
  // logprob[n] = z[n, targets[n]] - logsumexp(z[n, :]), in fp32. logits (N, V) (F32 or
  // BF16), targets I32 (N), < V (a negative target gives logprob 0: ignored position),
  // logprob F32 (N), lse F32 (N) = logsumexp(z[n, :]) (of the scaled logits) saved, for
  // every row. entropy (optional, may be undefined): F32 (N), the entropy of
  // softmax(z[n]) (for every row, ignored or not). -inf logits are allowed (probability
  // 0); a row with a NaN, a +inf or only -inf gives NaN.
  virtual void logprob_forward(const Tensor& logits, const Tensor& targets, float temperature,
                               Tensor& logprob, Tensor& lse, Tensor& entropy) = 0;
  // dlogits[n, :] = dlogprob[n] * (onehot(targets[n]) - softmax(z[n])) / temperature
  // (0 for an ignored target) + the entropy term when dentropy (F32 (N)) is defined:
  // dentropy[n] * (-p_i (log p_i + H[n])) / temperature, p and H recomputed from lse.
  // Overwrites dlogits (N, V) (F32 or BF16).
  virtual void logprob_backward(const Tensor& logits, const Tensor& targets, float temperature,
                                const Tensor& lse, const Tensor& dlogprob, const Tensor& dentropy,
                                Tensor& dlogits) = 0;

  // ---- mixture of experts (DeepSeekMoE routing, dispatch and combine) ----
  // k = experts per token; a "slot" is (token n, choice j), flattened as n*k + j.

  // DeepSeek-V3 router on fp32 logits (N, E): scores = sigmoid(logits) (saved, F32 (N, E));
  // selection uses scores + bias (bias F32 (E), e_score_correction_bias): experts are split
  // into n_group groups, each group ranked by the sum of its top-2 biased scores, the best
  // topk_group groups kept, then the top_k biased scores among their experts chosen
  // (ties: lower expert index first). topk_idx I32 (N, k) in descending biased-score order;
  // topk_weight F32 (N, k) = unbiased scores of the chosen experts, divided by their sum
  // (+1e-20) when norm_topk_prob, times scaling (routed_scaling_factor).
  virtual void moe_router_forward(const Tensor& logits, const Tensor& bias, int n_group,
                                  int topk_group, int top_k, bool norm_topk_prob, float scaling,
                                  Tensor& scores, Tensor& topk_idx, Tensor& topk_weight) = 0;
  // dlogits (N, E), overwritten: the gradient through topk_weight (selection is not
  // differentiable; unchosen experts get 0).
  virtual void moe_router_backward(const Tensor& scores, const Tensor& topk_idx,
                                   const Tensor& dtopk_weight, bool norm_topk_prob, float scaling,
                                   Tensor& dlogits) = 0;

  // Stable counting sort of slots by expert: sorted_to_slot I32 (N*k) lists the slots
  // grouped by expert (ascending expert, then ascending slot), slot_to_sorted I32 (N*k)
  // is its inverse, expert_counts I32 (E) the rows per expert. The caller copies the
  // counts to the host (an explicit sync) to size the grouped GEMMs.
  virtual void moe_sort_by_expert(const Tensor& topk_idx, int num_experts, Tensor& sorted_to_slot,
                                  Tensor& slot_to_sorted, Tensor& expert_counts) = 0;
  // out[r, :] = x[sorted_to_slot[r] / k, :]. x (N, C), out (N*k, C).
  virtual void moe_gather(const Tensor& x, const Tensor& sorted_to_slot, int k, Tensor& out) = 0;
  // dx[n, :] = sum_j dsorted[slot_to_sorted[n*k + j], :] (overwritten; no atomics).
  virtual void moe_gather_backward(const Tensor& dsorted, const Tensor& slot_to_sorted, int k,
                                   Tensor& dx) = 0;
  // out[n, :] (+)= sum_j weight[n, j] * expert_out[slot_to_sorted[n*k + j], :].
  // expert_out (N*k, C), weight F32 (N, k), out (N, C); accumulate adds to out.
  virtual void moe_combine(const Tensor& expert_out, const Tensor& slot_to_sorted,
                           const Tensor& weight, Tensor& out, bool accumulate) = 0;
  // dexpert_out[slot_to_sorted[n*k+j], :] = weight[n, j] * dout[n, :];
  // dweight[n, j] = dot(dout[n, :], expert_out[slot_to_sorted[n*k+j], :]). Both overwritten.
  virtual void moe_combine_backward(const Tensor& dout, const Tensor& expert_out,
                                    const Tensor& slot_to_sorted, const Tensor& weight,
                                    Tensor& dexpert_out, Tensor& dweight) = 0;

  // Grouped GEMM over experts: rows of x are consecutive groups, group e having
  // group_rows[e] rows (host vector, sum = M). For each group:
  //   out[rows_e] = alpha * x[rows_e] @ op(w[e]) + beta * out[rows_e]
  // x (M, K); w (E, N, K) when trans_w (the nn.Linear layout), else (E, K, N); out (M, N).
  virtual void grouped_gemm(const Tensor& x, const Tensor& w, bool trans_w,
                            const std::vector<int64_t>& group_rows, Tensor& out,
                            float alpha = 1.0f, float beta = 0.0f) = 0;
  // Weight gradient of grouped_gemm with trans_w: dw[e] (+)= dout[rows_e]^T @ x[rows_e].
  // dout (M, N), x (M, K), dw F32 (E, N, K); accumulate adds to dw.
  virtual void grouped_gemm_wgrad(const Tensor& dout, const Tensor& x,
                                  const std::vector<int64_t>& group_rows, Tensor& dw,
                                  bool accumulate) = 0;

  // ---- inference (the KV-cached decode and the sampler of the rollout) ----

  // dst[rows[n], :] = src[n, :] for n < N (converting float dtypes). src (N, D) and
  // dst (M, D) float, rows may be strided (last dim contiguous); rows I32 (N), distinct
  // values in [0, M) (a repeated row is a caller bug with an unspecified winner).
  // Writes the new tokens' latents into the KV cache in one call.
  virtual void scatter_rows(const Tensor& src, const Tensor& rows, Tensor& dst) = 0;

  // Absorbed-MLA decode attention over a latent cache (model_infer.h): for each row n
  // (the new token of the sequence in cache slot slots[n], whose first lengths[n]
  // positions are valid, the token itself included) and head h:
  //   s_t = scale * dot(q[n, h, :], cache[slots[n], t, :])      for t < lengths[n]
  //   out[n, h, :] = sum_t softmax(s)_t * cache[slots[n], t, :Rv]
  // q F32 (N, H, R), cache F32 (S, Tmax, R), slots and lengths I32 (N) (lengths in
  // [1, Tmax]), out F32 (N, H, Rv) with Rv <= R; all contiguous. Computed in fp32;
  // each row's arithmetic does not depend on N or on the other rows.
  virtual void mla_decode_attention(const Tensor& q, const Tensor& cache, const Tensor& slots,
                                    const Tensor& lengths, float scale, Tensor& out) = 0;

  // Per-row expert products that need no host-side group sizes (the decode-time MoE,
  // which must not synchronise, e.g. inside a captured graph):
  //   out[r, :] = x[r / x_div, :] @ w[experts[r]]^T        for r < M
  // x (M / x_div, K), w (E, N, K) (the nn.Linear layout), out (M, N): float dtypes,
  // contiguous; experts I32 (M) in [0, E). fp32 accumulation; a row's result does not
  // depend on the other rows. For decode-sized M (the CUDA kernel reads each chosen
  // expert's weights once from memory but computes row by row); grouped_gemm is the op
  // for prefill and training.
  virtual void expert_rows_gemm(const Tensor& x, const Tensor& w, const Tensor& experts,
                                int x_div, Tensor& out) = 0;

  // One token per row of logits F32 (B, V), contiguous, drawn by the rules of sampler.h
  // (temperature, top-k, top-p, min-p, greedy) with the uniform
  // sampling_uniform(params.seed, sequence_ids[b], steps[b]); sequence_ids and steps are
  // host vectors of B. ids I32 (B). A row that cannot be sampled (every logit NaN, or,
  // when temperature > 0, a largest logit that is not finite) gets id -1: the caller
  // reports it. The CPU backend calls sample_token() per row; other backends draw the
  // same token (the filters and the draw are exact up to the order of fp64 sums, so a
  // token can differ only where u falls within ~1e-15 of a boundary).
  virtual void sample_tokens(const Tensor& logits, const SamplingParams& params,
                             const std::vector<uint64_t>& sequence_ids,
                             const std::vector<uint64_t>& steps, Tensor& ids) = 0;

  // ---- optimizer ----
  struct AdamWArgs {
    float lr, beta1, beta2, eps, weight_decay;
    float grad_scale;         // multiplies the gradient first (global-norm clipping)
    float bias_correction1;   // 1 - beta1^step
    float bias_correction2;   // 1 - beta2^step
  };
  // One decoupled-weight-decay Adam step on fp32 master weights:
  //   g = grad * grad_scale; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  //   param -= lr * (m / bc1 / (sqrt(v / bc2) + eps) + weight_decay * param).
  // param, m, v F32 (n); grad F32 or BF16 (n). If param_copy is defined (BF16 (n)), it
  // receives the updated weights rounded to bf16 (the compute copy on GPUs).
  virtual void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                          const AdamWArgs& args, Tensor& param_copy) = 0;
};

// The CPU backend. threads <= 0: all cores (OpenMP's default). Sets the threads of
// OpenBLAS and OpenMP for this process.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

}  // namespace zeroth
