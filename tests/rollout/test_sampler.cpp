// Sampler: exact top-k / top-p / min-p / temperature / greedy sets on hand-made
// logits, draw frequencies, determinism (a pure function of seed, sequence id and step,
// whatever the batch order), and token_logprob against the backend's logprob op.
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "zeroth/backend.h"
#include "zeroth/config_reflect.h"
#include "zeroth/error.h"
#include "zeroth/rollout.h"
#include "zeroth/sampler.h"

using namespace zeroth;

namespace {

// log of probabilities 0.5, 0.2, 0.15, 0.1, 0.05, shifted by 3 (softmax ignores it).
std::vector<float> hand_logits() {
  std::vector<float> l;
  for (double p : {0.5, 0.2, 0.15, 0.1, 0.05}) l.push_back(float(std::log(p) + 3.0));
  return l;
}

std::vector<int32_t> ids_of(const std::vector<Candidate>& c) {
  std::vector<int32_t> v;
  for (const Candidate& x : c) v.push_back(x.id);
  return v;
}

SamplingParams params(float t, int64_t k, float p, float minp) {
  SamplingParams s;
  s.temperature = t;
  s.top_k = k;
  s.top_p = p;
  s.min_p = minp;
  return s;
}

}  // namespace

TEST_CASE("sampler: filter sets and renormalised probabilities", "[rollout][sampler]") {
  const std::vector<float> l = hand_logits();
  const float* x = l.data();
  auto all = sampling_candidates(x, 5, params(1, 0, 1, 0));
  REQUIRE(ids_of(all) == std::vector<int32_t>{0, 1, 2, 3, 4});
  const double want[] = {0.5, 0.2, 0.15, 0.1, 0.05};
  for (size_t i = 0; i < 5; ++i) CHECK(all[i].prob == Approx(want[i]).epsilon(1e-6));

  auto k2 = sampling_candidates(x, 5, params(1, 2, 1, 0));
  REQUIRE(ids_of(k2) == std::vector<int32_t>{0, 1});
  CHECK(k2[0].prob == Approx(0.5 / 0.7).epsilon(1e-6));
  CHECK(ids_of(sampling_candidates(x, 5, params(1, 0, 0.75f, 0))) == std::vector<int32_t>{0, 1, 2});
  CHECK(ids_of(sampling_candidates(x, 5, params(1, 0, 0.45f, 0))) == std::vector<int32_t>{0});
  CHECK(ids_of(sampling_candidates(x, 5, params(1, 0, 1, 0.25f))) == std::vector<int32_t>{0, 1, 2});
  CHECK(ids_of(sampling_candidates(x, 5, params(1, 0, 1, 0.35f))) == std::vector<int32_t>{0, 1});
  // top-p works on the top-k set's renormalised mass: 0.8 * 0.95 = 0.76 -> three tokens.
  CHECK(ids_of(sampling_candidates(x, 5, params(1, 4, 0.8f, 0))) == std::vector<int32_t>{0, 1, 2});
  // top-k 1 is greedy.
  CHECK(ids_of(sampling_candidates(x, 5, params(1, 1, 1, 0))) == std::vector<int32_t>{0});
  // Temperature 2: p ~ sqrt(p).
  auto t2 = sampling_candidates(x, 5, params(2, 0, 1, 0));
  double z = 0.0;
  for (double p : want) z += std::sqrt(p);
  for (size_t i = 0; i < 5; ++i) CHECK(t2[i].prob == Approx(std::sqrt(want[i]) / z).epsilon(1e-6));
  // Greedy: argmax, lowest id on ties, whatever the seed.
  const std::vector<float> tie = {0.0f, 2.0f, 2.0f, -1.0f};
  for (uint64_t s = 0; s < 10; ++s) CHECK(sample_token(tie.data(), 4, params(0, 0, 1, 0), s, s) == 1);
  // Sorted order: ties by lower id; -inf never kept.
  const std::vector<float> m = {-INFINITY, 1.0f, 1.0f, 0.5f};
  CHECK(ids_of(sampling_candidates(m.data(), 4, params(1, 0, 1, 0))) == std::vector<int32_t>{1, 2, 3});
}

TEST_CASE("sampler: draw frequencies follow the kept distribution", "[rollout][sampler]") {
  const std::vector<float> l = hand_logits();
  const int n = 40000;
  for (const SamplingParams& sp : {params(1, 3, 1, 0), params(1, 0, 1, 0), params(0.5f, 0, 0.9f, 0.1f)}) {
    const std::vector<Candidate> c = sampling_candidates(l.data(), 5, sp);
    std::map<int32_t, int> count;
    for (int i = 0; i < n; ++i) ++count[sample_token(l.data(), 5, sp, uint64_t(i), 3)];
    std::map<int32_t, double> want;
    for (const Candidate& x : c) want[x.id] = x.prob;
    for (const auto& kv : count) {
      INFO("token " << kv.first);
      REQUIRE(want.count(kv.first) == 1);  // never outside the kept set
      CHECK(double(kv.second) / n == Approx(want[kv.first]).margin(0.01));
    }
  }
}

TEST_CASE("sampler: draws depend only on (seed, sequence id, step)", "[rollout][sampler]") {
  // Eight sequences' logits rows, sampled in two different batch orders.
  const int64_t V = 50, B = 8;
  std::vector<float> rows(size_t(B * V));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = float(std::sin(double(i) * 0.37) * 2.0);
  SamplingParams sp = params(0.9f, 20, 0.95f, 0.0f);
  sp.seed = 7;
  std::vector<int32_t> fwd(static_cast<size_t>(B)), rev(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b)
    fwd[size_t(b)] = sample_token(rows.data() + b * V, V, sp, uint64_t(1000 + b), 5);
  for (int64_t b = B - 1; b >= 0; --b)
    rev[size_t(b)] = sample_token(rows.data() + b * V, V, sp, uint64_t(1000 + b), 5);
  CHECK(fwd == rev);
  // Different seeds, sequences and steps give different streams.
  int same_seed = 0, same_seq = 0, same_step = 0;
  double mean = 0.0;
  for (uint64_t i = 0; i < 1000; ++i) {
    const double u = sampling_uniform(7, i, 5);
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    mean += u / 1000.0;
    same_seed += u == sampling_uniform(8, i, 5);
    same_seq += u == sampling_uniform(7, i + 1, 5);
    same_step += u == sampling_uniform(7, i, 6);
  }
  CHECK(mean == Approx(0.5).margin(0.03));
  CHECK(same_seed == 0);
  CHECK(same_seq == 0);
  CHECK(same_step == 0);
}

// The unfiltered draw (blocks of 64 ids, fp64 exp of cpu_math.h) against the plain rule:
// the first token in id order whose cumulative probability (libm exp, one running sum)
// exceeds u. They may differ only within ~1e-15 of a boundary, so on random rows they
// agree; rows with NaN, -inf, a vocabulary that is not a multiple of 64, and very
// negative logits (p below 1e-308 counts as 0) included.
TEST_CASE("sampler: the unfiltered draw is the id-order walk of the distribution",
          "[rollout][sampler]") {
  std::mt19937_64 g(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  int draws = 0;
  for (int64_t v : {1, 5, 64, 65, 1000, 8192}) {
    for (int row = 0; row < 40; ++row) {
      std::vector<float> l(static_cast<size_t>(v));
      for (float& x : l) x = nd(g);
      if (v > 5) {
        l[size_t(g() % uint64_t(v))] = NAN;
        l[size_t(g() % uint64_t(v))] = -INFINITY;
        l[size_t(g() % uint64_t(v))] = -800.0f;  // exp(-800 - max) underflows: never drawn
      }
      const float t = row % 2 ? 1.0f : 0.7f;
      const SamplingParams sp = params(t, 0, 1, 0);
      float mx = -INFINITY;
      for (float x : l)
        if (!std::isnan(x)) mx = std::max(mx, x);
      for (uint64_t step = 0; step < 25; ++step) {
        const double u = sampling_uniform(sp.seed, uint64_t(row), step);
        std::vector<double> p(l.size());
        double total = 0.0;
        for (size_t i = 0; i < l.size(); ++i) {
          const double inv_t = 1.0 / double(t);
          const double z = double(l[i]) * inv_t - double(mx) * inv_t;
          p[i] = std::isnan(z) || z < -708.0 ? 0.0 : std::exp(z);
          total += p[i];
        }
        int32_t want = -1;
        double cum = 0.0;
        for (size_t i = 0; i < l.size(); ++i) {
          if (p[i] <= 0.0) continue;
          cum += p[i];
          want = int32_t(i);
          if (u * total < cum) break;
        }
        const int32_t got = sample_token(l.data(), v, sp, uint64_t(row), step);
        CHECK(got == want);
        CHECK(p[size_t(got)] > 0.0);
        ++draws;
      }
    }
  }
  CHECK(draws == 6 * 40 * 25);
  // Only one token has p > 0: every draw is it.
  const std::vector<float> one{-INFINITY, 0.0f, NAN, -1000.0f};
  for (uint64_t s = 0; s < 20; ++s) CHECK(sample_token(one.data(), 4, params(1, 0, 1, 0), s, s) == 1);
  // Logits so large (a diverging model) that x / T - zmax keeps no precision and every
  // probability rounds to 0: the draw is the most probable token, not an abort.
  std::vector<float> huge(300);
  for (size_t i = 0; i < huge.size(); ++i) huge[i] = 1e30f * float(1 + (i * 37) % 101) / 101.0f;
  huge[123] = 2e30f;
  for (uint64_t s = 0; s < 20; ++s) CHECK(sample_token(huge.data(), 300, params(0.7f, 0, 1, 0), s, s) == 123);
}

TEST_CASE("token_logprob matches the backend's logprob op", "[rollout][sampler]") {
  auto be = make_cpu_backend(1);
  const int64_t N = 4, V = 300;
  std::vector<float> l(size_t(N * V));
  for (size_t i = 0; i < l.size(); ++i) l[i] = float(std::cos(double(i) * 1.7) * 6.0);
  const std::vector<int32_t> tg = {0, 17, 299, 150};
  Tensor logits = Tensor::empty(*be, {N, V}, DType::F32);
  logits.copy_from_host(l.data(), l.size() * sizeof(float));
  Tensor t = Tensor::empty(*be, {N}, DType::I32);
  t.copy_from_host(tg.data(), tg.size() * sizeof(int32_t));
  for (float temp : {1.0f, 0.7f, 1.3f}) {
    Tensor lp = Tensor::empty(*be, {N}, DType::F32), lse = Tensor::empty(*be, {N}, DType::F32);
    Tensor none;
    be->logprob_forward(logits, t, temp, lp, lse, none);
    const std::vector<float> ref = lp.to_float_vector();
    for (int64_t n = 0; n < N; ++n)
      CHECK(std::fabs(token_logprob(l.data() + n * V, V, temp, tg[size_t(n)]) - ref[size_t(n)]) <=
            1e-6);
  }
  // Greedy (T = 0) reports the T = 1 log-probability.
  CHECK(token_logprob(l.data(), V, 0.0f, 5) == token_logprob(l.data(), V, 1.0f, 5));
}

TEST_CASE("sampling and rollout config checks", "[rollout][sampler]") {
  CHECK_THROWS_AS(params(-1, 0, 1, 0).validate("rollout"), ConfigError);
  CHECK_THROWS_AS(params(1, 0, 0, 0).validate("rollout"), ConfigError);
  CHECK_THROWS_AS(params(1, -2, 1, 0).validate("rollout"), ConfigError);
  CHECK_THROWS_AS(params(1, 0, 1, 1.5f).validate("rollout"), ConfigError);
  CHECK_NOTHROW(params(0, 0, 1, 0).validate("rollout"));
  // Between 0 (greedy) and 0.01 the scaled logits lose the precision sampling needs.
  CHECK_THROWS_WITH(params(1e-20f, 0, 1, 0).validate("rollout"),
                    Catch::Contains("key 'temperature': expected 0 (greedy) or a number >= 0.01, found 1e-20"));
  CHECK_NOTHROW(params(0.01f, 0, 1, 0).validate("rollout"));
  RolloutConfig rc;
  CHECK_NOTHROW(rc.validate());
  rc.temperature = 0.005;
  CHECK_THROWS_WITH(rc.validate(), Catch::Contains("key 'rollout.temperature': expected 0 (greedy) or a number >= 0.01"));
  rc.temperature = 1.0;
  rc.num_slots = 4;
  rc.group_size = 8;
  CHECK_THROWS_WITH(rc.validate(), Catch::Contains("rollout.num_slots"));
  rc.num_slots = 8;
  rc.max_new_tokens = rc.max_len;
  CHECK_THROWS_WITH(rc.validate(), Catch::Contains("rollout.max_new_tokens"));
  rc.max_new_tokens = 16;
  rc.stop = {""};
  CHECK_THROWS_WITH(rc.validate(), Catch::Contains("rollout.stop"));
}

// The section through the config reflection, as the top-level Config will read it.
struct RolloutOnly {
  RolloutConfig rollout;
  template <class V>
  void visit(V& v) {
    v.field("rollout", rollout, "rollout");
  }
};

TEST_CASE("rollout config section parses from YAML", "[rollout][config]") {
  RolloutOnly c;
  read_config_tree(parse_config_yaml("rollout:\n  group_size: 4\n  num_slots: 8\n  top_p: 0.9\n"
                                     "  stop: ['</answer>', '<|end|>']\n  prompt_template: 'Q: {question}'\n",
                                     "r.yaml"),
                   c);
  CHECK(c.rollout.group_size == 4);
  CHECK(c.rollout.sampling().top_p == 0.9f);
  CHECK(c.rollout.stop == std::vector<std::string>{"</answer>", "<|end|>"});
  CHECK(c.rollout.prompt_template == "Q: {question}");
  RolloutOnly d;
  CHECK(d.rollout.prompt_template == kR1ZeroTemplate);
  CHECK_THROWS_AS(read_config_tree(parse_config_yaml("rollout:\n  group_size: 9\n  num_slots: 8\n",
                                                     "r.yaml"),
                                   d),
                  ConfigError);
  CHECK_THROWS_AS(read_config_tree(parse_config_yaml("rollout:\n  top_q: 1\n", "r.yaml"), d),
                  ConfigError);
}
