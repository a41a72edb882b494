// Benchmarks of the model and of the GEMM it is built on: measuring programs, not
// tests (nothing here asserts on speed). `zeroth bench train|gemm` prints what these
// return as a table and JSON.
//
// Owns: the analytic FLOP count of a training step, the timed forward+backward loop
// on a randomly initialised model, the sgemm peak measured on the same backend, and
// the per-op time breakdown (a Backend that times each call it forwards).
// Must not: change the model's math, or be used inside training (the breakdown
// wrapper synchronizes around every op: exact on the CPU backend; on CUDA each op's
// device time plus one launch latency).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "zeroth/backend.h"
#include "zeroth/model_config.h"

namespace zeroth {

// ---- FLOP counts (multiply-add = 2 FLOPs; elementwise ops, norms, softmax excluded) ----
struct TrainFlops {
  int64_t matmul_params = 0;  // weights one token multiplies by (see below)
  double matmul = 0.0;        // 6 * matmul_params * tokens (2 forward + 4 backward)
  double attention = 0.0;     // 3 * forward: 2 * B*H * T(T+1)/2 * (Dqk + Dv) causal
  double total() const { return matmul + attention; }
};
// matmul_params per token: every attention projection, the dense MLPs, each MoE
// layer's router, shared experts and top_k routed experts, and lm_head; the
// embedding (a lookup) is excluded. For a (B, T) forward+backward.
TrainFlops train_step_flops(const ModelConfig& cfg, int64_t B, int64_t T);

// ---- sgemm ----
struct GemmBenchResult {
  int64_t n = 0;            // C (n, n) = A (n, n) @ B (n, n), all in `dtype`
  DType dtype = DType::F32; // F32, or BF16 (fp32 accumulation): the GPU's peak
  int reps = 0;
  double best_s = 0.0;      // fastest single call
  double gflops = 0.0;      // 2 n^3 / best_s / 1e9
};
// Times `reps` calls of be.gemm (after one untimed call) on random F32 matrices.
GemmBenchResult bench_sgemm(Backend& be, int64_t n, int reps, DType dtype = DType::F32);

// ---- forward+backward of the model ----
struct TrainBenchOptions {
  int64_t batch = 8;
  int64_t seq = 512;
  int steps = 3;         // timed steps (best and mean are reported)
  int warmup = 1;        // untimed steps first (allocation, page faults)
  uint64_t seed = 0;     // weights and token ids
  bool breakdown = true; // one extra step with every backend op timed (CPU only)
  DType compute = DType::F32;  // the model's compute dtype (BF16: mixed precision)
  bool recompute = false;      // activation recomputation per block
};

// Time of one op kind over the profiled step, split by phase.
struct OpTime {
  std::string op;         // e.g. "gemm", "attention", "grouped_gemm"
  double forward_s = 0.0;
  double backward_s = 0.0;
  int64_t calls = 0;
};

struct TrainBenchResult {
  int64_t batch = 0, seq = 0, tokens = 0;  // tokens = batch * seq
  int steps = 0;
  int64_t params = 0, active_params = 0;   // ModelConfig's counts
  TrainFlops flops;                        // per step
  double forward_s_best = 0.0;             // forward + token_logprobs
  double backward_s_best = 0.0;            // backward_from_logprob_grad
  double step_s_best = 0.0, step_s_mean = 0.0;  // forward + backward of one step
  double tokens_per_s = 0.0;               // tokens / step_s_best
  double gflops = 0.0;                     // flops.total() / step_s_best / 1e9
  float loss = 0.0f;                       // mean NLL of the last step (sanity: ~ln V)
  int64_t peak_bytes = 0;                  // most bytes ever allocated through the backend
  int64_t weight_bytes = 0;                // of which: weights, gradients, compute copy
  std::vector<OpTime> breakdown;           // empty unless options.breakdown
  double breakdown_step_s = 0.0;           // the profiled step's own wall time
};

// Random-initialised model (init_params with options.seed) on `be`, random ids in
// [0, V), targets = the next token (the last position ignored), loss = mean NLL via
// Model::token_logprobs / backward_from_logprob_grad. Throws UsageError for a
// non-positive batch/seq/steps, a negative warmup or seq > max_position_embeddings.
TrainBenchResult bench_train(const ModelConfig& cfg, Backend& be, const TrainBenchOptions& options);

}  // namespace zeroth
