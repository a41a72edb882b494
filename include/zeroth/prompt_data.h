// RL prompt data: the `prompts:` config section, JSONL prompt datasets with a field
// mapping and gold-answer extraction, the held-out eval split, the seeded epoch-wise
// prompt sampler with its resumable cursor, the data-parallel shard of a global batch,
// and the generator of the CPU demo's synthetic arithmetic data (`zeroth demo-data`).
//
// Owns: reading prompt JSONL (errors name file:line and the field), the answer
// extractors (none, gsm8k, boxed), the max-prompt-tokens filter, the eval split, the
// prompt order per epoch (BatchSampler on the named stream "prompts"), sharding, the
// demo task and its forbidden-text check. Must not: render prompts for the model beyond
// counting their tokens (prompt.h does), score completions (rewards.h), or communicate:
// every rank loads the same data, draws the same global batch and keeps its shard.
//
// docs/data.md describes the schema, the configs in configs/data/ and the demo task.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "zeroth/code_reward.h"
#include "zeroth/config_reflect.h"
#include "zeroth/data.h"
#include "zeroth/error.h"
#include "zeroth/rewards.h"

namespace zeroth {

class Tokenizer;
class PromptTemplate;

// One JSONL file of prompts and how its fields map onto a PromptRecord.
struct PromptSourceConfig {
  std::string path;
  std::string name;  // "" = prompt_source_name's default, the file name without .jsonl
  std::string kind = "math";
  std::string prompt_field = "prompt";
  std::string answer_field = "answer";
  std::string answer_extractor = "none";
  std::string tests_field = "test_list";
  std::string setup_field = "test_setup_code";
  bool tests_in_prompt = false;
  int64_t limit = 0;
  double weight = 0.0;  // training sources: share of each epoch (0 on all = pooled as is)

  template <class V>
  void visit(V& v) {
    v.field("path", path, "JSONL file, one object per line (relative paths: to the working directory)")
        .required();
    v.field("name", name,
            "Name of the source in per-source metrics (eval_accuracy/NAME, accuracy/NAME: written when "
            "the set has prompts of two or more sources); letters, digits, '_', '-', '.'; empty = the "
            "file name without .jsonl or .json");
    v.field("kind", kind, "What the prompts are: math (gold answer) or code (tests)").one_of({"math", "code"});
    v.field("prompt_field", prompt_field, "Key of the problem text (the template's {prompt})");
    v.field("answer_field", answer_field, "math: key of the gold answer (a string or a number)");
    v.field("answer_extractor", answer_extractor,
            "math: how the gold answer is taken from answer_field: none (as is), gsm8k (text after "
            "the last '#### ', commas removed), boxed (last \\boxed{} of a solution)")
        .one_of({"none", "gsm8k", "boxed"});
    v.field("tests_field", tests_field,
            "code: key of the tests: a list of assert statements (MBPP test_list) or a reward-schema "
            "tests object {asserts|stdio, ...}");
    v.field("setup_field", setup_field, "code: key of code run before the solution (MBPP test_setup_code); "
                                        "absent or empty = none");
    v.field("tests_in_prompt", tests_in_prompt,
            "code: append \"Your code should pass these tests:\" and the asserts to the prompt (MBPP style)");
    v.field("limit", limit, "Read at most this many prompts from the file (0 = all)").min(0);
    v.field("weight", weight,
            "Training sources: sampling weight. With weights, each epoch (as many prompts as the sources "
            "hold together) takes the sources' prompts in proportion to them, a source's prompts repeated "
            "or partly left out in a seeded order that continues over epochs (OpenRLHF "
            "prompt_data_probs); 0 on every source = pooled as is, each prompt once an epoch. Every "
            "training source has a weight or none has; eval sources none")
        .min(0);
  }
};

// Whether `c` may appear in a source name (metric keys carry it).
inline bool prompt_source_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.';
}

// The name of `source` in metrics: its `name`, or else the file name of its path without
// the extension (".jsonl", ".json"), other characters than prompt_source_name_char's
// replaced by '_'. Inline (config validation uses it).
inline std::string prompt_source_name(const PromptSourceConfig& source) {
  if (!source.name.empty()) return source.name;
  const size_t slash = source.path.find_last_of('/');
  std::string base = slash == std::string::npos ? source.path : source.path.substr(slash + 1);
  for (const std::string ext : {".jsonl", ".json"})
    if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0) {
      base.resize(base.size() - ext.size());
      break;
    }
  for (char& c : base)
    if (!prompt_source_name_char(c)) c = '_';
  return base.empty() ? "source" : base;
}

// Checks the names of one list of sources (`key`: "prompts.sources"): an explicit name
// uses prompt_source_name_char only, and no two sources share a name. ConfigError naming
// the key.
inline void check_prompt_source_names(const std::vector<PromptSourceConfig>& sources, const std::string& key) {
  for (size_t i = 0; i < sources.size(); ++i) {
    const std::string at = key + "[" + std::to_string(i) + "].name";
    for (char c : sources[i].name)
      if (!prompt_source_name_char(c))
        throw ConfigError("key '" + at + "': expected letters, digits, '_', '-' and '.' only, found '" +
                          sources[i].name + "'");
    for (size_t j = 0; j < i; ++j)
      if (prompt_source_name(sources[j]) == prompt_source_name(sources[i]))
        throw ConfigError("key '" + at + "': expected a name no other source has, found '" +
                          prompt_source_name(sources[i]) + "', the name of " + key + "[" + std::to_string(j) +
                          "] too (give one of them a `name:`)");
  }
}

// `prompts:` the RL prompt datasets of `zeroth train` (the `data:` section is the
// corpus of pretrain/sft). The eval set is eval_sources, or else eval_count /
// eval_fraction prompts held out of the pooled sources with split_seed.
struct PromptDataConfig {
  std::vector<PromptSourceConfig> sources;
  std::vector<PromptSourceConfig> eval_sources;
  int64_t eval_count = 0;
  double eval_fraction = 0.0;
  uint64_t split_seed = 1234;
  int64_t eval_limit = 0;
  int64_t max_prompt_tokens = 0;
  bool shuffle = true;

  template <class V>
  void visit(V& v) {
    v.field("sources", sources, "Training prompt files, pooled in order; required by train");
    v.field("eval_sources", eval_sources,
            "Held-out prompt files (when given, eval_count and eval_fraction must be 0); training "
            "prompts with the same text as an eval prompt are dropped");
    v.field("eval_count", eval_count, "Hold out this many pooled prompts as the eval set").min(0);
    v.field("eval_fraction", eval_fraction, "Hold out this fraction of the pooled prompts (rounded down)")
        .min(0)
        .max(0.5);
    v.field("split_seed", split_seed,
            "Seed of the held-out split (independent of run.seed, so runs with different seeds "
            "evaluate on the same prompts)");
    v.field("eval_limit", eval_limit, "Keep at most this many eval prompts (0 = all)").min(0);
    v.field("max_prompt_tokens", max_prompt_tokens,
            "Drop prompts whose rendered template takes more tokens (0 = keep all)")
        .min(0);
    v.field("shuffle", shuffle, "A new seeded prompt order every epoch (stream 'prompts' of run.seed); false = file order");
  }
  // At most one of eval_sources, eval_count, eval_fraction. ConfigError naming the key.
  // Inline: the config module parses this section without linking zeroth_train.
  void validate() const {
    check_prompt_source_names(sources, "prompts.sources");
    check_prompt_source_names(eval_sources, "prompts.eval_sources");
    for (size_t i = 0; i < sources.size(); ++i)
      if ((sources[i].weight > 0) != (sources[0].weight > 0))
        throw ConfigError("key 'prompts.sources[" + std::to_string(sources[0].weight > 0 ? i : 0) +
                          "].weight': expected a weight > 0 on every source or on none, found " +
                          "weights on some sources only");
    for (size_t i = 0; i < eval_sources.size(); ++i)
      if (eval_sources[i].weight != 0)
        throw ConfigError("key 'prompts.eval_sources[" + std::to_string(i) +
                          "].weight': expected 0 (every eval prompt is evaluated; weights mix training "
                          "sources), found " + std::to_string(eval_sources[i].weight));
    std::vector<std::string> given;
    if (!eval_sources.empty()) given.push_back("eval_sources");
    if (eval_count > 0) given.push_back("eval_count");
    if (eval_fraction > 0) given.push_back("eval_fraction");
    if (given.size() > 1)
      throw ConfigError("key 'prompts." + given[1] + "': expected at most one of eval_sources, eval_count and "
                        "eval_fraction, found " + given[0] + " and " + given[1]);
  }
};

// One prompt: what the template is rendered from and what its completions are scored
// against (RewardSample's kind/gold/problem).
struct PromptRecord {
  std::string where;  // "file:line"
  int32_t source = 0;  // index into its dataset's source_names
  RewardKind kind = RewardKind::Math;
  std::string prompt;   // the problem text (code: with the tests when tests_in_prompt)
  std::string gold;     // math: the extracted gold answer (non-empty)
  CodeProblem problem;  // code: the tests
  // The record's string and number fields (numbers as JSON text), with "prompt" set to
  // `prompt`: what PromptTemplate::render sees.
  std::map<std::string, std::string> fields;
  // The record as read (compact JSON text): a python reward function's extra_info.
  std::string record_json;
};

// Counts of what loading kept and dropped, per dataset.
struct PromptDataStats {
  int64_t read = 0;             // records read from the files (after each source's limit)
  int64_t no_answer = 0;        // math: dropped, the extractor found no (or an empty) answer
  int64_t too_long = 0;         // dropped by max_prompt_tokens
  int64_t overlap_dropped = 0;  // train: dropped, same prompt text as an eval prompt
  int64_t max_prompt_tokens_seen = 0;  // longest rendered prompt kept (0 unless counted)
};

struct PromptDataset {
  std::vector<PromptRecord> records;
  // The names of the sources the records come from (PromptRecord::source indexes it): the
  // configured sources' prompt_source_name, in order (an eval set held out of the training
  // sources has theirs). Not part of the fingerprint.
  std::vector<std::string> source_names;
  // Training set: the sources' sampling weights (prompts.sources[].weight, source_names
  // order); empty or all 0 = pooled as is. Part of the fingerprint when set.
  std::vector<double> source_weights;
  bool weighted() const;
  PromptDataStats stats;
  // FNV-1a of every record's kind, prompt, gold and tests, in order: a checkpoint can
  // refuse to resume on different data.
  uint64_t fingerprint() const;
  int64_t size() const { return int64_t(records.size()); }
};

struct PromptData {
  PromptDataset train, eval;  // eval empty when no eval set is configured
};

// The number of prompts of each source (source_names order) among the first n records of
// `ds` (n < 0: all); empty when `ds` names no sources.
std::vector<int64_t> prompts_per_source(const PromptDataset& ds, int64_t n);

// Logs a warning when keeping only the first n prompts of eval set `ds` (by the config key
// `key`, e.g. "eval.max_prompts") leaves out every prompt of a source, naming the sources
// and the remedy (a per-source `limit`). Returns whether it warned.
bool warn_unevaluated_sources(const PromptDataset& ds, int64_t n, const char* key);

// The gold answer extracted from `text` by `extractor` ("none": trimmed text; "gsm8k":
// text after the last "#### " to the end of its line, trimmed, commas removed;
// "boxed": content of the last \boxed{} / \fbox{} (math_verify.h)). Empty when there is
// none. An unknown extractor is a ZT_ASSERT (config validation rejects it).
std::string extract_gold_answer(const std::string& text, const std::string& extractor);

// Reads one source. Throws DataError naming file:line and the field for an unreadable
// file, invalid JSON, a missing or mistyped field, malformed tests; math records whose
// answer extracts to nothing are dropped and counted. `source_key` names the source in
// messages (e.g. "prompts.sources[0]").
PromptDataset load_prompt_source(const PromptSourceConfig& source, const std::string& source_key);

// Loads the train and eval sets of `config`: sources pooled, eval split or eval files,
// overlap removal, max_prompt_tokens filter (needs `tokenizer` and `tmpl`: the prompt is
// counted as encode_prompt(render(fields)), with `add_special_tokens`), eval_limit.
// Throws DataError when the train set ends up empty, ConfigError when sources is empty.
// max_len > 0 (the rollout's rollout.max_len): a kept prompt (train or eval) that leaves
// no room for a new token (max_len - 1 tokens at most) or renders to no token at all is a
// DataError naming its file:line, here rather than at the step that samples it.
PromptData load_prompt_data(const PromptDataConfig& config, const Tokenizer* tokenizer = nullptr,
                            const PromptTemplate* tmpl = nullptr, bool add_special_tokens = true,
                            int64_t max_len = 0);

// The key of RNG stream `name` under `seed` (SplitMix64 of the seed xor FNV-1a of the
// name, as params_init keys tensors): independent streams from one run.seed.
uint64_t rng_stream_key(uint64_t seed, const std::string& name);

// How many of an epoch's n prompts each weighted source gets: n * w_i / sum(w), rounded
// by largest remainder (ties to the earlier source), so the quotas sum to n.
std::vector<int64_t> mix_quotas(const std::vector<double>& weights, int64_t n);

// Prompts in a per-epoch seeded order (BatchSampler keyed by rng_stream_key(seed,
// "prompts")), served as global batches. Made with a saved cursor it continues exactly
// where the saved one stopped. The dataset must outlive the sampler.
//
// A weighted dataset (source_weights): an epoch is still size() prompts, mix_quotas of
// them from each source. Source i's j-th draw overall (epochs counted on) is element
// j mod S_i of its (j / S_i)-th seeded permutation (stream "prompts/mix/NAME"), so a
// source that is cut back comes round to every prompt over the epochs, and one that is
// repeated sees each prompt once per pass; the epoch's draws are then shuffled as an
// unweighted epoch is. Epoch e's prompts depend on (seed, e) only: the cursor is still all
// a checkpoint needs.
class PromptSampler {
 public:
  PromptSampler(const PromptDataset& data, uint64_t run_seed, bool shuffle, DataCursor cursor = {});
  // Indices of the next global batch of n prompts (crosses epochs, reshuffling).
  std::vector<int64_t> next_indices(int64_t n);
  // The next global batch of n prompts.
  std::vector<const PromptRecord*> next_batch(int64_t n);
  DataCursor cursor() const { return sampler_.cursor(); }
  // The record indices of epoch `epoch`, in the order served; weighted datasets only.
  std::vector<int64_t> mixed_epoch(int64_t epoch) const;

  // Skipped records (rl.skip_solved): never served, their places in the order passed over
  // (the cursor still counts them, so a sampler given the same cursor and skip set serves
  // the same prompts). When every record is skipped, the next draw clears the set and
  // logs a warning.
  void skip(int64_t record);
  void set_skipped(const std::vector<int64_t>& records);  // replaces the set
  std::vector<int64_t> skipped() const;                   // ascending
  int64_t skipped_count() const { return skipped_count_; }

 private:
  const PromptDataset* data_;
  BatchSampler sampler_;
  uint64_t run_seed_ = 0;
  bool shuffle_ = true;
  // Weighted: each source's record indices and quota; the draws of epoch draws_epoch_
  // (record indices, source by source), which the sampler's order serves.
  std::vector<std::vector<int64_t>> by_source_;
  std::vector<int64_t> quotas_;
  int64_t draws_epoch_ = -1;
  std::vector<int64_t> draws_;
  std::vector<int64_t> epoch_draws(int64_t epoch) const;
  std::vector<uint8_t> skipped_;  // per record (empty until the first skip)
  int64_t skipped_count_ = 0;
  int64_t next_index();  // the next record served, skipped ones passed over
};

// The part of a global batch of `global` prompts that rank `rank` of `world` owns:
// contiguous [begin, begin + count), sizes differing by at most one (the first
// global % world ranks take one more). Whole prompts: a prompt's group of G
// completions lives on one rank.
struct PromptShard {
  int64_t begin = 0;
  int64_t count = 0;
};
PromptShard prompt_shard(int64_t global, int rank, int world);

template <class T>
std::vector<T> take_shard(const std::vector<T>& global_batch, int rank, int world) {
  const PromptShard s = prompt_shard(int64_t(global_batch.size()), rank, world);
  return std::vector<T>(global_batch.begin() + s.begin, global_batch.begin() + s.begin + s.count);
}

// ---- the CPU demo's data (docs/data.md, "demo task") ----

struct DemoDataOptions {
  uint64_t seed = 1;
  int64_t train_prompts = 10000;
  int64_t eval_prompts = 300;
  int64_t corpus_bytes = 3000000;  // pretrain.txt stops at the first document past this
  // A corpus with more signal for in-context copying (docs/demo.md, "What is missing"):
  // "repeat" documents (made-up word lists said again) and made-up tag names and words in
  // 70% of the instruction documents, which nothing but copying predicts.
  bool copy_forcing = false;
};

// One generated word problem: the question, its gold answer, the worked steps, and the
// key that identifies the problem regardless of names and objects ("add:17:25").
struct DemoProblem {
  std::string key;
  std::string question;
  std::string steps;  // e.g. "17 + 25 = 42."
  int64_t answer = 0;
};

struct DemoData {
  std::string corpus;               // pretrain.txt: one document per line
  std::vector<DemoProblem> train;   // train.jsonl
  std::vector<DemoProblem> eval;    // eval.jsonl (keys disjoint from train and corpus)
  std::vector<std::string> corpus_keys;  // keys of the word problems in the corpus
  int64_t corpus_documents = 0;
  std::map<std::string, int64_t> corpus_doc_kinds;  // documents per kind
};

// Deterministic in options (same options, same bytes on every platform).
DemoData generate_demo_data(const DemoDataOptions& options);

// Writes DIR/pretrain.txt, DIR/train.jsonl, DIR/eval.jsonl ({"prompt", "answer",
// "steps", "key"} per line), creating DIR. RuntimeError on I/O failure.
void write_demo_data(const DemoData& data, const std::string& dir);

// What the demo corpus must never contain: the tags of the R1-Zero format and any
// `window`-byte piece of a template's literal text. Returns one line per violation
// found ("tag '<think>' at byte 123", "template text '...' at byte 456"); empty = clean.
std::vector<std::string> find_forbidden_text(const std::string& corpus,
                                             const std::vector<std::string>& templates,
                                             size_t window = 24);

}  // namespace zeroth
