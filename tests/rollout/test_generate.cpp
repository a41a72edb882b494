// The generation loop (rollout.h: generate) on the tiny golden models: continuous
// batching (outputs independent of num_slots; a long completion does not hold the
// batch: decode steps and slot reuse counted), the KV-cache cap (plan_kv_cache sizing
// and its error; sequences reaching the cache end finish with reason length).
// Must not: assert on time.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "zeroth/backend.h"
#include "zeroth/error.h"
#include "zeroth/model.h"
#include "zeroth/model_infer.h"
#include "zeroth/model_params.h"
#include "zeroth/rollout.h"

using namespace zeroth;

namespace {

struct Tiny {
  std::unique_ptr<Backend> be;
  ModelConfig cfg;
  std::unique_ptr<Model> model;
};

Tiny load_tiny(const std::string& name, int threads = 1) {
  const std::string dir = std::string(ZEROTH_TEST_DATA_DIR) + "/golden/" + name;
  Tiny m;
  m.be = make_cpu_backend(threads);
  m.cfg = read_model_config(dir);
  m.model = std::make_unique<Model>(m.cfg, *m.be);
  load_hf_weights(dir, m.cfg, m.model->params());
  return m;
}

std::vector<int32_t> ids_of(int64_t n, int64_t vocab, uint32_t salt) {
  std::vector<int32_t> v;
  uint32_t x = 88172645u ^ (salt * 2654435761u);
  for (int64_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v.push_back(int32_t(x % uint32_t(vocab)));
  }
  return v;
}

}  // namespace

TEST_CASE("continuous batching: outputs do not depend on num_slots", "[rollout][generate]") {
  for (int threads : {1, 2}) {
    DYNAMIC_SECTION("threads " << threads) {
      Tiny m = load_tiny("tiny_q_lora_untied", threads);
      const int64_t V = m.cfg.vocab_size, G = 3;
      std::vector<std::vector<int32_t>> prompts;
      for (uint32_t p = 0; p < 7; ++p) prompts.push_back(ids_of(1 + (p * 5) % 9, V, p + 1));
      SamplingParams sp;
      sp.temperature = 1.0f;
      sp.top_p = 0.95f;
      sp.seed = 7;
      StopParams stop;
      stop.max_new_tokens = 12;
      stop.stop_token_ids = {3, 17};  // completions end at different steps
      std::vector<std::vector<Completion>> outs;
      std::vector<GenerateStats> stats;
      for (int64_t slots : {G, 2 * G, 5 * G, 2 * G + 1}) {
        ModelInference inf(*m.model, slots, 32);
        GenerateStats st;
        outs.push_back(generate(inf, nullptr, prompts, G, sp, stop, 40, &st));
        stats.push_back(st);
        for (int64_t s = 0; s < slots; ++s) CHECK(inf.cache().length(s) == 0);
      }
      const std::vector<Completion>& a = outs[0];
      REQUIRE(a.size() == prompts.size() * size_t(G));
      // Ordered by (prompt, sample), sequence ids first_sequence_id + p * G + g.
      for (size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].prompt_index == int64_t(i) / G);
        CHECK(a[i].sample_index == int64_t(i) % G);
        CHECK(a[i].sequence_id == 40 + i);
      }
      // Some stop early and some run to max_new_tokens: slots are freed at different times.
      int64_t stopped = 0, full = 0;
      for (const Completion& c : a) {
        stopped += c.finish == FinishReason::kStop;
        full += int64_t(c.ids.size()) == stop.max_new_tokens;
      }
      CHECK(stopped > 0);
      CHECK(full > 0);
      double worst = 0.0;
      for (size_t k = 1; k < outs.size(); ++k) {
        const std::vector<Completion>& b = outs[k];
        REQUIRE(b.size() == a.size());
        for (size_t i = 0; i < a.size(); ++i) {
          CHECK(b[i].sequence_id == a[i].sequence_id);
          REQUIRE(b[i].ids == a[i].ids);
          CHECK(b[i].finish == a[i].finish);
          REQUIRE(b[i].logprobs.size() == a[i].logprobs.size());
          for (size_t t = 0; t < a[i].logprobs.size(); ++t)
            worst = std::max(worst, std::fabs(double(a[i].logprobs[t]) - double(b[i].logprobs[t])));
        }
      }
      std::printf("[generate] threads %d: num_slots G/2G/5G/2G+1: max |logprob diff| = %.3g; "
                  "decode steps %lld/%lld/%lld/%lld, max batch %lld/%lld/%lld/%lld\n",
                  threads, worst, (long long)stats[0].decode_steps, (long long)stats[1].decode_steps,
                  (long long)stats[2].decode_steps, (long long)stats[3].decode_steps,
                  (long long)stats[0].max_batch, (long long)stats[1].max_batch,
                  (long long)stats[2].max_batch, (long long)stats[3].max_batch);
      // Same tokens exactly; log-probs to fp32 rounding of batch-size-dependent GEMM blocking.
      CHECK(worst <= 1e-5);
      // More slots, more sequences per step, fewer steps.
      CHECK(stats[0].max_batch <= G);
      CHECK(stats[2].max_batch > 2 * G);
      CHECK(stats[2].decode_steps < stats[0].decode_steps);
      for (const GenerateStats& st : stats) {
        CHECK(st.generated_tokens == [&] {
          int64_t n = 0;
          for (const Completion& c : a) n += int64_t(c.ids.size());
          return n;
        }());
        CHECK(st.prefill_tokens == [&] {
          int64_t n = 0;
          for (const auto& p : prompts) n += int64_t(p.size());
          return n;
        }());
      }
    }
  }
}

TEST_CASE("continuous batching: a long completion does not hold the batch", "[rollout][generate]") {
  Tiny m = load_tiny("tiny_yarn_aux");
  const int64_t V = m.cfg.vocab_size;
  // Cache of 2 slots x 24 positions, G = 1. Prompt 0 (2 tokens) runs to max_new_tokens
  // (16 tokens: 15 decode steps); prompts 1..6 (22 tokens) fill their slot after 3
  // tokens (2 decode steps each) and finish with reason length. Continuous batching
  // runs them one after the other in the second slot while prompt 0 decodes: 15 steps
  // in all. (Waves of 2 prompts would take 15 + 3 * 2 = 21.)
  std::vector<std::vector<int32_t>> prompts = {ids_of(2, V, 100)};
  for (uint32_t p = 1; p <= 6; ++p) prompts.push_back(ids_of(22, V, 100 + p));
  SamplingParams sp;
  sp.seed = 3;
  StopParams stop;
  stop.max_new_tokens = 16;
  ModelInference inf(*m.model, 2, 24);
  GenerateStats st;
  std::vector<GenerateProgress> seen;
  const std::vector<Completion> out = generate(inf, nullptr, prompts, 1, sp, stop, 0, &st,
                                               [&](const GenerateProgress& p) { seen.push_back(p); });
  REQUIRE(out.size() == 7);
  CHECK(out[0].ids.size() == 16);
  CHECK(out[0].finish == FinishReason::kLength);
  for (size_t i = 1; i < out.size(); ++i) {
    CHECK(out[i].ids.size() == 3);
    CHECK(out[i].finish == FinishReason::kLength);
  }
  CHECK(st.decode_steps == 15);
  CHECK(st.max_batch == 2);
  CHECK(st.decode_tokens == 15 + 6 * 2);
  CHECK(st.prefill_calls == 6);      // prompts 0 and 1 together, then one per freed slot
  CHECK(st.slot_reuses == 5);        // prompts 2..6 reuse slot 1
  CHECK(st.length_by_cache == 6);    // prompts 1..6 hit the cache end
  CHECK(st.generated_tokens == 16 + 6 * 3);
  // Progress: after every prefill and decode step, monotone, ending with everything done.
  REQUIRE(seen.size() == size_t(st.prefill_calls + st.decode_steps));
  for (size_t i = 1; i < seen.size(); ++i) {
    CHECK(seen[i].completions_done >= seen[i - 1].completions_done);
    CHECK(seen[i].generated_tokens > seen[i - 1].generated_tokens);
  }
  CHECK(seen.back().completions_done == 7);
  CHECK(seen.back().prompts_started == 7);
  CHECK(seen.back().running == 0);
}

TEST_CASE("KV cache cap: slots sized to rollout.kv_cache_mb, length at the cache end",
          "[rollout][generate]") {
  Tiny m = load_tiny("tiny_q_full_tied");
  const int64_t bpt = MlaKvCache::bytes_per_token(m.cfg, DType::F32);
  REQUIRE(bpt == 3 * (16 + 4) * 4);  // 240 bytes per cached token
  RolloutConfig rc;
  rc.group_size = 4;
  rc.num_slots = 64;
  rc.max_len = 128;  // 30,720 bytes per slot
  KvCachePlan plan = plan_kv_cache(m.cfg, rc);
  CHECK(plan.num_slots == 64);
  CHECK(!plan.capped);
  CHECK(plan.bytes == 64 * 128 * bpt);
  rc.kv_cache_mb = 0.5;  // 524,288 bytes: 17 slots
  plan = plan_kv_cache(m.cfg, rc);
  CHECK(plan.num_slots == 17);
  CHECK(plan.capped);
  CHECK(plan.max_len == 128);
  CHECK(plan.bytes <= 524288);
  rc.kv_cache_mb = 100.0;  // more than needed: the configured slots
  CHECK(plan_kv_cache(m.cfg, rc).num_slots == 64);
  rc.max_len = 4096;  // beyond the model's 128 positions: the cache stops there
  CHECK(plan_kv_cache(m.cfg, rc).max_len == m.cfg.max_position_embeddings);
  rc.max_len = 128;
  rc.kv_cache_mb = 0.1;  // 3 slots < group_size 4
  try {
    plan_kv_cache(m.cfg, rc);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("rollout.kv_cache_mb") != std::string::npos);
    CHECK(msg.find("240 bytes per token") != std::string::npos);
    CHECK(msg.find("group_size 4") != std::string::npos);
  }

  // A cache of 12 positions: prompts of 8 tokens get 5 tokens each (positions 8..11
  // cached, the 5th sampled after the last) and finish with reason length, never a crash.
  rc = RolloutConfig{};
  rc.group_size = 2;
  rc.num_slots = 8;
  rc.max_len = 12;
  rc.kv_cache_mb = double(5 * 12 * bpt) / 1048576.0;  // exactly 5 slots
  plan = plan_kv_cache(m.cfg, rc);
  REQUIRE(plan.num_slots == 5);
  ModelInference inf(*m.model, plan.num_slots, plan.max_len);
  const int64_t V = m.cfg.vocab_size;
  std::vector<std::vector<int32_t>> prompts;
  for (uint32_t p = 0; p < 5; ++p) prompts.push_back(ids_of(8, V, 200 + p));
  prompts.push_back(ids_of(12, V, 300));  // fills the cache: one token
  StopParams stop;
  stop.max_new_tokens = 11;
  SamplingParams sp;
  sp.seed = 11;
  GenerateStats st;
  const std::vector<Completion> out = generate(inf, nullptr, prompts, 2, sp, stop, 0, &st);
  REQUIRE(out.size() == 12);
  for (size_t i = 0; i < 10; ++i) {
    CHECK(out[i].ids.size() == 5);
    CHECK(out[i].finish == FinishReason::kLength);
  }
  CHECK(out[10].ids.size() == 1);
  CHECK(out[11].ids.size() == 1);
  CHECK(st.length_by_cache == 12);
  CHECK(st.max_batch == 4);  // 5 slots hold two groups of 2
  // A prompt longer than the cache is a DataError before any work.
  prompts.push_back(ids_of(13, V, 301));
  CHECK_THROWS_AS(generate(inf, nullptr, prompts, 2, sp, stop), DataError);
  for (int64_t s = 0; s < plan.num_slots; ++s) CHECK(inf.cache().length(s) == 0);
}
