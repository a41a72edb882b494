// Rollout: generating G completions per prompt with the KV-cached model, the sampler
// and stop rules, each token recorded with its log-probability under the policy.
//
// Owns: the generation loop (one prefill per prompt shared by its G samples through
// MlaKvCache::copy_slot, then batched decode steps over the unfinished sequences), stop
// rules (stop token ids incl. EOS, stop strings on the decoded text, max_new_tokens),
// finish reasons and the reported log-probabilities (the config: rollout_config.h).
// Must not: compute rewards or advantages, tokenize datasets (prompt.h renders and
// encodes), or communicate.
//
// Log-probability convention (what the GRPO trainer recomputes with
// Model::token_logprobs): logprob = log_softmax(logits / T)[token] in fp32 over the FULL
// vocabulary, at the sampling temperature T, regardless of top-k / top-p / min-p
// (those only restrict which token is drawn). Greedy decoding (T = 0) reports T = 1.
//
// Determinism: sequence j of prompt p has id first_sequence_id + p * G + j; its draws
// depend only on (seed, id, step), so they do not depend on batch composition.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "zeroth/model_infer.h"
#include "zeroth/prompt.h"
#include "zeroth/rollout_config.h"
#include "zeroth/sampler.h"
#include "zeroth/tokenizer.h"

namespace zeroth {

enum class FinishReason { kStop, kLength };
const char* finish_reason_name(FinishReason r);  // "stop" / "length"


// The stop rules of one sequence, fed one generated token at a time.
//  * a stop token id: finished (reason stop); the token stays in the ids, not in the
//    text when it is special and skip_special_tokens.
//  * a stop string appearing in the decoded text (the earliest match; on a tie the
//    longest string): finished (reason stop); the text is cut after the match
//    (keep_stop_string) or before it; the ids keep every token up to the one that
//    completed the match.
//  * max_new_tokens tokens: finished (reason length).
class StopChecker {
 public:
  // tokenizer may be nullptr only when there are no stop strings (text stays empty).
  StopChecker(const StopParams& params, const Tokenizer* tokenizer);
  // Adds a generated token; returns finished().
  bool push(int32_t id);
  // The caller cannot extend the sequence (cache full): finished with reason length.
  void finish_length();
  bool finished() const { return finished_; }
  FinishReason reason() const { return reason_; }
  const std::string& text() const { return text_; }
  const std::string& matched_stop() const { return matched_; }  // "" unless a stop string
  int64_t num_tokens() const { return n_; }

 private:
  void finish(FinishReason r);
  StopParams params_;
  std::unique_ptr<TokenStreamDecoder> decoder_;  // null without a tokenizer
  std::string text_, matched_;
  size_t max_stop_len_ = 0;
  int64_t n_ = 0;
  bool finished_ = false;
  FinishReason reason_ = FinishReason::kLength;
};

struct Completion {
  int64_t prompt_index = 0;    // index into the prompts
  int64_t sample_index = 0;    // 0..G-1
  uint64_t sequence_id = 0;    // seeds its draws
  std::vector<int32_t> ids;    // generated tokens (a stop token included)
  std::vector<float> logprobs; // (ids.size()): see the convention above
  std::string text;            // decoded (cut at a stop string per keep_stop_string)
  FinishReason finish = FinishReason::kLength;
  std::string stop;            // the stop string matched, or ""
};

// log_softmax(logits / T)[token] in fp32, computed as Backend::logprob_forward does;
// T = 0 (greedy) reports T = 1. logits: F32 (V), host.
float token_logprob(const float* logits, int64_t vocab, float temperature, int32_t token);

// G = group_size completions for every prompt, ordered by (prompt, sample). Prompts are
// processed in waves of num_slots / G prompts (each wave: one batched prefill, G-way
// slot copies, decode steps until every sequence of the wave finishes). tokenizer may be
// nullptr when stop.stop_strings is empty (texts are then empty). A prompt longer than
// the cache is a DataError; G > num_slots a ConfigError.
std::vector<Completion> generate(ModelInference& engine, const Tokenizer* tokenizer,
                                 const std::vector<std::vector<int32_t>>& prompts,
                                 int64_t group_size, const SamplingParams& sampling,
                                 const StopParams& stop, uint64_t first_sequence_id = 0);


}  // namespace zeroth
