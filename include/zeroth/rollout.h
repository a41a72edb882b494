// Rollout: generating G completions per prompt with the KV-cached model, the sampler
// and stop rules, each token recorded with its log-probability under the policy.
//
// Owns: the generation loop (continuous batching: one prefill per prompt shared by its G
// samples through MlaKvCache::copy_slot, batched decode steps over the running sequences,
// a finished sequence's slot refilled from the queue), sizing the cache under the
// rollout.kv_cache_mb cap, stop
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
#include <functional>
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

// Counters of one generate() call (what the tests and `zeroth bench rollout` read).
struct GenerateStats {
  int64_t prompts = 0;           // prompts generated for
  int64_t prefill_calls = 0;     // ModelInference::prefill calls
  int64_t prefill_tokens = 0;    // prompt tokens prefilled (once per prompt, not per sample)
  int64_t decode_steps = 0;      // ModelInference::decode_step calls
  int64_t decode_tokens = 0;     // sum of the decode batch sizes
  int64_t max_batch = 0;         // largest decode batch
  int64_t generated_tokens = 0;  // tokens sampled over all completions
  int64_t length_by_cache = 0;   // completions finished because their slot was full
  int64_t slot_reuses = 0;       // prefills into a slot that an earlier sequence of the
                                 // same call had used (continuous batching at work)
  int64_t idle_steps = 0;        // expert parallelism: steps taken only for other ranks
};

// Progress of a generate() call, reported after every prefill and decode step.
struct GenerateProgress {
  int64_t prompts_started = 0, prompts_total = 0;
  int64_t completions_done = 0, completions_total = 0;
  int64_t generated_tokens = 0;
  int64_t running = 0;  // sequences in the decode batch
};
using GenerateProgressFn = std::function<void(const GenerateProgress&)>;

// G = group_size completions for every prompt, ordered by (prompt, sample), with
// continuous batching over the engine's cache slots:
//  * prompts are admitted in order; a prompt needs G free slots (its samples share one
//    prefill: the prompt is prefilled into the first, MlaKvCache::copy_slot fills the
//    others); every prompt that fits is admitted together in one batched prefill;
//  * the running sequences decode together, one token per step; a finished sequence
//    frees its slot at once, and as soon as G slots are free the next queued prompt is
//    prefilled and its samples join the running batch (a long completion never holds
//    the others);
//  * a sequence whose slot is full (prompt + tokens = max_len) finishes with reason
//    length (the last sampled token is kept; it is not cached).
// Token draws depend only on (seed, sequence id, step), so the ids do not depend on
// num_slots or batch composition; the log-probs do to fp32 rounding (OpenBLAS's
// blocking, hence a row's rounding, depends on the GEMM's row count: 3.8e-6 at most
// between num_slots G, 2G, 5G on the tiny test models; bit-identity would need a
// batch-invariant GEMM in the backend).
// tokenizer may be nullptr when stop.stop_strings is empty (texts are then empty).
// A prompt that is empty or longer than max_len is a DataError (checked before any
// work); G > num_slots a ConfigError. Every slot is empty again on return.
// Expert parallelism (the engine's model has an expert group): collective over the
// group; every rank of it calls generate() with its own prompts (none is allowed) and
// they step together, a rank without work taking part with idle steps.
//
// `abort`, when given, is asked before every prefill / decode step; when it says true (on
// any rank of the expert group) the cache slots are cleared and GenerationAborted is
// thrown: what was generated is dropped (a training run stopping in a rollout).
std::vector<Completion> generate(ModelInference& engine, const Tokenizer* tokenizer,
                                 const std::vector<std::vector<int32_t>>& prompts,
                                 int64_t group_size, const SamplingParams& sampling,
                                 const StopParams& stop, uint64_t first_sequence_id = 0,
                                 GenerateStats* stats = nullptr,
                                 const GenerateProgressFn& progress = nullptr,
                                 const std::function<bool()>& abort = nullptr);

// generate() stopped by its `abort` hook. Not an Error: nothing failed.
struct GenerationAborted {};

// The cache a rollout allocates under rollout.kv_cache_mb: num_slots sequences of
// max_len positions (max_len as configured; num_slots lowered to what the cap holds,
// never below group_size).
struct KvCachePlan {
  int64_t num_slots = 0, max_len = 0;
  int64_t bytes_per_token = 0;  // MlaKvCache::bytes_per_token(model, F32)
  int64_t bytes = 0;            // num_slots * max_len * bytes_per_token
  bool capped = false;          // num_slots was lowered to fit kv_cache_mb
};
// max_len: rollout.max_len, at most the model's max_position_embeddings.
// kv_cache_mb = 0: no cap (rollout.num_slots x max_len). Otherwise the largest
// num_slots <= rollout.num_slots with num_slots * max_len * bytes_per_token <= the cap;
// fewer than group_size slots is a ConfigError naming the keys, the bytes per token and
// the memory G slots would need.
KvCachePlan plan_kv_cache(const ModelConfig& model, const RolloutConfig& rollout);

}  // namespace zeroth
