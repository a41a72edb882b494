// bench_train / bench_sgemm / train_step_flops (zeroth/bench.h): the measuring loops
// behind `zeroth bench train` and `zeroth bench gemm`.
// Owns: the FLOP formula, the random model and batch, the timed steps and the
// profiled step. Must not: assert on speed, print (the CLI formats), or change the
// model (it only calls Model's public forward/backward).
#include "zeroth/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "train/bench_timing_backend.h"
#include "zeroth/error.h"
#include "zeroth/model.h"
#include "zeroth/model_params.h"

namespace zeroth {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

TrainFlops train_step_flops(const ModelConfig& c, int64_t B, int64_t T) {
  const int64_t C = c.hidden_size, H = c.num_attention_heads, Dqk = c.qk_head_dim();
  const int64_t Dn = c.qk_nope_head_dim, Dr = c.qk_rope_head_dim, Dv = c.v_head_dim;
  const int64_t Rkv = c.kv_lora_rank;
  int64_t attn = 0;
  if (c.q_lora_rank)
    attn += *c.q_lora_rank * C + H * Dqk * *c.q_lora_rank;  // q_a_proj, q_b_proj
  else
    attn += H * Dqk * C;                                    // q_proj
  attn += (Rkv + Dr) * C + H * (Dn + Dv) * Rkv + C * H * Dv;  // kv_a, kv_b, o_proj
  const int64_t dense = 3 * c.intermediate_size * C;
  const int64_t expert = 3 * c.moe_intermediate_size * C;
  const int64_t moe = c.n_routed_experts * C + (c.n_shared_experts + c.num_experts_per_tok) * expert;
  TrainFlops f;
  f.matmul_params = c.vocab_size * C;  // lm_head
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    f.matmul_params += attn + (c.is_moe_layer(l) ? moe : dense);
  const double tokens = double(B) * double(T);
  f.matmul = 6.0 * double(f.matmul_params) * tokens;
  const double causal_pairs = double(T) * double(T + 1) / 2.0;
  f.attention = 3.0 * 2.0 * double(B) * double(H) * causal_pairs * double(Dqk + Dv) *
                double(c.num_hidden_layers);
  return f;
}

GemmBenchResult bench_sgemm(Backend& be, int64_t n, int reps, DType dtype) {
  if (n <= 0 || reps <= 0)
    throw UsageError(strformat("bench gemm: --n and --reps must be positive, found n=%lld reps=%d",
                               (long long)n, reps));
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> h(size_t(n * n));
  for (float& x : h) x = u(rng);
  ZT_ASSERT(dtype == DType::F32 || dtype == DType::BF16, "bench gemm: dtype %s",
            dtype_name(dtype));
  Tensor a = Tensor::empty(be, {n, n}, dtype), b = Tensor::empty(be, {n, n}, dtype);
  Tensor c = Tensor::empty(be, {n, n}, dtype);
  {
    Tensor h32 = Tensor::empty(be, {n, n}, DType::F32);
    h32.copy_from_host(h.data(), h.size() * sizeof(float));
    be.copy(h32, a);
    for (float& x : h) x = u(rng);  // b differs from a
    h32.copy_from_host(h.data(), h.size() * sizeof(float));
    be.copy(h32, b);
  }
  be.gemm(a, false, b, false, c);  // warm-up: thread pool start, page faults
  be.synchronize();
  GemmBenchResult r;
  r.n = n;
  r.reps = reps;
  r.dtype = dtype;
  r.best_s = INFINITY;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_s();
    be.gemm(a, false, b, false, c);
    be.synchronize();
    r.best_s = std::min(r.best_s, now_s() - t0);
  }
  r.gflops = 2.0 * double(n) * double(n) * double(n) / r.best_s / 1e9;
  return r;
}

TrainBenchResult bench_train(const ModelConfig& cfg, Backend& be, const TrainBenchOptions& o) {
  if (o.batch <= 0 || o.seq < 2 || o.steps <= 0 || o.warmup < 0)
    throw UsageError(strformat(
        "bench train: expected --batch >= 1, --seq >= 2, --steps >= 1, --warmup >= 0, found "
        "batch=%lld seq=%lld steps=%d warmup=%d",
        (long long)o.batch, (long long)o.seq, o.steps, o.warmup));
  if (o.seq > cfg.max_position_embeddings)
    throw UsageError(strformat("bench train: --seq %lld exceeds the model's max_position_embeddings %lld",
                               (long long)o.seq, (long long)cfg.max_position_embeddings));
  const int64_t B = o.batch, T = o.seq, N = B * T, V = cfg.vocab_size;

  bench::TimingBackend tb(be, V);
  Model model(cfg, tb, o.compute);
  model.set_recompute(o.recompute);
  init_params(cfg, model.params(), o.seed);
  const size_t weight_bytes = tb.live_bytes();

  std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ull);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(V - 1));
  std::vector<int32_t> h_ids(static_cast<size_t>(N)), h_targets(static_cast<size_t>(N));
  for (int32_t& x : h_ids) x = tok(rng);
  for (int64_t n = 0; n < N; ++n)
    h_targets[size_t(n)] = (n % T) + 1 < T ? h_ids[size_t(n + 1)] : -1;
  std::vector<float> h_dlp(static_cast<size_t>(N));
  const double count = double(B * (T - 1));
  for (int64_t n = 0; n < N; ++n) h_dlp[size_t(n)] = h_targets[size_t(n)] < 0 ? 0.0f : float(-1.0 / count);
  Tensor ids = Tensor::empty(tb, {B, T}, DType::I32), targets = Tensor::empty(tb, {N}, DType::I32);
  Tensor logprob = Tensor::empty(tb, {N}, DType::F32), dlogprob = Tensor::empty(tb, {N}, DType::F32);
  ids.copy_from_host(h_ids.data(), h_ids.size() * sizeof(int32_t));
  targets.copy_from_host(h_targets.data(), h_targets.size() * sizeof(int32_t));
  dlogprob.copy_from_host(h_dlp.data(), h_dlp.size() * sizeof(float));

  TrainBenchResult r;
  r.batch = B;
  r.seq = T;
  r.tokens = N;
  r.steps = o.steps;
  r.params = cfg.num_parameters();
  r.active_params = cfg.num_active_parameters();
  r.flops = train_step_flops(cfg, B, T);

  // One step: forward + log-probs, then backward; returns (forward s, backward s).
  auto step = [&](double* fwd, double* bwd) {
    model.zero_grad();
    be.synchronize();
    const double t0 = now_s();
    tb.set_phase(0);
    model.forward(ids);
    model.token_logprobs(targets, 1.0f, logprob, nullptr);
    be.synchronize();
    const double t1 = now_s();
    tb.set_phase(1);
    model.backward_from_logprob_grad(dlogprob, nullptr);
    be.synchronize();
    *fwd = t1 - t0;
    *bwd = now_s() - t1;
  };
  double f = 0.0, b = 0.0;
  for (int i = 0; i < o.warmup; ++i) step(&f, &b);
  r.forward_s_best = r.backward_s_best = r.step_s_best = INFINITY;
  double sum = 0.0;
  for (int i = 0; i < o.steps; ++i) {
    step(&f, &b);
    r.forward_s_best = std::min(r.forward_s_best, f);
    r.backward_s_best = std::min(r.backward_s_best, b);
    r.step_s_best = std::min(r.step_s_best, f + b);
    sum += f + b;
  }
  r.step_s_mean = sum / o.steps;
  r.tokens_per_s = double(N) / r.step_s_best;
  r.gflops = r.flops.total() / r.step_s_best / 1e9;
  std::vector<float> h_lp(static_cast<size_t>(N));
  logprob.copy_to_host(h_lp.data(), h_lp.size() * sizeof(float));
  double nll = 0.0;
  for (float x : h_lp) nll -= double(x);
  r.loss = float(nll / count);
  r.peak_bytes = int64_t(tb.peak_bytes());
  r.weight_bytes = int64_t(weight_bytes);

  if (o.breakdown) {
    tb.reset();
    tb.set_enabled(true);
    step(&f, &b);
    tb.set_enabled(false);
    r.breakdown_step_s = f + b;
    for (int k = 0; k < bench::kNumOpKinds; ++k) {
      if (tb.calls(k) == 0) continue;
      r.breakdown.push_back({bench::op_kind_name(k), tb.seconds(k, 0), tb.seconds(k, 1), tb.calls(k)});
    }
    std::sort(r.breakdown.begin(), r.breakdown.end(), [](const OpTime& x, const OpTime& y) {
      return x.forward_s + x.backward_s > y.forward_s + y.backward_s;
    });
  }
  return r;
}

}  // namespace zeroth
