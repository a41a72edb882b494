// run_grpo_training (grpo_trainer.h): the GRPO step loop of `zeroth train`.
// Must not: parse flags, pick the communicator/backend, or implement the GRPO math
// (grpo.h), sampling (rollout.h), rewards (rewards.h), AdamW (optim.h) or the gradient
// all-reduce (grad_sync.h); checkpoint files are checkpoint_io.cpp's plus the GRPO
// extras written here.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "grpo_rollout_link.h"
#include "grpo_trainer_util.h"
#include "zeroth/backend.h"
#include "zeroth/backend_factory.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/grad_sync.h"
#include "zeroth/grpo.h"
#include "zeroth/log.h"
#include "zeroth/model.h"
#include "zeroth/model_infer.h"
#include "zeroth/model_params.h"
#include "zeroth/optim.h"
#include "zeroth/process_groups.h"
#include "zeroth/rollout.h"

namespace zeroth {

namespace fs = std::filesystem;

namespace {

constexpr int kGrpoStateVersion = 1;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Writes `text` to `path` through a temporary file and a rename.
void write_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + strformat(".tmp.%ld", static_cast<long>(::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw RuntimeError(strformat("%s: cannot write", tmp.c_str()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw RuntimeError(strformat("cannot rename %s to %s: %s", tmp.c_str(), path.c_str(), ec.message().c_str()));
}

using grpo_detail::Group;
using grpo_detail::StepRollout;
using SeqRef = std::pair<const Group*, int64_t>;  // (group, sample)

// Real tokens of a sequence's row: its prompt and completion but the last completion
// token (only a target).
int64_t row_length(const SeqRef& r) {
  const int64_t n = int64_t(r.first->completions[size_t(r.second)].ids.size());
  return int64_t(r.first->prompt.size()) + std::max<int64_t>(0, n - 1);
}

using grpo_detail::MicroPlan;

std::vector<MicroPlan> plan_micro_batches(const std::vector<SeqRef>& seqs, int64_t micro, int64_t tokens,
                                          int64_t T_step) {
  std::vector<int64_t> lengths;
  for (const SeqRef& r : seqs) lengths.push_back(row_length(r));
  return grpo_detail::plan_micro_batches(lengths, micro, tokens, T_step);
}

// The host arrays of one micro-batch: the plan's sequences as prompt + completion rows
// padded to plan.T. Completion token t of a sequence with a P-token prompt is predicted
// at position P + t - 1 (at()); mask is 1 there for samples in the loss (and, after the
// old-log-prob pass of a mask mode, for the tokens it kept).
struct MicroBatch {
  int64_t S = 0, T = 0, N = 0;
  std::vector<int32_t> ids, targets, seq;
  std::vector<float> mask, rollout_lp;
  std::vector<double> adv;
  std::vector<int64_t> lengths;  // (S) real tokens of each row
  size_t at(int64_t s, int64_t P, int64_t t) const { return size_t(s * T + P + t - 1); }
};

// One row of one padding token and no target: what an expert-parallel rank runs when
// other ranks of its expert group have more micro-batches (its forward and backward only
// take part in the experts' exchange; the row has no loss and no expert load).
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

// Sums over every sampled completion of a step (all sampling rounds), all-reduced.
struct RolloutSums {
  enum : size_t { kSamples, kReward, kReward2, kCorrect, kFormat, kLen, kTrunc, kAdv, kAdv2, kAdvAbs,
                  kZeroGroups, kGroups, kMasked, kFixed };
  std::vector<double> v;
  explicit RolloutSums(size_t components) : v(kFixed + components, 0.0) {}
};

// The cold start: `zeroth sft` on cold_start.path in RUN_DIR/cold_start (resumed when
// it was cut short); returns the directory of its final model.
std::string run_cold_start(const TrainConfig& cfg, Communicator& comm, Backend& backend, bool show_progress) {
  const ColdStartSection& cs = cfg.cold_start;
  Config c = cfg;
  c.run.run_dir = cfg.run.run_dir + "/cold_start";
  const std::string final_dir = c.run.run_dir + "/final";
  if (fs::exists(final_dir + "/config.json")) {
    ZT_LOG_INFO("train: cold start already done (%s)", final_dir.c_str());
    return final_dir;
  }
  c.data.path = cs.path;
  c.data.prompt_field = cs.prompt_field;
  c.data.response_field = cs.response_field;
  c.data.prompt_template = cs.prompt_template.empty() ? cfg.rollout.prompt_template : cs.prompt_template;
  c.data.add_eos = true;
  c.data.validate();
  c.train.steps = cs.steps;
  c.train.batch_size = cs.batch_size;
  c.train.seq_len = cs.seq_len;
  c.train.micro_batch = 0;
  c.train.save_every = 0;
  c.optim.lr = cs.lr;
  c.optim.total_steps = 0;
  LmTrainOptions o;
  o.show_progress = show_progress;
  if (!latest_checkpoint(c.run.run_dir).empty()) o.resume_dir = c.run.run_dir;
  ZT_LOG_INFO("train: cold start: SFT on %s for %lld steps in %s", cs.path.c_str(), (long long)cs.steps,
              c.run.run_dir.c_str());
  return run_lm_training(c, LmStage::Sft, comm, backend, o).final_dir;
}

}  // namespace

GrpoTrainResult run_grpo_training(const TrainConfig& cfg, Communicator& comm, Backend& backend,
                                  const GrpoTrainOptions& options) {
  const Config& c = cfg;
  const int rank = comm.rank(), world = comm.size();
  const std::string& run_dir = c.run.run_dir;
  const RolloutConfig& rc = c.rollout;
  const GrpoConfig& gc = c.grpo;
  const int64_t B = cfg.rl.prompts_per_step, G = rc.group_size;
  const int64_t steps = c.train.steps;
  gc.validate_with_rollout(G, rc.max_new_tokens);

  // Where the weights come from: a GRPO checkpoint (resume), the cold start, model.init.
  std::string resume_ckpt;
  TrainerState start;
  start.stage = "grpo";
  if (!options.resume_dir.empty()) {
    resume_ckpt = latest_grpo_checkpoint(options.resume_dir);
    if (resume_ckpt.empty())
      throw CheckpointError(strformat("%s: --resume found no complete checkpoints/step_N (with "
                                      "grpo_state.json) to continue from", options.resume_dir.c_str()));
    start = read_trainer_state(resume_ckpt);
    if (start.stage != "grpo")
      throw CheckpointError(strformat("%s/trainer_state.json: key 'stage': expected 'grpo', found '%s'",
                                      resume_ckpt.c_str(), start.stage.c_str()));
  }
  std::string init = c.model.init, tokenizer_key = c.model.tokenizer;
  if (!resume_ckpt.empty()) {
    init = resume_ckpt;
    tokenizer_key = "auto";
  } else if (!cfg.cold_start.path.empty()) {
    init = run_cold_start(cfg, comm, backend, options.show_progress);
    tokenizer_key = "auto";
  }
  ModelSource src = resolve_model_source(init, tokenizer_key, "train");
  const Tokenizer& tok = *src.tokenizer;
  if (src.config.max_position_embeddings < rc.max_len)
    throw ConfigError(strformat("key 'rollout.max_len': expected at most the model's max_position_embeddings "
                                "(%lld), found %lld", (long long)src.config.max_position_embeddings,
                                (long long)rc.max_len));

  // Roles. Colocated (rl.rollout_ranks 0): every rank generates and trains. Else the last
  // R ranks are rollout workers (generate and score with a gradient-free copy of the
  // policy) and the others trainers; trainer 0 broadcasts the policy to the workers.
  const int R = int(cfg.rl.rollout_ranks), lag = int(cfg.rl.rollout_lag);
  if (R >= world)
    throw ConfigError(strformat("key 'rl.rollout_ranks': expected at most %d (the %d rank(s) minus at least one "
                                "trainer), found %d", world - 1, world, R));
  const bool split = R > 0, worker = split && rank >= world - R, trains = !worker;
  std::unique_ptr<Communicator> role_comm;
  std::unique_ptr<grpo_detail::PolicyBroadcast> weights;  // trainers -> workers
  if (split) {
    role_comm = comm.split(worker ? 1 : 0, rank);
    weights = std::make_unique<grpo_detail::PolicyBroadcast>(comm, R, int(c.run.expert_parallel), src.config,
                                                             backend);
  }
  // The ranks of this rank's role: the trainers or the workers (every rank, colocated).
  Communicator& team = split ? *role_comm : comm;

  // Data parallelism over the trainers; expert groups when run.expert_parallel > 1 (a
  // worker holds every expert).
  const ProcessGroups pg =
      make_process_groups(team, worker ? 1 : c.run.expert_parallel, src.config.n_routed_experts);
  const DType compute = compute_dtype_for(backend, c.run.compute_dtype, "key 'run.compute_dtype'");
  // (a worker only decodes, and the rollout decodes with fp32 weights)
  Model model(src.config, backend, worker ? DType::F32 : compute, pg.expert.get());
  if (worker) model.release_grads();
  model.set_recompute(c.model.recompute);
  if (src.weights_dir.empty())
    init_params(src.config, model.params(), c.model.seed ? *c.model.seed : c.run.seed);
  else
    load_hf_weights(src.weights_dir, src.config, model.params());
  model.set_aux_loss_alpha(float(c.model.aux_loss_alpha));
  const Model& policy = model;

  // rl.rollout_lag 1: the policy one step behind (the weights batch s+1 is sampled with).
  // Colocated it generates; on a trainer it is what a checkpoint saves as rollout/ (a
  // resumed run samples its first batch with it). A worker's own model plays that part.
  std::unique_ptr<Model> behind;
  const std::string rollout_ckpt = resume_ckpt.empty() ? "" : resume_ckpt + "/rollout";
  const bool have_rollout_ckpt = !rollout_ckpt.empty() && fs::exists(rollout_ckpt + "/config.json");
  if (lag == 1 && !resume_ckpt.empty() && !have_rollout_ckpt)
    ZT_LOG_WARN("train: %s has no rollout/ (written with rl.rollout_lag 0): the first resumed batch is sampled "
                "with the checkpoint's policy", resume_ckpt.c_str());
  if (lag == 1 && trains) {
    behind = std::make_unique<Model>(src.config, backend, DType::F32, pg.expert.get());
    behind->release_grads();
    if (have_rollout_ckpt)
      load_hf_weights(rollout_ckpt, src.config, behind->params());
    else
      backend.copy(policy.params().flat, behind->params().flat);
  }
  if (lag == 1 && worker && have_rollout_ckpt) load_hf_weights(rollout_ckpt, src.config, model.params());

  // The frozen reference model (only when the loss has a KL term).
  std::unique_ptr<Model> ref;
  if (trains && gc.kl_coef > 0.0) {
    ref = std::make_unique<Model>(src.config, backend, compute, pg.expert.get());
    ref->release_grads();  // frozen
    if (!resume_ckpt.empty())
      load_hf_weights(resume_ckpt + "/reference", src.config, ref->params());
    else
      backend.copy(policy.params().flat, ref->params().flat);
  }

  const int64_t opt_per_step = gc.ppo_epochs * gc.mini_batches;
  // log pi_old. With rl.rollout_lag 1 the trainer is one update past the weights that
  // sampled the batch, so 'auto' without a rollout correction takes the sampler's
  // log-probs (the behaviour policy) instead of the trainer's.
  const bool lagged_auto = lag == 1 && gc.old_logprobs == "auto" && gc.rollout_is == "none";
  // The rollout decodes with the fp32 master weights; a bf16 trainer differs from it.
  const bool trainer_old = !lagged_auto && gc.trainer_old_logprobs(compute != DType::F32);
  std::unique_ptr<AdamW> optimizer;
  std::unique_ptr<GradSync> grad_sync;
  if (trains) {
    optimizer = std::make_unique<AdamW>(c.optim, src.config, backend, model.expert_shard(), pg.expert.get());
    if (!resume_ckpt.empty()) load_optimizer_state(resume_ckpt, *optimizer, pg);
    grad_sync = std::make_unique<GradSync>(team, model.grads(), kDefaultGradBucketBytes, pg.expert_data.get());
  }
  const LrSchedule schedule = LrSchedule::from_config(c.optim, steps * opt_per_step);

  const PromptTemplate tmpl(rc.prompt_template, "key 'rollout.prompt_template'");
  const PromptData data = load_prompt_data(cfg.prompts, &tok, &tmpl, rc.add_special_tokens);
  const uint64_t fingerprint = data.train.fingerprint();
  if (!resume_ckpt.empty()) {
    std::ifstream in(resume_ckpt + "/grpo_state.json");
    nlohmann::json js;
    try {
      in >> js;
    } catch (const nlohmann::json::exception& e) {
      throw CheckpointError(strformat("%s/grpo_state.json: invalid JSON: %s", resume_ckpt.c_str(), e.what()));
    }
    if (!js.is_object() || !js.contains("prompts_fingerprint") ||
        js["prompts_fingerprint"].get<std::string>() != strformat("%016llx", (unsigned long long)fingerprint))
      throw CheckpointError(strformat("%s/grpo_state.json: key 'prompts_fingerprint': expected %016llx (the "
                                      "training prompts of this config), found %s: the prompts changed",
                                      resume_ckpt.c_str(), (unsigned long long)fingerprint,
                                      js.is_object() && js.contains("prompts_fingerprint")
                                          ? js["prompts_fingerprint"].dump().c_str() : "nothing"));
  }
  PromptSampler sampler(data.train, c.run.seed, cfg.prompts.shuffle, start.cursor);

  // The generating ranks' engine: on the policy (colocated, lag 0), the lagged copy
  // (colocated, lag 1) or a worker's model; trainers with workers have none.
  Model* gen_model = worker ? &model : split ? nullptr : lag == 1 ? behind.get() : &model;
  const KvCachePlan plan = plan_kv_cache(src.config, rc);
  std::unique_ptr<ModelInference> engine;
  if (gen_model) engine = std::make_unique<ModelInference>(*gen_model, plan.num_slots, plan.max_len);
  const SamplingParams sampling = grpo_detail::rollout_sampling(cfg);
  const StopParams stop = rc.stop_params(tok);
  const float temperature = rc.temperature > 0 ? float(rc.temperature) : 1.0f;
  RewardComposer composer(cfg.rewards);
  const std::vector<RewardFunctionConfig>& functions = cfg.rewards.functions;
  const int32_t pad_id = tok.special_ids().pad >= 0 ? tok.special_ids().pad
                         : tok.special_ids().eos >= 0 ? tok.special_ids().eos : 0;

  if (rank == 0) {
    std::error_code ec;
    fs::create_directories(run_dir, ec);
    if (ec) throw RuntimeError(strformat("cannot create run directory '%s': %s", run_dir.c_str(), ec.message().c_str()));
    write_atomic(run_dir + "/config.yaml", dump_train_config_yaml(cfg));
  }
  MetricsWriterOptions mo;
  mo.resume_step = resume_ckpt.empty() ? -1 : start.step;
  MetricsWriter metrics(run_dir, rank, mo);
  ZT_LOG_INFO("train: %lld training / %lld eval prompts; %lld prompts x %lld samples per step; model %s "
              "(%.3f M parameters); KV cache %lld slots x %lld; %d rank(s); kl_coef %g%s",
              (long long)data.train.size(), (long long)data.eval.size(), (long long)B, (long long)G,
              src.weights_dir.empty() ? ("initialised from " + init).c_str() : src.weights_dir.c_str(),
              double(src.config.num_parameters()) / 1e6, (long long)plan.num_slots, (long long)plan.max_len,
              world, gc.kl_coef, gc.kl_coef > 0 ? " (reference model)" : " (no reference model)");
  if (pg.expert)
    ZT_LOG_INFO("train: expert parallelism over %d ranks: the trainer holds routed experts [%lld, %lld) of %lld "
                "per MoE layer; the rollout decodes with the same shards",
                pg.expert_parallel, (long long)model.expert_shard().first,
                (long long)(model.expert_shard().first + model.expert_shard().count),
                (long long)src.config.n_routed_experts);
  if (split)
    ZT_LOG_INFO("train: %d trainer rank(s) and %d rollout worker(s) (ranks %d-%d)%s", world - R, R, world - R,
                world - 1, lag == 1 ? "; the workers sample step s+1 while the trainers train step s" : "");
  else if (lag == 1)
    ZT_LOG_INFO("train: rl.rollout_lag 1: each step's batch is sampled with the policy of the step before");
  if (!resume_ckpt.empty())
    ZT_LOG_INFO("train: resuming from %s at step %lld", resume_ckpt.c_str(), (long long)start.step);

  GrpoTrainResult result;
  result.final_dir = run_dir + "/final";
  auto run_eval = [&](int64_t step) {
    const EvalResult er = evaluate_model(model, tok, cfg, data.eval, team);
    MetricMap m = er.metrics();
    metrics.log(step, m);
    m["step"] = double(step);
    result.evals.push_back(m);
    ZT_LOG_INFO("train: eval at step %lld: %lld prompts | accuracy %.3f | format %.3f%s", (long long)step,
                (long long)er.prompts, er.accuracy, er.format_rate,
                er.k > 0 ? strformat(" | pass@%lld %.3f", (long long)er.k, er.pass_at_k).c_str() : "");
  };
  if (trains && resume_ckpt.empty() && cfg.rl.eval_at_start && data.eval.size() > 0) run_eval(0);

  const float gamma = float(c.model.bias_update_speed);
  Progress progress("train", steps, "step");
  progress.resume_from(start.step);
  const int64_t rounds_per_step = 1 + (gc.dynamic_sampling ? gc.dynamic_max_extra_batches : 0);
  // One step's rollout on the generating ranks (`team`): batches of B prompts, each rank
  // its shard, G completions each, rewards, advantages; dynamic sampling draws more
  // batches until B groups with a non-zero advantage are kept.
  auto collect = [&](int64_t step) {
    StepRollout ro;
    RolloutSums sums(functions.size());
    double len_max = 0;
    std::vector<Group>& kept = ro.groups;
    int64_t kept_global = 0, rounds = 0;
    double rollout_s = 0, reward_s = 0;
    const int grank = team.rank(), gsize = team.size();
    for (int64_t round = 0;; ++round) {
      rounds = round + 1;
      const std::vector<const PromptRecord*> batch = sampler.next_batch(B);
      const PromptShard shard = prompt_shard(B, grank, gsize);
      std::vector<Group> groups(size_t(shard.count));
      std::vector<std::vector<int32_t>> prompt_ids;
      for (int64_t i = 0; i < shard.count; ++i) {
        groups[size_t(i)].prompt =
            grpo_detail::encode_record(*batch[size_t(shard.begin + i)], tmpl, tok, rc.add_special_tokens);
        prompt_ids.push_back(groups[size_t(i)].prompt);
      }
      const uint64_t seq_base = uint64_t((((step - 1) * rounds_per_step + round) * B + shard.begin) * G);
      auto t0 = Clock::now();
      std::vector<Completion> outs;
      // (with expert parallelism every rank takes part, also one without prompts)
      if (!prompt_ids.empty() || pg.expert) outs = generate(*engine, &tok, prompt_ids, G, sampling, stop, seq_base);
      rollout_s += seconds_since(t0);

      t0 = Clock::now();
      std::vector<RewardSample> samples(outs.size());
      for (size_t k = 0; k < outs.size(); ++k) {
        const PromptRecord& rec = *batch[size_t(shard.begin + outs[k].prompt_index)];
        samples[k].kind = rec.kind;
        samples[k].completion = outs[k].text;
        samples[k].gold = rec.gold;
        samples[k].problem = rec.problem;
      }
      const std::vector<RewardResult> scored = composer.score_batch(samples);
      std::vector<double> rewards(outs.size());
      std::vector<int64_t> lengths(outs.size());
      std::vector<uint8_t> truncated(outs.size()), in_loss;
      for (size_t k = 0; k < outs.size(); ++k) {
        rewards[k] = scored[k].reward;
        lengths[k] = int64_t(outs[k].ids.size());
        truncated[k] = outs[k].finish == FinishReason::kLength;
      }
      apply_overlong(gc, rc.max_new_tokens, lengths, truncated, rewards, in_loss);
      Advantages adv;
      if (!rewards.empty()) adv = compute_advantages(rewards, G, gc);
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
        v[RolloutSums::kAdv] += adv.values[k];
        v[RolloutSums::kAdv2] += adv.values[k] * adv.values[k];
        v[RolloutSums::kAdvAbs] += std::fabs(adv.values[k]);
        v[RolloutSums::kMasked] += in_loss[k] == 0;
        for (size_t f = 0; f < functions.size(); ++f)
          v[RolloutSums::kFixed + f] += scored[k].component(functions[f].name);
        len_max = std::max(len_max, double(lengths[k]));
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

      if (!gc.dynamic_sampling) {
        for (int64_t i = 0; i < shard.count; ++i) {
          groups[size_t(i)].global_index = shard.begin + i;
          kept.push_back(std::move(groups[size_t(i)]));
        }
        kept_global = B;
        break;
      }
      // Keep the groups with a non-zero advantage, in the global order (round, rank,
      // group), until B are kept.
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
      const int64_t take = std::clamp<int64_t>(B - offset, 0, int64_t(mine.size()));
      for (int64_t t = 0; t < take; ++t) {
        groups[mine[size_t(t)]].global_index = offset + t;
        kept.push_back(std::move(groups[mine[size_t(t)]]));
      }
      kept_global += std::min(total, B - kept_global);
      if (kept_global >= B || round >= gc.dynamic_max_extra_batches) break;
    }
    team.all_reduce_host(sums.v.data(), sums.v.size(), ReduceOp::Sum);
    team.all_reduce_host(&len_max, 1, ReduceOp::Max);
    ro.sums = std::move(sums.v);
    ro.len_max = len_max;
    ro.kept_global = kept_global;
    ro.rounds = rounds;
    ro.rollout_s = rollout_s;
    ro.reward_s = reward_s;
    ro.cursor = sampler.cursor();
    return ro;
  };

  // A rollout worker: (lag 0) the policy, then the step's batch to the trainers; (lag 1)
  // the batch, then the policy the next batch is sampled with.
  if (worker) {
    double idle = 0;  // waiting for the trainers since the last batch was generated
    for (int64_t step = start.step + 1; step <= steps; ++step) {
      auto t0 = Clock::now();
      if (lag == 0) weights->run(model.params());
      idle += seconds_since(t0);
      StepRollout ro = collect(step);
      ro.idle_s = idle;
      t0 = Clock::now();
      grpo_detail::send_step_rollout(comm, backend, R, ro);
      if (lag == 1 && step < steps) weights->run(model.params());
      idle = seconds_since(t0);
      if (options.show_progress) progress.update(step, "rollout worker");
    }
    if (options.show_progress) progress.finish("rollout worker");
    return result;
  }

  for (int64_t step = start.step + 1; step <= steps; ++step) {
    const auto t_step = Clock::now();
    // ---- the step's batch: generated here (colocated) or by the workers ----
    double wait_s = 0, sync_s = 0;
    StepRollout ro;
    if (split) {
      auto t0 = Clock::now();
      if (lag == 0) weights->run(model.params());
      sync_s += seconds_since(t0);
      t0 = Clock::now();
      ro = grpo_detail::recv_step_rollout(comm, backend, R);
      wait_s = seconds_since(t0);
      t0 = Clock::now();
      if (lag == 1 && step < steps) weights->run(model.params());
      sync_s += seconds_since(t0);
    } else {
      ro = collect(step);
    }
    // rl.rollout_lag 1: the policy before this step's update samples the next batch.
    if (behind) backend.copy(policy.params().flat, behind->params().flat);
    std::vector<Group> kept = std::move(ro.groups);
    const int64_t kept_global = ro.kept_global, rounds = ro.rounds;
    const double len_max = ro.len_max, rollout_s = ro.rollout_s, reward_s = ro.reward_s;
    RolloutSums sums(functions.size());
    ZT_ASSERT(ro.sums.size() == sums.v.size(), "rollout sums: %zu values, expected %zu", ro.sums.size(),
              sums.v.size());
    sums.v = ro.sums;

    // ---- policy update: ppo_epochs x mini_batches optimizer steps ----
    const auto t_train = Clock::now();
    // One sequence length T for the whole step (global max of prompt + completion - 1),
    // so the fixed split's (b, T) shapes do not depend on how the groups fall on ranks.
    double t_max = 1;
    for (const Group& g : kept)
      for (const Completion& cpl : g.completions)
        t_max = std::max(t_max, double(g.prompt.size() + cpl.ids.size() - 1));
    team.all_reduce_host(&t_max, 1, ReduceOp::Max);
    const int64_t T = int64_t(t_max);
    const bool own_old = opt_per_step == 1;
    // log pi_old: the trainer's at the rollout's weights where the config asks for it; from
    // a pass before the first update when the step updates more than once, or when a mask
    // mode must know its rejected tokens before the loss normalisers; else from the
    // micro-batch's own forward (one update: the weights have not moved yet, unless
    // rl.rollout_lag 1 sampled the batch one update earlier).
    const bool old_pass = trainer_old && (!own_old || gc.rollout_is_rejects());
    const bool own_forward_old = own_old && !old_pass && gc.old_logprobs != "rollout" && !lagged_auto;
    const int64_t micro_cfg = cfg.rl.micro_batch, micro_tokens = cfg.rl.micro_batch_tokens;
    // One model's forward over a micro-batch and the log-probs of its targets (to the
    // host); `entropy` (device) gets the entropies when given. The model keeps what its
    // backward needs. The rows' lengths go with it, so the expert loads (router-bias
    // update) and the balance loss count the real tokens only, not the padding.
    auto logprobs = [&](Model& m, const Tensor& ids, const Tensor& targets, const MicroBatch& mbt,
                        Tensor* entropy) {
      m.forward(ids, &mbt.lengths);
      Tensor lp = Tensor::empty(backend, {mbt.N}, DType::F32);
      m.token_logprobs(targets, temperature, lp, entropy);
      std::vector<float> h(size_t(mbt.N));
      lp.copy_to_host(h.data(), h.size() * sizeof(float));
      return h;
    };
    auto upload = [&](const MicroBatch& mbt, Tensor& ids, Tensor& targets) {
      ids = Tensor::empty(backend, {mbt.S, mbt.T}, DType::I32);
      targets = Tensor::empty(backend, {mbt.N}, DType::I32);
      ids.copy_from_host(mbt.ids.data(), mbt.ids.size() * sizeof(int32_t));
      targets.copy_from_host(mbt.targets.data(), mbt.targets.size() * sizeof(int32_t));
    };
    // Expert parallelism: every forward/backward is collective over the expert group, so
    // a rank with fewer micro-batches than another of its group runs empty ones (one
    // padding token, no loss, no expert load, no balance loss) until the counts match.
    double empty_micro = 0;  // empty micro-batches this rank ran
    auto extra_micro_batches = [&](size_t mine) -> int64_t {
      if (!pg.expert) return 0;
      int64_t most = int64_t(mine);
      pg.expert->all_reduce_host(&most, 1, ReduceOp::Max);
      empty_micro += double(most - int64_t(mine));
      return most - int64_t(mine);
    };
    const MicroBatch empty_mbt = empty_micro_batch(pad_id);
    auto empty_pass = [&](Model& m, bool backward) {
      Tensor ids, targets;
      upload(empty_mbt, ids, targets);
      const float aux = m.aux_loss_alpha();
      m.set_aux_loss_alpha(0.0f);
      m.forward(ids, &empty_mbt.lengths);
      Tensor lp = Tensor::empty(backend, {empty_mbt.N}, DType::F32);
      m.token_logprobs(targets, temperature, lp, nullptr);
      if (backward) {
        Tensor zero = Tensor::zeros(backend, {empty_mbt.N}, DType::F32);
        m.backward_from_logprob_grad(zero, nullptr);
      }
      m.set_aux_loss_alpha(aux);
    };
    MismatchStats mismatch;
    double pad_tokens = 0, row_tokens = 0;
    if (old_pass) {
      std::vector<SeqRef> all;
      std::vector<Group*> owner;  // all[k]'s group, to store the results in
      for (Group& g : kept)
        for (int64_t j = 0; j < G; ++j) {
          all.push_back({&g, j});
          owner.push_back(&g);
        }
      const std::vector<MicroPlan> plans = plan_micro_batches(all, micro_cfg, micro_tokens, T);
      for (int64_t e = extra_micro_batches(plans.size()); e > 0; --e) empty_pass(model, false);
      for (const MicroPlan& plan : plans) {
        const MicroBatch mbt = build_micro_batch(all, plan, pad_id);
        const int64_t S = mbt.S;
        Tensor ids, targets;
        upload(mbt, ids, targets);
        const std::vector<float> h_lp = logprobs(model, ids, targets, mbt, nullptr);
        GrpoTokens tk;
        tk.n_tokens = mbt.N;
        tk.n_seqs = S;
        tk.mask = mbt.mask.data();
        tk.seq_index = mbt.seq.data();
        const RolloutCorrection corr = rollout_correction(gc, tk, h_lp.data(), mbt.rollout_lp.data());
        mismatch.add(corr.stats);
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
    GrpoLossStats stats;
    double loss_sum = 0, aux_sum = 0, grad_norm = 0, lr = 0, trained_tokens = 0;
    int64_t opt_steps = 0;
    std::vector<std::vector<int64_t>> step_loads;
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
        // The balance loss (model.aux_loss_alpha): a mean over every sequence the
        // optimizer step trains on, over all ranks and micro-batches.
        model.set_aux_loss_sequences(int64_t(cs[2]));
        counts.norm_len = double(gc.resolved_loss_norm_len(rc.max_new_tokens));
        if (counts.tokens == 0) continue;  // nothing to train on anywhere (all masked)
        trained_tokens += counts.tokens;

        model.zero_grad();
        std::vector<std::vector<int64_t>> loads;
        const std::vector<MicroPlan> plans = plan_micro_batches(seqs, micro_cfg, micro_tokens, T);
        for (int64_t e = extra_micro_batches(plans.size()); e > 0; --e) {
          if (ref) empty_pass(*ref, false);
          empty_pass(model, true);
        }
        for (const MicroPlan& plan : plans) {
          const MicroBatch mbt = build_micro_batch(seqs, plan, pad_id);
          const int64_t S = mbt.S, N = mbt.N;
          row_tokens += double(N);
          for (int64_t len : mbt.lengths) pad_tokens += double(mbt.T - len);
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
          const std::vector<float> h_ref = ref ? logprobs(*ref, ids, targets, mbt, nullptr) : std::vector<float>();
          Tensor entropy = Tensor::empty(backend, {N}, DType::F32);
          std::vector<float> h_lp = logprobs(model, ids, targets, mbt, &entropy);
          std::vector<float> h_ent(static_cast<size_t>(N));
          entropy.copy_to_host(h_ent.data(), h_ent.size() * sizeof(float));
          GrpoTokens tk;
          tk.n_tokens = N;
          tk.n_seqs = S;
          tk.logprob = h_lp.data();
          tk.old_logprob = old_pass ? h_old.data() : own_forward_old ? h_lp.data() : mbt.rollout_lp.data();
          tk.ref_logprob = ref ? h_ref.data() : nullptr;
          tk.entropy = h_ent.data();
          tk.mask = mbt.mask.data();
          tk.seq_index = mbt.seq.data();
          tk.advantage = mbt.adv.data();
          if (old_pass) {
            if (gc.rollout_is != "none") tk.is_weight = h_w.data();
          } else if (own_old) {
            // One update a step: this forward is the trainer at the rollout's weights, so
            // the mismatch (and a truncate mode's weights) come from it.
            RolloutCorrection corr = rollout_correction(gc, tk, h_lp.data(), mbt.rollout_lp.data());
            mismatch.add(corr.stats);
            h_w = std::move(corr.weight);
            if (gc.rollout_is != "none") tk.is_weight = h_w.data();
          }
          const GrpoLossResult lr_res = grpo_policy_loss(gc, tk, counts);
          stats.add(lr_res.stats);
          loss_sum += lr_res.loss;
          aux_sum += double(model.aux_loss());
          Tensor dlogprob = Tensor::empty(backend, {N}, DType::F32);
          dlogprob.copy_from_host(lr_res.dlogprob.data(), lr_res.dlogprob.size() * sizeof(float));
          if (!lr_res.dentropy.empty()) {
            Tensor dentropy = Tensor::empty(backend, {N}, DType::F32);
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
        grad_sync->all_reduce(model.grads(), ReduceOp::Sum);
        lr = schedule.lr_at(optimizer->step_count() + 1);
        const float norm = optimizer->step(model.params(), model.grads(), lr);
        grad_norm = norm;
        ++opt_steps;
        if (!std::isfinite(norm))
          ZT_LOG_WARN("train: step %lld: gradient norm is %g; the update was skipped", (long long)step, double(norm));
        // Every rank needs the same layer/expert shape for the all-reduce, also one
        // with no sequences in this mini-batch (zeros from the config: moe_stats() is
        // empty before the model's first training forward).
        if (loads.empty())
          for (int64_t l = 0; l < src.config.num_hidden_layers; ++l)
            if (src.config.is_moe_layer(l)) loads.push_back(std::vector<int64_t>(size_t(src.config.n_routed_experts), 0));
        if (!loads.empty()) {
          all_reduce_loads(team, loads);
          if (gamma > 0.0f) model.update_router_bias(gamma, loads);
          step_loads = loads;
        }
      }
    }
    std::vector<double> sv = stats.to_vector();
    sv.push_back(aux_sum);
    sv.push_back(loss_sum);
    team.all_reduce_host(sv.data(), sv.size(), ReduceOp::Sum);
    loss_sum = sv.back();
    sv.pop_back();
    aux_sum = sv.back();
    sv.pop_back();
    stats = GrpoLossStats::from_vector(sv);
    std::vector<double> mv = mismatch.to_vector();
    double mis_max = mismatch.abs_diff_max;
    team.all_reduce_host(mv.data(), mv.size(), ReduceOp::Sum);
    team.all_reduce_host(&mis_max, 1, ReduceOp::Max);
    mismatch = MismatchStats::from_vector(mv, mis_max);
    if (mismatch.nonfinite > 0)
      ZT_LOG_WARN("train: step %lld: %.0f loss tokens have a non-finite trainer or rollout log-prob",
                  (long long)step, mismatch.nonfinite);
    double pad[3] = {pad_tokens, row_tokens, empty_micro};
    team.all_reduce_host(pad, 3, ReduceOp::Sum);
    if (gc.reference_reset_due(step)) {
      backend.copy(policy.params().flat, ref->params().flat);
      ZT_LOG_INFO("train: step %lld: reference model reset to the policy", (long long)step);
    }
    const double train_s = seconds_since(t_train);
    const double step_s = seconds_since(t_step);

    // ---- metrics ----
    const auto& v = sums.v;
    const double n = std::max(1.0, v[RolloutSums::kSamples]);
    const double r_mean = v[RolloutSums::kReward] / n;
    const double a_mean = v[RolloutSums::kAdv] / n;
    MetricMap m;
    m["reward_mean"] = r_mean;
    m["reward_std"] = std::sqrt(std::max(0.0, v[RolloutSums::kReward2] / n - r_mean * r_mean));
    for (size_t f = 0; f < functions.size(); ++f)
      m["reward_" + functions[f].name] = v[RolloutSums::kFixed + f] / n;
    m["accuracy"] = v[RolloutSums::kCorrect] / n;
    m["format_rate"] = v[RolloutSums::kFormat] / n;
    m["response_len_mean"] = v[RolloutSums::kLen] / n;
    m["response_len_max"] = len_max;
    m["truncation_rate"] = v[RolloutSums::kTrunc] / n;
    m["masked_frac"] = v[RolloutSums::kMasked] / n;
    m["adv_mean"] = a_mean;
    m["adv_std"] = std::sqrt(std::max(0.0, v[RolloutSums::kAdv2] / n - a_mean * a_mean));
    m["adv_abs_mean"] = v[RolloutSums::kAdvAbs] / n;
    m["zero_adv_group_frac"] = v[RolloutSums::kZeroGroups] / std::max(1.0, v[RolloutSums::kGroups]);
    m["groups_sampled"] = v[RolloutSums::kGroups];
    m["groups_trained"] = double(kept_global);
    m["sampling_rounds"] = double(rounds);
    m["loss"] = opt_steps > 0 ? loss_sum / double(opt_steps) : 0.0;
    m["pg_loss"] = stats.pg_loss_mean();
    m["ratio_mean"] = stats.mean_ratio();
    m["clip_frac"] = stats.clip_frac();
    m["clip_frac_low"] = stats.clip_frac_low();
    m["clip_frac_high"] = stats.clip_frac_high();
    m["clip_frac_dual"] = stats.clip_frac_dual();
    m["kl"] = stats.kl_mean();
    m["entropy"] = stats.entropy_mean();
    if (old_pass || own_old) {  // the trainer's log-probs at the rollout's weights exist
      m["mismatch_kl"] = mismatch.kl_k1();
      m["mismatch_k3"] = mismatch.kl_k3();
      m["mismatch_abs_mean"] = mismatch.abs_diff_mean();
      m["mismatch_abs_max"] = mismatch.abs_diff_max;
    }
    if (gc.rollout_is != "none") {
      m["rollout_is_weight_mean"] = mismatch.weight_mean();
      m["rollout_is_truncated_frac"] = mismatch.truncated_frac();
      m["rollout_is_rejected_frac"] = mismatch.rejected_frac();
    }
    if (c.model.aux_loss_alpha > 0) m["aux_loss"] = opt_steps > 0 ? aux_sum / double(opt_steps) : 0.0;
    m["grad_norm"] = grad_norm;
    m["lr"] = lr;
    m["optimizer_steps"] = double(opt_steps);
    m["train_pad_frac"] = pad[1] > 0 ? pad[0] / pad[1] : 0.0;
    if (pg.expert) m["ep_empty_micro_batches"] = pad[2];
    m["trained_tokens"] = trained_tokens;
    m["expert_imbalance"] = grpo_detail::max_expert_imbalance(step_loads);
    m["generated_tokens"] = v[RolloutSums::kLen];
    m["tokens_per_s"] = step_s > 0 ? v[RolloutSums::kLen] / step_s : 0.0;
    m["rollout_s"] = rollout_s;
    m["reward_s"] = reward_s;
    m["train_s"] = train_s;
    m["step_s"] = step_s;
    if (split) {
      m["trainer_wait_s"] = wait_s;       // the trainers waiting for the workers' batch
      m["weight_sync_s"] = sync_s;        // trainer 0 broadcasting the policy
      m["rollout_idle_s"] = ro.idle_s;    // a worker waiting for the trainers before this batch
    }
    const DataCursor cursor = ro.cursor;
    m["data_epoch"] = double(cursor.epoch);
    m["data_position"] = double(cursor.position);
    metrics.log(step, m);
    result.steps.push_back(m);
    result.steps.back()["step"] = double(step);
    const std::string line = format_progress_line(step, steps, m);
    if (options.show_progress) progress.update(step, strformat("reward %.3f", r_mean));
    if (step % c.train.log_every == 0 || step == steps) ZT_LOG_INFO("train %s", line.c_str());

    if (data.eval.size() > 0 && ((cfg.rl.eval_every > 0 && step % cfg.rl.eval_every == 0) ||
                                 (step == steps && cfg.rl.eval_at_end)))
      run_eval(step);

    // ---- checkpoint: the pretrain checkpoint, then the reference, then grpo_state.json ----
    if ((c.train.save_every > 0 && step % c.train.save_every == 0) || step == steps) {
      TrainerState st;
      st.step = step;
      st.cursor = cursor;
      st.stage = "grpo";
      const std::string dir = save_train_checkpoint(run_dir, src.config, policy.params(), src.files, *optimizer, st, pg);
      if (ref) save_model_dir(dir + "/reference", src.config, static_cast<const Model&>(*ref).params(), src.files, pg);
      // rl.rollout_lag 1: the weights step + 1's batch is sampled with (the policy before
      // this step's update).
      if (behind)
        save_model_dir(dir + "/rollout", src.config, static_cast<const Model&>(*behind).params(), src.files, pg);
      if (rank == 0) {
        const nlohmann::json js = {{"format_version", kGrpoStateVersion},
                                   {"step", step},
                                   {"prompts_fingerprint", strformat("%016llx", (unsigned long long)fingerprint)},
                                   {"world_size", world},
                                   {"rollout_ranks", R},
                                   {"rollout_lag", lag},
                                   {"expert_parallel", pg.expert_parallel},
                                   {"reference", bool(ref)}};
        write_atomic(dir + "/grpo_state.json", js.dump(2) + "\n");
        ZT_LOG_INFO("train: checkpoint %s", dir.c_str());
        for (const std::string& old : prune_checkpoints(run_dir, c.train.keep_checkpoints, "grpo_state.json"))
          ZT_LOG_INFO("train: removed %s (train.keep_checkpoints %lld)", old.c_str(),
                      (long long)c.train.keep_checkpoints);
      }
      team.barrier();
    }
  }
  if (options.show_progress)
    progress.finish(result.steps.empty() ? "" : strformat("reward %.3f", result.steps.back()["reward_mean"]));
  save_model_dir(result.final_dir, src.config, policy.params(), src.files, pg);
  ZT_LOG_INFO("train: final model in %s", result.final_dir.c_str());
  return result;
}

}  // namespace zeroth
