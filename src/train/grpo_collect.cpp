// GrpoRun::collect (grpo_run.h): one step's rollout on the generating ranks (`team`):
// batches of B prompts, each rank its shard, G completions each, rewards, advantages;
// dynamic sampling draws more batches until B groups with a non-zero advantage are kept;
// with rl.dump_rollouts_every, the step's completions to RUN_DIR/rollouts/step_N.jsonl.
// Must not: train, or send anything to other roles (the worker loop in grpo_trainer.cpp
// hands the result to the trainers).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "grpo_run.h"
#include "zeroth/run_stop.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/format_reward.h"

namespace zeroth {
namespace grpo_detail {
namespace {

// reinforce_pp and batch_std: the batch-level normalisation of the group-centred advantages
// of `kept` (this rank's trained groups; `rewards` theirs), over the step's trained batch
// of n_kept groups on every generating rank, as verl computes the advantages after its
// dynamic-sampling filter. Every completion goes to its global sample index (global_index
// * G + sample; one non-zero term per slot of one exact sum), so the statistics do not
// depend on the rank count. Collective over `team` (for these two estimators).
void normalise_over_batch(Communicator& team, const GrpoConfig& gc, int64_t G, int64_t n_kept,
                          const std::vector<std::vector<double>>& rewards, std::vector<Group>& kept) {
  if (gc.advantage != "reinforce_pp" && gc.advantage != "batch_std") return;
  const size_t n = size_t(n_kept * G);
  if (n == 0) return;  // (dynamic sampling kept nothing: the same on every rank)
  if (gc.advantage == "batch_std") {
    // LitePPO: over the std of the batch's rewards.
    std::vector<double> batch(n, 0.0);
    for (size_t g = 0; g < kept.size(); ++g)
      for (int64_t j = 0; j < G; ++j) batch[size_t(kept[g].global_index * G + j)] = rewards[g][size_t(j)];
    team.all_reduce_host(batch.data(), batch.size(), ReduceOp::Sum);
    const double scale = batch_reward_std(batch) + gc.adv_eps;
    if (scale > 0.0)  // (0 only when every reward is equal and adv_eps is 0: all advantages are 0)
      for (Group& g : kept)
        for (double& a : g.advantage) a /= scale;
    return;
  }
  // REINFORCE++-baseline: whitened over the batch's loss tokens.
  std::vector<double> batch(2 * n, 0.0);  // advantages, then token weights
  for (const Group& g : kept)
    for (int64_t j = 0; j < G; ++j) {
      const size_t at = size_t(g.global_index * G + j);
      batch[at] = g.advantage[size_t(j)];
      batch[n + at] = g.in_loss[size_t(j)] ? double(g.completions[size_t(j)].ids.size()) : 0.0;
    }
  team.all_reduce_host(batch.data(), batch.size(), ReduceOp::Sum);
  const std::vector<double> values(batch.begin(), batch.begin() + long(n)), weights(batch.begin() + long(n), batch.end());
  for (Group& g : kept) whiten_advantages(g.advantage, values, weights, gc.adv_eps);
}

// 1 for each group of G whose `rewards` are all equal, else 0; returns how many.
int64_t flag_equal_groups(const std::vector<double>& rewards, int64_t G, std::vector<uint8_t>& flags) {
  int64_t n = 0;
  flags.assign(rewards.size() / size_t(G), 0);
  for (size_t grp = 0; grp < flags.size(); ++grp) {
    const double* r = rewards.data() + grp * size_t(G);
    flags[grp] = std::all_of(r, r + G, [&](double x) { return x == r[0]; }) ? 1 : 0;
    n += flags[grp];
  }
  return n;
}

}  // namespace

// grpo.kl_in_reward: each of this rank's completions of the round (outs, G per prompt of
// `prompts`, in order) gets the sum over its tokens of the KL estimator at d = log pi_ref -
// log pi, both the trainer's forward (the same dtype; the policy is the one that sampled,
// rl.rollout_lag 0). Micro-batched as the update is, with the fixed split's row length the
// round's longest over the team; collective over the team (every rank calls it) and, with
// expert parallelism, over the expert group.
std::vector<double> GrpoRun::sequence_kl(const std::vector<std::vector<int32_t>>& prompts,
                                         const std::vector<Completion>& outs) {
  const int64_t G = G_;
  ZT_ASSERT(int64_t(outs.size()) == int64_t(prompts.size()) * G, "%zu completions of %zu prompts", outs.size(),
            prompts.size());
  std::vector<Group> groups(prompts.size());
  std::vector<SeqRef> seqs;
  double t_max = 1;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Group& g = groups[i];
    g.prompt = prompts[i];
    g.completions.assign(outs.begin() + long(i) * G, outs.begin() + long(i + 1) * G);
    g.advantage.assign(size_t(G), 0.0);
    g.in_loss.assign(size_t(G), 1);
  }
  for (const Group& g : groups)
    for (int64_t j = 0; j < G; ++j) {
      seqs.push_back({&g, j});
      t_max = std::max(t_max, double(g.prompt.size() + g.completions[size_t(j)].ids.size() - 1));
    }
  team_->all_reduce_host(&t_max, 1, ReduceOp::Max);
  std::vector<int64_t> lengths;
  for (const SeqRef& r : seqs) lengths.push_back(row_length(r));
  const std::vector<MicroPlan> plans =
      plan_micro_batches(lengths, cfg_.rl.micro_batch, cfg_.rl.micro_batch_tokens, int64_t(t_max));
  StepUpdate counted;  // (extra_micro_batches counts the empty ones here; not reported)
  for (int64_t e = extra_micro_batches(plans.size(), counted); e > 0; --e) {
    empty_pass(*ref_, false);
    empty_pass(*model_, false);
  }
  std::vector<double> kl(outs.size(), 0.0);
  for (const MicroPlan& plan : plans) {
    const MicroBatch mbt = build_micro_batch(seqs, plan, pad_id_);
    Tensor ids, targets;
    upload(mbt, ids, targets);
    const std::vector<float> ref = logprobs(*ref_, mbt, ids, targets, nullptr);
    const std::vector<float> pol = logprobs(*model_, mbt, ids, targets, nullptr);
    for (int64_t s = 0; s < mbt.S; ++s) {
      const size_t at_seq = plan.idx[size_t(s)];  // index into seqs: prompt * G + sample
      const Group& g = *seqs[at_seq].first;
      const int64_t j = seqs[at_seq].second, P = int64_t(g.prompt.size());
      double sum = 0.0;
      for (int64_t t = 0; t < int64_t(g.completions[size_t(j)].ids.size()); ++t) {
        const size_t at = mbt.at(s, P, t);
        sum += kl_estimator_value(cfg_.grpo, double(ref[at]) - double(pol[at]));
      }
      kl[at_seq] = sum;
    }
  }
  return kl;
}

StepRollout GrpoRun::collect(int64_t step) {
  const RolloutConfig& rc = cfg_.rollout;
  const GrpoConfig& gc = cfg_.grpo;
  const Tokenizer& tok = *src_.tokenizer;
  const std::vector<RewardFunctionConfig>& functions = cfg_.rewards.functions;
  const int64_t B = B_, G = G_;
  const int64_t rounds_per_step = 1 + (gc.dynamic_sampling ? gc.dynamic_max_extra_batches : 0);
  Communicator& team = *team_;
  StepRollout ro;
  const size_t n_sources = metric_sources();
  RolloutSums sums(rollout_components(cfg_.rewards), n_sources);
  double len_max = 0;
  std::vector<Group>& kept = ro.groups;
  int64_t kept_global = 0, rounds = 0;
  double rollout_s = 0, reward_s = 0;
  const int grank = team.rank(), gsize = team.size();
  // rl.dump_rollouts_every: this step's completions as JSON lines, gathered on team rank 0
  const bool dump = cfg_.rl.dump_rollouts_every > 0 && step % cfg_.rl.dump_rollouts_every == 0;
  std::string dump_text;
  std::vector<std::vector<nlohmann::ordered_json>> dump_rows;  // per round, this rank's lines
  struct DumpPatch {
    size_t round, row, group, sample;  // dump_rows[round][row] is kept[group]'s completion `sample`
  };
  std::vector<DumpPatch> dump_patch;
  std::vector<std::vector<double>> kept_rewards;  // (kept groups, G)
  // A stop signal during the rollout drops the step (colocated runs with a step to fall back
  // on): every generating rank agrees after each round's generation, the sampler goes back
  // to where the step began (it is copied here), and the run stops as after step - 1.
  const bool stoppable = !split_ && step - 1 >= 1;
  std::optional<PromptSampler> sampler_at_start;
  if (stoppable) sampler_at_start = *sampler_;
  const std::function<bool()> stop_asked = stoppable ? stop_hook(test_signal_step_, step, grank == 0) : nullptr;
  for (int64_t round = 0;; ++round) {
    rounds = round + 1;
    const std::vector<const PromptRecord*> batch = sampler_->next_batch(B);
    const PromptShard shard = prompt_shard(B, grank, gsize);
    std::vector<Group> groups(size_t(shard.count));
    std::vector<std::vector<int32_t>> prompt_ids;
    for (int64_t i = 0; i < shard.count; ++i) {
      groups[size_t(i)].prompt = encode_record(*batch[size_t(shard.begin + i)], *tmpl_, tok, rc.add_special_tokens);
      prompt_ids.push_back(groups[size_t(i)].prompt);
    }
    const uint64_t seq_base = uint64_t((((step - 1) * rounds_per_step + round) * B + shard.begin) * G);
    auto t0 = Clock::now();
    std::vector<Completion> outs;
    // (with expert parallelism every rank takes part, also one without prompts)
    int64_t stop_sig = 0;
    try {
      if (!prompt_ids.empty() || pg_.expert)
        outs = generate(*engine_, &tok, prompt_ids, G, sampling_, stop_, seq_base, nullptr, nullptr, stop_asked);
    } catch (const GenerationAborted&) {
      stop_sig = std::max(1, stop_signal());
    }
    if (stoppable) {
      team.all_reduce_host(&stop_sig, 1, ReduceOp::Max);
      if (stop_sig != 0) {
        *sampler_ = std::move(*sampler_at_start);
        throw RolloutStopped{int(stop_sig)};
      }
    }
    rollout_s += seconds_since(t0);

    t0 = Clock::now();
    std::vector<RewardSample> samples(outs.size());
    std::vector<int64_t> group_of(outs.size());  // a prompt's G completions are one group
    const bool python = composer_->config().has_python();
    for (size_t k = 0; k < outs.size(); ++k) {
      const PromptRecord& rec = *batch[size_t(shard.begin + outs[k].prompt_index)];
      samples[k].kind = rec.kind;
      samples[k].completion = outs[k].text;
      samples[k].gold = rec.gold;
      samples[k].problem = rec.problem;
      samples[k].num_tokens = int64_t(outs[k].ids.size());
      if (python) grpo_detail::add_python_inputs(samples[k], data_.train, rec, *tmpl_);
      group_of[k] = outs[k].prompt_index;
    }
    const std::vector<RewardResult> scored = composer_->score_batch(samples, group_of);
    std::vector<double> rewards(outs.size());
    std::vector<int64_t> lengths(outs.size());
    std::vector<uint8_t> truncated(outs.size()), in_loss;
    for (size_t k = 0; k < outs.size(); ++k) {
      rewards[k] = scored[k].reward;
      lengths[k] = int64_t(outs[k].ids.size());
      truncated[k] = outs[k].finish == FinishReason::kLength;
    }
    apply_overlong(gc, rc.max_new_tokens, lengths, truncated, rewards, in_loss);
    // grpo.kl_in_reward: the advantages see r - kl_coef * (the completion's KL sum); the
    // metrics and dumps keep the rule reward.
    std::vector<double> kl_seq, adv_rewards = rewards;
    if (gc.kl_in_reward) {
      kl_seq = sequence_kl(prompt_ids, outs);
      for (size_t k = 0; k < outs.size(); ++k) adv_rewards[k] -= kl_coef_ * kl_seq[k];
    }
    // Group-relative here; reinforce_pp and batch_std are normalised over the trained
    // batch once the step's groups are chosen (normalise_over_batch, after the rounds).
    Advantages adv;
    if (!rewards.empty()) adv = compute_advantages(adv_rewards, G, gc);
    if (gc.kl_in_reward)  // dynamic sampling's filter and zero_adv_group_frac judge the rule rewards
      adv.zero_groups = flag_equal_groups(rewards, G, adv.zero_group);  // (as verl's DAPO filter on acc)
    reward_s += seconds_since(t0);

    auto& v = sums.v;
    for (size_t k = 0; k < outs.size(); ++k) {
      v[RolloutSums::kSamples] += 1;
      v[RolloutSums::kReward] += rewards[k];
      v[RolloutSums::kReward2] += rewards[k] * rewards[k];
      v[RolloutSums::kCorrect] += scored[k].correct;
      v[RolloutSums::kFormat] += scored[k].format_ok;
      v[RolloutSums::kLen] += double(lengths[k]);
      v[RolloutSums::kTrunc] += truncated[k];
      v[RolloutSums::kMasked] += in_loss[k] == 0;
      v[RolloutSums::kRewardErrors] += !scored[k].reward_error.empty();
      v[RolloutSums::kLenCorrect] += scored[k].correct ? double(lengths[k]) : 0.0;
      if (!kl_seq.empty()) {
        v[RolloutSums::kKlSum] += kl_seq[k];
        v[RolloutSums::kKlTokens] += double(lengths[k]);
      }
      if (!cfg_.rl.reflection_words.empty() && contains_phrase(outs[k].text, cfg_.rl.reflection_words)) {
        v[RolloutSums::kReflect] += 1;
        v[RolloutSums::kReflectCorrect] += scored[k].correct;
      }
      for (size_t f = 0; f < functions.size(); ++f)
        v[RolloutSums::kFixed + f] += scored[k].component(functions[f].name);
      for (size_t j = 0; j < scored[k].python_metrics.size(); ++j)  // rewards.python.metrics
        if (!std::isnan(scored[k].python_metrics[j])) {
          v[RolloutSums::kFixed + functions.size() + 2 * j] += scored[k].python_metrics[j];
          v[RolloutSums::kFixed + functions.size() + 2 * j + 1] += 1;
        }
      len_max = std::max(len_max, double(lengths[k]));
      if (n_sources > 0) {
        const size_t src = size_t(batch[size_t(shard.begin + outs[k].prompt_index)]->source);
        sums.source(src, RolloutSums::kSrcSamples) += 1;
        sums.source(src, RolloutSums::kSrcReward) += rewards[k];
        sums.source(src, RolloutSums::kSrcCorrect) += scored[k].correct;
        sums.source(src, RolloutSums::kSrcFormat) += scored[k].format_ok;
        sums.source(src, RolloutSums::kSrcLen) += double(lengths[k]);
      }
    }
    std::vector<double> solved(cfg_.rl.skip_solved ? size_t(B) : 0, 0.0);  // by global prompt of the round
    for (int64_t i = 0; i < shard.count; ++i) {  // groups all of whose / none of whose samples are correct
      int64_t correct = 0;
      for (int64_t j = 0; j < G; ++j) correct += scored[size_t(i * G + j)].correct ? 1 : 0;
      v[RolloutSums::kSolvedAll] += correct == G;
      v[RolloutSums::kSolvedNone] += correct == 0;
      if (!solved.empty()) solved[size_t(shard.begin + i)] = correct == G ? 1.0 : 0.0;
    }
    if (!solved.empty()) {  // rl.skip_solved: every generating rank skips the round's solved prompts
      team.all_reduce_host(solved.data(), solved.size(), ReduceOp::Sum);
      for (int64_t i = 0; i < B; ++i)
        if (solved[size_t(i)] > 0) sampler_->skip(int64_t(batch[size_t(i)] - data_.train.records.data()));
    }
    v[RolloutSums::kGroups] += double(shard.count);
    v[RolloutSums::kZeroGroups] += double(adv.zero_groups);
    for (int64_t i = 0; i < shard.count; ++i) {
      Group& g = groups[size_t(i)];
      for (int64_t j = 0; j < G; ++j) {
        const size_t k = size_t(i * G + j);
        g.completions.push_back(std::move(outs[k]));
        g.advantage.push_back(adv.values[k]);
        g.in_loss.push_back(in_loss[k]);
      }
    }

    // The groups trained on and their global indices: all of them, or with dynamic
    // sampling those with a non-zero advantage, in the global order (round, rank, group),
    // until B are kept.
    std::vector<std::pair<size_t, int64_t>> take;  // (group, global_index)
    bool last_round = true;
    if (!gc.dynamic_sampling) {
      for (int64_t i = 0; i < shard.count; ++i) take.emplace_back(size_t(i), shard.begin + i);
      kept_global = B;
    } else {
      std::vector<int64_t> counts(size_t(gsize), 0);
      std::vector<size_t> mine;
      for (int64_t i = 0; i < shard.count; ++i)
        if (!adv.zero_group[size_t(i)]) mine.push_back(size_t(i));
      counts[size_t(grank)] = int64_t(mine.size());
      team.all_reduce_host(counts.data(), counts.size(), ReduceOp::Sum);
      int64_t offset = kept_global, total = 0;
      for (int r = 0; r < gsize; ++r) {
        if (r < grank) offset += counts[size_t(r)];
        total += counts[size_t(r)];
      }
      const int64_t n_take = std::clamp<int64_t>(B - offset, 0, int64_t(mine.size()));
      for (int64_t t = 0; t < n_take; ++t) take.emplace_back(mine[size_t(t)], offset + t);
      kept_global += std::min(total, B - kept_global);
      last_round = kept_global >= B || round >= gc.dynamic_max_extra_batches;
    }
    if (dump) {
      // A trained group's advantage is patched in after the batch normalisation.
      std::vector<int64_t> kept_at(size_t(shard.count), -1);
      for (size_t t = 0; t < take.size(); ++t) kept_at[take[t].first] = int64_t(kept.size() + t);
      std::vector<nlohmann::ordered_json>& rows = dump_rows.emplace_back();
      for (int64_t i = 0; i < shard.count; ++i) {
        const PromptRecord& rec = *batch[size_t(shard.begin + i)];
        const std::string prompt = tmpl_->render(rec.fields, rec.where);
        for (int64_t j = 0; j < G; ++j) {
          const size_t k = size_t(i * G + j);
          const Group& g = groups[size_t(i)];
          nlohmann::ordered_json o;
          o["step"] = step;
          o["round"] = round;
          add_completion_fields(o, shard.begin + i, j, data_.train, rec, prompt, g.completions[size_t(j)], rewards[k],
                                scored[k], python);
          if (!kl_seq.empty()) o["kl_penalty"] = kl_coef_ * kl_seq[k];
          o["advantage"] = g.advantage[size_t(j)];
          o["in_loss"] = g.in_loss[size_t(j)] != 0;
          o["trained"] = kept_at[size_t(i)] >= 0;
          if (kept_at[size_t(i)] >= 0) dump_patch.push_back({dump_rows.size() - 1, rows.size(), size_t(kept_at[size_t(i)]), size_t(j)});
          rows.push_back(std::move(o));
        }
      }
    }
    for (const auto& [i, index] : take) {
      groups[i].global_index = index;
      kept_rewards.emplace_back(adv_rewards.begin() + long(i) * G, adv_rewards.begin() + long(i + 1) * G);
      kept.push_back(std::move(groups[i]));
    }
    if (last_round) break;
  }
  normalise_over_batch(team, gc, G, kept_global, kept_rewards, kept);
  for (const Group& g : kept)  // the advantages the loss uses: of the trained completions
    for (double a : g.advantage) {
      sums.v[RolloutSums::kAdv] += a;
      sums.v[RolloutSums::kAdv2] += a * a;
      sums.v[RolloutSums::kAdvAbs] += std::fabs(a);
      sums.v[RolloutSums::kAdvSamples] += 1;
    }
  if (dump) {
    for (const DumpPatch& p : dump_patch) dump_rows[p.round][p.row]["advantage"] = kept[p.group].advantage[p.sample];
    for (const std::vector<nlohmann::ordered_json>& rows : dump_rows) {  // gathered round by round
      std::string lines;
      for (const nlohmann::ordered_json& o : rows) lines += json_line(o);
      dump_text += gather_text(team, backend_, lines);
    }
  }
  if (dump && team.rank() == 0) write_dump(cfg_.run.run_dir, strformat("step_%lld.jsonl", (long long)step), dump_text);
  team.all_reduce_host(sums.v.data(), sums.v.size(), ReduceOp::Sum);
  team.all_reduce_host(&len_max, 1, ReduceOp::Max);
  ro.sums = std::move(sums.v);
  ro.len_max = len_max;
  ro.kept_global = kept_global;
  ro.rounds = rounds;
  ro.rollout_s = rollout_s;
  ro.reward_s = reward_s;
  ro.cursor = sampler_->cursor();
  if (cfg_.rl.skip_solved) ro.skipped = sampler_->skipped();
  if (worker_) {  // the workers' host memory, for the trainers' metrics
    MetricMap mem;
    add_memory_metrics(team, mem);
    ro.mem_rss_gib = mem.count("mem_rss_gib") ? mem["mem_rss_gib"] : 0.0;
    ro.mem_peak_gib = mem.count("mem_peak_gib") ? mem["mem_peak_gib"] : 0.0;
  }
  return ro;
}

}  // namespace grpo_detail
}  // namespace zeroth
