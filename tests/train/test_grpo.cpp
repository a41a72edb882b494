// Tests of grpo.h: the `grpo:` section (defaults, constraints, cross-field and rollout
// checks), the advantage estimators (hand-computed values, all-equal groups, RLOO and
// Dr. GRPO formulas, G = 1 refused), the DAPO overlong rules, the policy loss and its
// gradient against the PyTorch reference (tests/golden/grpo/, written by
// scripts/reference/grpo_ref.py) for every aggregation x clip setting x advantage x KL
// estimator, on the whole batch and split into two micro-batches with global counts (the
// data-parallel contract), and the properties: ratio exactly 1 and no clipping with
// old == current (mu = 1) for every policy_loss (GRPO's token ratio, GSPO's sequence
// ratio, CISPO's weight; the golden files cover all three), KL and its gradient exactly 0
// when policy == reference; the rollout correction (mismatch statistics and hand-computed
// weights of every grpo.rollout_is mode) and its weight in the loss (the policy-gradient
// term only).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "zeroth/config_node.h"
#include "zeroth/error.h"
#include "zeroth/grpo.h"

using namespace zeroth;
using nlohmann::json;

namespace {

struct GrpoOnly {  // a whole config holding only `grpo:`
  GrpoConfig grpo;
  template <class V>
  void visit(V& v) {
    v.field("grpo", grpo, "GRPO");
  }
};

GrpoConfig parse(const std::string& yaml) {
  GrpoOnly out;
  read_config_tree(parse_config_yaml(yaml, "test.yaml"), out);
  return out.grpo;
}

std::string config_error(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

bool close_rel(double got, double want, double rel) {
  return std::fabs(got - want) <= rel * std::fabs(want) + 1e-300;
}

// Host arrays behind a GrpoTokens view.
struct TokenData {
  std::vector<float> logprob, old_logprob, ref_logprob, entropy, mask;
  std::vector<int32_t> seq_index;
  std::vector<double> advantage;
  std::vector<uint64_t> token_key;  // policy_loss clip_cov
  uint64_t cov_seed = 0;

  GrpoTokens view(int64_t begin, int64_t end) const {
    GrpoTokens t;
    t.n_tokens = end - begin;
    t.n_seqs = int64_t(advantage.size());
    t.logprob = logprob.data() + begin;
    t.old_logprob = old_logprob.data() + begin;
    t.ref_logprob = ref_logprob.data() + begin;
    t.entropy = entropy.data() + begin;
    t.mask = mask.data() + begin;
    t.seq_index = seq_index.data() + begin;
    t.advantage = advantage.data();
    if (!token_key.empty()) t.token_key = token_key.data() + begin;
    t.cov_seed = cov_seed;
    return t;
  }
  GrpoTokens view() const { return view(0, int64_t(mask.size())); }
};

std::vector<float> floats(const json& j) {
  std::vector<float> v;
  for (const auto& x : j) v.push_back(float(x.get<double>()));  // exact: written from float32
  return v;
}

json read_golden(const std::string& name) {
  std::string path = std::string(ZEROTH_TEST_DATA_DIR) + "/golden/grpo/" + name + ".json";
  std::ifstream in(path);
  REQUIRE(in.good());
  return json::parse(in);
}

// A small batch: 2 groups of 4 sequences of 3..6 completion tokens after 2 prompt tokens.
TokenData small_batch(uint32_t seed) {
  TokenData d;
  uint32_t x = seed;
  auto next = [&x]() {  // deterministic LCG in [0, 1)
    x = x * 1664525u + 1013904223u;
    return double(x >> 8) / double(1u << 24);
  };
  const std::vector<double> rewards = {1, 0, 0, 1, 0.1, 1.1, 0.1, 0};
  GrpoConfig c;
  d.advantage = compute_advantages(rewards, 4, c).values;
  for (int s = 0; s < 8; ++s) {
    int len = 3 + s % 4;
    for (int t = 0; t < 2 + len; ++t) {
      float lp = float(-0.05 - 3.0 * next());
      d.logprob.push_back(lp);
      d.old_logprob.push_back(float(lp - 0.4 * (next() - 0.5)));
      d.ref_logprob.push_back(float(lp + 0.6 * (next() - 0.5)));
      d.entropy.push_back(float(0.1 + 2 * next()));
      d.mask.push_back(t < 2 ? 0.0f : 1.0f);
      d.seq_index.push_back(s);
    }
  }
  return d;
}

}  // namespace

// ---------------------------------------------------------------- config

TEST_CASE("grpo config: defaults (R1-Zero / GRPO paper) and YAML keys") {
  GrpoConfig c = parse("grpo: {}\n");
  CHECK(c.advantage == "grpo");
  CHECK(c.kl_coef == 0.001);
  CHECK(c.kl_estimator == "k3");
  CHECK(c.loss_agg == "seq_mean_token_mean");
  CHECK(c.clip_low == 0.2);
  CHECK(c.clip_high == 0.2);
  CHECK(c.dual_clip == 0.0);
  CHECK(c.ref_reset_every == 400);
  CHECK(c.ppo_epochs == 1);
  CHECK(c.overlong == "none");

  c = parse(
      "grpo:\n  advantage: rloo\n  clip_high: 0.28\n  dual_clip: 3\n  kl_estimator: k2\n"
      "  loss_agg: seq_mean_token_sum_norm\n  loss_norm_len: 512\n  entropy_coef: 0.01\n"
      "  overlong: soft_penalty\n  overlong_buffer: 64\n  dynamic_sampling: true\n");
  CHECK(c.advantage == "rloo");
  CHECK(c.clip_high == 0.28);
  CHECK(c.dual_clip == 3.0);
  CHECK(c.resolved_loss_norm_len(1024) == 512);
  CHECK(c.resolved_overlong_max_len(1024) == 1024);
  CHECK(c.dynamic_sampling);
  // the dump reads back to the same values
  GrpoOnly wrapped;
  wrapped.grpo = c;
  GrpoOnly back;
  read_config_tree(parse_config_yaml(dump_config_as(wrapped), "dump.yaml"), back);
  CHECK(back.grpo.loss_norm_len == 512);
  CHECK(back.grpo.overlong_buffer == 64);
  // the docs reference lists every key
  const std::string docs = config_docs_markdown_as<GrpoOnly>();
  for (const char* key : {"kl_coef", "kl_estimator", "loss_agg", "dual_clip", "ref_reset_every", "overlong_buffer"})
    CHECK_THAT(docs, Catch::Contains(key));
}

TEST_CASE("grpo config: bad values and combinations are ConfigErrors naming the key") {
  CHECK_THAT(config_error("grpo: {kl_coeff: 0.1}\n"), Catch::Contains("did you mean 'kl_coef'"));
  CHECK_THAT(config_error("grpo: {advantage: ppo}\n"), Catch::Contains("grpo.advantage"));
  CHECK_THAT(config_error("grpo: {kl_estimator: k4}\n"), Catch::Contains("grpo.kl_estimator"));
  CHECK_THAT(config_error("grpo: {loss_agg: sum}\n"), Catch::Contains("grpo.loss_agg"));
  CHECK_THAT(config_error("grpo: {kl_coef: -1}\n"), Catch::Contains("grpo.kl_coef"));
  CHECK_THAT(config_error("grpo: {ppo_epochs: 0}\n"), Catch::Contains("grpo.ppo_epochs"));
  CHECK_THAT(config_error("grpo: {clip_low: 1.0}\n"), Catch::Contains("key 'grpo.clip_low'"));
  CHECK_THAT(config_error("grpo: {dual_clip: 0.5}\n"), Catch::Contains("key 'grpo.dual_clip'"));
  CHECK_THAT(config_error("grpo: {loss_norm_len: 100}\n"), Catch::Contains("key 'grpo.loss_norm_len'"));
  CHECK_THAT(config_error("grpo: {overlong: soft_penalty}\n"), Catch::Contains("key 'grpo.overlong_buffer'"));
  CHECK_THAT(config_error("grpo: {overlong: soft_penalty, overlong_buffer: 100, overlong_max_len: 100}\n"),
             Catch::Contains("key 'grpo.overlong_buffer'"));
  CHECK_THAT(config_error("grpo: {dual_clip: 0.5}\n"), Catch::Contains("test.yaml:"));  // positioned

  GrpoConfig c;
  CHECK_NOTHROW(c.validate_with_rollout(2, 1024));
  CHECK_THROWS_WITH(c.validate_with_rollout(1, 1024), Catch::Contains("key 'rollout.group_size'"));
  c.advantage = "dr_grpo";
  CHECK_THROWS_AS(c.validate_group_size(1), ConfigError);
  c.overlong = "soft_penalty";
  c.overlong_buffer = 256;
  CHECK_THROWS_WITH(c.validate_with_rollout(8, 256), Catch::Contains("key 'grpo.overlong_buffer'"));
  c.overlong_max_len = 2048;
  CHECK_THROWS_WITH(c.validate_with_rollout(8, 1024), Catch::Contains("key 'grpo.overlong_max_len'"));
  c.overlong_max_len = 0;
  CHECK_NOTHROW(c.validate_with_rollout(8, 1024));

  // rollout correction
  CHECK_THAT(config_error("grpo: {rollout_is: token_clip}\n"), Catch::Contains("grpo.rollout_is"));
  CHECK_THAT(config_error("grpo: {rollout_is: token_truncate, old_logprobs: rollout}\n"),
             Catch::Contains("key 'grpo.old_logprobs'"));
  CHECK_THAT(config_error("grpo: {rollout_is_cap: 0.5}\n"), Catch::Contains("grpo.rollout_is_cap"));
  CHECK_THAT(config_error("grpo: {rollout_is_floor: 1.5}\n"), Catch::Contains("key 'grpo.rollout_is_floor'"));
  CHECK_THAT(config_error("grpo: {old_logprobs: vllm}\n"), Catch::Contains("grpo.old_logprobs"));
  CHECK_THAT(config_error("grpo: {policy_loss: cispo, dual_clip: 3}\n"), Catch::Contains("key 'grpo.dual_clip'"));
  CHECK_THAT(config_error("grpo: {policy_loss: sppo}\n"), Catch::Contains("grpo.policy_loss"));
  CHECK_THAT(config_error("grpo: {policy_loss: kl_cov, dual_clip: 3}\n"), Catch::Contains("key 'grpo.dual_clip'"));
  CHECK_THAT(config_error("grpo: {cov_ratio: 0}\n"), Catch::Contains("key 'grpo.cov_ratio'"));
  CHECK_THAT(config_error("grpo: {cov_ratio: 1.5}\n"), Catch::Contains("key 'grpo.cov_ratio'"));
  CHECK_THAT(config_error("grpo: {cov_lb: 5, cov_ub: 1}\n"), Catch::Contains("key 'grpo.cov_ub'"));
  CHECK_THAT(config_error("grpo: {cov_kl_coef: -1}\n"), Catch::Contains("grpo.cov_kl_coef"));
  CHECK_THAT(config_error("grpo: {entropy_token_frac: 0}\n"), Catch::Contains("key 'grpo.entropy_token_frac'"));
  CHECK_THAT(config_error("grpo: {policy_loss: sapo, dual_clip: 3}\n"), Catch::Contains("key 'grpo.dual_clip'"));
  CHECK_THAT(config_error("grpo: {sapo_tau_neg: 0}\n"), Catch::Contains("key 'grpo.sapo_tau_neg'"));
  CHECK_THAT(config_error("grpo: {entropy_token_frac: 1.2}\n"), Catch::Contains("key 'grpo.entropy_token_frac'"));
}

TEST_CASE("grpo config: where log pi_old comes from") {
  GrpoConfig c;
  CHECK(c.old_logprobs == "auto");
  CHECK(c.rollout_is == "none");
  CHECK(c.rollout_is_cap == 2.0);
  CHECK_FALSE(c.trainer_old_logprobs(false));  // fp32 trainer = fp32 rollout
  CHECK(c.trainer_old_logprobs(true));         // bf16 trainer
  c.rollout_is = "token_truncate";
  CHECK(c.trainer_old_logprobs(false));
  CHECK_FALSE(c.rollout_is_rejects());
  for (const char* m : {"token_mask", "sequence_mask", "geo_mask"}) {
    c.rollout_is = m;
    CHECK(c.rollout_is_rejects());
  }
  c.rollout_is = "none";
  c.old_logprobs = "rollout";
  CHECK_FALSE(c.trainer_old_logprobs(true));
  c.old_logprobs = "trainer";
  CHECK(c.trainer_old_logprobs(false));
}

TEST_CASE("grpo config: reference reset schedule") {
  GrpoConfig c;  // every 400 steps (R1-Zero)
  CHECK_FALSE(c.reference_reset_due(0));
  CHECK_FALSE(c.reference_reset_due(399));
  CHECK(c.reference_reset_due(400));
  CHECK(c.reference_reset_due(800));
  c.ref_reset_every = 0;
  CHECK_FALSE(c.reference_reset_due(400));
  c.ref_reset_every = 10;
  c.kl_coef = 0.0;  // no reference model at all
  CHECK_FALSE(c.reference_reset_due(10));
}

// ---------------------------------------------------------------- advantages

TEST_CASE("grpo advantages: hand-computed values per estimator") {
  const std::vector<double> r = {1, 0, 0, 0, 0.5, 0.5, 0.5, 0.5};
  GrpoConfig c;
  c.adv_eps = 0.0;
  // mean 0.25; sample std sqrt((0.75^2 + 3 * 0.25^2) / 3) = 0.5
  Advantages a = compute_advantages(r, 4, c);
  CHECK(a.values[0] == 1.5);
  CHECK(a.values[1] == -0.5);
  CHECK(a.zero_groups == 1);
  CHECK(a.zero_group == std::vector<uint8_t>{0, 1});
  c.adv_eps = 1e-6;
  a = compute_advantages(r, 4, c);
  CHECK(close_rel(a.values[0], 0.75 / (0.5 + 1e-6), 1e-15));

  c.advantage = "dr_grpo";  // r - mean
  a = compute_advantages(r, 4, c);
  CHECK(a.values == std::vector<double>{0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0});

  c.advantage = "rloo";  // r_i - mean of the others = G / (G - 1) * (r_i - mean)
  a = compute_advantages(r, 4, c);
  CHECK(close_rel(a.values[0], 1.0, 1e-15));
  CHECK(close_rel(a.values[1], -1.0 / 3.0, 1e-15));
  const std::vector<double> r2 = {0.3, 1.7, -0.4, 2.2, 0.9};
  a = compute_advantages(r2, 5, c);
  double mean = (0.3 + 1.7 - 0.4 + 2.2 + 0.9) / 5;
  for (size_t i = 0; i < r2.size(); ++i) CHECK(close_rel(a.values[i], 5.0 / 4.0 * (r2[i] - mean), 1e-12));

  // G = 2, grpo: +-1 / sqrt(2) * (1 / (1 + eps/std)) (sample std of {0, 1} = 1/sqrt(2))
  c.advantage = "grpo";
  c.adv_eps = 0.0;
  a = compute_advantages({0, 1}, 2, c);
  CHECK(close_rel(a.values[1], std::sqrt(0.5), 1e-15));
  CHECK(a.values[0] == -a.values[1]);
}

TEST_CASE("grpo advantages: reinforce_pp centres per group and whitens over the batch's tokens") {
  GrpoConfig c;
  c.advantage = "reinforce_pp";
  const Advantages a = compute_advantages({1, 0, 0, 0, 0.5, 0.5, 0.5, 0.5}, 4, c);
  CHECK(a.values == std::vector<double>{0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0});  // r - mean, as dr_grpo
  // Token weights 1, 3, 0 (masked), 2 and 2 x 4 for the equal group: W = 14,
  // mu = (0.75 - 0.75 - 0.5) / 14, sigma^2 = sum w (a - mu)^2 / 13.
  const std::vector<double> w = {1, 3, 0, 2, 2, 2, 2, 2};
  double mu = 0, ss = 0;
  for (size_t i = 0; i < 8; ++i) mu += w[i] * a.values[i] / 14.0;
  for (size_t i = 0; i < 8; ++i) ss += w[i] * (a.values[i] - mu) * (a.values[i] - mu);
  const double sigma = std::sqrt(ss / 13.0);
  CHECK(close_rel(mu, -0.5 / 14.0, 1e-14));
  std::vector<double> mine(a.values.begin() + 2, a.values.begin() + 6);  // a rank's share of the batch
  whiten_advantages(mine, a.values, w, 0.0);
  for (size_t i = 0; i < 4; ++i) CHECK(close_rel(mine[i], (a.values[2 + i] - mu) / sigma, 1e-14));
  // The token-weighted mean of the whitened batch is 0 and its weighted std 1.
  std::vector<double> all = a.values;
  whiten_advantages(all, a.values, w, 0.0);
  double m = 0, v = 0;
  for (size_t i = 0; i < 8; ++i) m += w[i] * all[i];
  for (size_t i = 0; i < 8; ++i) v += w[i] * all[i] * all[i];
  CHECK(std::fabs(m) < 1e-14);
  CHECK(close_rel(v / 13.0, 1.0, 1e-14));
  CHECK(all[4] > 0.0);  // the equal group moves by -mu / sigma, as in verl and OpenRLHF
  // eps is added to sigma; fewer than 2 weighted tokens leave the values alone.
  std::vector<double> e = {0.75};
  whiten_advantages(e, a.values, w, 0.5);
  CHECK(close_rel(e[0], (0.75 - mu) / (sigma + 0.5), 1e-14));
  std::vector<double> one = {0.75, -0.25};
  whiten_advantages(one, {0.75, -0.25}, {1, 0}, 0.0);
  CHECK(one == std::vector<double>{0.75, -0.25});
}

TEST_CASE("grpo advantages: batch_std divides the group-centred rewards by the batch's reward std") {
  GrpoConfig c;
  c.advantage = "batch_std";
  const std::vector<double> r = {1, 0, 0, 0, 0.5, 0.5, 0.5, 0.5};
  CHECK(compute_advantages(r, 4, c).values == std::vector<double>{0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0});
  // mean 0.375; sum of squares 0.625^2 + 3 x 0.375^2 + 4 x 0.125^2 = 0.875; / 7
  CHECK(close_rel(batch_reward_std(r), std::sqrt(0.875 / 7.0), 1e-15));
  CHECK(batch_reward_std({3.0}) == 0.0);
  CHECK(batch_reward_std({}) == 0.0);
  // A group's small spread stays small against a batch with a large one (group std would
  // make the 0.01 gap a full +-0.7 advantage).
  const std::vector<double> shaped = {1.00, 1.01, 1.00, 1.01, 0.0, 2.0, 0.0, 2.0};
  GrpoConfig g;
  const double by_group = compute_advantages(shaped, 4, g).values[1];
  CHECK(by_group > 0.8);
  const double by_batch = compute_advantages(shaped, 4, c).values[1] / (batch_reward_std(shaped) + c.adv_eps);
  CHECK(by_batch < 0.01);
}

TEST_CASE("grpo advantages: all-equal groups are exactly 0 for every estimator") {
  // 0.1 * 3 != 0.3 in binary: the mean of an equal group need not equal its members
  const std::vector<double> r = {0.1, 0.1, 0.1, 1.1, 1.1, 1.1, 0.7, 0.7, 0.7, 0.0, 1.0, 0.0};
  for (const char* est : {"grpo", "dr_grpo", "rloo", "reinforce_pp", "batch_std"}) {
    GrpoConfig c;
    c.advantage = est;
    Advantages a = compute_advantages(r, 3, c);
    INFO(est);
    for (size_t i = 0; i < 9; ++i) CHECK(a.values[i] == 0.0);
    CHECK(a.values[10] > 0.0);
    CHECK(a.zero_groups == 3);
    CHECK(a.zero_group == std::vector<uint8_t>{1, 1, 1, 0});
  }
}

TEST_CASE("grpo advantages: G = 1 is refused with a ConfigError naming rollout.group_size") {
  for (const char* est : {"grpo", "dr_grpo", "rloo", "reinforce_pp", "batch_std"}) {
    GrpoConfig c;
    c.advantage = est;
    CHECK_THROWS_WITH(compute_advantages({1.0, 0.0}, 1, c), Catch::Contains("key 'rollout.group_size'"));
  }
}

// ---------------------------------------------------------------- overlong

TEST_CASE("grpo overlong: DAPO soft penalty and the truncated mask") {
  // L_max 20, buffer 5: 0 up to 15, then -(len - 15) / 5, -1 beyond 20
  CHECK(overlong_soft_penalty(1, 20, 5) == 0.0);
  CHECK(overlong_soft_penalty(15, 20, 5) == 0.0);
  CHECK(overlong_soft_penalty(16, 20, 5) == -0.2);
  CHECK(overlong_soft_penalty(18, 20, 5) == -0.6);
  CHECK(overlong_soft_penalty(20, 20, 5) == -1.0);
  CHECK(overlong_soft_penalty(25, 20, 5) == -1.0);

  const std::vector<int64_t> lengths = {10, 16, 20, 20};
  const std::vector<uint8_t> truncated = {0, 0, 0, 1};
  GrpoConfig c;
  std::vector<double> rewards = {1, 1, 0, 1};
  std::vector<uint8_t> in_loss;
  apply_overlong(c, 20, lengths, truncated, rewards, in_loss);  // none
  CHECK(rewards == std::vector<double>{1, 1, 0, 1});
  CHECK(in_loss == std::vector<uint8_t>{1, 1, 1, 1});

  c.overlong = "mask_truncated";
  apply_overlong(c, 20, lengths, truncated, rewards, in_loss);
  CHECK(rewards == std::vector<double>{1, 1, 0, 1});
  CHECK(in_loss == std::vector<uint8_t>{1, 1, 1, 0});

  c.overlong = "soft_penalty";
  c.overlong_buffer = 5;
  c.overlong_penalty = 0.5;
  apply_overlong(c, 20, lengths, truncated, rewards, in_loss);  // L_max = max_new_tokens = 20
  CHECK(rewards[0] == 1.0);
  CHECK(close_rel(rewards[1], 1.0 - 0.5 * 0.2, 1e-15));
  CHECK(rewards[2] == -0.5);
  CHECK(rewards[3] == 0.5);
  CHECK(in_loss == std::vector<uint8_t>{1, 1, 1, 1});
}

// ---------------------------------------------------------------- loss vs PyTorch

namespace {

void check_golden_file(const std::string& name) {
  const json g = read_golden(name);
  const json& in = g["inputs"];
  const json& cfg = g["config"];
  const int64_t group = g["group_size"].get<int64_t>();

  TokenData d;
  d.logprob = floats(in["logprob"]);
  d.old_logprob = floats(in["old_logprob"]);
  d.ref_logprob = floats(in["ref_logprob"]);
  d.entropy = floats(in["entropy"]);
  d.mask = floats(in["mask"]);
  for (const auto& s : in["seq_index"]) d.seq_index.push_back(s.get<int32_t>());
  d.token_key = in["token_key"].get<std::vector<uint64_t>>();
  d.cov_seed = in["cov_seed"].get<uint64_t>();
  std::vector<double> rewards = in["rewards"].get<std::vector<double>>();
  const int64_t n = int64_t(d.mask.size());
  const int64_t split = in["split"].get<int64_t>();
  REQUIRE(n > split);

  for (const json& cs : g["cases"]) {
    GrpoConfig c;
    c.loss_agg = cfg["loss_agg"].get<std::string>();
    c.adv_eps = cfg["adv_eps"].get<double>();
    c.loss_norm_len = cfg["loss_norm_len"].get<int64_t>();
    c.clip_low = cfg["clip_low"].get<double>();
    c.clip_high = cfg["clip_high"].get<double>();
    c.dual_clip = cfg["dual_clip"].get<double>();
    c.entropy_coef = cfg["entropy_coef"].get<double>();
    c.policy_loss = cfg.value("policy_loss", std::string("ppo_clip"));
    c.cov_ratio = cfg.value("cov_ratio", c.cov_ratio);
    c.cov_kl_coef = cfg.value("cov_kl_coef", c.cov_kl_coef);
    c.cov_lb = cfg.value("cov_lb", c.cov_lb);
    c.cov_ub = cfg.value("cov_ub", c.cov_ub);
    c.entropy_token_frac = cfg.value("entropy_token_frac", c.entropy_token_frac);
    c.sapo_tau_pos = cfg.value("sapo_tau_pos", c.sapo_tau_pos);
    c.sapo_tau_neg = cfg.value("sapo_tau_neg", c.sapo_tau_neg);
    c.advantage = cs["advantage"].get<std::string>();
    c.kl_estimator = cs["kl_estimator"].get<std::string>();
    c.kl_coef = cs["kl_coef"].get<double>();
    REQUIRE_NOTHROW(c.validate());
    INFO(name << ": advantage " << c.advantage << ", kl " << c.kl_estimator << " x " << c.kl_coef);

    Advantages adv = compute_advantages(rewards, group, c);
    std::vector<double> want_adv = cs["advantages"].get<std::vector<double>>();
    REQUIRE(adv.values.size() == want_adv.size());
    for (size_t i = 0; i < want_adv.size(); ++i) CHECK(close_rel(adv.values[i], want_adv[i], 1e-12));
    d.advantage = adv.values;

    const double want_loss = cs["loss"].get<double>();
    const std::vector<double> want_dlp = cs["dlogprob"].get<std::vector<double>>();
    const std::vector<double> want_dent = cs["dentropy"].get<std::vector<double>>();
    const json& ws = cs["stats"];
    // kl_cov / clip_cov select per micro-batch: the split has its own reference.
    const bool per_micro = cs.contains("split_loss");
    const double want_split_loss = per_micro ? cs["split_loss"].get<double>() : want_loss;
    const std::vector<double> want_split_dlp =
        per_micro ? cs["split_dlogprob"].get<std::vector<double>>() : want_dlp;
    const json& ws_split = per_micro ? cs["split_stats"] : ws;

    // Whole batch, then two micro-batches (e.g. two ranks) with the summed counts.
    GrpoCounts counts = count_grpo_tokens(d.view());
    counts.norm_len = double(c.resolved_loss_norm_len(g["norm_len"].get<int64_t>()));
    CHECK(counts.tokens == ws["tokens"].get<double>());
    GrpoCounts c1 = count_grpo_tokens(d.view(0, split)), c2 = count_grpo_tokens(d.view(split, n));
    GrpoCounts summed{c1.tokens + c2.tokens, c1.sequences + c2.sequences, counts.norm_len};
    CHECK(summed.tokens == counts.tokens);
    CHECK(summed.sequences == counts.sequences);

    GrpoLossResult whole = grpo_policy_loss(c, d.view(), counts);
    GrpoLossResult p1 = grpo_policy_loss(c, d.view(0, split), summed);
    GrpoLossResult p2 = grpo_policy_loss(c, d.view(split, n), summed);
    CHECK(close_rel(whole.loss, want_loss, 1e-6));
    CHECK(close_rel(p1.loss + p2.loss, want_split_loss, 1e-6));

    REQUIRE(whole.dlogprob.size() == size_t(n));
    int bad = 0;
    for (int64_t t = 0; t < n; ++t) {
      const double want = want_dlp[size_t(t)], want_part = want_split_dlp[size_t(t)];
      const double part = t < split ? p1.dlogprob[size_t(t)] : p2.dlogprob[size_t(t - split)];
      if (!close_rel(whole.dlogprob[size_t(t)], want, 1e-6) || !close_rel(part, want_part, 1e-6)) {
        if (++bad <= 3) FAIL_CHECK("dlogprob[" << t << "] = " << whole.dlogprob[size_t(t)] << ", want " << want);
      }
    }
    CHECK(bad == 0);
    if (c.entropy_coef > 0) {
      REQUIRE(whole.dentropy.size() == size_t(n));
      for (int64_t t = 0; t < n; ++t) CHECK(close_rel(whole.dentropy[size_t(t)], want_dent[size_t(t)], 1e-6));
    } else {
      CHECK(whole.dentropy.empty());
    }

    GrpoLossStats st = p1.stats;
    st.add(p2.stats);
    for (const auto& [s, w] : {std::pair<const GrpoLossStats*, const json*>{&whole.stats, &ws}, {&st, &ws_split}}) {
      const json& ws = *w;
      CHECK(s->tokens == ws["tokens"].get<double>());
      CHECK(s->clip_low == ws["clip_low"].get<double>());
      CHECK(s->clip_high == ws["clip_high"].get<double>());
      CHECK(s->clip_dual == ws["clip_dual"].get<double>());
      CHECK(close_rel(s->mean_ratio(), ws["mean_ratio"].get<double>(), 1e-12));
      CHECK(close_rel(s->kl_mean(), ws["kl_mean"].get<double>(), 1e-12));
      CHECK(close_rel(s->entropy_mean(), ws["entropy_mean"].get<double>(), 1e-12));
      CHECK(close_rel(s->pg_loss_mean(), ws["pg_loss_mean"].get<double>(), 1e-9));
      CHECK(s->cov_selected == ws["cov_selected"].get<double>());
      CHECK(s->entropy_kept == ws["entropy_kept"].get<double>());
    }
  }
}

}  // namespace

const char* const kGoldenClips[] = {"ppo",   "clip_higher", "dual_clip", "entropy", "gspo",
                                    "cispo", "cispo_mask",  "kl_cov",    "clip_cov", "entropy_top", "sapo"};

TEST_CASE("grpo loss vs PyTorch: token_mean (DAPO)") {
  for (const char* clip : kGoldenClips)
    check_golden_file(std::string("token_mean__") + clip);
}

TEST_CASE("grpo loss vs PyTorch: seq_mean_token_mean (GRPO paper)") {
  for (const char* clip : kGoldenClips)
    check_golden_file(std::string("seq_mean_token_mean__") + clip);
}

TEST_CASE("grpo loss vs PyTorch: seq_mean_token_sum_norm (Dr. GRPO)") {
  for (const char* clip : kGoldenClips)
    check_golden_file(std::string("seq_mean_token_sum_norm__") + clip);
}

TEST_CASE("grpo loss vs PyTorch: seq_mean_token_sum (verl seq-mean-token-sum)") {
  for (const char* clip : kGoldenClips)
    check_golden_file(std::string("seq_mean_token_sum__") + clip);
}

// ---------------------------------------------------------------- properties

TEST_CASE("grpo loss: old == current (mu = 1) gives ratio exactly 1 and no clipping") {
  TokenData d = small_batch(7);
  d.old_logprob = d.logprob;
  for (const char* agg : {"token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm", "seq_mean_token_sum"})
  for (const char* policy_loss : {"ppo_clip", "gspo", "cispo", "cispo_mask", "kl_cov", "sapo"}) {
    GrpoConfig c;
    c.loss_agg = agg;
    c.policy_loss = policy_loss;
    c.kl_coef = 0.0;
    c.clip_low = 0.0;  // even a zero-width clip range leaves rho = 1 unclipped
    c.clip_high = 0.0;
    // (kl_cov: its |log pi - log pi_old| penalty is 0 with a 0 gradient at old == current)
    c.cov_ratio = 0.3;
    c.dual_clip = c.policy_loss == "cispo" || c.policy_loss == "cispo_mask" || c.policy_loss == "kl_cov" ||
                          c.policy_loss == "sapo"
                      ? 0.0
                      : 1.5;
    GrpoCounts counts = count_grpo_tokens(d.view());
    counts.norm_len = 6;
    GrpoLossResult r = grpo_policy_loss(c, d.view(), counts);
    INFO(agg << " " << policy_loss);
    CHECK(r.stats.mean_ratio() == 1.0);
    CHECK(r.stats.ratio_sum == r.stats.tokens);
    CHECK(r.stats.clip_frac() == 0.0);
    CHECK(r.stats.clip_dual == 0.0);
    // the surrogate's gradient is then -A * w per loss token: the policy gradient
    for (size_t t = 0; t < d.mask.size(); ++t) {
      if (d.mask[t] == 0.0f) {
        CHECK(r.dlogprob[t] == 0.0f);
        continue;
      }
      const double a = d.advantage[size_t(d.seq_index[t])];
      double w = 1.0 / counts.tokens;
      if (c.loss_agg == "seq_mean_token_mean") {
        double len = 0;
        for (size_t u = 0; u < d.mask.size(); ++u) len += d.seq_index[u] == d.seq_index[t] ? d.mask[u] : 0.0f;
        w = 1.0 / (len * counts.sequences);
      } else if (c.loss_agg == "seq_mean_token_sum_norm") {
        w = 1.0 / (6.0 * counts.sequences);
      } else if (c.loss_agg == "seq_mean_token_sum") {
        w = 1.0 / counts.sequences;
      }
      CHECK(r.dlogprob[t] == float(-a * w));
    }
  }
}

TEST_CASE("grpo loss: KL is exactly 0 when policy == reference, and its gradient for k2, k3") {
  TokenData d = small_batch(11);
  d.ref_logprob = d.logprob;
  for (const char* est : {"k1", "k2", "k3"}) {
    GrpoConfig with_kl, without;
    with_kl.kl_estimator = est;
    with_kl.kl_coef = 0.5;
    without.kl_coef = 0.0;
    GrpoCounts counts = count_grpo_tokens(d.view());
    GrpoLossResult a = grpo_policy_loss(with_kl, d.view(), counts);
    GrpoLossResult b = grpo_policy_loss(without, d.view(), counts);
    INFO(est);
    CHECK(a.stats.kl_sum == 0.0);
    CHECK(a.loss == b.loss);
    if (std::string(est) != "k1") {
      CHECK(a.dlogprob == b.dlogprob);
    } else {
      // k1 = log pi - log pi_ref has derivative 1 everywhere, also at pi == pi_ref (its
      // expectation under pi is 0; docs/training.md): each loss token gains kl_coef * w
      with_kl.loss_agg = without.loss_agg = "token_mean";
      a = grpo_policy_loss(with_kl, d.view(), counts);
      b = grpo_policy_loss(without, d.view(), counts);
      for (size_t t = 0; t < d.mask.size(); ++t) {
        const double want = d.mask[t] == 0.0f ? 0.0 : 0.5 / counts.tokens;
        CHECK(std::fabs(double(a.dlogprob[t]) - double(b.dlogprob[t]) - want) <= 1e-8);
      }
    }
  }
  // and the KL term is positive (k2, k3) with the right sign of its gradient otherwise
  d = small_batch(11);
  GrpoConfig k3;
  k3.kl_coef = 1.0;
  GrpoConfig no_kl;
  no_kl.kl_coef = 0.0;
  GrpoCounts counts = count_grpo_tokens(d.view());
  GrpoLossResult a = grpo_policy_loss(k3, d.view(), counts);
  GrpoLossResult b = grpo_policy_loss(no_kl, d.view(), counts);
  CHECK(a.stats.kl_sum > 0.0);
  for (size_t t = 0; t < d.mask.size(); ++t) {
    if (d.mask[t] == 0.0f) continue;
    // d k3 / d logp = 1 - pi_ref / pi: pushes log pi towards log pi_ref
    const double diff = double(a.dlogprob[t]) - double(b.dlogprob[t]);
    if (d.ref_logprob[t] > d.logprob[t]) CHECK(diff < 0.0);
    if (d.ref_logprob[t] < d.logprob[t]) CHECK(diff > 0.0);
  }
}

TEST_CASE("grpo loss: k3_clamped is k3 up to the cap and flat beyond it") {
  TokenData d = small_batch(11);
  GrpoConfig k3, clamped, none;
  k3.kl_coef = clamped.kl_coef = 0.5;
  none.kl_coef = 0.0;
  clamped.kl_estimator = "k3_clamped";
  GrpoCounts counts = count_grpo_tokens(d.view());
  // The small batch's tokens are far below the cap: the same loss and gradient as k3.
  GrpoLossResult a = grpo_policy_loss(k3, d.view(), counts), b = grpo_policy_loss(clamped, d.view(), counts);
  REQUIRE(a.stats.kl_sum > 0.0);
  CHECK(b.loss == a.loss);
  CHECK(b.dlogprob == a.dlogprob);
  // One loss token the policy all but ruled out (log pi_ref - log pi = 6: k3 = e^6 - 7 = 396):
  // its KL counts 10, and adds no gradient.
  size_t t = 0;
  while (d.mask[t] == 0.0f) ++t;
  d.ref_logprob[t] = d.logprob[t] + 6.0f;
  a = grpo_policy_loss(k3, d.view(), counts);
  b = grpo_policy_loss(clamped, d.view(), counts);
  const GrpoLossResult c = grpo_policy_loss(none, d.view(), counts);
  const double k3_t = std::exp(double(d.ref_logprob[t]) - double(d.logprob[t])) -
                      (double(d.ref_logprob[t]) - double(d.logprob[t])) - 1.0;
  CHECK(a.stats.kl_sum - b.stats.kl_sum == Approx(k3_t - kKlClampMax).epsilon(1e-9));
  CHECK(b.dlogprob[t] == c.dlogprob[t]);  // the KL term's gradient is 0 there
  CHECK(std::fabs(a.dlogprob[t] - c.dlogprob[t]) > 1.0);  // k3's is not
  for (size_t u = 0; u < d.mask.size(); ++u)
    if (u != t) CHECK(b.dlogprob[u] == a.dlogprob[u]);
}

TEST_CASE("grpo loss: gradient matches central finite differences of the loss") {
  // An independent check of the float64 derivative, away from the clip kinks. For GSPO
  // the GSPO-token gradient is the exact derivative of the loss too (every token of a
  // sequence carries s_i, whose derivative in log pi_t is s_i / |y_i|).
  const std::string policy_loss = GENERATE(as<std::string>{}, "ppo_clip", "gspo");
  const std::string agg = GENERATE(as<std::string>{}, "token_mean", "seq_mean_token_mean");
  INFO(policy_loss << " " << agg);
  TokenData d = small_batch(3);
  GrpoConfig c;
  c.kl_coef = 0.3;
  c.clip_high = 0.28;
  c.dual_clip = 3.0;
  c.entropy_coef = 0.05;
  c.loss_agg = agg;
  c.policy_loss = policy_loss;
  GrpoCounts counts = count_grpo_tokens(d.view());
  GrpoLossResult r = grpo_policy_loss(c, d.view(), counts);
  std::vector<double> seq_log(d.advantage.size(), 0.0), seq_len(d.advantage.size(), 0.0);
  for (size_t t = 0; t < d.mask.size(); ++t)
    if (d.mask[t] != 0.0f) {
      seq_log[size_t(d.seq_index[t])] += double(d.logprob[t]) - d.old_logprob[t];
      seq_len[size_t(d.seq_index[t])] += 1.0;
    }
  const float h = 1e-3f;
  int checked = 0;
  for (size_t t = 0; t < d.mask.size(); ++t) {
    if (d.mask[t] == 0.0f) continue;
    const size_t s = size_t(d.seq_index[t]);
    const double rho = policy_loss == "gspo" ? std::exp(seq_log[s] / seq_len[s])
                                             : std::exp(double(d.logprob[t]) - d.old_logprob[t]);
    if (std::fabs(rho - 0.8) < 0.01 || std::fabs(rho - 1.28) < 0.01) continue;  // near a kink
    TokenData p = d, m = d;
    p.logprob[t] += h;
    m.logprob[t] -= h;
    const double step = double(p.logprob[t]) - double(m.logprob[t]);  // the float step taken
    const double fd = (grpo_policy_loss(c, p.view(), counts).loss - grpo_policy_loss(c, m.view(), counts).loss) / step;
    CHECK(std::fabs(fd - r.dlogprob[t]) <= 1e-4 * std::fabs(r.dlogprob[t]) + 1e-7);
    TokenData pe = d, me = d;
    pe.entropy[t] += h;
    me.entropy[t] -= h;
    const double estep = double(pe.entropy[t]) - double(me.entropy[t]);
    const double fde =
        (grpo_policy_loss(c, pe.view(), counts).loss - grpo_policy_loss(c, me.view(), counts).loss) / estep;
    CHECK(std::fabs(fde - r.dentropy[t]) <= 1e-6 * std::fabs(r.dentropy[t]) + 1e-9);
    ++checked;
  }
  CHECK(checked > 20);
}

namespace {

// The covariance terms c_t = (A_t - mean A)(log pi_t - mean log pi) of the loss tokens
// (by token index; -inf off the loss), computed here independently of grpo_loss.cpp.
std::vector<double> cov_terms(const TokenData& d) {
  double a_sum = 0, lp_sum = 0, n = 0;
  for (size_t t = 0; t < d.mask.size(); ++t)
    if (d.mask[t] != 0.0f) {
      a_sum += d.advantage[size_t(d.seq_index[t])];
      lp_sum += d.logprob[t];
      n += 1;
    }
  std::vector<double> c(d.mask.size(), -std::numeric_limits<double>::infinity());
  for (size_t t = 0; t < d.mask.size(); ++t)
    if (d.mask[t] != 0.0f) c[t] = (d.advantage[size_t(d.seq_index[t])] - a_sum / n) * (d.logprob[t] - lp_sum / n);
  return c;
}

}  // namespace

TEST_CASE("grpo loss: kl_cov penalises |log pi - log pi_old| on the top-covariance tokens, unclipped") {
  TokenData d = small_batch(13);
  for (size_t t = 0; t < d.old_logprob.size(); ++t) d.old_logprob[t] = d.logprob[t] - 0.5f * float(t % 3) + 0.4f;
  GrpoConfig c;
  c.policy_loss = "kl_cov";
  c.loss_agg = "token_mean";
  c.kl_coef = 0.0;
  c.cov_ratio = 0.25;
  c.cov_kl_coef = 0.7;
  const GrpoCounts counts = count_grpo_tokens(d.view());
  const std::vector<double> cov = cov_terms(d);
  const int64_t k = int64_t(0.25 * counts.tokens);
  REQUIRE(k >= 2);
  std::vector<double> sorted = cov;
  std::sort(sorted.rbegin(), sorted.rend());
  const double threshold = sorted[size_t(k - 1)];
  REQUIRE(sorted[size_t(k)] < threshold);  // no tie at the k-th
  const GrpoLossResult r = grpo_policy_loss(c, d.view(), counts);
  CHECK(r.stats.cov_selected == double(k));
  CHECK(r.stats.clip_frac() == 0.0);  // no clip, though these ratios reach e^0.6
  for (size_t t = 0; t < d.mask.size(); ++t) {
    if (d.mask[t] == 0.0f) continue;
    const double a = d.advantage[size_t(d.seq_index[t])];
    const double diff = double(d.logprob[t]) - d.old_logprob[t];
    double want = -a * std::exp(diff);
    if (cov[t] >= threshold) want += 0.7 * (diff > 0 ? 1.0 : -1.0);
    CHECK(r.dlogprob[t] == Approx(want / counts.tokens).epsilon(1e-6));
  }
}

TEST_CASE("grpo loss: clip_cov drops the gradient of tokens drawn in its covariance window") {
  TokenData d = small_batch(17);
  d.token_key.resize(d.mask.size());
  for (size_t t = 0; t < d.mask.size(); ++t) d.token_key[t] = 1000 + t;
  GrpoConfig ppo;
  ppo.kl_coef = 0.0;
  ppo.clip_high = 0.28;
  GrpoConfig c = ppo;
  c.policy_loss = "clip_cov";
  c.cov_ratio = 0.1;
  c.cov_lb = 0.05;
  c.cov_ub = 0.8;
  const GrpoCounts counts = count_grpo_tokens(d.view());
  const std::vector<double> cov = cov_terms(d);
  const GrpoLossResult base = grpo_policy_loss(ppo, d.view(), counts);
  std::vector<size_t> window;  // unclipped tokens with c_t in (lb, ub): the candidates
  for (size_t t = 0; t < d.mask.size(); ++t)
    if (d.mask[t] != 0.0f && cov[t] > c.cov_lb && cov[t] < c.cov_ub && base.dlogprob[t] != 0.0f) window.push_back(t);
  const size_t k = size_t(std::max(1.0, std::floor(0.1 * counts.tokens)));
  REQUIRE(window.size() > k);
  std::set<std::vector<size_t>> draws;
  for (uint64_t seed : {1u, 2u, 3u, 4u}) {
    d.cov_seed = seed;
    const GrpoLossResult r = grpo_policy_loss(c, d.view(), counts);
    CHECK(r.stats.cov_selected == double(k));
    CHECK(r.stats.clip_frac() == base.stats.clip_frac());  // PPO's clip, counted as usual
    std::vector<size_t> dropped;
    for (size_t t = 0; t < d.mask.size(); ++t) {
      if (r.dlogprob[t] == base.dlogprob[t]) continue;
      CHECK(r.dlogprob[t] == 0.0f);
      dropped.push_back(t);
    }
    CHECK(dropped.size() == k);
    for (size_t t : dropped) CHECK(std::count(window.begin(), window.end(), t) == 1);
    CHECK(grpo_policy_loss(c, d.view(), counts).dlogprob == r.dlogprob);  // deterministic
    draws.insert(dropped);
  }
  CHECK(draws.size() > 1);  // the seed decides the draw
  // A window holding fewer tokens than k: all of them; an empty one: PPO's loss.
  c.cov_ratio = 1.0;
  CHECK(grpo_policy_loss(c, d.view(), counts).stats.cov_selected == double(window.size()));
  c.cov_lb = 50.0;
  c.cov_ub = 60.0;
  const GrpoLossResult none = grpo_policy_loss(c, d.view(), counts);
  CHECK(none.stats.cov_selected == 0.0);
  CHECK(none.dlogprob == base.dlogprob);
  CHECK(none.loss == base.loss);
}

TEST_CASE("grpo loss: masked tokens and empty batches contribute nothing") {
  TokenData d = small_batch(5);
  GrpoConfig c;
  GrpoCounts counts = count_grpo_tokens(d.view());
  CHECK(counts.sequences == 8);
  GrpoLossResult base = grpo_policy_loss(c, d.view(), counts);
  // garbage on masked tokens (and seq_index -1) changes nothing
  for (size_t t = 0; t < d.mask.size(); ++t)
    if (d.mask[t] == 0.0f) {
      d.logprob[t] = -80.0f;
      d.old_logprob[t] = 40.0f;
      d.ref_logprob[t] = 60.0f;
      d.seq_index[t] = -1;
    }
  GrpoLossResult r = grpo_policy_loss(c, d.view(), counts);
  CHECK(r.loss == base.loss);
  CHECK(r.dlogprob == base.dlogprob);
  // a micro-batch with no tokens
  GrpoLossResult e = grpo_policy_loss(c, d.view(0, 0), counts);
  CHECK(e.loss == 0.0);
  CHECK(e.dlogprob.empty());
  CHECK(e.stats.tokens == 0.0);
  CHECK(e.stats.mean_ratio() == 0.0);
}

TEST_CASE("grpo loss stats: vector round trip for the all-reduce") {
  GrpoLossStats s;
  s.tokens = 10;
  s.ratio_sum = 11;
  s.clip_low = 1;
  s.clip_high = 2;
  s.clip_dual = 3;
  s.kl_sum = 0.5;
  s.entropy_sum = 7;
  s.pg_loss_sum = -1;
  s.cov_selected = 2;
  std::vector<double> v = s.to_vector();
  REQUIRE(v.size() == size_t(GrpoLossStats::kFields));
  GrpoLossStats b = GrpoLossStats::from_vector(v);
  b.add(s);
  CHECK(b.to_vector() == std::vector<double>{20, 22, 2, 4, 6, 1, 14, -2, 4, 0});
  CHECK(b.cov_selected_frac() == 0.2);
  CHECK(b.mean_ratio() == 1.1);
  CHECK(b.clip_frac() == 0.3);
  CHECK(b.clip_frac_dual() == 0.3);
}

// ---------------------------------------------------------------- rollout correction

namespace {

// Two sequences: tokens 0..2 of sequence 0, 3..5 of sequence 1; token 2 and 5 masked out.
struct MismatchBatch {
  std::vector<float> trainer = {-1.0f, -2.0f, -3.0f, -0.5f, -0.25f, -9.0f};
  std::vector<float> rollout = {-1.5f, -1.0f, 5.0f, -0.75f, -0.5f, 40.0f};
  std::vector<float> mask = {1, 1, 0, 1, 1, 0};
  std::vector<int32_t> seq = {0, 0, 0, 1, 1, 1};
  GrpoTokens view() const {
    GrpoTokens t;
    t.n_tokens = int64_t(mask.size());
    t.n_seqs = 2;
    t.mask = mask.data();
    t.seq_index = seq.data();
    return t;
  }
  RolloutCorrection run(const std::string& mode, double cap, double floor) const {
    GrpoConfig c;
    c.rollout_is = mode;
    c.rollout_is_cap = cap;
    c.rollout_is_floor = floor;
    return rollout_correction(c, view(), trainer.data(), rollout.data());
  }
};

}  // namespace

TEST_CASE("rollout correction: mismatch statistics over the loss tokens") {
  // d = trainer - rollout on the loss tokens: 0.5, -1.0, 0.25, 0.25
  const MismatchBatch b;
  const RolloutCorrection r = b.run("none", 2.0, 0.5);
  const MismatchStats& s = r.stats;
  CHECK(s.tokens == 4);
  CHECK(s.neg_diff_sum == Approx(0.0).margin(1e-15));
  CHECK(s.abs_diff_sum == 2.0);
  CHECK(s.abs_diff_max == 1.0);
  const double k3 = (std::exp(0.5) - 1.5) + (std::exp(-1.0) - 0.0) + 2 * (std::exp(0.25) - 1.25);
  CHECK(s.k3_sum == Approx(k3).epsilon(1e-14));
  CHECK(s.kl_k3() == Approx(k3 / 4).epsilon(1e-14));
  CHECK(s.abs_diff_mean() == 0.5);
  CHECK(r.weight == std::vector<float>(6, 1.0f));
  CHECK(r.mask == b.mask);
  CHECK(s.weight_mean() == 1.0);
  CHECK(s.rejected == 0);
  CHECK(s.truncated == 0);
  // vector round trip and add (the all-reduce)
  MismatchStats t = MismatchStats::from_vector(s.to_vector(), 3.0);
  REQUIRE(s.to_vector().size() == size_t(MismatchStats::kFields));
  t.add(s);
  CHECK(t.tokens == 8);
  CHECK(t.abs_diff_max == 3.0);
  CHECK(t.abs_diff_sum == 4.0);
}

TEST_CASE("rollout correction: hand-computed weights per mode") {
  const MismatchBatch b;
  const float e05 = float(std::exp(0.5)), em1 = float(std::exp(-1.0)), e025 = float(std::exp(0.25));
  SECTION("token_truncate: min(e^d, cap)") {
    const RolloutCorrection r = b.run("token_truncate", 1.5, 0.5);
    CHECK(r.weight == std::vector<float>{1.5f, em1, 1.0f, e025, e025, 1.0f});
    CHECK(r.mask == b.mask);
    CHECK(r.stats.truncated == 1);
    CHECK(r.stats.rejected == 0);
    CHECK(r.stats.weight_mean() == Approx((1.5 + std::exp(-1.0) + 2 * std::exp(0.25)) / 4));
  }
  SECTION("token_mask: e^d inside [floor, cap], rejected outside") {
    const RolloutCorrection r = b.run("token_mask", 1.5, 0.5);
    CHECK(r.mask == std::vector<float>{0, 0, 0, 1, 1, 0});  // e^0.5 > 1.5, e^-1 < 0.5
    CHECK(r.weight[3] == e025);
    CHECK(r.weight[4] == e025);
    CHECK(r.stats.rejected == 2);
    CHECK(r.stats.rejected_frac() == 0.5);
    CHECK(r.stats.weight_mean() == Approx(std::exp(0.25)));
    const RolloutCorrection wide = b.run("token_mask", 2.0, 0.3);
    CHECK(wide.mask == b.mask);
    CHECK(wide.weight == std::vector<float>{e05, em1, 1.0f, e025, e025, 1.0f});
  }
  SECTION("sequence_truncate: min(e^D_i, cap), D = -0.5 and 0.5") {
    const RolloutCorrection r = b.run("sequence_truncate", 2.0, 0.5);
    const float s0 = float(std::exp(-0.5)), s1 = float(std::exp(0.5));
    CHECK(r.weight == std::vector<float>{s0, s0, 1.0f, s1, s1, 1.0f});
    const RolloutCorrection capped = b.run("sequence_truncate", 1.2, 0.5);
    CHECK(capped.weight == std::vector<float>{s0, s0, 1.0f, 1.2f, 1.2f, 1.0f});
    CHECK(capped.stats.truncated == 2);
  }
  SECTION("sequence_mask: sequence 0 (e^-0.5 < 0.7) is rejected whole") {
    const RolloutCorrection r = b.run("sequence_mask", 2.0, 0.7);
    CHECK(r.mask == std::vector<float>{0, 0, 0, 1, 1, 0});
    CHECK(r.weight[3] == e05);
    CHECK(r.stats.rejected == 2);
  }
  SECTION("geo_mask: geometric means e^-0.25 and e^0.25, weight 1") {
    const RolloutCorrection keep = b.run("geo_mask", 1.3, 0.7);
    CHECK(keep.mask == b.mask);
    CHECK(keep.weight == std::vector<float>(6, 1.0f));
    const RolloutCorrection r = b.run("geo_mask", 1.2, 0.7);  // e^0.25 = 1.284 > 1.2
    CHECK(r.mask == std::vector<float>{1, 1, 0, 0, 0, 0});
    CHECK(r.stats.rejected == 2);
  }
}

TEST_CASE("rollout correction: non-finite log-probs are counted, not weighed") {
  MismatchBatch b;
  b.rollout[1] = std::nanf("");                          // sequence 0
  b.trainer[4] = -std::numeric_limits<float>::infinity();  // sequence 1
  const RolloutCorrection none = b.run("none", 2.0, 0.5);
  CHECK(none.stats.nonfinite == 2);
  CHECK(none.stats.tokens == 2);  // tokens 0 and 3: d = 0.5, 0.25
  CHECK(none.stats.abs_diff_sum == 0.75);
  CHECK(std::isfinite(none.stats.k3_sum));
  CHECK(none.weight == std::vector<float>(6, 1.0f));
  CHECK(none.mask == b.mask);
  const RolloutCorrection tt = b.run("token_truncate", 2.0, 0.5);
  CHECK(tt.weight == std::vector<float>{float(std::exp(0.5)), 0.0f, 1.0f, float(std::exp(0.25)), 0.0f, 1.0f});
  CHECK(tt.mask == b.mask);
  const RolloutCorrection st = b.run("sequence_truncate", 2.0, 0.5);  // D over the finite tokens
  CHECK(st.weight[0] == float(std::exp(0.5)));
  CHECK(st.weight[3] == float(std::exp(0.25)));
  for (const char* mode : {"token_mask", "sequence_mask", "geo_mask"}) {
    INFO(mode);
    const RolloutCorrection r = b.run(mode, 2.0, 0.5);
    CHECK(r.mask == std::vector<float>{1, 0, 0, 1, 0, 0});
    CHECK(r.stats.rejected == 0);
  }
  MismatchStats v = MismatchStats::from_vector(none.stats.to_vector(), 0.5);
  CHECK(v.nonfinite == 2);
}

TEST_CASE("grpo loss: the rollout-correction weight scales the policy-gradient term only") {
  TokenData d = small_batch(11);
  GrpoConfig c;
  c.kl_coef = 0.2;
  c.entropy_coef = 0.03;
  c.clip_high = 0.28;
  const GrpoCounts counts = count_grpo_tokens(d.view());
  const GrpoLossResult base = grpo_policy_loss(c, d.view(), counts);
  // weight 1 everywhere: bit-identical
  std::vector<float> ones(d.mask.size(), 1.0f);
  GrpoTokens v = d.view();
  v.is_weight = ones.data();
  const GrpoLossResult same = grpo_policy_loss(c, v, counts);
  CHECK(same.loss == base.loss);
  CHECK(same.dlogprob == base.dlogprob);
  // per-token weights: against the loss without KL/entropy (pure pg) and the KL/entropy
  // part (pg weight 0)
  std::vector<float> w(d.mask.size()), zeros(d.mask.size(), 0.0f);
  for (size_t t = 0; t < w.size(); ++t) w[t] = 0.25f + 0.5f * float(t % 4);
  v.is_weight = w.data();
  const GrpoLossResult weighted = grpo_policy_loss(c, v, counts);
  GrpoTokens vz = d.view();
  vz.is_weight = zeros.data();
  const GrpoLossResult rest = grpo_policy_loss(c, vz, counts);  // KL + entropy terms only
  GrpoConfig pg_only = c;
  pg_only.kl_coef = 0;
  pg_only.entropy_coef = 0;
  double want = rest.loss;
  int checked = 0;
  for (size_t t = 0; t < w.size(); ++t) {
    if (d.mask[t] == 0.0f) continue;
    std::vector<float> one_hot(w.size(), 0.0f);
    one_hot[t] = 1.0f;
    GrpoTokens vt = d.view();
    vt.is_weight = one_hot.data();
    const GrpoLossResult rt = grpo_policy_loss(pg_only, vt, counts);  // token t's pg term alone
    want += double(w[t]) * rt.loss;
    CHECK(weighted.dlogprob[t] == Approx(rest.dlogprob[t] + w[t] * rt.dlogprob[t]).epsilon(1e-6).margin(1e-9));
    ++checked;
  }
  CHECK(checked > 20);
  CHECK(weighted.loss == Approx(want).epsilon(1e-12));
  CHECK(weighted.dentropy == base.dentropy);
}
