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
#include "zeroth/optim.h"

namespace zeroth {

// `run:` what the run is called, where it writes, how it logs, where it runs.
struct RunConfig {
  std::string name = "run";
  uint64_t seed = 1;
  std::string device = "cpu";
  int threads = 0;
  std::string log_level = "info";
  bool log_all_ranks = false;
  std::string run_dir = "runs/<name>";

  template <class V>
  void visit(V& v) {
    v.field("name", name, "Run name, used in logs and in the default run directory");
    v.field("seed", seed, "Master seed from which every RNG stream is derived").min(0);
    v.field("device", device, "Where ops run").one_of({"cpu", "cuda"});
    v.field("threads", threads, "CPU threads per process (0 = all cores)").min(0);
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
            "Weight of the sequence-wise balance loss (DeepSeek-V3 alpha; 0 = off), applied per "
            "micro-batch")
        .min(0);
    v.field("bias_update_speed", bias_update_speed,
            "Aux-loss-free balancing speed gamma: router_bias += gamma * sign(mean load - load) "
            "after every step (0 = off)")
        .min(0);
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
  void validate() const {
    if (prompt_template.find("{prompt}") == std::string::npos)
      throw ConfigError(strformat("key 'data.template': expected a text containing '{prompt}', found '%s'",
                                  prompt_template.c_str()));
  }
};

// The whole configuration: one member per section.
struct Config {
  RunConfig run;
  ModelSection model;
  OptimConfig optim;
  TrainSection train;
  DataSection data;

  template <class V>
  void visit(V& v) {
    v.field("run", run, "Run identity, logging and placement");
    v.field("model", model, "The model a training run starts from, and MoE load balancing");
    v.field("optim", optim, "AdamW and its learning-rate schedule");
    v.field("train", train, "Length and batch shape of a language-model training run (pretrain, sft)");
    v.field("data", data, "Training corpus and how it becomes sequences (pretrain, sft)");
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
