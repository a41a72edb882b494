// The run configuration: one typed struct per YAML section, and the functions that
// load, dump, write and document it.
//
// A config file is YAML; it may extend others with `defaults: [base.yaml, ...]`
// (relative to the file; later files win, the file itself wins over its defaults)
// and `--set section.key=value` overrides it from the command line. Every error
// names file:line:column, the key, what was expected and what was found.
//
// Adding a section (e.g. `grpo:`):
//   1. define `struct GrpoConfig { ...fields with defaults...; template <class V>
//      void visit(V& v) { v.field("kl_coef", kl_coef, "...").min(0); ... } };`
//      (optionally `void validate() const` for cross-field checks, throwing
//      ConfigError that names the keys, and `void finalize()` for derived defaults);
//   2. add the member `GrpoConfig grpo;` to Config and one line to Config::visit:
//      `v.field("grpo", grpo, "GRPO algorithm");`
//   3. run scripts/update-config-docs.sh to regenerate the reference in docs/config.md.
// Adding a key is step 1's one `v.field` line plus step 3. See config_reflect.h for
// the supported types and constraints.
//
// Owns: the sections and the Config-level API. Must not: parse YAML by hand or
// validate keys outside `visit`/`validate` (config_reflect.h does it from the list).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "zeroth/config_reflect.h"
#include "zeroth/grpo.h"
#include "zeroth/optim.h"
#include "zeroth/prompt_data.h"
#include "zeroth/rewards.h"
#include "zeroth/rollout_config.h"

namespace zeroth {

// `run:` what the run is called, where it writes, how it logs, where it runs.
struct RunConfig {
  std::string name = "run";
  uint64_t seed = 1;
  std::string device = "cpu";
  std::string compute_dtype = "auto";
  int threads = 0;
  int expert_parallel = 1;
  int zero_stage = 0;
  std::string log_level = "info";
  bool log_all_ranks = false;
  std::string run_dir = "runs/<name>";

  template <class V>
  void visit(V& v) {
    v.field("name", name, "Run name, used in logs and in the default run directory");
    v.field("seed", seed, "Master seed from which every RNG stream is derived").min(0);
    v.field("device", device,
            "Where ops run; 'cuda' gives each rank the GPU of its node-local rank (one rank per GPU)")
        .one_of({"cpu", "cuda"});
    v.field("compute_dtype", compute_dtype,
            "Model compute dtype: 'auto' = f32 on cpu, bf16 (mixed precision, fp32 master weights "
            "and gradients) on cuda")
        .one_of({"auto", "f32", "bf16"});
    v.field("threads", threads, "CPU threads per process (0 = all cores)").min(0);
    v.field("expert_parallel", expert_parallel,
            "Expert parallelism: ranks per expert group; every MoE layer's routed experts are split "
            "over this many consecutive ranks (must divide the rank count and n_routed_experts; 1 = "
            "every rank holds every expert). Data parallelism spans all ranks either way. zeroth "
            "pretrain, sft and train (over the trainer ranks; a rollout worker holds every expert)")
        .min(1);
    v.field("zero_stage", zero_stage,
            "ZeRO stage: 1 shards the AdamW moments over the data-parallel ranks (each keeps and "
            "updates 1/D of them: gradients are reduce-scattered, the updated weights all-gathered; "
            "DeepSpeed ZeRO-1, Megatron's distributed optimizer); 0 keeps a whole copy on every rank. "
            "Same traffic either way; checkpoints resume under either setting and any rank count. "
            "zeroth pretrain, sft and train (over the trainer ranks)")
        .min(0).max(1);
    v.field("log_level", log_level, "Lowest level of log line printed")
        .one_of({"debug", "info", "warn", "error"});
    v.field("log_all_ranks", log_all_ranks, "Log on every rank, not only rank 0");
    v.field("run_dir", run_dir,
            "Directory for checkpoints, logs and the resolved config.yaml; '<name>' is replaced by run.name");
  }
  // Replaces "<name>" in run_dir by the run name.
  void finalize();
  // The name must be non-empty and usable as a directory name.
  void validate() const;
};

// `model:` which model a training run starts from and how its MoE layers are balanced.
struct ModelSection {
  std::string init;
  std::optional<uint64_t> seed;
  std::string tokenizer = "auto";
  double aux_loss_alpha = 0.0;
  double bias_update_speed = 0.001;
  bool recompute = false;

  template <class V>
  void visit(V& v) {
    v.field("init", init,
            "A model config.json (weights initialised at random from model.seed) or a Hugging Face "
            "model directory (weights loaded); required by pretrain and sft");
    v.field("seed", seed, "Seed of the random weight init (null: run.seed)").min(0);
    v.field("tokenizer", tokenizer,
            "'bytes' (256 byte ids, then <|bos|> <|eos|> <|pad|>), a tokenizer.json or a directory "
            "holding one, or 'auto' (the init directory's tokenizer; 'bytes' for a config.json)");
    v.field("aux_loss_alpha", aux_loss_alpha,
            "Weight of the sequence-wise balance loss (DeepSeek-V3 alpha; 0 = off): alpha times its "
            "mean over the sequences of the global batch (each optimizer step's in zeroth train), "
            "whatever the split into ranks and micro-batches")
        .min(0);
    v.field("bias_update_speed", bias_update_speed,
            "Aux-loss-free balancing speed gamma: router_bias += gamma * sign(mean load - load) "
            "after every step (0 = off)")
        .min(0);
    v.field("recompute", recompute,
            "Activation recomputation per block: keep only each layer's input and re-run its "
            "forward in the backward (one layer's activations in memory instead of all; same "
            "gradients bit for bit, ~1/3 more compute)");
  }
  // tokenizer must not be empty.
  void validate() const {
    if (tokenizer.empty())
      throw ConfigError("key 'model.tokenizer': expected 'auto', 'bytes' or a path, found ''");
  }
};

// `train:` the length and shape of a language-model training run (pretrain, sft).
struct TrainSection {
  int64_t steps = 100;
  int64_t batch_size = 8;
  int64_t micro_batch = 0;
  int64_t seq_len = 256;
  int64_t log_every = 10;
  int64_t save_every = 0;
  double save_every_minutes = 0.0;
  int64_t keep_checkpoints = 0;
  double time_limit_minutes = 0.0;

  template <class V>
  void visit(V& v) {
    v.field("steps", steps, "Optimizer steps of the run").min(1);
    v.field("batch_size", batch_size,
            "Sequences per optimizer step over all data-parallel ranks (must be divisible by the "
            "number of ranks)")
        .min(1);
    v.field("micro_batch", micro_batch,
            "Sequences per forward/backward on one rank (gradients accumulate over a rank's share "
            "of the batch); 0 = the whole share at once")
        .min(0);
    v.field("seq_len", seq_len, "Tokens per training sequence").min(2);
    v.field("log_every", log_every, "Log metrics every this many steps").min(1);
    v.field("save_every", save_every,
            "Write a checkpoint every this many steps (0 = only at the end; one is always written "
            "at the end)")
        .min(0);
    v.field("save_every_minutes", save_every_minutes,
            "Also write a checkpoint at the first step boundary this many minutes after the last one "
            "(or the start; the ranks agree, any rank's clock counts): bounds the work a crash loses "
            "when step times vary, as with long reasoning traces. 0 = off")
        .min(0);
    v.field("keep_checkpoints", keep_checkpoints,
            "Keep only the newest this many complete checkpoints/step_N (older ones are deleted "
            "once a newer one is complete); 0 = keep all")
        .min(0);
    v.field("time_limit_minutes", time_limit_minutes,
            "Wall-clock limit: stop at the step boundary where the next step would end after this "
            "many minutes since the command started (the longest step so far is the estimate), with "
            "a checkpoint and exit status 75; --resume continues the run exactly. Counts the cold "
            "start too. 0 = no limit (a stop signal still works: docs/launch.md)")
        .min(0);
  }
};

// `data:` the training corpus and how its lines become sequences.
struct DataSection {
  std::string path;
  std::string format = "text";
  std::string text_field = "text";
  std::string prompt_field = "prompt";
  std::string response_field = "response";
  std::string prompt_template = "{prompt}";
  bool add_eos = true;
  bool shuffle = true;

  template <class V>
  void visit(V& v) {
    v.field("path", path, "Corpus file (relative paths are relative to the working directory); "
                          "required by pretrain and sft");
    v.field("format", format,
            "pretrain: 'text' (one document per line) or 'jsonl' (one object per line, document in "
            "text_field); sft always reads JSONL")
        .one_of({"text", "jsonl"});
    v.field("text_field", text_field, "pretrain, jsonl: the key holding a document's text");
    v.field("prompt_field", prompt_field, "sft: the key holding the prompt");
    v.field("response_field", response_field, "sft: the key holding the response");
    v.field("template", prompt_template,
            "sft: the text the model sees before the response; '{prompt}' is replaced by the prompt");
    v.field("add_eos", add_eos, "sft: append EOS after each response (and train on it)");
    v.field("shuffle", shuffle,
            "Visit sequences in a new seeded order every epoch (seed: run.seed); false = file order");
  }
  // The template must contain "{prompt}".
  void validate() const { check_template(prompt_template, "data.template"); }
  // ConfigError naming `key` when an SFT template lacks "{prompt}" (also zeroth train's
  // cold start, whose template comes from cold_start.template or rollout.prompt_template).
  static void check_template(const std::string& text, const char* key) {
    if (text.find("{prompt}") == std::string::npos)
      throw ConfigError(strformat("key '%s': expected a text containing '{prompt}', found '%s'", key, text.c_str()));
  }
};

// `rl:` the shape of a GRPO step (steps, log_every and save_every come from `train:`).
struct RlSection {
  int64_t prompts_per_step = 8;
  int64_t micro_batch = 0;
  int64_t micro_batch_tokens = 0;
  bool balance_batch = true;
  int64_t eval_every = 0;
  bool eval_at_start = true;
  bool eval_at_end = true;
  int64_t rollout_ranks = 0;
  int64_t rollout_lag = 0;
  int64_t dump_rollouts_every = 0;
  bool dump_eval = false;
  bool skip_solved = false;
  std::string save_best;
  std::string save_best_mode = "max";
  std::vector<std::string> reflection_words = {"wait", "recheck", "re-check", "double-check", "double check",
                                               "let me check", "verify", "reconsider", "re-evaluate",
                                               "reevaluate", "re-examine", "alternatively", "mistake", "aha"};

  template <class V>
  void visit(V& v) {
    v.field("prompts_per_step", prompts_per_step,
            "Prompts (B) per step over all ranks; each gets rollout.group_size completions")
        .min(1);
    v.field("micro_batch", micro_batch,
            "Sequences per forward/backward on one rank (0 = a rank's whole mini-batch at once)")
        .min(0);
    v.field("micro_batch_tokens", micro_batch_tokens,
            "Dynamic micro-batches: sort a rank's sequences by length and pack them into "
            "micro-batches of at most this many tokens, each padded only to its own longest "
            "sequence (verl's use_dynamic_bsz); micro_batch still caps the sequences. 0 = off: "
            "every sequence is padded to the step's longest")
        .min(0);
    v.field("balance_batch", balance_batch,
            "Before the update, move whole groups between the trainer ranks so that each "
            "mini-batch's work is even: rows with the fixed split, tokens with "
            "micro_batch_tokens (verl's balance_batch; the loss is the same, only the ranks' "
            "shares change)");
    v.field("eval_every", eval_every, "Held-out evaluation every this many steps (0 = off)").min(0);
    v.field("eval_at_start", eval_at_start, "Evaluate before the first step (step 0) when an eval set exists");
    v.field("eval_at_end", eval_at_end, "Evaluate after the last step when an eval set exists");
    v.field("rollout_ranks", rollout_ranks,
            "Rollout workers: the last this many ranks only generate and score (no gradients, no "
            "optimizer state), the others only train and send them the policy weights each step; "
            "0 = every rank does both (colocated). Must leave at least one trainer rank")
        .min(0);
    v.field("rollout_lag", rollout_lag,
            "Policy lag of the rollout: the completions of step s come from the policy after step "
            "s-1-lag. 1 = one-step off-policy: with rollout_ranks the workers generate step s+1 "
            "while the trainers train step s (colocated it only changes the algorithm)")
        .min(0)
        .max(1);
    v.field("dump_rollouts_every", dump_rollouts_every,
            "Every this many steps write every completion sampled in the step (prompt, completion, "
            "rewards, advantage, whether it was trained on) to RUN_DIR/rollouts/step_N.jsonl; 0 = off")
        .min(0);
    v.field("dump_eval", dump_eval,
            "Write every generation of each held-out eval (greedy and pass@k samples, with rewards "
            "and correctness) to RUN_DIR/rollouts/eval_step_N.jsonl");
    v.field("skip_solved", skip_solved,
            "Online filtering of easy prompts (POLARIS, Skywork-OR1): a training prompt whose G "
            "completions were all correct is not sampled again; when every prompt is solved the "
            "set is cleared (a warning). Checkpoints keep the set, so a resume continues exactly");
    v.field("save_best", save_best,
            "Keep the best model by this eval metric (an eval row key such as eval_accuracy, "
            "eval_pass_at_k or eval_accuracy/NAME): after an eval that beats the best so far, the "
            "policy goes to RUN_DIR/best (an HF model directory) and RUN_DIR/best.json gets the "
            "metric, value and step; checkpoints keep the best value, so a resume goes on comparing "
            "against it. \"\" = off");
    v.field("save_best_mode", save_best_mode, "save_best: 'max' (higher is better) or 'min'")
        .one_of({"max", "min"});
    v.field("reflection_words", reflection_words,
            "Words and phrases of self-reflection counted in the sampled completions (whole words, "
            "ASCII case-insensitive): metrics reflection_rate (share of completions with one) and "
            "reflection_accuracy (share of those that are correct), to watch the 'aha moment'; "
            "[] = off");
  }
  void validate() const {
    if (!save_best.empty() && save_best.rfind("eval_", 0) != 0)
      throw ConfigError("key 'rl.save_best': expected an eval metric name (eval_accuracy, eval_pass_at_k, "
                        "eval_accuracy/NAME, ...), found '" + save_best + "'");
  }
};

// `eval:` held-out evaluation (the eval set is prompts.eval_sources / eval_count / eval_fraction).
struct EvalSection {
  int64_t max_prompts = 0;
  bool greedy = true;
  int64_t pass_k = 0;
  std::vector<int64_t> pass_at;
  double temperature = 1.0;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<double> min_p;
  std::optional<int64_t> max_new_tokens;
  uint64_t seed = 0;

  template <class V>
  void visit(V& v) {
    v.field("max_prompts", max_prompts, "Evaluate at most this many eval prompts (0 = all)").min(0);
    v.field("greedy", greedy, "Greedy pass@1 (temperature 0): eval_accuracy, eval_format_rate");
    v.field("pass_k", pass_k,
            "k samples per prompt at eval.temperature: eval_pass_at_k (any of k correct) and "
            "eval_sampled_accuracy (mean over samples) and, over the math prompts, eval_maj_at_k "
            "(the majority answer of the k, equivalent answers grouped, is correct); 0 = off")
        .min(0);
    v.field("pass_at", pass_at,
            "Also estimate pass@k for each of these k from the pass_k samples with the unbiased "
            "estimator 1 - C(n - c, k) / C(n, k) (n = pass_k, c = correct samples; Chen et al. 2021): "
            "eval_pass_at_K, e.g. pass_k: 16 with pass_at: [1, 4, 8]; each k in [1, pass_k], no k twice "
            "(eval_pass_at_1 is eval_sampled_accuracy)")
        .min(1);
    v.field("temperature", temperature, "Sampling temperature of the pass@k samples (0 = greedy, else >= 0.01)")
        .min(0);
    v.field("top_p", top_p, "Nucleus of the pass@k samples (null = rollout.top_p), in (0, 1]").min(0).max(1);
    v.field("top_k", top_k, "Top-k of the pass@k samples (null = rollout.top_k; 0 = off)").min(0);
    v.field("min_p", min_p, "Min-p of the pass@k samples (null = rollout.min_p; 0 = off)").min(0).max(1);
    v.field("max_new_tokens", max_new_tokens,
            "Most tokens of an eval completion, greedy and sampled (null = rollout.max_new_tokens); "
            "less than rollout.max_len, whose KV cache the eval shares, e.g. to evaluate longer traces "
            "than training samples")
        .min(1);
    v.field("seed", seed, "Seed of the pass@k draws (0 = derived from run.seed)");
  }
  void validate() const {
    check_sampling_temperature(temperature, "key 'eval.temperature'");
    if (top_p && *top_p <= 0)
      throw ConfigError("key 'eval.top_p': expected a value in (0, 1], found " + std::to_string(*top_p));
    for (size_t i = 0; i < pass_at.size(); ++i) {
      const std::string key = "key 'eval.pass_at[" + std::to_string(i) + "]'";
      if (pass_at[i] > pass_k)
        throw ConfigError(key + ": expected a k in [1, eval.pass_k = " + std::to_string(pass_k) +
                          "] (the estimate uses the pass_k samples), found " + std::to_string(pass_at[i]));
      for (size_t j = 0; j < i; ++j)
        if (pass_at[j] == pass_at[i])
          throw ConfigError(key + ": expected each k once, found " + std::to_string(pass_at[i]) + " twice");
    }
  }
};

// `cold_start:` optional SFT on a small JSONL set before RL (R1's cold start), in
// RUN_DIR/cold_start (a `zeroth sft` run directory); RL then starts from its final model.
struct ColdStartSection {
  std::string path;
  int64_t steps = 50;
  int64_t batch_size = 8;
  int64_t seq_len = 512;
  double lr = 1e-4;
  std::string prompt_field = "prompt";
  std::string response_field = "response";
  std::string prompt_template;

  template <class V>
  void visit(V& v) {
    v.field("path", path, "Prompt/response JSONL for SFT before RL; empty = no cold start");
    v.field("steps", steps, "SFT optimizer steps").min(1);
    v.field("batch_size", batch_size, "SFT sequences per step (all ranks)").min(1);
    v.field("seq_len", seq_len, "SFT sequence length").min(2);
    v.field("lr", lr, "SFT peak learning rate (the other optim: keys are shared)").min(0);
    v.field("prompt_field", prompt_field, "Key of the prompt");
    v.field("response_field", response_field, "Key of the response");
    v.field("template", prompt_template,
            "Text before the response with '{prompt}' replaced; empty = rollout.prompt_template");
  }
};

// The whole configuration: one member per section.
struct Config {
  RunConfig run;
  ModelSection model;
  OptimConfig optim;
  TrainSection train;
  DataSection data;
  RolloutConfig rollout;
  GrpoConfig grpo;
  PromptDataConfig prompts;
  RewardsConfig rewards;
  RlSection rl;
  EvalSection eval;
  ColdStartSection cold_start;

  template <class V>
  void visit(V& v) {
    v.field("run", run, "Run identity, logging and placement");
    v.field("model", model, "The model a training run starts from, and MoE load balancing");
    v.field("optim", optim, "AdamW and its learning-rate schedule");
    v.field("train", train, "Length and batch shape of a language-model training run (pretrain, sft)");
    v.field("data", data, "Training corpus and how it becomes sequences (pretrain, sft)");
    v.field("rollout", rollout, "Sampling G completions per prompt: KV cache, sampling, stop rules");
    v.field("grpo", grpo, "GRPO algorithm: advantages, clipped loss, KL, aggregation, overlong handling");
    v.field("prompts", prompts, "RL prompt datasets, their field mapping and the held-out eval set (train)");
    v.field("rewards", rewards, "Reward functions, math verifier, format tags, code sandbox (train, reward)");
    v.field("rl", rl, "GRPO step shape: prompts per step, micro-batch, evaluation cadence (train)");
    v.field("eval", eval, "Held-out evaluation: greedy pass@1 and sampled pass@k (train, eval)");
    v.field("cold_start", cold_start, "Optional SFT stage before RL (train)");
  }

  // Checks that span sections (a ConfigError names the key it is about).
  void validate() const {
    grpo.validate_with_rollout(rollout.group_size, rollout.max_new_tokens);
    ZT_THROW_IF_NOT(!eval.max_new_tokens || *eval.max_new_tokens < rollout.max_len, ConfigError,
                    "key 'eval.max_new_tokens': expected < rollout.max_len (%lld: the eval decodes in the "
                    "rollout's KV cache, prompt + completion), found %lld",
                    (long long)rollout.max_len, (long long)eval.max_new_tokens.value_or(0));
    // A mini-batch is a set of whole prompt groups: more than B would run fewer optimizer
    // steps than the learning-rate schedule counts.
    ZT_THROW_IF_NOT(grpo.mini_batches <= rl.prompts_per_step, ConfigError,
                    "key 'grpo.mini_batches': expected at most rl.prompts_per_step (%lld: a mini-batch holds "
                    "whole prompt groups), found %lld",
                    (long long)rl.prompts_per_step, (long long)grpo.mini_batches);
  }
};

// Loads `path` with its `defaults:` chain, applies `overrides` ("section.key=value",
// in order) and checks every key. Throws ConfigError.
Config load_config(const std::string& path, const std::vector<std::string>& overrides);

// Every key (defaults included) as YAML; load_config of it gives the same Config.
std::string dump_config_yaml(const Config& config);

// Writes dump_config_yaml(config) to `run_dir`/config.yaml atomically (a temporary
// file in run_dir, then rename), creating run_dir. Throws RuntimeError on I/O failure.
void write_resolved_config(const Config& config, const std::string& run_dir);

// The Markdown reference of every section and key (the generated part of docs/config.md).
std::string config_docs_markdown();

}  // namespace zeroth
