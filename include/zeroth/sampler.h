// Sampler: picks the next token of one sequence from its logits (host memory), with
// temperature, top-k, top-p, min-p or greedy, from a counter-based random stream.
//
// Owns: the filtering rules, their order, and the random numbers. Must not: touch the
// device, compute the reported log-probability (rollout uses the trainer's op,
// Backend::logprob_forward, for that), or keep state between calls.
//
// Determinism: the uniform number of a draw is a pure function of (seed, sequence id,
// step) (SplitMix64 finaliser chain), so a sequence's tokens do not depend on which
// other sequences share its batch, on their order, or on the thread count.
//
// Rules, in order, on z = logits / temperature and p = softmax(z):
//   temperature == 0: greedy (argmax of the logits; ties -> lowest id); the other
//     settings are ignored.
//   top_k > 0: keep the k most probable tokens (ties -> lowest id first).
//   top_p < 1: of those, keep the smallest most-probable prefix whose mass is >= top_p
//     times the kept mass (always at least one token).
//   min_p > 0: of those, keep tokens with p >= min_p * max(p).
//   then draw from the kept tokens in proportion to p: the first token, most probable
//   first, whose cumulative probability exceeds u. Without any filter (top_k 0, top_p 1,
//   min_p 0) the walk is over all tokens in id order instead (no sort of V logits), with
//   the unnormalised p = exp(z - max z) in fp64 and the cumulative sums taken by blocks
//   of 64 ids (each block's mass one vectorised sum, then the block that passes walked id
//   by id): the same token as a plain id-order walk except within rounding (~1e-15
//   relative) of a boundary, as the CUDA sampler's chunked sums.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "zeroth/error.h"

namespace zeroth {

// The lowest sampling temperature above 0 (as vLLM's floor): below it logit / T leaves
// too little precision for the probabilities and the trainer's log-probs at T.
constexpr double kMinSamplingTemperature = 0.01;

// ConfigError "<key>: expected 0 (greedy) or a number >= 0.01, found T" unless the
// temperature is 0 or at least kMinSamplingTemperature (`key` as in "key 'rollout.temperature'").
inline void check_sampling_temperature(double temperature, const std::string& key) {
  // (compared as the float the sampler uses, so a config's 0.01 passes as SamplingParams' 0.01f)
  ZT_THROW_IF_NOT(std::isfinite(temperature) &&
                      (temperature == 0.0 || float(temperature) >= float(kMinSamplingTemperature)),
                  ConfigError, "%s: expected 0 (greedy) or a number >= %g, found %g", key.c_str(),
                  kMinSamplingTemperature, temperature);
}

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy, else >= kMinSamplingTemperature
  int64_t top_k = 0;         // 0 = off
  float top_p = 1.0f;        // 1 = off; in (0, 1]
  float min_p = 0.0f;        // 0 = off; in [0, 1]
  uint64_t seed = 0;
  // Throws ConfigError naming `where` and the key for an out-of-range value.
  void validate(const char* where) const;
};

// A token kept by the filters and its probability renormalised over the kept set.
struct Candidate {
  int32_t id;
  double prob;
};

// The kept tokens, most probable first (ties: lowest id first), with renormalised
// probabilities. logits: F32 (V), host; at least one finite value.
std::vector<Candidate> sampling_candidates(const float* logits, int64_t vocab,
                                           const SamplingParams& params);

// Uniform double in [0, 1) for draw `step` of sequence `sequence_id` under `seed`.
double sampling_uniform(uint64_t seed, uint64_t sequence_id, uint64_t step);

// The token drawn for (sequence_id, step) with u = sampling_uniform(seed, sequence_id,
// step), by the rules above.
int32_t sample_token(const float* logits, int64_t vocab, const SamplingParams& params,
                     uint64_t sequence_id, uint64_t step);

}  // namespace zeroth
