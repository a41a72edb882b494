// Data-parallel equivalence: training the tiny model for 3 AdamW steps on one global
// batch of B sequences gives the same per-step losses, expert loads and final weights
// whether the batch is processed by one rank or split over np ranks (run at np 1, 2
// and 4). Each rank takes B/np sequences; the loss is normalised by the GLOBAL number
// of target tokens (dlogprob = -mask / global_count), gradients are summed with
// GradSync, and the router bias is updated from loads summed over ranks. Rank 0 also
// trains on the whole batch alone (a LocalCommunicator) as the reference, so one
// binary proves the equivalence. Tolerances (fp32, different summation orders):
// losses relative 1e-5, weights |dp - ref| <= 5e-6 + 1e-5 |ref| element-wise, expert
// loads exact; replicas must hold bit-identical weights.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "train_mpi.h"
#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/grad_sync.h"
#include "zeroth/model.h"
#include "zeroth/model_config.h"
#include "zeroth/model_params.h"
#include "zeroth/optim.h"

using namespace zeroth;

namespace {

constexpr int kSteps = 3;
constexpr int64_t kBatch = 8;  // sequences in the global batch (divisible by 1, 2, 4)
constexpr int64_t kSeq = 16;
constexpr float kGamma = 1e-3f;  // router-bias update speed

Backend& cpu() {
  static std::unique_ptr<Backend> be = make_cpu_backend(1);  // up to 4 ranks on 2 cores
  return *be;
}

ModelConfig tiny_config() {
  return read_model_config(std::string(ZEROTH_SOURCE_DIR) + "/configs/models/tiny.json");
}

// The global batch: ids (B, T) and next-token targets (B*T), -1 where ignored (the
// last position, and about a quarter of the others, as prompt tokens would be), so
// ranks hold different numbers of target tokens.
struct Batch {
  std::vector<int32_t> ids;
  std::vector<int32_t> targets;
};

Batch make_batch(int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(vocab - 1));
  std::bernoulli_distribution ignore(0.25);
  Batch b;
  b.ids.resize(size_t(kBatch * kSeq));
  for (auto& x : b.ids) x = tok(rng);
  b.targets.assign(b.ids.size(), -1);
  for (int64_t s = 0; s < kBatch; ++s)
    for (int64_t t = 0; t + 1 < kSeq; ++t)
      if (!ignore(rng)) b.targets[size_t(s * kSeq + t)] = b.ids[size_t(s * kSeq + t + 1)];
  return b;
}

struct RunResult {
  int64_t moments = 0;         // elements of each AdamW moment buffer on this rank
  std::vector<double> losses;  // global loss per step
  std::vector<float> grad_norms;
  std::vector<std::vector<std::vector<int64_t>>> loads;  // per step, per MoE layer (E)
  std::vector<float> weights;                            // final flat weights
};

// Trains on this rank's share of `batch` over the data-parallel group `dp`.
// global_norm = false normalises by the rank's own token count and averages the
// gradients instead: the common mistake, used to show the test can fail.
// aux_alpha > 0 adds the sequence-wise balance loss, a mean over aux_sequences (0: over
// each rank's own rows, the per-micro-batch normalisation whose weight grows with ranks).
// Options of the data-parallel update: ZeRO-1 (the AdamW moments sharded over dp:
// reduce-scatter, step on the owned ranges, all-gather), the clipping threshold and the
// gradient bucket size.
struct DpOptions {
  bool zero = false;
  double grad_clip = 1.0;
  size_t bucket_bytes = 16 << 10;  // small buckets: several reductions
};

RunResult train(Communicator& dp, const Batch& batch, bool global_norm = true, float aux_alpha = 0.0f,
                int64_t aux_sequences = 0, const DpOptions& o = {}) {
  Backend& be = cpu();
  const ModelConfig cfg = tiny_config();
  Model model(cfg, be);
  init_params(cfg, model.params(), 1234);
  model.set_aux_loss_alpha(aux_alpha);
  model.set_aux_loss_sequences(aux_sequences);

  OptimConfig oc;
  oc.lr = 1e-3;
  oc.weight_decay = 0.1;
  oc.grad_clip = o.grad_clip;
  oc.schedule = "cosine";
  oc.warmup_steps = 1;
  oc.min_lr_ratio = 0.1;
  const LrSchedule sched = LrSchedule::from_config(oc, kSteps);
  GradSync sync(dp, model.grads(), o.bucket_bytes, nullptr, o.zero);
  const OptimizerShard zero{&model.params(), sync.owned(), &dp};
  AdamW opt(oc, cfg, be, {}, nullptr, o.zero ? &zero : nullptr);

  const int64_t nb = kBatch / dp.size(), first = dp.rank() * nb, N = nb * kSeq;
  Tensor ids = Tensor::empty(be, {nb, kSeq}, DType::I32);
  ids.copy_from_host(batch.ids.data() + first * kSeq, size_t(N) * sizeof(int32_t));
  Tensor targets = Tensor::empty(be, {N}, DType::I32);
  const int32_t* tg = batch.targets.data() + first * kSeq;
  targets.copy_from_host(tg, size_t(N) * sizeof(int32_t));

  int64_t count = 0;
  for (int64_t i = 0; i < N; ++i) count += tg[i] >= 0;
  int64_t global_count = count;
  dp.all_reduce_host(&global_count, 1, ReduceOp::Sum);
  const double denom = global_norm ? double(global_count) : double(count);
  std::vector<float> dlp_host(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) dlp_host[size_t(i)] = tg[i] >= 0 ? float(-1.0 / denom) : 0.0f;
  Tensor dlogprob = Tensor::empty(be, {N}, DType::F32);
  dlogprob.copy_from_host(dlp_host.data(), dlp_host.size() * sizeof(float));
  Tensor logprob = Tensor::empty(be, {N}, DType::F32);

  RunResult r;
  r.moments = opt.state_numel();
  for (int step = 1; step <= kSteps; ++step) {
    model.zero_grad();
    model.forward(ids);
    model.token_logprobs(targets, 1.0f, logprob, nullptr);
    double loss = 0.0;
    for (float lp : logprob.to_float_vector()) loss -= lp;
    loss /= denom;
    dp.all_reduce_host(&loss, 1, global_norm ? ReduceOp::Sum : ReduceOp::Avg);
    model.backward_from_logprob_grad(dlogprob, nullptr);
    if (o.zero) {
      r.grad_norms.push_back(reduce_and_step(sync, opt, model.params(), model.grads(), sched.lr_at(step)));
    } else {
      sync.all_reduce(model.grads(), global_norm ? ReduceOp::Sum : ReduceOp::Avg);
      r.grad_norms.push_back(opt.step(model.params(), model.grads(), sched.lr_at(step)));
    }

    std::vector<std::vector<int64_t>> loads;
    for (const MoeLayerStats& s : model.moe_stats()) loads.push_back(s.load);
    all_reduce_loads(dp, loads);

    model.update_router_bias(kGamma, loads);
    r.losses.push_back(loss);
    r.loads.push_back(loads);
  }
  r.weights = model.params().flat.to_float_vector();
  return r;
}

// Largest element-wise |a - b| / (5e-6 + 1e-5 |b|): <= 1 passes. The absolute part is
// 1/600 of the most that 3 Adam steps at lr 1e-3 can move a weight (3e-3): far below
// a real difference in the data or the reduction, above the fp32 reordering noise
// that Adam's normalisation amplifies in near-zero gradient elements (about 1e-6).
double weight_error(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(double(a[i]) - b[i]) / (5e-6 + 1e-5 * std::fabs(b[i])));
  return worst;
}

}  // namespace

TEST_CASE("data-parallel training matches single-process training on the global batch") {
  Communicator& world = train_test::world();
  const int np = world.size();
  REQUIRE(kBatch % np == 0);
  const ModelConfig cfg = tiny_config();
  const Batch batch = make_batch(cfg.vocab_size, 77);

  const RunResult dp = train(world, batch);
  REQUIRE(dp.losses.size() == size_t(kSteps));
  for (float n : dp.grad_norms) CHECK(std::isfinite(n));

  // Every replica holds bit-identical weights (rank 0's, broadcast).
  std::vector<float> w0 = dp.weights;
  Tensor w0_t = Tensor::view_of(w0.data(), {int64_t(w0.size())}, DType::F32);
  world.broadcast(w0_t, 0);
  size_t differing = 0;
  for (size_t i = 0; i < w0.size(); ++i) differing += w0[i] != dp.weights[i];
  INFO("rank " << world.rank() << " of " << np);
  CHECK(differing == 0);

  if (world.rank() == 0) {
    std::unique_ptr<Communicator> alone = make_local_communicator(&cpu());
    const RunResult ref = train(*alone, batch);
    for (int s = 0; s < kSteps; ++s) {
      INFO("step " << s + 1);
      CHECK(dp.losses[size_t(s)] == Approx(ref.losses[size_t(s)]).epsilon(1e-5));
      CHECK(dp.grad_norms[size_t(s)] == Approx(ref.grad_norms[size_t(s)]).epsilon(1e-4));
      CHECK(dp.loads[size_t(s)] == ref.loads[size_t(s)]);
    }
    CHECK(ref.losses.back() < ref.losses.front());  // it does train
    const double err = weight_error(dp.weights, ref.weights);
    WARN("np " << np << ": worst weight error / tolerance " << err);
    CHECK(err <= 1.0);
    // The weights moved by far more than the tolerance, so the comparison has teeth.
    std::vector<float> init(ref.weights.size());
    {
      Model m(cfg, cpu());
      init_params(cfg, m.params(), 1234);
      init = m.params().flat.to_float_vector();
    }
    const double moved = weight_error(init, ref.weights);
    WARN("np " << np << ": worst weight movement / tolerance " << moved);
    CHECK(moved > 100.0);
  }
}

// The balance loss as a mean over the global batch (Model::set_aux_loss_sequences) is
// split-invariant like the cross-entropy; the per-rank mean (0) is not, which shows the
// comparison can fail (np > 1).
TEST_CASE("data-parallel training with the balance loss matches one process") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const ModelConfig cfg = tiny_config();
  const Batch batch = make_batch(cfg.vocab_size, 78);
  const float alpha = 0.05f;  // large enough to move the routers visibly in 3 steps
  const RunResult dp = train(world, batch, true, alpha, kBatch);
  const RunResult per_rank = train(world, batch, true, alpha, 0);
  if (world.rank() == 0) {
    std::unique_ptr<Communicator> alone = make_local_communicator(&cpu());
    const RunResult ref = train(*alone, batch, true, alpha, kBatch);
    const RunResult no_aux = train(*alone, batch, true, 0.0f, 0);
    const double err = weight_error(dp.weights, ref.weights);
    WARN("np " << np << " with the balance loss: worst weight error / tolerance " << err);
    // 2, not 1: the balance loss's gradient reaches every router weight through sums whose
    // order the split changes, and on an AMD EPYC's BLAS kernels the noise came to 1.09
    // (a real difference is > 10 below: no balance loss, or the per-rank mean).
    CHECK(err <= 2.0);
    for (int s = 0; s < kSteps; ++s) CHECK(dp.grad_norms[size_t(s)] == Approx(ref.grad_norms[size_t(s)]).epsilon(1e-4));
    CHECK(weight_error(no_aux.weights, ref.weights) > 10.0);  // the balance loss does act
    if (np > 1) CHECK(weight_error(per_rank.weights, ref.weights) > 10.0);
  }
}

TEST_CASE("per-rank loss normalisation is caught: it differs from the global batch") {
  Communicator& world = train_test::world();
  if (world.size() == 1) return;  // identical at np 1 by construction
  const Batch batch = make_batch(tiny_config().vocab_size, 77);
  const RunResult wrong = train(world, batch, /*global_norm=*/false);
  if (world.rank() == 0) {
    std::unique_ptr<Communicator> alone = make_local_communicator(&cpu());
    const RunResult ref = train(*alone, batch);
    const double err = weight_error(wrong.weights, ref.weights);
    WARN("np " << world.size() << ": per-rank normalisation, worst weight error / tolerance " << err);
    CHECK(err > 1.0);
  }
}

// ZeRO-1 pieces: bucket sizes of 4096 elements (the pieces divide evenly) and of 1001
// (odd: every bucket leaves a tail that the last rank owns).
TEST_CASE("ZeRO-1 gradient sync: owned ranges partition the model, reduce-scatter and all-gather are exact") {
  Communicator& world = train_test::world();
  const int np = world.size(), rank = world.rank();
  const ModelConfig cfg = tiny_config();
  for (size_t bucket_bytes : {size_t(4096 * 4), size_t(1001 * 4)}) {
    DYNAMIC_SECTION("bucket " << bucket_bytes / 4 << " elements") {
      ParamSet grads = make_param_set(cfg, cpu());
      const int64_t P = grads.flat.numel();
      // Small integers: sums are exact in any order, so the comparison is exact.
      std::vector<float> g(static_cast<size_t>(P));
      for (int64_t i = 0; i < P; ++i) g[size_t(i)] = float((i * 7 + rank * 13) % 23) - 11.0f;
      grads.flat.copy_from_host(g.data(), g.size() * sizeof(float));
      ParamSet ref = make_param_set(cfg, cpu());
      ref.flat.copy_from_host(g.data(), g.size() * sizeof(float));
      GradSync plain(world, ref, bucket_bytes);
      plain.all_reduce(ref, ReduceOp::Sum);
      const std::vector<float> want = ref.flat.to_float_vector();

      GradSync zero(world, grads, bucket_bytes, nullptr, true);
      REQUIRE(zero.sharded());
      zero.reduce_scatter(grads, ReduceOp::Sum);
      const std::vector<float> got = grads.flat.to_float_vector();
      // Each element is owned by exactly one rank; the owner holds the sum there.
      std::vector<int64_t> owners(static_cast<size_t>(P), 0), owner_id(static_cast<size_t>(P), 0);
      size_t wrong = 0;
      int64_t owned = 0;
      for (const FlatRange& r : zero.owned())
        for (int64_t i = r.offset; i < r.offset + r.numel; ++i) {
          owners[size_t(i)] = 1;
          owner_id[size_t(i)] = rank;
          wrong += got[size_t(i)] != want[size_t(i)];
          ++owned;
        }
      CHECK(wrong == 0);
      world.all_reduce_host(owners.data(), owners.size(), ReduceOp::Sum);
      world.all_reduce_host(owner_id.data(), owner_id.size(), ReduceOp::Sum);
      CHECK(std::count(owners.begin(), owners.end(), int64_t(1)) == P);
      // Balanced: no rank owns more than its share plus the buckets' tails.
      CHECK(owned <= P / np + int64_t(zero.buckets().size()) * np);

      // all_gather: every rank writes its rank into what it owns (garbage elsewhere).
      ParamSet params = make_param_set(cfg, cpu());
      std::vector<float> w(static_cast<size_t>(P), -1.0f - float(rank));
      for (const FlatRange& r : zero.owned())
        for (int64_t i = r.offset; i < r.offset + r.numel; ++i) w[size_t(i)] = float(rank) + 0.5f;
      params.flat.copy_from_host(w.data(), w.size() * sizeof(float));
      zero.all_gather(params);
      const std::vector<float> after = params.flat.to_float_vector();
      size_t stale = 0;
      for (int64_t i = 0; i < P; ++i) stale += after[size_t(i)] != float(owner_id[size_t(i)]) + 0.5f;
      CHECK(stale == 0);
    }
  }
}

TEST_CASE("ZeRO-1: the sharded optimizer trains as the replicated one, with 1/np of the moments") {
  Communicator& world = train_test::world();
  const int np = world.size();
  const ModelConfig cfg = tiny_config();
  const Batch batch = make_batch(cfg.vocab_size, 79);
  for (size_t bucket_bytes : {size_t(16 << 10), size_t(1001 * 4)}) {
    DYNAMIC_SECTION("bucket " << bucket_bytes / 4 << " elements") {
      const RunResult ddp = train(world, batch, true, 0.0f, 0, {false, 1.0, bucket_bytes});
      const RunResult zero = train(world, batch, true, 0.0f, 0, {true, 1.0, bucket_bytes});
      int64_t held = zero.moments;
      world.all_reduce_host(&held, 1, ReduceOp::Sum);
      CHECK(held == ddp.moments);  // the shards hold the layout once between them
      CHECK(zero.moments <= ddp.moments / np + 64 * np);
      // Every replica holds bit-identical weights after the all-gather.
      std::vector<float> w0 = zero.weights;
      Tensor w0_t = Tensor::view_of(w0.data(), {int64_t(w0.size())}, DType::F32);
      world.broadcast(w0_t, 0);
      CHECK(w0 == zero.weights);
      for (int s = 0; s < kSteps; ++s) {
        CHECK(zero.losses[size_t(s)] == Approx(ddp.losses[size_t(s)]).epsilon(1e-6));
        // The norm is summed in another order (shards, then ranks): rounding only.
        CHECK(zero.grad_norms[size_t(s)] == Approx(ddp.grad_norms[size_t(s)]).epsilon(1e-5));
      }
      const double err = weight_error(zero.weights, ddp.weights);
      WARN("np " << np << " ZeRO-1 vs replicated AdamW: worst weight error / tolerance " << err);
      CHECK(err <= 1.0);
      // Without clipping the norm does not enter the update: at np <= 2 the reduce-scatter
      // sums the same two numbers as the all-reduce, so the weights are the same bits.
      const RunResult ddp0 = train(world, batch, true, 0.0f, 0, {false, 0.0, bucket_bytes});
      const RunResult zero0 = train(world, batch, true, 0.0f, 0, {true, 0.0, bucket_bytes});
      if (np <= 2) {
        CHECK(zero0.weights == ddp0.weights);
      } else {
        CHECK(weight_error(zero0.weights, ddp0.weights) <= 1.0);
      }
    }
  }
}
