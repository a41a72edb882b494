// Rollout generation loop (rollout.h): continuous batching over the cache slots (one
// shared prefill per prompt, batched decode of the running sequences, a freed slot
// refilled from the queue), sampling, stop rules and log-probs; the KV-cache sizing
// under rollout.kv_cache_mb; the rollout config section's helpers. Must not: compute rewards or communicate.
#include "zeroth/rollout.h"

#include <algorithm>
#include <cmath>

#include "zeroth/backend.h"
#include "zeroth/comm.h"
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

// Draws the next token of rows of `logits` (F32 (n, V) on the engine's backend) with
// Backend::sample_tokens and their log-probabilities with the trainer's op,
// Backend::logprob_forward (the convention in rollout.h); only the n ids and n
// log-probs come back to the host. Row i belongs to completion outs[i].
class DeviceSampler {
 public:
  DeviceSampler(Backend& be, int64_t max_rows, const SamplingParams& sp)
      : be_(be), sp_(sp),
        ids_(Tensor::empty(be, {max_rows}, DType::I32)),
        lp_(Tensor::empty(be, {max_rows}, DType::F32)),
        lse_(Tensor::empty(be, {max_rows}, DType::F32)) {}

  void draw(const Tensor& logits, const std::vector<const Completion*>& outs) {
    const int64_t n = int64_t(outs.size());
    ZT_ASSERT(logits.size(0) == n && n <= ids_.size(0), "DeviceSampler: %lld rows for %lld",
              (long long)logits.size(0), (long long)n);
    seq_.resize(size_t(n));
    step_.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) {
      seq_[size_t(i)] = outs[size_t(i)]->sequence_id;
      step_[size_t(i)] = uint64_t(outs[size_t(i)]->ids.size());
    }
    Tensor ids = ids_.narrow(0, 0, n), lp = lp_.narrow(0, 0, n), lse = lse_.narrow(0, 0, n);
    be_.sample_tokens(logits, sp_, seq_, step_, ids);
    be_.logprob_forward(logits, ids, sp_.temperature > 0.0f ? sp_.temperature : 1.0f, lp, lse,
                        none_);
    host_ids.resize(size_t(n));
    host_lp.resize(size_t(n));
    ids.copy_to_host(host_ids.data(), size_t(n) * sizeof(int32_t));
    lp.copy_to_host(host_lp.data(), size_t(n) * sizeof(float));
    for (int64_t i = 0; i < n; ++i)
      if (host_ids[size_t(i)] < 0)
        throw RuntimeError(strformat(
            "rollout: the logits of sequence %llu at token %llu are not finite (NaN or inf): "
            "the policy has diverged (lower the learning rate, or resume from an earlier "
            "checkpoint)",
            (unsigned long long)seq_[size_t(i)], (unsigned long long)step_[size_t(i)]));
  }
  std::vector<int32_t> host_ids;
  std::vector<float> host_lp;

 private:
  Backend& be_;
  SamplingParams sp_;
  Tensor ids_, lp_, lse_, none_;
  std::vector<uint64_t> seq_, step_;
};

// Records token `tok` (log-prob lp) for r; true when finished (a stop rule,
// max_new_tokens, or its slot is full so it cannot be extended).
bool record(Completion& c, Running& r, int32_t tok, float lp, const MlaKvCache& cache,
            GenerateStats& st) {
  c.ids.push_back(tok);
  c.logprobs.push_back(lp);
  r.last = tok;
  ++st.generated_tokens;
  if (r.stop.push(tok)) return true;
  if (cache.length(r.slot) >= cache.max_len()) {
    r.stop.finish_length();
    ++st.length_by_cache;
    return true;
  }
  return false;
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
                                 const StopParams& stop, uint64_t first_sequence_id,
                                 GenerateStats* stats, const GenerateProgressFn& progress,
                                 const std::function<bool()>& abort) {
  sampling.validate("rollout");
  MlaKvCache& cache = engine.cache();
  const int64_t G = group_size, S = cache.num_slots(), V = engine.config().vocab_size;
  ZT_THROW_IF_NOT(G >= 1 && G <= S, ConfigError,
                  "rollout: key 'group_size': expected 1 to %lld (the KV cache slots), found %lld",
                  (long long)S, (long long)G);
  ZT_THROW_IF_NOT(stop.max_new_tokens >= 1, ConfigError,
                  "rollout: key 'max_new_tokens': expected >= 1, found %lld",
                  (long long)stop.max_new_tokens);
  const int64_t P = int64_t(prompts.size());
  for (int64_t p = 0; p < P; ++p) {
    const size_t n = prompts[size_t(p)].size();
    ZT_THROW_IF_NOT(n >= 1 && int64_t(n) <= cache.max_len(), DataError,
                    "rollout: prompt %lld has %zu tokens, expected 1 to %lld (the cache's max_len)",
                    (long long)p, n, (long long)cache.max_len());
  }
  for (int64_t s = 0; s < S; ++s)
    ZT_ASSERT(cache.length(s) == 0, "generate: slot %lld is in use (%lld tokens)", (long long)s,
              (long long)cache.length(s));

  GenerateStats local;
  GenerateStats& st = stats ? *stats : local;
  st = GenerateStats{};
  st.prompts = P;
  std::vector<Completion> out(size_t(P * G));
  for (int64_t p = 0; p < P; ++p)
    for (int64_t g = 0; g < G; ++g) {
      Completion& c = out[size_t(p * G + g)];
      c.prompt_index = p;
      c.sample_index = g;
      c.sequence_id = first_sequence_id + uint64_t(p * G + g);
    }

  std::vector<char> busy(size_t(S), 0), used(size_t(S), 0);
  int64_t n_free = S, next = 0, done = 0;
  std::vector<Running> run;
  Backend& be = engine.backend();
  DeviceSampler sampler(be, S, sampling);
  Tensor rows_t = Tensor::empty(be, {S}, DType::I32);      // prefill row of each sample
  Tensor expanded;  // F32 (>= n*G, V): the prefill logits row of each sample, grown on demand
  std::vector<const Completion*> outs;
  GenerateProgress prog;
  prog.prompts_total = P;
  prog.completions_total = P * G;
  auto report = [&]() {
    if (!progress) return;
    prog.prompts_started = next;
    prog.completions_done = done;
    prog.generated_tokens = st.generated_tokens;
    prog.running = int64_t(run.size());
    progress(prog);
  };
  auto release = [&](Running& r) {
    finish_into(out[r.out], r.stop);
    cache.clear(r.slot);
    busy[size_t(r.slot)] = 0;
    ++n_free;
    ++done;
  };

  // Expert parallelism: every prefill / decode step is collective over the expert group, so
  // the group's ranks go through the loop together: a rank with nothing to prefill or
  // decode when another has takes part with an idle step, and all leave when none has
  // work left (two host all-reduces of flags per iteration).
  Communicator* const experts = engine.expert_group();
  auto anyone = [&](int64_t* flags, size_t n) {
    if (experts) experts->all_reduce_host(flags, n, ReduceOp::Max);
  };
  for (;;) {
    const bool work = next < P || !run.empty();
    // Admit every queued prompt that has G free slots (lowest first), one prefill for all.
    std::vector<std::vector<int64_t>> groups;
    std::vector<int64_t> pslots;
    std::vector<std::vector<int32_t>> pids;
    while (next < P && n_free >= G) {
      std::vector<int64_t> group;
      for (int64_t s = 0; s < S && int64_t(group.size()) < G; ++s)
        if (!busy[size_t(s)]) group.push_back(s);
      for (int64_t s : group) {
        busy[size_t(s)] = 1;
        if (used[size_t(s)]) ++st.slot_reuses;
        used[size_t(s)] = 1;
      }
      n_free -= G;
      pslots.push_back(group[0]);
      pids.push_back(prompts[size_t(next)]);
      st.prefill_tokens += int64_t(prompts[size_t(next)].size());
      groups.push_back(std::move(group));
      ++next;
    }
    int64_t flags[3] = {work ? 1 : 0, groups.empty() ? 0 : 1, abort && abort() ? 1 : 0};  // work, prefill, abort
    anyone(flags, 3);
    if (flags[2] != 0) {  // (the admitted groups' slots are still empty: nothing was prefilled)
      for (const Running& r : run) cache.clear(r.slot);
      throw GenerationAborted{};
    }
    if (flags[0] == 0) break;
    if (flags[1] != 0 && groups.empty()) {
      engine.expert_idle_step(false);  // another rank of the expert group prefills
      ++st.idle_steps;
    } else if (!groups.empty()) {
      engine.prefill(pslots, pids);
      ++st.prefill_calls;
      // The G samples of prompt i draw from its logits row i: rows expanded to (n*G, V).
      const int64_t p0 = next - int64_t(groups.size()), n = int64_t(groups.size()) * G;
      std::vector<int32_t> rows(static_cast<size_t>(n));
      outs.clear();
      for (int64_t i = 0; i < int64_t(groups.size()); ++i)
        for (int64_t g = 0; g < G; ++g) {
          rows[size_t(i * G + g)] = int32_t(i);
          outs.push_back(&out[size_t((p0 + i) * G + g)]);
        }
      if (!expanded.defined() || expanded.size(0) < n)
        expanded = Tensor::empty(be, {n, V}, DType::F32);
      Tensor rt = rows_t.narrow(0, 0, n), ex = expanded.narrow(0, 0, n);
      rt.copy_from_host(rows.data(), rows.size() * sizeof(int32_t));
      be.embedding_forward(rt, engine.logits(), ex);
      sampler.draw(ex, outs);
      for (size_t i = 0; i < groups.size(); ++i) {
        const std::vector<int64_t>& group = groups[i];
        for (int64_t g = 1; g < G; ++g) cache.copy_slot(group[0], group[size_t(g)]);
        for (int64_t g = 0; g < G; ++g) {
          const size_t o = size_t((p0 + int64_t(i)) * G + g), k = i * size_t(G) + size_t(g);
          run.push_back({o, group[size_t(g)], StopChecker(stop, tokenizer), -1});
          Running& r = run.back();
          if (record(out[o], r, sampler.host_ids[k], sampler.host_lp[k], cache, st)) {
            release(r);
            run.pop_back();
          }
        }
      }
      report();
    }
    int64_t decoding = run.empty() ? 0 : 1;
    anyone(&decoding, 1);
    if (decoding != 0 && run.empty()) {  // another rank of the expert group decodes
      engine.expert_idle_step(true);
      ++st.idle_steps;
    }
    if (run.empty()) continue;  // all admitted finished at once: admit more (or stop)

    // One decode step of every running sequence; finished ones free their slots.
    std::vector<int64_t> dslots;
    std::vector<int32_t> feed;
    dslots.reserve(run.size());
    feed.reserve(run.size());
    for (const Running& r : run) {
      dslots.push_back(r.slot);
      feed.push_back(r.last);
    }
    engine.decode_step(dslots, feed);
    ++st.decode_steps;
    st.decode_tokens += int64_t(run.size());
    st.max_batch = std::max(st.max_batch, int64_t(run.size()));
    outs.clear();
    for (const Running& r : run) outs.push_back(&out[r.out]);
    sampler.draw(engine.logits(), outs);
    size_t kept = 0;
    for (size_t b = 0; b < run.size(); ++b) {
      Running& r = run[b];
      if (record(out[r.out], r, sampler.host_ids[b], sampler.host_lp[b], cache, st))
        release(r);
      else if (kept != b)
        run[kept++] = std::move(r);
      else
        ++kept;
    }
    run.erase(run.begin() + int64_t(kept), run.end());
    report();
  }
  return out;
}

KvCachePlan plan_kv_cache(const ModelConfig& model, const RolloutConfig& rollout) {
  KvCachePlan plan;
  // The cache never holds positions the model was not built for.
  plan.max_len = std::min(rollout.max_len, model.max_position_embeddings);
  plan.num_slots = rollout.num_slots;
  plan.bytes_per_token = MlaKvCache::bytes_per_token(model, DType::F32);
  const int64_t per_slot = plan.max_len * plan.bytes_per_token;
  if (rollout.kv_cache_mb > 0.0) {
    const double cap = rollout.kv_cache_mb * 1048576.0;
    const int64_t fit = int64_t(cap / double(per_slot));
    ZT_THROW_IF_NOT(fit >= rollout.group_size, ConfigError,
                    "key 'rollout.kv_cache_mb': %g MiB holds %lld slot(s) of max_len %lld "
                    "(%lld bytes per token, %.2f MiB per slot); group_size %lld needs at least "
                    "%.2f MiB (raise kv_cache_mb, or lower max_len or group_size)",
                    rollout.kv_cache_mb, (long long)fit, (long long)plan.max_len,
                    (long long)plan.bytes_per_token, double(per_slot) / 1048576.0,
                    (long long)rollout.group_size,
                    double(per_slot) * double(rollout.group_size) / 1048576.0);
    if (fit < plan.num_slots) {
      plan.num_slots = fit;
      plan.capped = true;
    }
  }
  plan.bytes = plan.num_slots * per_slot;
  return plan;
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
