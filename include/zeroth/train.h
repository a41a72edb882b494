// Language-model training: the loop shared by `zeroth pretrain` (next-token loss over
// packed corpus sequences) and `zeroth sft` (loss on response tokens only, the
// cold-start stage), and its checkpoints.
//
// Owns: building the model, tokenizer, dataset, optimizer and gradient sync from a
// Config; the step (each rank's share of the global batch in micro-batches, loss
// normalised by the global count of trained tokens, gradient all-reduce, AdamW, the
// aux-loss-free router-bias update from all-reduced expert loads); metrics (log lines,
// Progress, run_dir/metrics.jsonl); checkpoints and resume.
// Must not: parse the command line (src/cli/cmd_pretrain.cpp, cmd_sft.cpp do), pick a
// communicator or backend (they are passed in), or implement optimizer/collective math
// (optim.h, grad_sync.h).
//
// Run directory layout (rank 0 writes it):
//   config.yaml                  the resolved config (write_resolved_config)
//   metrics.jsonl                one JSON object per step
//   checkpoints/step_N/          HF model dir (config.json, model.safetensors, tokenizer
//                                files) + optimizer.safetensors + trainer_state.json;
//                                written as checkpoints/.step_N.tmp, then renamed
//   final/                       the HF model dir (with tokenizer) of the last step
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "zeroth/config.h"
#include "zeroth/data.h"
#include "zeroth/model_config.h"
#include "zeroth/process_groups.h"
#include "zeroth/run_stop.h"
#include "zeroth/tokenizer.h"

namespace zeroth {

class Backend;
class Communicator;
struct ModelConfig;
struct ParamSet;
class AdamW;

enum class LmStage { Pretrain, Sft };
const char* lm_stage_name(LmStage stage);  // "pretrain", "sft"

// The host memory metrics of a training step, added to `m`: mem_rss_gib (the largest
// resident set over the ranks of `ranks` now) and mem_peak_gib (the largest since each
// process started), in GiB; left out where /proc cannot be read. Collective over `ranks`
// (one host all-reduce). The values are not deterministic: compare runs without them.
void add_memory_metrics(Communicator& ranks, std::map<std::string, double>& m);

// Metrics of one optimizer step (global: the same on every rank).
struct StepMetrics {
  int64_t step = 0;
  double loss = 0.0;          // mean next-token NLL over the step's trained tokens
  double aux_loss = 0.0;      // balance loss of rank 0's last micro-batch (0 when off)
  double lr = 0.0;
  double grad_norm = 0.0;     // pre-clip global L2 norm
  int64_t trained_tokens = 0; // predictions with mask != 0, all ranks
  int64_t tokens = 0;         // tokens processed (batch_size * seq_len)
  double tokens_per_s = 0.0;
  double expert_imbalance = 0.0;  // max over MoE layers of max load / mean load (1 = even)
  DataCursor cursor;          // after the step
};

struct LmTrainOptions {
  // Continue the run in this directory from its newest checkpoints/step_N ("" = start).
  std::string resume_dir;
  bool show_progress = true;
  // The config section error messages name for the data and batch-shape keys (data.path,
  // data.prompt_field, train.seq_len, ...); "" = their own sections. The cold start of
  // zeroth train sets "cold_start" (its keys have the same names there).
  std::string key_section;
  // "SECTION.leaf" as error messages name it: key_section.leaf when key_section is set.
  std::string key(const char* section, const char* leaf) const {
    return (key_section.empty() ? std::string(section) : key_section) + "." + leaf;
  }
};

struct LmTrainResult {
  std::vector<StepMetrics> steps;  // the steps run by this call
  std::string final_dir;           // run_dir/final (written only when the run was not stopped)
  RunStop stop;                    // stopped early (run_stop.h): a checkpoint of stop.step exists
};

// Runs `stage` for config.train.steps steps on `backend` (CPU, or a device backend whose
// tensors `comm` can reduce), with data parallelism over `comm` (every rank calls it).
// Throws ConfigError for settings that do not fit the run (missing model.init /
// data.path, batch_size not divisible by ranks * micro_batch, a tokenizer that does not
// fit the model), DataError for bad data, CheckpointError for a bad resume directory.
LmTrainResult run_lm_training(const Config& config, LmStage stage, Communicator& comm,
                              Backend& backend, const LmTrainOptions& options = {});

// ---- checkpoints (src/train/checkpoint_io.cpp) ----

// The tokenizer files copied into every model directory written.
struct TokenizerFiles {
  std::string tokenizer_json;         // tokenizer.json
  std::string tokenizer_config_json;  // tokenizer_config.json, "" if none
};

// The byte tokenizer of `zeroth ckpt init --tokenizer bytes` (ids 256-258 = <|bos|>,
// <|eos|>, <|pad|>; BOS added on encode) as tokenizer.json text.
std::string byte_tokenizer_json();

// ---- model source (src/train/model_source.cpp) ----

// Where a run's model comes from: model.init is a model config.json (random init) or a
// Hugging Face model directory (its weights); model.tokenizer is 'auto' (the directory's
// tokenizer.json; the byte tokenizer for a config.json), 'bytes', or a tokenizer.json /
// directory path.
struct ModelSource {
  ModelConfig config;
  std::string weights_dir;  // "" = random init
  std::unique_ptr<Tokenizer> tokenizer;
  TokenizerFiles files;     // copied into every model directory the run writes
};
// ConfigError naming the key for a missing init, a missing tokenizer or a tokenizer with
// more ids than the model's vocab_size. `command` names the subcommand in messages.
ModelSource resolve_model_source(const std::string& init, const std::string& tokenizer_key,
                                 const std::string& command);
// Replaces src's tokenizer and files with those at `path` (a tokenizer.json or a
// directory holding one, plus tokenizer_config.json when present).
void load_source_tokenizer(const std::string& path, ModelSource& src);
// ConfigError unless src's tokenizer fits its model's vocabulary (`init` named).
void check_tokenizer_fits(const ModelSource& src, const std::string& init);

// Where the trainer stands after `step` steps.
struct TrainerState {
  int64_t step = 0;
  DataCursor cursor;
  std::string stage;  // "pretrain" or "sft"
};

// Writes an HF model directory `dir` (weights in F32, config.json, tokenizer files)
// atomically: into `dir`.tmp, then renamed over `dir`.
void save_model_dir(const std::string& dir, const ModelConfig& config, const ParamSet& params,
                    const TokenizerFiles& tokenizer);

// Writes checkpoints/step_N under run_dir: the model directory plus the optimizer
// moments and step (optimizer.safetensors) and `state` (trainer_state.json), renamed
// into place only once complete. Returns the directory.
std::string save_train_checkpoint(const std::string& run_dir, const ModelConfig& config,
                                  const ParamSet& params, const TokenizerFiles& tokenizer,
                                  const AdamW& optimizer, const TrainerState& state);

// The newest complete checkpoints/step_N of run_dir, or "" when there is none. A
// checkpoint is complete when it holds `marker` (the file its writer publishes last:
// trainer_state.json for pretrain/sft, grpo_state.json for GRPO). A newer step_N without
// it is passed over with a warning.
std::string latest_checkpoint(const std::string& run_dir,
                              const std::string& marker = "trainer_state.json");

// The complete checkpoints/step_N of run_dir (holding `marker`), as (N, path), by step.
std::vector<std::pair<int64_t, std::string>> complete_checkpoints(const std::string& run_dir,
                                                                  const std::string& marker = "trainer_state.json");

// Deletes the complete checkpoints/step_N of run_dir (those holding `marker`) but the
// newest `keep` (keep 0: none). Incomplete ones are left alone. Returns the deleted
// directories, oldest first. Call on one rank, after the newest checkpoint is complete.
// RuntimeError when a directory cannot be removed.
std::vector<std::string> prune_checkpoints(const std::string& run_dir, int64_t keep,
                                           const std::string& marker = "trainer_state.json");

// A new run (no --resume) into run_dir: a UsageError when run_dir already holds another
// run's checkpoints/ or final/ (naming them, and --resume / --overwrite / another
// --run-dir), so a reused or mistyped --run-dir cannot mix two runs; with `overwrite`
// removes that run's checkpoints/, final/, cold_start/, metrics.jsonl and tb/ instead
// (on `rank` 0 only; the caller synchronises). `command` names the CLI in the message.
void prepare_fresh_run_dir(const std::string& run_dir, bool overwrite, int rank, const char* command);

// Reads trainer_state.json of a checkpoint directory. CheckpointError naming the file
// and key for a missing or malformed file, or a step other than checkpoints/step_N's N.
TrainerState read_trainer_state(const std::string& checkpoint_dir);

// A resume from a checkpoint at `step` needs train.steps >= step (equal: nothing left to
// train; the final model is written again). ConfigError naming `key` otherwise.
void check_resume_steps(const std::string& checkpoint_dir, int64_t step, int64_t steps,
                        const std::string& key = "train.steps");

// Restores the optimizer moments and step from checkpoint_dir/optimizer.safetensors,
// or from its optimizer parts (optimizer-K-of-N.safetensors, below) when it has them.
// A ZeRO-sharded optimizer reads its pieces from either.
void load_optimizer_state(const std::string& checkpoint_dir, AdamW& optimizer);

// Collective versions over groups.data (every rank calls them). Without expert
// parallelism and ZeRO, rank 0 writes exactly what the functions above write. With expert
// parallelism (P > 1), the P ranks of the first expert group write the model together
// (save_hf_weights_part: each its experts, part 1 also every other tensor) and each its
// optimizer moments, `optimizer-{q+1}-of-{P}.safetensors` (5 digits). With ZeRO-1 every
// rank k of the W writes the moments it owns to `optimizer-{k+1}-of-{W}.safetensors`.
// Optimizer parts store moments by HF name (whole, or "<name>@<first element>" pieces),
// so any expert-parallel size, ZeRO stage and rank count reads them. Rank 0 writes the
// rest and publishes the directory. Returns the directory on every rank.
void save_model_dir(const std::string& dir, const ModelConfig& config, const ParamSet& params,
                    const TokenizerFiles& tokenizer, const ProcessGroups& groups);
std::string save_train_checkpoint(const std::string& run_dir, const ModelConfig& config,
                                  const ParamSet& params, const TokenizerFiles& tokenizer,
                                  const AdamW& optimizer, const TrainerState& state,
                                  const ProcessGroups& groups);
// Reads this rank's optimizer state (from optimizer.safetensors, or from the parts); a
// flat optimizer.safetensors with expert parallelism is a CheckpointError that says how
// to go on.
void load_optimizer_state(const std::string& checkpoint_dir, AdamW& optimizer,
                          const ProcessGroups& groups);

}  // namespace zeroth
