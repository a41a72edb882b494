// Rollout generation loop (rollout.h): waves of prompts, one shared prefill per prompt,
// batched decode of the unfinished sequences, sampling, stop rules and log-probs; and
// the rollout config section's checks. Must not: compute rewards or communicate.
#include "zeroth/rollout.h"

#include <cmath>

#include "zeroth/error.h"

namespace zeroth {

float token_logprob(const float* logits, int64_t vocab, float temperature, int32_t token) {
  ZT_ASSERT(token >= 0 && token < vocab, "token_logprob: token %d out of [0, %lld)", token,
            (long long)vocab);
  const float t = temperature > 0.0f ? temperature : 1.0f;
  const float inv_t = 1.0f / t;  // as Backend::logprob_forward: z - zmax = (x - xmax) / T
  float xmax = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) xmax = std::max(xmax, logits[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double((logits[i] - xmax) * inv_t));
  return float(double((logits[token] - xmax) * inv_t) - std::log(sum));
}

namespace {

struct Running {
  size_t out;      // index into the completions
  int64_t slot;
  StopChecker stop;
  int32_t last = -1;  // last sampled token, to feed to the next decode step
};

// Samples the next token of r from its logits row, records it; true when finished.
bool sample_into(Completion& c, Running& r, const float* row, int64_t vocab,
                 const SamplingParams& sp) {
  const int32_t tok = sample_token(row, vocab, sp, c.sequence_id, uint64_t(c.ids.size()));
  c.ids.push_back(tok);
  c.logprobs.push_back(token_logprob(row, vocab, sp.temperature, tok));
  r.last = tok;
  return r.stop.push(tok);
}

void finish_into(Completion& c, const StopChecker& s) {
  c.text = s.text();
  c.finish = s.reason();
  c.stop = s.matched_stop();
}

}  // namespace

std::vector<Completion> generate(ModelInference& engine, const Tokenizer* tokenizer,
                                 const std::vector<std::vector<int32_t>>& prompts,
                                 int64_t group_size, const SamplingParams& sampling,
                                 const StopParams& stop, uint64_t first_sequence_id) {
  sampling.validate("rollout");
  MlaKvCache& cache = engine.cache();
  const int64_t G = group_size, S = cache.num_slots(), V = engine.config().vocab_size;
  ZT_THROW_IF_NOT(G >= 1 && G <= S, ConfigError,
                  "rollout: key 'group_size': expected 1 to %lld (the KV cache slots), found %lld",
                  (long long)S, (long long)G);
  ZT_THROW_IF_NOT(stop.max_new_tokens >= 1, ConfigError,
                  "rollout: key 'max_new_tokens': expected >= 1, found %lld",
                  (long long)stop.max_new_tokens);
  const int64_t P = int64_t(prompts.size()), wave = S / G;
  std::vector<Completion> out(size_t(P * G));
  for (int64_t p = 0; p < P; ++p)
    for (int64_t g = 0; g < G; ++g) {
      Completion& c = out[size_t(p * G + g)];
      c.prompt_index = p;
      c.sample_index = g;
      c.sequence_id = first_sequence_id + uint64_t(p * G + g);
    }

  for (int64_t p0 = 0; p0 < P; p0 += wave) {
    const int64_t np = std::min(wave, P - p0);
    for (int64_t s = 0; s < np * G; ++s) cache.clear(s);
    // One prefill per prompt (slot i*G), then G-way sharing of its cache.
    std::vector<int64_t> slots;
    std::vector<std::vector<int32_t>> ids;
    for (int64_t i = 0; i < np; ++i) {
      slots.push_back(i * G);
      ids.push_back(prompts[size_t(p0 + i)]);
    }
    engine.prefill(slots, ids);
    std::vector<float> logits = engine.logits().to_float_vector();  // (np, V)
    std::vector<Running> run;
    run.reserve(size_t(np * G));
    for (int64_t i = 0; i < np; ++i) {
      for (int64_t g = 1; g < G; ++g) cache.copy_slot(i * G, i * G + g);
      for (int64_t g = 0; g < G; ++g) {
        const size_t o = size_t((p0 + i) * G + g);
        run.push_back({o, i * G + g, StopChecker(stop, tokenizer), -1});
        Running& r = run.back();
        if (sample_into(out[o], r, logits.data() + i * V, V, sampling)) {
          finish_into(out[o], r.stop);
          run.pop_back();
        } else if (cache.length(r.slot) >= cache.max_len()) {
          r.stop.finish_length();
          finish_into(out[o], r.stop);
          run.pop_back();
        }
      }
    }
    // Decode the unfinished sequences together until none is left.
    while (!run.empty()) {
      std::vector<int64_t> dslots;
      std::vector<int32_t> next;
      for (const Running& r : run) {
        dslots.push_back(r.slot);
        next.push_back(r.last);
      }
      engine.decode_step(dslots, next);
      logits = engine.logits().to_float_vector();  // (run.size(), V)
      std::vector<Running> still;
      still.reserve(run.size());
      for (size_t b = 0; b < run.size(); ++b) {
        Running& r = run[b];
        Completion& c = out[r.out];
        bool done = sample_into(c, r, logits.data() + int64_t(b) * V, V, sampling);
        if (!done && cache.length(r.slot) >= cache.max_len()) {
          r.stop.finish_length();
          done = true;
        }
        if (done) {
          finish_into(c, r.stop);
          cache.clear(r.slot);
        } else {
          still.push_back(std::move(r));
        }
      }
      run = std::move(still);
    }
    for (int64_t s = 0; s < np * G; ++s) cache.clear(s);
  }
  return out;
}

SamplingParams RolloutConfig::sampling() const {
  SamplingParams p;
  p.temperature = float(temperature);
  p.top_k = top_k;
  p.top_p = float(top_p);
  p.min_p = float(min_p);
  p.seed = seed;
  return p;
}

StopParams RolloutConfig::stop_params(const Tokenizer& tokenizer) const {
  StopParams p;
  p.max_new_tokens = max_new_tokens;
  for (int64_t id : stop_token_ids) {
    ZT_THROW_IF_NOT(id >= 0 && id < tokenizer.vocab_size(), ConfigError,
                    "key 'rollout.stop_token_ids': expected ids in [0, %d), found %lld",
                    tokenizer.vocab_size(), (long long)id);
    p.stop_token_ids.push_back(int32_t(id));
  }
  if (stop_at_eos && tokenizer.special_ids().eos >= 0)
    p.stop_token_ids.push_back(tokenizer.special_ids().eos);
  p.stop_strings = stop;
  p.keep_stop_string = keep_stop_string;
  return p;
}

}  // namespace zeroth
