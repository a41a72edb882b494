// GrpoRun::update (grpo_run.h): one step's policy update on the trainers: the kept groups
// as micro-batches, log pi_old (an old-log-prob pass when the config asks for the
// trainer's), the reference's log-probs, the GRPO loss and its backward, the gradient
// all-reduce, AdamW and the router-bias update, ppo_epochs x mini_batches times.
// Must not: generate, score, log metrics or save (grpo_trainer.cpp, grpo_collect.cpp),
// or implement the loss (grpo_loss.cpp) or the optimizer (optim_adamw.cpp).
#include <algorithm>
#include <cmath>
#include <vector>

#include "grpo_run.h"
#include "zeroth/backend.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/grad_sync.h"
#include "zeroth/log.h"
#include "zeroth/model.h"

namespace zeroth {
namespace grpo_detail {

int64_t row_length(const SeqRef& r) {
  const int64_t n = int64_t(r.first->completions[size_t(r.second)].ids.size());
  return int64_t(r.first->prompt.size()) + std::max<int64_t>(0, n - 1);
}

MicroBatch empty_micro_batch(int32_t pad_id) {
  MicroBatch m;
  m.S = m.T = m.N = 1;
  m.ids = {pad_id};
  m.targets = {-1};
  m.seq = {-1};
  m.mask = {0.0f};
  m.rollout_lp = {0.0f};
  m.adv = {0.0};
  m.lengths = {0};
  return m;
}

MicroBatch build_micro_batch(const std::vector<SeqRef>& seqs, const MicroPlan& plan, int32_t pad_id) {
  MicroBatch m;
  m.S = int64_t(plan.idx.size());
  m.T = plan.T;
  m.N = m.S * m.T;
  m.ids.assign(size_t(m.N), pad_id);
  m.targets.assign(size_t(m.N), -1);
  m.seq.assign(size_t(m.N), -1);
  m.mask.assign(size_t(m.N), 0.0f);
  m.rollout_lp.assign(size_t(m.N), 0.0f);
  m.adv.assign(size_t(m.S), 0.0);
  m.lengths.assign(size_t(m.S), 0);
  for (int64_t s = 0; s < m.S; ++s) {
    const SeqRef& r = seqs[plan.idx[size_t(s)]];
    const Group& g = *r.first;
    const int64_t j = r.second;
    const Completion& cpl = g.completions[size_t(j)];
    const int64_t P = int64_t(g.prompt.size()), n = int64_t(cpl.ids.size());
    m.lengths[size_t(s)] = row_length(r);
    ZT_ASSERT(m.lengths[size_t(s)] <= m.T, "a row of %lld tokens in a micro-batch of length %lld",
              (long long)m.lengths[size_t(s)], (long long)m.T);
    int32_t* row = &m.ids[size_t(s * m.T)];
    std::copy(g.prompt.begin(), g.prompt.end(), row);
    for (int64_t t = 0; t + 1 < n; ++t) row[P + t] = cpl.ids[size_t(t)];
    const bool in = g.in_loss[size_t(j)] != 0;
    const float* keep = g.keep.empty() ? nullptr : g.keep[size_t(j)].data();
    for (int64_t t = 0; t < n; ++t) {
      const size_t at = m.at(s, P, t);
      m.targets[at] = cpl.ids[size_t(t)];
      m.mask[at] = in && (!keep || keep[t] != 0.0f) ? 1.0f : 0.0f;
      m.seq[at] = int32_t(s);
      m.rollout_lp[at] = cpl.logprobs[size_t(t)];
    }
    m.adv[size_t(s)] = g.advantage[size_t(j)];
  }
  return m;
}

namespace {

std::vector<MicroPlan> plan_micro_batches(const std::vector<SeqRef>& seqs, int64_t micro, int64_t tokens,
                                          int64_t T_step) {
  std::vector<int64_t> lengths;
  for (const SeqRef& r : seqs) lengths.push_back(row_length(r));
  return grpo_detail::plan_micro_batches(lengths, micro, tokens, T_step);
}

}  // namespace

void GrpoRun::upload(const MicroBatch& mbt, Tensor& ids, Tensor& targets) {
  ids = Tensor::empty(backend_, {mbt.S, mbt.T}, DType::I32);
  targets = Tensor::empty(backend_, {mbt.N}, DType::I32);
  ids.copy_from_host(mbt.ids.data(), mbt.ids.size() * sizeof(int32_t));
  targets.copy_from_host(mbt.targets.data(), mbt.targets.size() * sizeof(int32_t));
}

// One model's forward over a micro-batch and the log-probs of its targets (to the host);
// `entropy` (device) gets the entropies when given. The model keeps what its backward
// needs. The rows' lengths go with it, so the expert loads (router-bias update) and the
// balance loss count the real tokens only, not the padding.
std::vector<float> GrpoRun::logprobs(Model& m, const MicroBatch& mbt, Tensor& ids, Tensor& targets,
                                     Tensor* entropy) {
  m.forward(ids, &mbt.lengths);
  Tensor lp = Tensor::empty(backend_, {mbt.N}, DType::F32);
  m.token_logprobs(targets, temperature_, lp, entropy);
  std::vector<float> h(size_t(mbt.N));
  lp.copy_to_host(h.data(), h.size() * sizeof(float));
  return h;
}

// Expert parallelism: every forward/backward is collective over the expert group, so a
// rank with fewer micro-batches than another of its group runs empty ones (one padding
// token, no loss, no expert load, no balance loss) until the counts match.
int64_t GrpoRun::extra_micro_batches(size_t mine, StepUpdate& up) {
  if (!pg_.expert) return 0;
  int64_t most = int64_t(mine);
  pg_.expert->all_reduce_host(&most, 1, ReduceOp::Max);
  up.empty_micro += double(most - int64_t(mine));
  return most - int64_t(mine);
}

void GrpoRun::empty_pass(Model& m, bool backward) {
  const MicroBatch& mbt = *empty_mbt_;
  Tensor ids, targets;
  upload(mbt, ids, targets);
  const float aux = m.aux_loss_alpha();
  m.set_aux_loss_alpha(0.0f);
  m.forward(ids, &mbt.lengths);
  Tensor lp = Tensor::empty(backend_, {mbt.N}, DType::F32);
  m.token_logprobs(targets, temperature_, lp, nullptr);
  if (backward) {
    Tensor zero = Tensor::zeros(backend_, {mbt.N}, DType::F32);
    m.backward_from_logprob_grad(zero, nullptr);
  }
  m.set_aux_loss_alpha(aux);
}

// The trainer's log-probs at the rollout's weights, before the first update, into every
// group's old_logprob, with the rollout-correction weights and the kept tokens.
void GrpoRun::old_logprob_pass(std::vector<Group>& kept, int64_t T, StepUpdate& up) {
  const GrpoConfig& gc = cfg_.grpo;
  const int64_t G = G_;
  std::vector<SeqRef> all;
  std::vector<Group*> owner;  // all[k]'s group, to store the results in
  for (Group& g : kept)
    for (int64_t j = 0; j < G; ++j) {
      all.push_back({&g, j});
      owner.push_back(&g);
    }
  const std::vector<MicroPlan> plans = plan_micro_batches(all, cfg_.rl.micro_batch, cfg_.rl.micro_batch_tokens, T);
  for (int64_t e = extra_micro_batches(plans.size(), up); e > 0; --e) empty_pass(*model_, false);
  for (const MicroPlan& plan : plans) {
    const MicroBatch mbt = build_micro_batch(all, plan, pad_id_);
    const int64_t S = mbt.S;
    Tensor ids, targets;
    upload(mbt, ids, targets);
    const std::vector<float> h_lp = logprobs(*model_, mbt, ids, targets, nullptr);
    GrpoTokens tk;
    tk.n_tokens = mbt.N;
    tk.n_seqs = S;
    tk.mask = mbt.mask.data();
    tk.seq_index = mbt.seq.data();
    const RolloutCorrection corr = rollout_correction(gc, tk, h_lp.data(), mbt.rollout_lp.data());
    up.mismatch.add(corr.stats);
    for (int64_t s = 0; s < S; ++s) {
      Group& g = *owner[plan.idx[size_t(s)]];
      const int64_t j = all[plan.idx[size_t(s)]].second;
      const int64_t P = int64_t(g.prompt.size()), n = int64_t(g.completions[size_t(j)].ids.size());
      if (g.old_logprob.empty()) {
        g.old_logprob.resize(size_t(G));
        g.is_weight.resize(size_t(G));
        g.keep.resize(size_t(G));
      }
      auto& lp = g.old_logprob[size_t(j)];
      auto& w = g.is_weight[size_t(j)];
      auto& keep = g.keep[size_t(j)];
      lp.resize(size_t(n));
      w.resize(size_t(n));
      keep.resize(size_t(n));
      for (int64_t t = 0; t < n; ++t) {
        const size_t at = mbt.at(s, P, t);
        lp[size_t(t)] = h_lp[at];
        w[size_t(t)] = corr.weight[at];
        keep[size_t(t)] = mbt.mask[at] == 0.0f || corr.mask[at] != 0.0f ? 1.0f : 0.0f;
      }
    }
  }
}

// The work of each of the step's groups (by global_index, on every rank: each rank fills
// its own and an all-reduce sums them) and how it is spread now; with rl.balance_batch the
// groups then move to balance_plan's ranks. A group's work is its rows with the fixed
// split (every row is padded to the step's longest), its rows' real tokens with
// rl.micro_batch_tokens (rows are packed by length and padded little). Returns
// dp_imbalance of the shares the update trains.
double GrpoRun::balance(std::vector<Group>& kept, int64_t kept_global) {
  Communicator& team = *team_;
  const int ranks = team.size();
  std::vector<double> cost(size_t(kept_global), 0.0), holder(size_t(kept_global), 0.0);
  for (const Group& g : kept) {
    double c = 0;
    for (int64_t j = 0; j < int64_t(g.completions.size()); ++j)
      c += cfg_.rl.micro_batch_tokens > 0 ? double(row_length({&g, j})) : 1.0;
    cost[size_t(g.global_index)] = c;
    holder[size_t(g.global_index)] = double(team.rank());
  }
  if (kept_global > 0) {
    team.all_reduce_host(cost.data(), cost.size(), ReduceOp::Sum);
    team.all_reduce_host(holder.data(), holder.size(), ReduceOp::Sum);
  }
  std::vector<int> owner(holder.begin(), holder.end());
  if (cfg_.rl.balance_batch) {
    owner = balance_plan(cost, ranks, cfg_.grpo.mini_batches);
    move_groups(team, backend_, kept, owner);
  }
  return dp_imbalance(cost, owner, ranks, cfg_.grpo.mini_batches);
}

StepUpdate GrpoRun::update(int64_t step, std::vector<Group>& kept, int64_t kept_global) {
  const GrpoConfig& gc = cfg_.grpo;
  GrpoConfig loss_cfg = gc;  // grpo.kl_in_reward: the reward carries the KL, the loss does not
  loss_cfg.kl_coef = gc.kl_in_reward ? 0.0 : kl_coef_;  // (kl_coef_: grpo.kl_target's adaptive value)
  const int64_t G = G_;
  Communicator& team = *team_;
  Model& model = *model_;
  const ModelConfig& mc = src_.config;
  StepUpdate up;
  if (team.size() > 1) up.dp_imbalance = balance(kept, kept_global);
  // One sequence length T for the whole step (global max of prompt + completion - 1), so
  // the fixed split's (b, T) shapes do not depend on how the groups fall on ranks.
  double t_max = 1;
  for (const Group& g : kept)
    for (const Completion& cpl : g.completions)
      t_max = std::max(t_max, double(g.prompt.size() + cpl.ids.size() - 1));
  team.all_reduce_host(&t_max, 1, ReduceOp::Max);
  const int64_t T = int64_t(t_max);
  const bool own_old = gc.ppo_epochs * gc.mini_batches == 1;
  // log pi_old: the trainer's at the rollout's weights where the config asks for it; from
  // a pass before the first update when the step updates more than once, or when a mask
  // mode must know its rejected tokens before the loss normalisers; else from the
  // micro-batch's own forward (one update: the weights have not moved yet, unless
  // rl.rollout_lag 1 sampled the batch one update earlier).
  const bool old_pass = trainer_old_ && (!own_old || gc.rollout_is_rejects());
  const bool own_forward_old = own_old && !old_pass && gc.old_logprobs != "rollout" && !lagged_auto_;
  up.has_mismatch = old_pass || own_old;
  const int64_t micro_cfg = cfg_.rl.micro_batch, micro_tokens = cfg_.rl.micro_batch_tokens;
  if (old_pass) old_logprob_pass(kept, T, up);

  for (int64_t epoch = 0; epoch < gc.ppo_epochs; ++epoch) {
    for (int64_t mb = 0; mb < gc.mini_batches; ++mb) {
      const PromptShard range = prompt_shard(kept_global, int(mb), int(gc.mini_batches));
      std::vector<SeqRef> seqs;
      for (const Group& g : kept)
        if (g.global_index >= range.begin && g.global_index < range.begin + range.count)
          for (int64_t j = 0; j < G; ++j) seqs.push_back({&g, j});
      GrpoCounts counts;
      for (const auto& s : seqs)
        if (s.first->in_loss[size_t(s.second)]) {
          double n = double(s.first->completions[size_t(s.second)].ids.size());
          if (!s.first->keep.empty()) {  // a mask mode's rejected tokens leave the normalisers
            const auto& keep = s.first->keep[size_t(s.second)];
            n = double(std::count(keep.begin(), keep.end(), 1.0f));
          }
          counts.tokens += n;
          counts.sequences += n > 0 ? 1.0 : 0.0;
        }
      double cs[3] = {counts.tokens, counts.sequences, double(seqs.size())};
      team.all_reduce_host(cs, 3, ReduceOp::Sum);
      counts.tokens = cs[0];
      counts.sequences = cs[1];
      // The balance loss (model.aux_loss_alpha): a mean over every sequence the optimizer
      // step trains on, over all ranks and micro-batches.
      model.set_aux_loss_sequences(int64_t(cs[2]));
      counts.norm_len = double(gc.resolved_loss_norm_len(cfg_.rollout.max_new_tokens));
      if (counts.tokens == 0) continue;  // nothing to train on anywhere (all masked)
      up.trained_tokens += counts.tokens;

      model.zero_grad();
      std::vector<std::vector<int64_t>> loads;
      const std::vector<MicroPlan> plans = plan_micro_batches(seqs, micro_cfg, micro_tokens, T);
      for (int64_t e = extra_micro_batches(plans.size(), up); e > 0; --e) {
        if (ref_ && !gc.kl_in_reward) empty_pass(*ref_, false);
        empty_pass(model, true);
      }
      for (const MicroPlan& plan : plans) {
        const MicroBatch mbt = build_micro_batch(seqs, plan, pad_id_);
        const int64_t S = mbt.S, N = mbt.N;
        up.row_tokens += double(N);
        for (int64_t len : mbt.lengths) up.pad_tokens += double(mbt.T - len);
        // log pi_old and the rollout-correction weights from the old-log-prob pass.
        std::vector<float> h_old, h_w;
        if (old_pass) {
          h_old.assign(size_t(N), 0.0f);
          h_w.assign(size_t(N), 1.0f);
          for (int64_t s = 0; s < S; ++s) {
            const Group& g = *seqs[plan.idx[size_t(s)]].first;
            const int64_t j = seqs[plan.idx[size_t(s)]].second;
            const int64_t P = int64_t(g.prompt.size());
            const auto& lp = g.old_logprob[size_t(j)];
            const auto& w = g.is_weight[size_t(j)];
            for (int64_t t = 0; t < int64_t(lp.size()); ++t) {
              h_old[mbt.at(s, P, t)] = lp[size_t(t)];
              h_w[mbt.at(s, P, t)] = w[size_t(t)];
            }
          }
        }
        Tensor ids, targets;
        upload(mbt, ids, targets);
        const bool ref_in_loss = ref_ && !gc.kl_in_reward;  // (kl_in_reward: the KL went into the reward)
        const std::vector<float> h_ref = ref_in_loss ? logprobs(*ref_, mbt, ids, targets, nullptr) : std::vector<float>();
        Tensor entropy = Tensor::empty(backend_, {N}, DType::F32);
        std::vector<float> h_lp = logprobs(model, mbt, ids, targets, &entropy);
        std::vector<float> h_ent(static_cast<size_t>(N));
        entropy.copy_to_host(h_ent.data(), h_ent.size() * sizeof(float));
        GrpoTokens tk;
        tk.n_tokens = N;
        tk.n_seqs = S;
        tk.logprob = h_lp.data();
        tk.old_logprob = old_pass ? h_old.data() : own_forward_old ? h_lp.data() : mbt.rollout_lp.data();
        tk.ref_logprob = ref_in_loss ? h_ref.data() : nullptr;
        tk.entropy = h_ent.data();
        tk.mask = mbt.mask.data();
        tk.seq_index = mbt.seq.data();
        tk.advantage = mbt.adv.data();
        std::vector<uint64_t> h_key;
        if (gc.policy_loss == "clip_cov") {
          // Clip-Cov's draw: keyed by (global sample, completion position) and, through the
          // seed, by the step and the optimizer step, so it does not depend on the rank.
          h_key.assign(size_t(N), 0);
          for (int64_t s = 0; s < S; ++s) {
            const Group& g = *seqs[plan.idx[size_t(s)]].first;
            const int64_t j = seqs[plan.idx[size_t(s)]].second;
            const int64_t P = int64_t(g.prompt.size());
            const uint64_t sample = uint64_t(g.global_index * G_ + j);
            for (int64_t t = 0; t < int64_t(g.completions[size_t(j)].ids.size()); ++t)
              h_key[mbt.at(s, P, t)] = (sample << 32) | uint64_t(t);
          }
          tk.token_key = h_key.data();
          tk.cov_seed = rng_stream_key(cfg_.run.seed, "grpo/clip_cov") ^
                        (uint64_t(step) << 20) ^ uint64_t(epoch * gc.mini_batches + mb);
        }
        if (old_pass) {
          if (gc.rollout_is != "none") tk.is_weight = h_w.data();
        } else if (own_old) {
          // One update a step: this forward is the trainer at the rollout's weights, so the
          // mismatch (and a truncate mode's weights) come from it.
          RolloutCorrection corr = rollout_correction(gc, tk, h_lp.data(), mbt.rollout_lp.data());
          up.mismatch.add(corr.stats);
          h_w = std::move(corr.weight);
          if (gc.rollout_is != "none") tk.is_weight = h_w.data();
        }
        const GrpoLossResult lr_res = grpo_policy_loss(loss_cfg, tk, counts);
        up.stats.add(lr_res.stats);
        up.loss_sum += lr_res.loss;
        up.aux_sum += double(model.aux_loss());
        Tensor dlogprob = Tensor::empty(backend_, {N}, DType::F32);
        dlogprob.copy_from_host(lr_res.dlogprob.data(), lr_res.dlogprob.size() * sizeof(float));
        if (!lr_res.dentropy.empty()) {
          Tensor dentropy = Tensor::empty(backend_, {N}, DType::F32);
          dentropy.copy_from_host(lr_res.dentropy.data(), lr_res.dentropy.size() * sizeof(float));
          model.backward_from_logprob_grad(dlogprob, &dentropy);
        } else {
          model.backward_from_logprob_grad(dlogprob, nullptr);
        }
        const std::vector<MoeLayerStats> ms = model.moe_stats();
        if (loads.empty()) loads.assign(ms.size(), {});
        for (size_t l = 0; l < ms.size(); ++l) {
          if (loads[l].empty()) loads[l].assign(ms[l].load.size(), 0);
          for (size_t e = 0; e < ms[l].load.size(); ++e) loads[l][e] += ms[l].load[e];
        }
      }
      up.lr = schedule_.lr_at(optimizer_->step_count() + 1);
      const float norm = reduce_and_step(*grad_sync_, *optimizer_, model.params(), model.grads(), up.lr);
      up.grad_norm = norm;
      ++up.opt_steps;
      if (!std::isfinite(norm))
        ZT_LOG_WARN("train: step %lld: gradient norm is %g; the update was skipped", (long long)step, double(norm));
      // Every rank needs the same layer/expert shape for the all-reduce, also one with no
      // sequences in this mini-batch (zeros from the config: moe_stats() is empty before
      // the model's first training forward).
      if (loads.empty())
        for (int64_t l = 0; l < mc.num_hidden_layers; ++l)
          if (mc.is_moe_layer(l)) loads.push_back(std::vector<int64_t>(size_t(mc.n_routed_experts), 0));
      if (!loads.empty()) {
        all_reduce_loads(team, loads);
        const float gamma = float(cfg_.model.bias_update_speed);
        if (gamma > 0.0f) model.update_router_bias(gamma, loads);
        up.loads = loads;
      }
    }
  }

  // ---- reduce the step's figures over the trainers ----
  std::vector<double> sv = up.stats.to_vector();
  sv.push_back(up.aux_sum);
  sv.push_back(up.loss_sum);
  team.all_reduce_host(sv.data(), sv.size(), ReduceOp::Sum);
  up.loss_sum = sv.back();
  sv.pop_back();
  up.aux_sum = sv.back();
  sv.pop_back();
  up.stats = GrpoLossStats::from_vector(sv);
  std::vector<double> mv = up.mismatch.to_vector();
  double mis_max = up.mismatch.abs_diff_max;
  team.all_reduce_host(mv.data(), mv.size(), ReduceOp::Sum);
  team.all_reduce_host(&mis_max, 1, ReduceOp::Max);
  up.mismatch = MismatchStats::from_vector(mv, mis_max);
  if (up.mismatch.nonfinite > 0)
    ZT_LOG_WARN("train: step %lld: %.0f loss tokens have a non-finite trainer or rollout log-prob",
                (long long)step, up.mismatch.nonfinite);
  double pad[3] = {up.pad_tokens, up.row_tokens, up.empty_micro};
  team.all_reduce_host(pad, 3, ReduceOp::Sum);
  up.pad_tokens = pad[0];
  up.row_tokens = pad[1];
  up.empty_micro = pad[2];
  return up;
}

}  // namespace grpo_detail
}  // namespace zeroth
