// run_grpo_training (grpo_trainer.h): the GRPO run of `zeroth train`. This file owns
// GrpoRun's setup (where the weights come from, the ranks' roles, the models, optimizer,
// prompts and rollout engine), the step loop, a rollout worker's loop, eval, the step's
// metrics and the checkpoints; the rollout is grpo_collect.cpp's, the policy update
// grpo_update.cpp's (grpo_run.h).
// Must not: parse flags, pick the communicator/backend, or implement the GRPO math
// (grpo.h), sampling (rollout.h), rewards (rewards.h), AdamW (optim.h) or the gradient
// all-reduce (grad_sync.h); checkpoint files are checkpoint_io.cpp's plus the GRPO
// extras written here.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "grpo_run.h"
#include "zeroth/backend.h"
#include "zeroth/backend_factory.h"
#include "zeroth/comm.h"
#include "zeroth/error.h"
#include "zeroth/grad_sync.h"
#include "zeroth/log.h"
#include "zeroth/model.h"
#include "zeroth/model_infer.h"
#include "zeroth/model_params.h"

namespace zeroth {

namespace fs = std::filesystem;

namespace {

constexpr int kGrpoStateVersion = 1;
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
  DataSection::check_template(c.data.prompt_template,
                              cs.prompt_template.empty() ? "rollout.prompt_template" : "cold_start.template");
  c.train.steps = cs.steps;
  c.train.batch_size = cs.batch_size;
  c.train.seq_len = cs.seq_len;
  c.train.micro_batch = 0;
  c.train.save_every = 0;
  c.optim.lr = cs.lr;
  c.optim.total_steps = 0;
  LmTrainOptions o;
  o.show_progress = show_progress;
  o.key_section = "cold_start";
  if (!latest_checkpoint(c.run.run_dir).empty()) o.resume_dir = c.run.run_dir;
  ZT_LOG_INFO("train: cold start: SFT on %s for %lld steps in %s", cs.path.c_str(), (long long)cs.steps,
              c.run.run_dir.c_str());
  LmTrainResult r = run_lm_training(c, LmStage::Sft, comm, backend, o);
  if (r.stop.stopped) {
    r.stop.where = "cold start";
    throw RunStopped{r.stop};
  }
  return r.final_dir;
}

// grpo_state.json's eval_pending: the run stopped at a step whose eval was then due (it
// runs first when the run resumes). False when absent (older checkpoints).
bool read_eval_pending(const std::string& ckpt) {
  std::ifstream in(ckpt + "/grpo_state.json");
  const nlohmann::json js = nlohmann::json::parse(in, nullptr, false);
  return js.is_object() && js.contains("eval_pending") && js["eval_pending"].is_boolean() &&
         js["eval_pending"].get<bool>();
}

// A checkpoint's grpo_state.json. CheckpointError when it is not valid JSON.
nlohmann::json read_grpo_state(const std::string& ckpt) {
  std::ifstream in(ckpt + "/grpo_state.json");
  nlohmann::json js;
  try {
    in >> js;
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(strformat("%s/grpo_state.json: invalid JSON: %s", ckpt.c_str(), e.what()));
  }
  return js;
}

// grpo_state.json's best: rl.save_best's best value and step when the checkpoint was
// written; step -1 when absent.
std::pair<double, int64_t> read_best(const std::string& ckpt) {
  const nlohmann::json js = read_grpo_state(ckpt);
  if (!js.is_object() || !js.contains("best") || !js["best"].is_object()) return {0.0, -1};
  const nlohmann::json& b = js["best"];
  if (!b.contains("value") || !b["value"].is_number() || !b.contains("step") || !b["step"].is_number_integer())
    throw CheckpointError(strformat("%s/grpo_state.json: key 'best': expected {\"value\": number, \"step\": "
                                    "integer}, found %s",
                                    ckpt.c_str(), b.dump().c_str()));
  return {b["value"].get<double>(), b["step"].get<int64_t>()};
}

// RUN_DIR/config.yaml (rank 0).
void write_run_config(const TrainConfig& cfg, int rank) {
  if (rank != 0) return;
  const std::string& run_dir = cfg.run.run_dir;
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw RuntimeError(strformat("cannot create run directory '%s': %s", run_dir.c_str(), ec.message().c_str()));
  grpo_detail::write_atomic(run_dir + "/config.yaml", dump_train_config_yaml(cfg));
}

// rl.skip_solved: the training prompts a checkpoint's sampler skipped (grpo_state.json
// skipped_prompts; absent in a checkpoint written without it: none).
std::vector<int64_t> read_skipped_prompts(const std::string& ckpt, int64_t prompts) {
  const nlohmann::json js = read_grpo_state(ckpt);
  std::vector<int64_t> out;
  if (!js.is_object() || !js.contains("skipped_prompts")) return out;
  const nlohmann::json& list = js["skipped_prompts"];
  if (!list.is_array())
    throw CheckpointError(strformat("%s/grpo_state.json: key 'skipped_prompts': expected a list of prompt indices, "
                                    "found %s",
                                    ckpt.c_str(), list.type_name()));
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_number_integer() || list[i].get<int64_t>() < 0 || list[i].get<int64_t>() >= prompts)
      throw CheckpointError(strformat("%s/grpo_state.json: key 'skipped_prompts[%zu]': expected a training prompt "
                                      "index in [0, %lld), found %s",
                                      ckpt.c_str(), i, (long long)prompts, list[i].dump().c_str()));
    out.push_back(list[i].get<int64_t>());
  }
  return out;
}

// The prompts a resumed run trains on must be the checkpoint's (grpo_state.json).
void check_prompts_fingerprint(const std::string& ckpt, uint64_t fingerprint) {
  const nlohmann::json js = read_grpo_state(ckpt);
  if (!js.is_object() || !js.contains("prompts_fingerprint") || !js["prompts_fingerprint"].is_string() ||
      js["prompts_fingerprint"].get<std::string>() != strformat("%016llx", (unsigned long long)fingerprint))
    throw CheckpointError(strformat("%s/grpo_state.json: key 'prompts_fingerprint': expected %016llx (the "
                                    "training prompts of this config), found %s: the prompts changed",
                                    ckpt.c_str(), (unsigned long long)fingerprint,
                                    js.is_object() && js.contains("prompts_fingerprint")
                                        ? js["prompts_fingerprint"].dump().c_str() : "nothing"));
}

}  // namespace

namespace grpo_detail {

GrpoRun::GrpoRun(const TrainConfig& cfg, Communicator& comm, Backend& backend, const GrpoTrainOptions& options)
    : cfg_(cfg), comm_(comm), backend_(backend), options_(options), B_(cfg.rl.prompts_per_step),
      G_(cfg.rollout.group_size), steps_(cfg.train.steps), rank_(comm.rank()), world_(comm.size()) {
  const RolloutConfig& rc = cfg.rollout;
  const GrpoConfig& gc = cfg.grpo;
  gc.validate_with_rollout(G_, rc.max_new_tokens);
  if (gc.kl_target > 0.0 && 0.2 * double(B_ * G_) >= double(gc.kl_horizon))
    throw ConfigError(strformat("key 'grpo.kl_horizon': expected more than 0.2 x rl.prompts_per_step x "
                                "rollout.group_size = %g (a step's factor 1 + err x n / horizon, |err| <= 0.2, "
                                "must stay positive), found %lld",
                                0.2 * double(B_ * G_), (long long)gc.kl_horizon));
  if (gc.kl_in_reward && (cfg.rl.rollout_ranks > 0 || cfg.rl.rollout_lag > 0))
    throw ConfigError(strformat("key 'grpo.kl_in_reward': true needs colocated rollout with rl.rollout_ranks 0 and "
                                "rl.rollout_lag 0 (the reference forward runs where the completions are scored, "
                                "on the policy that sampled them), found rollout_ranks %lld, rollout_lag %lld",
                                (long long)cfg.rl.rollout_ranks, (long long)cfg.rl.rollout_lag));

  // ---- where the weights come from: a GRPO checkpoint (resume), the cold start, model.init ----
  start_.stage = "grpo";
  if (!options.resume_dir.empty()) {
    resume_ckpt_ = latest_grpo_checkpoint(options.resume_dir);
    const std::string cold_dir = cfg.run.run_dir + "/cold_start";
    const bool cold_started = !cfg.cold_start.path.empty() &&
                              (!latest_checkpoint(cold_dir).empty() || fs::exists(cold_dir + "/final/config.json"));
    if (resume_ckpt_.empty() && !cold_started)
      throw CheckpointError(strformat("%s: --resume found no complete checkpoints/step_N (with "
                                      "grpo_state.json) to continue from", options.resume_dir.c_str()));
    if (resume_ckpt_.empty())  // stopped in the cold start: it resumes, then GRPO starts
      ZT_LOG_INFO("train: %s has no GRPO checkpoint yet: continuing from the cold start", options.resume_dir.c_str());
  }
  if (!resume_ckpt_.empty()) {
    start_ = read_trainer_state(resume_ckpt_);
    if (start_.stage != "grpo")
      throw CheckpointError(strformat("%s/trainer_state.json: key 'stage': expected 'grpo', found '%s'",
                                      resume_ckpt_.c_str(), start_.stage.c_str()));
    check_resume_steps(resume_ckpt_, start_.step, steps_);
    last_checkpoint_step_ = start_.step;
  }
  if (const char* s = std::getenv("ZEROTH_TEST_SIGNAL_IN_ROLLOUT")) test_signal_step_ = std::atoll(s);
  if (const char* s = std::getenv("ZEROTH_TEST_SIGNAL_IN_EVAL")) test_eval_signal_step_ = std::atoll(s);
  init_ = cfg.model.init;
  std::string tokenizer_key = cfg.model.tokenizer;
  if (!resume_ckpt_.empty()) {
    init_ = resume_ckpt_;
    tokenizer_key = "auto";
  } else if (!cfg.cold_start.path.empty()) {
    // config.yaml first, so that a run stopped in its cold start can be resumed.
    write_run_config(cfg, comm.rank());
    init_ = run_cold_start(cfg, comm, backend, options.show_progress);
    tokenizer_key = "auto";
  }
  src_ = resolve_model_source(init_, tokenizer_key, "train");
  const Tokenizer& tok = *src_.tokenizer;
  if (src_.config.max_position_embeddings < rc.max_len)
    throw ConfigError(strformat("key 'rollout.max_len': expected at most the model's max_position_embeddings "
                                "(%lld), found %lld", (long long)src_.config.max_position_embeddings,
                                (long long)rc.max_len));

  // ---- roles and process groups ----
  R_ = int(cfg.rl.rollout_ranks);
  lag_ = int(cfg.rl.rollout_lag);
  if (R_ >= world_)
    throw ConfigError(strformat("key 'rl.rollout_ranks': expected at most %d (the %d rank(s) minus at least one "
                                "trainer), found %d", world_ - 1, world_, R_));
  split_ = R_ > 0;
  worker_ = split_ && rank_ >= world_ - R_;
  trains_ = !worker_;
  if (split_) {
    role_comm_ = comm.split(worker_ ? 1 : 0, rank_);
    weights_ = std::make_unique<PolicyBroadcast>(comm, R_, int(cfg.run.expert_parallel), src_.config, backend);
  }
  team_ = split_ ? role_comm_.get() : &comm;
  // Data parallelism over the trainers; expert groups when run.expert_parallel > 1 (a
  // worker holds every expert).
  pg_ = make_process_groups(*team_, worker_ ? 1 : cfg.run.expert_parallel, src_.config.n_routed_experts);
  pg_.zero_stage = worker_ ? 0 : cfg.run.zero_stage;
  compute_ = compute_dtype_for(backend, cfg.run.compute_dtype, "key 'run.compute_dtype'");

  // ---- models ----
  // (a worker only decodes, and the rollout decodes with fp32 weights)
  model_ = std::make_unique<Model>(src_.config, backend, worker_ ? DType::F32 : compute_, pg_.expert.get());
  Model& model = *model_;
  if (worker_) model.release_grads();
  model.set_recompute(cfg.model.recompute);
  if (src_.weights_dir.empty())
    init_params(src_.config, model.params(), cfg.model.seed ? *cfg.model.seed : cfg.run.seed);
  else
    load_hf_weights(src_.weights_dir, src_.config, model.params());
  model.set_aux_loss_alpha(float(cfg.model.aux_loss_alpha));
  const Model& policy = model;

  // rl.rollout_lag 1: the policy one step behind (the weights batch s+1 is sampled with).
  // Colocated it generates; on a trainer it is what a checkpoint saves as rollout/ (a
  // resumed run samples its first batch with it). A worker's own model plays that part.
  const std::string rollout_ckpt = resume_ckpt_.empty() ? "" : resume_ckpt_ + "/rollout";
  const bool have_rollout_ckpt = !rollout_ckpt.empty() && fs::exists(rollout_ckpt + "/config.json");
  if (lag_ == 1 && !resume_ckpt_.empty() && !have_rollout_ckpt)
    ZT_LOG_WARN("train: %s has no rollout/ (written with rl.rollout_lag 0): the first resumed batch is sampled "
                "with the checkpoint's policy", resume_ckpt_.c_str());
  if (lag_ == 1 && trains_) {
    behind_ = std::make_unique<Model>(src_.config, backend, DType::F32, pg_.expert.get());
    behind_->release_grads();
    if (have_rollout_ckpt)
      load_hf_weights(rollout_ckpt, src_.config, behind_->params());
    else
      backend.copy(policy.params().flat, behind_->params().flat);
  }
  if (lag_ == 1 && worker_ && have_rollout_ckpt) load_hf_weights(rollout_ckpt, src_.config, model.params());

  if (trains_ && gc.kl_coef > 0.0) {
    ref_ = std::make_unique<Model>(src_.config, backend, compute_, pg_.expert.get());
    ref_->release_grads();  // frozen
    if (!resume_ckpt_.empty()) {
      if (!fs::exists(resume_ckpt_ + "/reference/config.json"))
        throw ConfigError(strformat(
            "key 'grpo.kl_coef': %s has no reference model (the run reached it with grpo.kl_coef 0), so the KL "
            "cannot be switched on when resuming; resume with grpo.kl_coef=0, or start a new run with "
            "model.init=%s (its reference is then these weights)", resume_ckpt_.c_str(), resume_ckpt_.c_str()));
      load_hf_weights(resume_ckpt_ + "/reference", src_.config, ref_->params());
    } else {
      backend.copy(policy.params().flat, ref_->params().flat);
    }
  }

  // log pi_old. With rl.rollout_lag 1 the trainer is one update past the weights that
  // sampled the batch, so 'auto' without a rollout correction takes the sampler's
  // log-probs (the behaviour policy) instead of the trainer's.
  lagged_auto_ = lag_ == 1 && gc.old_logprobs == "auto" && gc.rollout_is == "none";
  // The rollout decodes with the fp32 master weights; a bf16 trainer differs from it.
  trainer_old_ = !lagged_auto_ && gc.trainer_old_logprobs(compute_ != DType::F32);
  if (trains_) {
    grad_sync_ = std::make_unique<GradSync>(*team_, model.grads(), kDefaultGradBucketBytes, pg_.expert_data.get(),
                                            pg_.zero_stage >= 1);
    const OptimizerShard zero{&model.params(), grad_sync_->owned(), team_};
    optimizer_ = std::make_unique<AdamW>(cfg.optim, src_.config, backend, model.expert_shard(), pg_.expert.get(),
                                         grad_sync_->sharded() ? &zero : nullptr);
    if (!resume_ckpt_.empty()) load_optimizer_state(resume_ckpt_, *optimizer_, pg_);
  }
  schedule_ = LrSchedule::from_config(cfg.optim, steps_ * gc.ppo_epochs * gc.mini_batches);

  // ---- prompts, the rollout engine, rewards ----
  tmpl_ = std::make_unique<PromptTemplate>(rc.prompt_template, "key 'rollout.prompt_template'");
  data_ = load_prompt_data(cfg.prompts, &tok, tmpl_.get(), rc.add_special_tokens, rc.max_len);
  if (!cfg.rl.save_best.empty() && data_.eval.size() == 0)
    throw ConfigError("key 'rl.save_best': expected an eval set to rank models by (prompts.eval_sources, "
                      "eval_count or eval_fraction), found none");
  fingerprint_ = data_.train.fingerprint();
  if (!resume_ckpt_.empty()) check_prompts_fingerprint(resume_ckpt_, fingerprint_);
  sampler_ = std::make_unique<PromptSampler>(data_.train, cfg.run.seed, cfg.prompts.shuffle, start_.cursor);
  if (!resume_ckpt_.empty() && cfg.rl.skip_solved)
    sampler_->set_skipped(read_skipped_prompts(resume_ckpt_, data_.train.size()));

  // The generating ranks' engine: on the policy (colocated, lag 0), the lagged copy
  // (colocated, lag 1) or a worker's model; trainers with workers have none.
  Model* gen_model = worker_ ? &model : split_ ? nullptr : lag_ == 1 ? behind_.get() : &model;
  plan_ = plan_kv_cache(src_.config, rc);
  if (gen_model) engine_ = std::make_unique<ModelInference>(*gen_model, plan_.num_slots, plan_.max_len);
  sampling_ = rollout_sampling(cfg);
  stop_ = rc.stop_params(tok);
  if (rc.stop_at_eos && tok.special_ids().eos < 0 && rank_ == 0)
    ZT_LOG_WARN("train: rollout.stop_at_eos is true but the tokenizer has no EOS token: completions end only at "
                "rollout.stop strings, stop_token_ids or max_new_tokens");
  temperature_ = rc.temperature > 0 ? float(rc.temperature) : 1.0f;
  if (rank_ == 0 && cfg.grpo.advantage == "grpo")
    for (const RewardFunctionConfig& f : cfg.rewards.functions)
      if ((f.name == "cosine" || f.name == "length_penalty") && f.weight != 0.0) {
        ZT_LOG_WARN("train: rewards.functions has %s with grpo.advantage 'grpo': the group's std normalisation "
                    "turns its small length differences inside a group with no correct answer into full-size "
                    "advantages, a push to shorter (or longer) wrong answers; on the demo it collapsed pass@1 "
                    "(docs/rewards.md, 'Length shaping and the group std'); grpo.advantage dr_grpo or batch_std does not "
                    "divide by it",
                    f.name.c_str());
        break;
      }
  if (rank_ == 0 && cfg.grpo.kl_in_reward && cfg.grpo.advantage == "grpo" && !cfg.grpo.dynamic_sampling)
    ZT_LOG_WARN("train: grpo.kl_in_reward with grpo.advantage 'grpo': in a group whose rule rewards are equal "
                "the KL penalties alone differ, and the group's std normalisation makes them full-size "
                "advantages; grpo.dynamic_sampling drops such groups, and reinforce_pp, batch_std or dr_grpo "
                "do not divide by the group's std (docs/training.md)");
  if (rank_ == 0 && cfg.grpo.policy_loss == "kl_cov" && cfg.grpo.ppo_epochs * cfg.grpo.mini_batches == 1)
    ZT_LOG_WARN("train: grpo.policy_loss 'kl_cov' with one optimizer step a batch: its |log pi - log pi_old| "
                "penalty and gradient are 0 while the policy has not moved, so this is the unclipped policy "
                "gradient; KL-Cov acts with grpo.mini_batches or ppo_epochs > 1 (docs/training.md)");
  RewardsConfig rewards = cfg.rewards;
  rewards.resolve_lengths(rc.max_new_tokens);
  composer_ = std::make_unique<RewardComposer>(std::move(rewards));
  pad_id_ = tok.special_ids().pad >= 0 ? tok.special_ids().pad
            : tok.special_ids().eos >= 0 ? tok.special_ids().eos : 0;
  empty_mbt_ = std::make_unique<MicroBatch>(empty_micro_batch(pad_id_));

  // ---- the run directory ----
  const std::string& run_dir = cfg.run.run_dir;
  write_run_config(cfg, rank_);
  eval_pending_ = !resume_ckpt_.empty() && read_eval_pending(resume_ckpt_);
  if (!resume_ckpt_.empty()) std::tie(best_value_, best_step_) = read_best(resume_ckpt_);
  kl_coef_ = gc.kl_coef;
  if (gc.kl_target > 0.0 && !resume_ckpt_.empty()) {  // the adaptive coefficient goes on from the checkpoint's
    const nlohmann::json js = read_grpo_state(resume_ckpt_);
    if (js.is_object() && js.contains("kl_coef")) {
      if (!js["kl_coef"].is_number() || !(js["kl_coef"].get<double>() > 0.0))
        throw CheckpointError(strformat("%s/grpo_state.json: key 'kl_coef': expected a number > 0, found %s",
                                        resume_ckpt_.c_str(), js["kl_coef"].dump().c_str()));
      kl_coef_ = js["kl_coef"].get<double>();
    }
  }
  MetricsWriterOptions mo;
  mo.resume_step = resume_ckpt_.empty() ? -1 : start_.step;
  metrics_ = std::make_unique<MetricsWriter>(run_dir, rank_, mo);
  result_.final_dir = run_dir + "/final";
  log_setup();
}

GrpoRun::~GrpoRun() = default;

void GrpoRun::log_setup() const {
  const GrpoConfig& gc = cfg_.grpo;
  // Prompts per source, when a set has several ("gsm8k 7000, math 7500").
  for (const PromptDataset* ds : {&data_.train, &data_.eval}) {
    if (ds->source_names.size() < 2) continue;
    const std::vector<int64_t> counts = prompts_per_source(*ds, -1);
    std::string list;
    for (size_t i = 0; i < counts.size(); ++i)
      list += strformat("%s%s %lld", list.empty() ? "" : ", ", ds->source_names[i].c_str(), (long long)counts[i]);
    ZT_LOG_INFO("train: %s prompts by source: %s", ds == &data_.train ? "training" : "eval", list.c_str());
  }
  if (data_.train.weighted()) {  // prompts.sources[].weight
    const std::vector<int64_t> quota = mix_quotas(data_.train.source_weights, data_.train.size());
    std::string list;
    for (size_t i = 0; i < quota.size(); ++i)
      list += strformat("%s%s %lld (weight %g)", list.empty() ? "" : ", ", data_.train.source_names[i].c_str(),
                        (long long)quota[i], data_.train.source_weights[i]);
    ZT_LOG_INFO("train: an epoch of %lld prompts mixes the sources by weight: %s", (long long)data_.train.size(),
                list.c_str());
  }
  if (cfg_.eval.max_prompts > 0 && data_.eval.size() > cfg_.eval.max_prompts)
    warn_unevaluated_sources(data_.eval, cfg_.eval.max_prompts, "eval.max_prompts");
  ZT_LOG_INFO("train: %lld training / %lld eval prompts; %lld prompts x %lld samples per step; model %s "
              "(%.3f M parameters); KV cache %lld slots x %lld; %d rank(s); kl_coef %g%s",
              (long long)data_.train.size(), (long long)data_.eval.size(), (long long)B_, (long long)G_,
              src_.weights_dir.empty() ? ("initialised from " + init_).c_str() : src_.weights_dir.c_str(),
              double(src_.config.num_parameters()) / 1e6, (long long)plan_.num_slots, (long long)plan_.max_len,
              world_, gc.kl_coef, gc.kl_coef > 0 ? " (reference model)" : " (no reference model)");
  {  // the algorithm in one line, so a log says what ran
    std::string algo = strformat("advantage %s, policy_loss %s, loss_agg %s, clip %g / %g", gc.advantage.c_str(),
                                 gc.policy_loss.c_str(), gc.loss_agg.c_str(), gc.clip_low, gc.clip_high);
    if (gc.dual_clip > 0) algo += strformat(", dual_clip %g", gc.dual_clip);
    if (gc.kl_coef > 0)
      algo += strformat(", KL %s %s x %g%s", gc.kl_estimator.c_str(), gc.kl_in_reward ? "in the reward" : "in the loss",
                        kl_coef_, gc.kl_target > 0 ? strformat(" (adaptive, target %g)", gc.kl_target).c_str() : "");
    else
      algo += ", no KL";
    if (gc.entropy_token_frac < 1) algo += strformat(", gradient on the top %g of tokens by entropy", gc.entropy_token_frac);
    if (gc.dynamic_sampling) algo += ", dynamic sampling";
    if (gc.overlong != "none") algo += ", overlong " + gc.overlong;
    algo += strformat(", %lld x %lld optimizer steps a batch", (long long)gc.ppo_epochs, (long long)gc.mini_batches);
    ZT_LOG_INFO("train: grpo: %s", algo.c_str());
  }
  if (pg_.expert)
    ZT_LOG_INFO("train: expert parallelism over %d ranks: the trainer holds routed experts [%lld, %lld) of %lld "
                "per MoE layer; the rollout decodes with the same shards",
                pg_.expert_parallel, (long long)model_->expert_shard().first,
                (long long)(model_->expert_shard().first + model_->expert_shard().count),
                (long long)src_.config.n_routed_experts);
  if (split_)
    ZT_LOG_INFO("train: %d trainer rank(s) and %d rollout worker(s) (ranks %d-%d)%s", world_ - R_, R_, world_ - R_,
                world_ - 1, lag_ == 1 ? "; the workers sample step s+1 while the trainers train step s" : "");
  else if (lag_ == 1)
    ZT_LOG_INFO("train: rl.rollout_lag 1: each step's batch is sampled with the policy of the step before");
  if (!resume_ckpt_.empty())
    ZT_LOG_INFO("train: resuming from %s at step %lld", resume_ckpt_.c_str(), (long long)start_.step);
}

std::function<bool()> GrpoRun::stop_hook(int64_t test_step, int64_t step, bool first_rank) {
  return [raise_at = test_step == step && first_rank, calls = int64_t(0)]() mutable {
    if (raise_at && ++calls == 3) std::raise(SIGUSR1);
    return stop_signal() != 0;
  };
}

void GrpoRun::run_eval(int64_t step, bool stoppable) {
  std::string dump;
  const std::function<bool()> stop_asked =
      stoppable ? stop_hook(test_eval_signal_step_, step, team_->rank() == 0) : nullptr;
  const EvalResult er = evaluate_model(*model_, *src_.tokenizer, cfg_, data_.eval, *team_,
                                       cfg_.rl.dump_eval ? &dump : nullptr, stop_asked, composer_.get());
  if (cfg_.rl.dump_eval && team_->rank() == 0)
    write_dump(cfg_.run.run_dir, strformat("eval_step_%lld.jsonl", (long long)step), dump);
  MetricMap m = er.metrics();
  metrics_->log(step, m);
  update_best(step, m);
  m["step"] = double(step);
  result_.evals.push_back(m);
  std::string per_source;  // " | by source: gsm8k 0.412, math 0.187" (pass@k without the greedy pass)
  for (const EvalSourceResult& s : er.sources)
    per_source += strformat("%s %s %.3f", per_source.empty() ? " | by source:" : ",", s.name.c_str(),
                            er.greedy ? s.accuracy : s.pass_at_k);
  ZT_LOG_INFO("train: eval at step %lld: %lld prompts | accuracy %.3f | format %.3f%s%s%s", (long long)step,
              (long long)er.prompts, er.accuracy, er.format_rate,
              (er.k > 0 ? strformat(" | pass@%lld %.3f", (long long)er.k, er.pass_at_k) : std::string()).c_str(),
              (er.maj_prompts > 0 ? strformat(" | maj@%lld %.3f", (long long)er.k, er.maj_at_k) : std::string()).c_str(),
              per_source.c_str());
}

// rl.save_best: an eval that beats the best value so far writes the policy to
// RUN_DIR/best and RUN_DIR/best.json (the same decision on every trainer: the values are
// global).
void GrpoRun::update_best(int64_t step, const MetricMap& eval_row) {
  const std::string& key = cfg_.rl.save_best;
  if (key.empty()) return;
  const auto it = eval_row.find(key);
  if (it == eval_row.end() || !std::isfinite(it->second)) {
    if (!best_missing_warned_ && rank_ == 0) {
      std::string keys;
      for (const auto& kv : eval_row) keys += (keys.empty() ? "" : ", ") + kv.first;
      ZT_LOG_WARN("train: rl.save_best '%s' is not a finite value of the eval at step %lld (it has %s): no best "
                  "model is kept from it", key.c_str(), (long long)step, keys.c_str());
    }
    best_missing_warned_ = true;
    return;
  }
  const double v = it->second;
  const bool better = best_step_ < 0 || (cfg_.rl.save_best_mode == "max" ? v > best_value_ : v < best_value_);
  if (!better) return;
  best_value_ = v;
  best_step_ = step;
  const std::string dir = cfg_.run.run_dir + "/best";
  save_model_dir(dir, src_.config, static_cast<const Model&>(*model_).params(), src_.files, pg_);
  if (rank_ == 0) {
    const nlohmann::json js = {{"metric", key}, {"mode", cfg_.rl.save_best_mode}, {"value", v}, {"step", step}};
    write_atomic(cfg_.run.run_dir + "/best.json", js.dump(2) + "\n");
    ZT_LOG_INFO("train: best %s so far: %.4g at step %lld, model in %s", key.c_str(), v, (long long)step, dir.c_str());
  }
}

// A rollout worker: (lag 0) the policy, then the step's batch to the trainers; (lag 1)
// the batch, then the policy the next batch is sampled with.
void GrpoRun::run_worker() {
  Progress progress("train", steps_, "step");
  progress.resume_from(start_.step);
  double idle = 0;  // waiting for the trainers since the last batch was generated
  // The stop agreement of the trainers' step s (their poll after it): here after sending
  // batch s (lag 0), or after generating batch s + 1 (lag 1, whose batch is then dropped).
  StopCheck stop(cfg_.train.time_limit_minutes);
  auto stopped = [&](int64_t trained_step) {
    const std::string why = stop.poll(comm_);
    if (!why.empty()) result_.stop = {true, trained_step, why, ""};
    return !why.empty();
  };
  for (int64_t step = start_.step + 1; step <= steps_; ++step) {
    auto t0 = Clock::now();
    if (lag_ == 0) weights_->run(model_->params());
    idle += seconds_since(t0);
    StepRollout ro = collect(step);
    ro.idle_s = idle;
    if (lag_ == 1 && step - 1 > start_.step && stopped(step - 1)) break;
    t0 = Clock::now();
    send_step_rollout(comm_, backend_, R_, ro);
    if (lag_ == 1 && step < steps_) weights_->run(model_->params());
    idle = seconds_since(t0);
    if (options_.show_progress) progress.update(step, "rollout worker");
    if (lag_ == 0 && step < steps_ && stopped(step)) break;
  }
  if (options_.show_progress) progress.finish("rollout worker");
}

GrpoTrainResult GrpoRun::run() {
  if (worker_) {
    run_worker();
    if (result_.stop.stopped) result_.final_dir.clear();
    return std::move(result_);
  }
  if (resume_ckpt_.empty() && cfg_.rl.eval_at_start && data_.eval.size() > 0) run_eval(0);
  // The eval a stop skipped (grpo_state.json eval_pending).
  if (eval_pending_ && data_.eval.size() > 0) run_eval(start_.step);

  Progress progress("train", steps_, "step");
  progress.resume_from(start_.step);
  StopCheck stop(cfg_.train.time_limit_minutes);
  SaveTimer save_timer(cfg_.train.save_every_minutes);  // the trainers'
  for (int64_t step = start_.step + 1; step <= steps_; ++step) {
    const auto t_step = Clock::now();
    // ---- the step's batch: generated here (colocated) or by the workers ----
    double wait_s = 0, sync_s = 0;
    StepRollout ro;
    if (split_) {
      auto t0 = Clock::now();
      if (lag_ == 0) weights_->run(model_->params());
      sync_s += seconds_since(t0);
      t0 = Clock::now();
      ro = recv_step_rollout(comm_, backend_, R_);
      wait_s = seconds_since(t0);
      t0 = Clock::now();
      if (lag_ == 1 && step < steps_) weights_->run(model_->params());
      sync_s += seconds_since(t0);
    } else {
      try {
        ro = collect(step);
      } catch (const RolloutStopped& stopped) {
        // A stop signal during the rollout: the step is dropped, and the run stops as if
        // it had stopped after the step before (its checkpoint written if it is not yet).
        const int64_t done = step - 1;
        if (last_checkpoint_step_ != done)
          save_checkpoint(done, sampler_->cursor(),
                          cfg_.rl.skip_solved ? sampler_->skipped() : std::vector<int64_t>{}, false);
        result_.stop = {true, done, stop_signal_name(stopped.signal), ""};
        ZT_LOG_INFO("train: stopped in step %lld's rollout (%s): the step is dropped; the run stopped after "
                    "step %lld of %lld", (long long)step, result_.stop.reason.c_str(), (long long)done,
                    (long long)steps_);
        break;
      }
    }
    ZT_ASSERT(ro.sums.size() == RolloutSums(rollout_components(cfg_.rewards), metric_sources()).v.size(),
              "rollout sums: %zu values, expected %zu", ro.sums.size(),
              RolloutSums(rollout_components(cfg_.rewards), metric_sources()).v.size());
    // rl.rollout_lag 1: the policy before this step's update samples the next batch.
    if (behind_) backend_.copy(static_cast<const Model&>(*model_).params().flat, behind_->params().flat);

    // ---- policy update: ppo_epochs x mini_batches optimizer steps ----
    const auto t_train = Clock::now();
    const StepUpdate up = update(step, ro.groups, ro.kept_global);
    if (cfg_.grpo.reference_reset_due(step)) {
      const Tensor& policy = static_cast<const Model&>(*model_).params().flat;
      Tensor& ref = ref_->params().flat;
      const double alpha = cfg_.grpo.ref_mixup_alpha;
      if (alpha >= 1.0) {
        backend_.copy(policy, ref);
        ZT_LOG_INFO("train: step %lld: reference model reset to the policy", (long long)step);
      } else {  // ref <- alpha * policy + (1 - alpha) * ref, each weight on its rank's shard
        backend_.axpby(float(alpha), policy, float(1.0 - alpha), ref);
        ZT_LOG_INFO("train: step %lld: reference model moved to %g x policy + %g x reference", (long long)step, alpha,
                    1.0 - alpha);
      }
    }
    const double train_s = seconds_since(t_train);
    const double step_s = seconds_since(t_step);

    // ---- metrics, eval, checkpoint ----
    MetricMap m = step_metrics(ro, up, train_s, step_s, wait_s, sync_s);
    if (cfg_.grpo.kl_target > 0.0) {
      // The adaptive KL controller (Ziegler et al. 2019): the step's per-token KL against
      // the target moves the coefficient the next step uses; `kl` is reduced over the
      // trainers, so every rank computes the same value.
      m["kl_coef"] = kl_coef_;
      if (std::isfinite(m["kl"])) {
        const double err = std::clamp(m["kl"] / cfg_.grpo.kl_target - 1.0, -0.2, 0.2);
        kl_coef_ *= 1.0 + err * double(ro.kept_global * G_) / double(cfg_.grpo.kl_horizon);
      } else if (rank_ == 0) {
        ZT_LOG_WARN("train: step %lld: the KL is %g; grpo.kl_target's coefficient stays at %g", (long long)step,
                    m["kl"], kl_coef_);
      }
    }
    add_memory_metrics(*team_, m);
    metrics_->log(step, m);
    result_.steps.push_back(m);
    result_.steps.back()["step"] = double(step);
    const std::string line = format_progress_line(step, steps_, m);
    if (options_.show_progress) progress.update(step, strformat("reward %.3f", m["reward_mean"]));
    if (step % cfg_.train.log_every == 0 || step == steps_) ZT_LOG_INFO("train %s", line.c_str());

    // Every rank (the workers too) agrees whether to stop here: a signal or
    // train.time_limit_minutes. A stop saves this step, and leaves its eval to the resume.
    const bool eval_due = data_.eval.size() > 0 && ((cfg_.rl.eval_every > 0 && step % cfg_.rl.eval_every == 0) ||
                                                    (step == steps_ && cfg_.rl.eval_at_end));
    const std::string why = step < steps_ ? stop.poll(comm_) : "";
    // The checkpoint first: an eval that fails loses nothing trained.
    if ((cfg_.train.save_every > 0 && step % cfg_.train.save_every == 0) || step == steps_ || !why.empty() ||
        save_timer.due(*team_)) {
      save_checkpoint(step, ro.cursor, ro.skipped, !why.empty() && eval_due);
      save_timer.saved();
    }
    if (!why.empty()) {
      result_.stop = {true, step, why, ""};
      ZT_LOG_INFO("train: stopped after step %lld of %lld%s", (long long)step, (long long)steps_,
                  eval_due ? "; its eval runs when the run resumes" : "");
      break;
    }
    if (eval_due) {
      try {
        run_eval(step, !split_);
      } catch (const GenerationAborted&) {
        // A stop signal during the eval (colocated runs): the run stops after this step, with
        // its checkpoint (written again if it was: now it marks the eval pending), and the
        // eval runs first when the run resumes.
        int64_t sig = stop_signal();
        team_->all_reduce_host(&sig, 1, ReduceOp::Max);
        save_checkpoint(step, ro.cursor, ro.skipped, true);
        result_.stop = {true, step, stop_signal_name(int(sig)), ""};
        ZT_LOG_INFO("train: stopped in step %lld's eval (%s); the eval runs when the run resumes", (long long)step,
                    result_.stop.reason.c_str());
        break;
      }
    }
  }
  if (options_.show_progress)
    progress.finish(result_.steps.empty() ? "" : strformat("reward %.3f", result_.steps.back()["reward_mean"]));
  if (result_.stop.stopped) {
    result_.final_dir.clear();
    return std::move(result_);
  }
  save_model_dir(result_.final_dir, src_.config, static_cast<const Model&>(*model_).params(), src_.files, pg_);
  ZT_LOG_INFO("train: final model in %s", result_.final_dir.c_str());
  return std::move(result_);
}

MetricMap GrpoRun::step_metrics(const StepRollout& ro, const StepUpdate& up, double train_s, double step_s,
                                double wait_s, double sync_s) const {
  const std::vector<RewardFunctionConfig>& functions = cfg_.rewards.functions;
  const std::vector<double>& v = ro.sums;
  const double n = std::max(1.0, v[RolloutSums::kSamples]);
  const double r_mean = v[RolloutSums::kReward] / n;
  const double n_adv = std::max(1.0, v[RolloutSums::kAdvSamples]);  // the trained completions
  const double a_mean = v[RolloutSums::kAdv] / n_adv;
  MetricMap m;
  m["reward_mean"] = r_mean;
  m["reward_std"] = std::sqrt(std::max(0.0, v[RolloutSums::kReward2] / n - r_mean * r_mean));
  for (size_t f = 0; f < functions.size(); ++f)
    m["reward_" + functions[f].name] = v[RolloutSums::kFixed + f] / n;
  m["accuracy"] = v[RolloutSums::kCorrect] / n;
  if (cfg_.rewards.has_python()) {
    m["reward_errors"] = v[RolloutSums::kRewardErrors];
    for (size_t j = 0; j < cfg_.rewards.python.metrics.size(); ++j) {  // means over the completions that say
      const size_t at = RolloutSums::kFixed + functions.size() + 2 * j;
      if (v[at + 1] > 0) m["python/" + cfg_.rewards.python.metrics[j]] = v[at] / v[at + 1];
    }
  }
  m["format_rate"] = v[RolloutSums::kFormat] / n;
  m["response_len_mean"] = v[RolloutSums::kLen] / n;
  m["response_len_max"] = ro.len_max;
  m["truncation_rate"] = v[RolloutSums::kTrunc] / n;
  m["masked_frac"] = v[RolloutSums::kMasked] / n;
  m["adv_mean"] = a_mean;
  m["adv_std"] = std::sqrt(std::max(0.0, v[RolloutSums::kAdv2] / n_adv - a_mean * a_mean));
  m["adv_abs_mean"] = v[RolloutSums::kAdvAbs] / n_adv;
  m["zero_adv_group_frac"] = v[RolloutSums::kZeroGroups] / std::max(1.0, v[RolloutSums::kGroups]);
  m["solved_all_frac"] = v[RolloutSums::kSolvedAll] / std::max(1.0, v[RolloutSums::kGroups]);
  m["solved_none_frac"] = v[RolloutSums::kSolvedNone] / std::max(1.0, v[RolloutSums::kGroups]);
  // Lengths of correct and wrong completions (left out when the step has none of them).
  const double n_correct = v[RolloutSums::kCorrect], n_wrong = v[RolloutSums::kSamples] - n_correct;
  if (n_correct > 0) m["response_len_correct_mean"] = v[RolloutSums::kLenCorrect] / n_correct;
  if (n_wrong > 0) m["response_len_wrong_mean"] = (v[RolloutSums::kLen] - v[RolloutSums::kLenCorrect]) / n_wrong;
  if (!cfg_.rl.reflection_words.empty()) {  // self-reflection in the completions
    m["reflection_rate"] = v[RolloutSums::kReflect] / n;
    if (v[RolloutSums::kReflect] > 0)
      m["reflection_accuracy"] = v[RolloutSums::kReflectCorrect] / v[RolloutSums::kReflect];
  }
  // Per source (training prompts from two or more sources): NAME's completions only.
  const size_t per_source_at = RolloutSums::kFixed + rollout_components(cfg_.rewards);
  for (size_t src = 0; per_source_at + RolloutSums::kPerSource * (src + 1) <= v.size(); ++src) {
    const double* sv = v.data() + per_source_at + RolloutSums::kPerSource * src;
    const std::string at = "/" + data_.train.source_names[src];
    const double ns = sv[RolloutSums::kSrcSamples];
    m["samples" + at] = ns;
    if (ns <= 0) continue;
    m["reward_mean" + at] = sv[RolloutSums::kSrcReward] / ns;
    m["accuracy" + at] = sv[RolloutSums::kSrcCorrect] / ns;
    m["format_rate" + at] = sv[RolloutSums::kSrcFormat] / ns;
    m["response_len_mean" + at] = sv[RolloutSums::kSrcLen] / ns;
  }
  m["groups_sampled"] = v[RolloutSums::kGroups];
  m["groups_trained"] = double(ro.kept_global);
  m["sampling_rounds"] = double(ro.rounds);
  const GrpoLossStats& stats = up.stats;
  m["loss"] = up.opt_steps > 0 ? up.loss_sum / double(up.opt_steps) : 0.0;
  m["pg_loss"] = stats.pg_loss_mean();
  m["ratio_mean"] = stats.mean_ratio();
  m["clip_frac"] = stats.clip_frac();
  m["clip_frac_low"] = stats.clip_frac_low();
  m["clip_frac_high"] = stats.clip_frac_high();
  m["clip_frac_dual"] = stats.clip_frac_dual();
  if (cfg_.grpo.policy_loss == "kl_cov" || cfg_.grpo.policy_loss == "clip_cov")
    m["cov_selected_frac"] = stats.cov_selected_frac();
  if (cfg_.grpo.entropy_token_frac < 1.0) m["entropy_kept_frac"] = stats.entropy_kept_frac();
  m["kl"] = stats.kl_mean();
  if (cfg_.grpo.kl_in_reward) {  // the KL of the sampled completions, from the rollout side
    m["kl"] = v[RolloutSums::kKlSum] / std::max(1.0, v[RolloutSums::kKlTokens]);
    m["kl_penalty_mean"] = kl_coef_ * v[RolloutSums::kKlSum] / n;
  }
  m["entropy"] = stats.entropy_mean();
  const MismatchStats& mismatch = up.mismatch;
  if (up.has_mismatch) {  // the trainer's log-probs at the rollout's weights exist
    m["mismatch_kl"] = mismatch.kl_k1();
    m["mismatch_k3"] = mismatch.kl_k3();
    m["mismatch_abs_mean"] = mismatch.abs_diff_mean();
    m["mismatch_abs_max"] = mismatch.abs_diff_max;
  }
  if (cfg_.grpo.rollout_is != "none") {
    m["rollout_is_weight_mean"] = mismatch.weight_mean();
    m["rollout_is_truncated_frac"] = mismatch.truncated_frac();
    m["rollout_is_rejected_frac"] = mismatch.rejected_frac();
  }
  if (cfg_.model.aux_loss_alpha > 0) m["aux_loss"] = up.opt_steps > 0 ? up.aux_sum / double(up.opt_steps) : 0.0;
  m["grad_norm"] = up.grad_norm;
  m["lr"] = up.lr;
  m["optimizer_steps"] = double(up.opt_steps);
  m["train_pad_frac"] = up.row_tokens > 0 ? up.pad_tokens / up.row_tokens : 0.0;
  if (pg_.expert) m["ep_empty_micro_batches"] = up.empty_micro;
  if (team_->size() > 1) m["dp_imbalance"] = up.dp_imbalance;
  m["trained_tokens"] = up.trained_tokens;
  m["expert_imbalance"] = max_expert_imbalance(up.loads);
  m["generated_tokens"] = v[RolloutSums::kLen];
  m["tokens_per_s"] = step_s > 0 ? v[RolloutSums::kLen] / step_s : 0.0;
  m["rollout_s"] = ro.rollout_s;
  m["reward_s"] = ro.reward_s;
  m["train_s"] = train_s;
  m["step_s"] = step_s;
  if (split_) {
    m["trainer_wait_s"] = wait_s;     // the trainers waiting for the workers' batch
    m["weight_sync_s"] = sync_s;      // trainer 0 broadcasting the policy
    m["rollout_idle_s"] = ro.idle_s;  // a worker waiting for the trainers before this batch
    if (ro.mem_rss_gib > 0) m["mem_rollout_rss_gib"] = ro.mem_rss_gib;  // the workers' host memory
    if (ro.mem_peak_gib > 0) m["mem_rollout_peak_gib"] = ro.mem_peak_gib;
  }
  if (cfg_.rl.skip_solved) m["prompts_skipped"] = double(ro.skipped.size());
  m["data_epoch"] = double(ro.cursor.epoch);
  m["data_position"] = double(ro.cursor.position);
  return m;
}

// The pretrain checkpoint, then the reference, the lagged policy, then grpo_state.json
// (its presence marks the GRPO checkpoint complete).
void GrpoRun::save_checkpoint(int64_t step, const DataCursor& cursor, const std::vector<int64_t>& skipped,
                              bool eval_pending) {
  const std::string& run_dir = cfg_.run.run_dir;
  last_checkpoint_step_ = step;
  TrainerState st;
  st.step = step;
  st.cursor = cursor;
  st.stage = "grpo";
  const ParamSet& policy = static_cast<const Model&>(*model_).params();
  const std::string dir = save_train_checkpoint(run_dir, src_.config, policy, src_.files, *optimizer_, st, pg_);
  if (ref_) save_model_dir(dir + "/reference", src_.config, static_cast<const Model&>(*ref_).params(), src_.files, pg_);
  // rl.rollout_lag 1: the weights step + 1's batch is sampled with (the policy before
  // this step's update).
  if (behind_)
    save_model_dir(dir + "/rollout", src_.config, static_cast<const Model&>(*behind_).params(), src_.files, pg_);
  if (rank_ == 0) {
    nlohmann::json js = {{"format_version", kGrpoStateVersion},
                               {"step", step},
                               {"prompts_fingerprint", strformat("%016llx", (unsigned long long)fingerprint_)},
                               {"world_size", world_},
                               {"rollout_ranks", R_},
                               {"rollout_lag", lag_},
                               {"expert_parallel", pg_.expert_parallel},
                               {"reference", bool(ref_)},
                               {"eval_pending", eval_pending},
                               {"skipped_prompts", skipped},
                               {"kl_coef", kl_coef_}};
    if (best_step_ >= 0) js["best"] = {{"value", best_value_}, {"step", best_step_}};
    write_atomic(dir + "/grpo_state.json", js.dump(2) + "\n");
    ZT_LOG_INFO("train: checkpoint %s", dir.c_str());
    for (const std::string& old : prune_checkpoints(run_dir, cfg_.train.keep_checkpoints, "grpo_state.json"))
      ZT_LOG_INFO("train: removed %s (train.keep_checkpoints %lld)", old.c_str(),
                  (long long)cfg_.train.keep_checkpoints);
  }
  team_->barrier();
}

}  // namespace grpo_detail

GrpoTrainResult run_grpo_training(const TrainConfig& cfg, Communicator& comm, Backend& backend,
                                  const GrpoTrainOptions& options) {
  try {
    grpo_detail::GrpoRun run(cfg, comm, backend, options);
    return run.run();
  } catch (const RunStopped& s) {  // in the cold start (every rank)
    GrpoTrainResult r;
    r.stop = s.stop;
    return r;
  }
}

}  // namespace zeroth
