// The `rollout:` config section and the stop-rule parameters, as plain data.
//
// Owns: the section's fields, defaults, docs and constraints (one `visit`), and its
// cross-field checks. Must not: need zeroth_rollout at link time for parsing (validate is
// inline; the config module includes this header) or pull in model headers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "zeroth/error.h"
#include "zeroth/prompt.h"
#include "zeroth/sampler.h"

namespace zeroth {

class Tokenizer;

struct StopParams {
  int64_t max_new_tokens = 1024;
  std::vector<int32_t> stop_token_ids;    // EOS included by the caller when wanted
  std::vector<std::string> stop_strings;  // matched on the decoded text (needs a tokenizer)
  bool keep_stop_string = true;           // the text ends after (true) or before the match
  bool skip_special_tokens = true;        // in the decoded text
};

// The `rollout:` config section (the top-level Config adds one line to plug it in).
struct RolloutConfig {
  int64_t group_size = 8;
  int64_t num_slots = 64;       // sequences decoded together (KV cache slots)
  int64_t max_len = 4096;       // cache positions per slot: prompt + completion
  double kv_cache_mb = 0.0;     // cap on the KV cache (MiB); 0 = num_slots x max_len
  int64_t max_new_tokens = 1024;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  double min_p = 0.0;
  uint64_t seed = 0;
  std::vector<std::string> stop = {"</answer>"};
  bool keep_stop_string = true;
  std::vector<int64_t> stop_token_ids;
  bool stop_at_eos = true;
  std::string prompt_template = kR1ZeroTemplate;
  bool add_special_tokens = true;

  template <class V>
  void visit(V& v) {
    v.field("group_size", group_size, "Completions sampled per prompt (G)").min(1);
    v.field("num_slots", num_slots, "Sequences decoded together (KV cache slots); >= group_size").min(1);
    v.field("max_len", max_len, "KV cache positions per sequence (prompt + completion)").min(1);
    v.field("kv_cache_mb", kv_cache_mb,
            "Cap on KV cache memory in MiB (2^20 bytes): num_slots is lowered until num_slots x "
            "max_len tokens fit (at least group_size slots must); 0 = no cap")
        .min(0);
    v.field("max_new_tokens", max_new_tokens, "Most tokens generated per completion").min(1);
    v.field("temperature", temperature, "Sampling temperature; 0 = greedy (log-probs at T = 1), else >= 0.01").min(0);
    v.field("top_k", top_k, "Keep the k most probable tokens; 0 = off").min(0);
    v.field("top_p", top_p, "Nucleus: smallest most-probable set with this mass; 1 = off").gt(0).max(1);
    v.field("min_p", min_p, "Keep tokens with p >= min_p * max p; 0 = off").min(0).max(1);
    v.field("seed", seed, "Sampling seed (draws depend on seed, sequence id and step only)");
    v.field("stop", stop, "Stop strings, matched on the decoded text");
    v.field("keep_stop_string", keep_stop_string, "Keep the matched stop string in the text");
    v.field("stop_token_ids", stop_token_ids, "Token ids that end a completion (besides EOS)").min(0);
    v.field("stop_at_eos", stop_at_eos, "The tokenizer's EOS ends a completion");
    v.field("prompt_template", prompt_template,
            "Prompt text with {field} placeholders from the dataset record ({{ }} = braces); "
            "default: the R1-Zero template (DeepSeek-R1, Table 1)");
    v.field("add_special_tokens", add_special_tokens,
            "Encode prompts with the tokenizer's special tokens (e.g. BOS)");
  }
  // Cross-field checks (inline: the config module calls it without linking zeroth_rollout):
  // ConfigError "key 'rollout.<name>': ...". The template's syntax is checked where the
  // rollout builds its PromptTemplate (with source "key 'rollout.prompt_template'").
  void validate() const {
    ZT_THROW_IF_NOT(num_slots >= group_size, ConfigError,
                    "key 'rollout.num_slots': expected >= group_size (%lld), found %lld",
                    (long long)group_size, (long long)num_slots);
    ZT_THROW_IF_NOT(top_p > 0.0 && top_p <= 1.0, ConfigError,
                    "key 'rollout.top_p': expected a number in (0, 1], found %g", top_p);
    check_sampling_temperature(temperature, "key 'rollout.temperature'");
    ZT_THROW_IF_NOT(max_new_tokens < max_len, ConfigError,
                    "key 'rollout.max_new_tokens': expected < max_len (%lld) to leave room for "
                    "the prompt, found %lld",
                    (long long)max_len, (long long)max_new_tokens);
    for (const std::string& s : stop)
      ZT_THROW_IF_NOT(!s.empty(), ConfigError,
                      "key 'rollout.stop': expected non-empty strings, found \"\"");
  }
  // Defined in src/rollout (zeroth_rollout):
  SamplingParams sampling() const;
  // stop_token_ids plus the tokenizer's EOS when stop_at_eos (and it has one).
  StopParams stop_params(const Tokenizer& tokenizer) const;
};

}  // namespace zeroth
