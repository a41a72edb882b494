// The GRPO policy loss of one micro-batch, its gradient with respect to the per-token
// log-probs (and entropies), and its statistics (grpo.h).
//
// Owns: the clipped surrogate (with clip-higher and dual clip), the KL estimators k1/k2/k3
// and their derivatives, the three loss aggregations, the loss statistics, and the
// rollout correction (training-inference mismatch weights and its statistics).
// Must not: communicate (the caller sums GrpoCounts and GrpoLossStats over ranks) or
// touch tensors (the caller copies the arrays to and from the device).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "zeroth/error.h"
#include "zeroth/grpo.h"
#include "zeroth/sampler.h"

namespace zeroth {

namespace {

enum class KlKind { K1, K2, K3, K3Clamped };
enum class AggKind { TokenMean, SeqMeanTokenMean, SeqMeanTokenSumNorm, SeqMeanTokenSum };

KlKind kl_kind(const std::string& s) {
  if (s == "k1") return KlKind::K1;
  if (s == "k2") return KlKind::K2;
  if (s == "k3_clamped") return KlKind::K3Clamped;
  ZT_ASSERT(s == "k3", "unknown grpo.kl_estimator '%s'", s.c_str());
  return KlKind::K3;
}

AggKind agg_kind(const std::string& s) {
  if (s == "token_mean") return AggKind::TokenMean;
  if (s == "seq_mean_token_mean") return AggKind::SeqMeanTokenMean;
  if (s == "seq_mean_token_sum") return AggKind::SeqMeanTokenSum;
  ZT_ASSERT(s == "seq_mean_token_sum_norm", "unknown grpo.loss_agg '%s'", s.c_str());
  return AggKind::SeqMeanTokenSumNorm;
}

// The KL estimator at d = log pi_ref - log pi and its derivative with respect to log pi.
void kl_estimate(KlKind kind, double d, double& value, double& dvalue_dlogp) {
  switch (kind) {
    case KlKind::K1:  // log pi - log pi_ref
      value = -d;
      dvalue_dlogp = 1.0;
      return;
    case KlKind::K2:  // (log pi - log pi_ref)^2 / 2
      value = 0.5 * d * d;
      dvalue_dlogp = -d;
      return;
    case KlKind::K3:  // pi_ref / pi - log(pi_ref / pi) - 1
    case KlKind::K3Clamped: {
      const double e = std::exp(d);
      value = e - d - 1.0;
      dvalue_dlogp = 1.0 - e;
      if (kind == KlKind::K3Clamped && value > kKlClampMax) {  // verl's low_var_kl: clamp(k3, -10, 10)
        value = kKlClampMax;
        dvalue_dlogp = 0.0;
      }
      return;
    }
  }
}

bool in_loss(const GrpoTokens& b, int64_t t) {
  const float m = b.mask[t];
  ZT_ASSERT(m == 0.0f || m == 1.0f, "mask[%lld] = %g (expected 0 or 1)", (long long)t, double(m));
  if (m == 0.0f) return false;
  const int32_t s = b.seq_index[t];
  ZT_ASSERT(s >= 0 && s < b.n_seqs, "seq_index[%lld] = %d outside [0, %lld)", (long long)t, s,
            (long long)b.n_seqs);
  return true;
}

// The importance ratio clipped to PPO's trust region [lo, hi].
double clip_ratio(double ratio, double lo, double hi) { return ratio < lo ? lo : ratio > hi ? hi : ratio; }

// policy_loss kl_cov / clip_cov: 1 for the micro-batch's tokens selected by their
// covariance term c_t = (A_t - mean A)(logprob_t - mean logprob) (grpo.h), else 0.
// `clip_active[t]`: PPO's clip is active at t (clip_cov leaves those out; unused by kl_cov).
std::vector<uint8_t> cov_select(const GrpoConfig& config, const GrpoTokens& b, const std::vector<uint8_t>& clip_active) {
  std::vector<uint8_t> selected(size_t(b.n_tokens), 0);
  std::vector<int64_t> on;
  double a_sum = 0.0, lp_sum = 0.0;
  for (int64_t t = 0; t < b.n_tokens; ++t)
    if (in_loss(b, t)) {
      on.push_back(t);
      a_sum += b.advantage[b.seq_index[t]];
      lp_sum += double(b.logprob[t]);
    }
  if (on.empty()) return selected;
  const double a_mean = a_sum / double(on.size()), lp_mean = lp_sum / double(on.size());
  auto cov = [&](int64_t t) { return (b.advantage[b.seq_index[t]] - a_mean) * (double(b.logprob[t]) - lp_mean); };
  const size_t k = size_t(std::max<int64_t>(1, int64_t(config.cov_ratio * double(on.size()))));
  std::vector<std::pair<double, int64_t>> order;  // (sort key, token): the k smallest are taken
  if (config.policy_loss == "kl_cov") {
    for (int64_t t : on) order.emplace_back(-cov(t), t);  // the largest c_t first
  } else {
    ZT_ASSERT(b.token_key, "policy_loss clip_cov needs token_key");
    for (int64_t t : on) {
      const double c = cov(t);
      if (!clip_active[size_t(t)] && c > config.cov_lb && c < config.cov_ub)
        order.emplace_back(sampling_uniform(b.cov_seed, b.token_key[t], 0), t);
    }
  }
  const size_t n = std::min(k, order.size());
  std::partial_sort(order.begin(), order.begin() + long(n), order.end());
  for (size_t i = 0; i < n; ++i) selected[size_t(order[i].second)] = 1;
  return selected;
}

// grpo.entropy_token_frac rho: the (1 - rho) quantile of the micro-batch's loss-token
// entropies, interpolated linearly between order statistics as torch.quantile does
// (-inf without loss tokens).
double entropy_threshold(const GrpoTokens& b, double rho) {
  std::vector<double> e;
  for (int64_t t = 0; t < b.n_tokens; ++t)
    if (in_loss(b, t)) e.push_back(double(b.entropy[t]));
  if (e.empty()) return -std::numeric_limits<double>::infinity();
  std::sort(e.begin(), e.end());
  const double pos = (1.0 - rho) * double(e.size() - 1);
  const size_t lo = size_t(std::floor(pos)), hi = std::min(lo + 1, e.size() - 1);
  return e[lo] + (pos - double(lo)) * (e[hi] - e[lo]);
}

// Loss tokens per sequence of the micro-batch.
std::vector<int64_t> tokens_per_seq(const GrpoTokens& b) {
  ZT_ASSERT(b.n_tokens >= 0 && b.n_seqs >= 0, "");
  ZT_ASSERT(b.n_tokens == 0 || (b.mask && b.seq_index), "mask and seq_index are required");
  std::vector<int64_t> len(size_t(b.n_seqs), 0);
  for (int64_t t = 0; t < b.n_tokens; ++t)
    if (in_loss(b, t)) ++len[size_t(b.seq_index[t])];
  return len;
}

// The summed fields of the statistics structs, in their to_vector() order.
constexpr double GrpoLossStats::*kLossStatsFields[] = {
    &GrpoLossStats::tokens,    &GrpoLossStats::ratio_sum, &GrpoLossStats::clip_low,
    &GrpoLossStats::clip_high, &GrpoLossStats::clip_dual, &GrpoLossStats::kl_sum,
    &GrpoLossStats::entropy_sum, &GrpoLossStats::pg_loss_sum, &GrpoLossStats::cov_selected,
    &GrpoLossStats::entropy_kept};
constexpr double MismatchStats::*kMismatchFields[] = {
    &MismatchStats::tokens,     &MismatchStats::neg_diff_sum, &MismatchStats::k3_sum,
    &MismatchStats::abs_diff_sum, &MismatchStats::weight_sum, &MismatchStats::truncated,
    &MismatchStats::rejected,   &MismatchStats::nonfinite};
static_assert(std::size(kLossStatsFields) == size_t(GrpoLossStats::kFields), "GrpoLossStats fields");
static_assert(std::size(kMismatchFields) == size_t(MismatchStats::kFields), "MismatchStats fields");

template <class S, size_t N>
void add_fields(S& to, const S& from, double S::*const (&fields)[N]) {
  for (auto f : fields) to.*f += from.*f;
}
template <class S, size_t N>
std::vector<double> fields_to_vector(const S& s, double S::*const (&fields)[N]) {
  std::vector<double> v;
  for (auto f : fields) v.push_back(s.*f);
  return v;
}
template <class S, size_t N>
S fields_from_vector(const std::vector<double>& v, double S::*const (&fields)[N]) {
  ZT_ASSERT(v.size() == N, "%zu values, expected %zu", v.size(), N);
  S s;
  for (size_t i = 0; i < N; ++i) s.*fields[i] = v[i];
  return s;
}

}  // namespace

void GrpoLossStats::add(const GrpoLossStats& o) { add_fields(*this, o, kLossStatsFields); }

std::vector<double> GrpoLossStats::to_vector() const { return fields_to_vector(*this, kLossStatsFields); }

GrpoLossStats GrpoLossStats::from_vector(const std::vector<double>& v) {
  return fields_from_vector<GrpoLossStats>(v, kLossStatsFields);
}

GrpoCounts count_grpo_tokens(const GrpoTokens& batch) {
  GrpoCounts c;
  for (int64_t len : tokens_per_seq(batch)) {
    c.tokens += double(len);
    if (len > 0) c.sequences += 1.0;
  }
  return c;
}

GrpoLossResult grpo_policy_loss(const GrpoConfig& config, const GrpoTokens& b, const GrpoCounts& counts) {
  const KlKind kl = kl_kind(config.kl_estimator);
  const AggKind agg = agg_kind(config.loss_agg);
  const bool use_kl = config.kl_coef > 0.0;
  const bool use_entropy = config.entropy_coef > 0.0;
  const double lo = 1.0 - config.clip_low, hi = 1.0 + config.clip_high;
  const double dual = config.dual_clip;

  const std::vector<int64_t> len = tokens_per_seq(b);
  GrpoLossResult out;
  out.dlogprob.assign(size_t(b.n_tokens), 0.0f);
  if (use_entropy) out.dentropy.assign(size_t(b.n_tokens), 0.0f);
  if (b.n_tokens == 0) return out;
  ZT_ASSERT(b.logprob && b.old_logprob && b.advantage, "logprob, old_logprob and advantage are required");
  // GSPO: one ratio per sequence, the geometric mean of its tokens' (all in this micro-batch).
  ZT_ASSERT(config.policy_loss == "ppo_clip" || config.policy_loss == "gspo" || config.policy_loss == "cispo" ||
                config.policy_loss == "cispo_mask" || config.policy_loss == "kl_cov" ||
                config.policy_loss == "clip_cov" || config.policy_loss == "sapo",
            "unknown grpo.policy_loss '%s'", config.policy_loss.c_str());
  const bool sapo = config.policy_loss == "sapo";
  const bool gspo = config.policy_loss == "gspo";
  const bool kl_cov = config.policy_loss == "kl_cov";
  std::vector<uint8_t> selected;  // kl_cov / clip_cov: the tokens picked by their covariance
  if (kl_cov || config.policy_loss == "clip_cov") {
    std::vector<uint8_t> clip_active(size_t(b.n_tokens), 0);
    for (int64_t t = 0; !kl_cov && t < b.n_tokens; ++t) {
      if (!in_loss(b, t)) continue;
      const double a = b.advantage[b.seq_index[t]], ratio = std::exp(double(b.logprob[t]) - double(b.old_logprob[t]));
      clip_active[size_t(t)] = -a * clip_ratio(ratio, lo, hi) > -a * ratio;
    }
    selected = cov_select(config, b, clip_active);
  }
  const bool cispo_mask = config.policy_loss == "cispo_mask";
  const bool cispo = config.policy_loss == "cispo" || cispo_mask;
  std::vector<double> seq_ratio;
  if (gspo) {
    std::vector<double> log_sum(size_t(b.n_seqs), 0.0);
    for (int64_t t = 0; t < b.n_tokens; ++t)
      if (in_loss(b, t)) log_sum[size_t(b.seq_index[t])] += double(b.logprob[t]) - double(b.old_logprob[t]);
    seq_ratio.assign(size_t(b.n_seqs), 1.0);
    for (size_t s = 0; s < seq_ratio.size(); ++s)
      if (len[s] > 0) seq_ratio[s] = std::exp(log_sum[s] / double(len[s]));
  }
  ZT_ASSERT(!use_kl || b.ref_logprob, "grpo.kl_coef > 0 needs ref_logprob");
  ZT_ASSERT(!use_entropy || b.entropy, "grpo.entropy_coef > 0 needs entropy");
  const bool entropy_tokens = config.entropy_token_frac < 1.0;
  ZT_ASSERT(!entropy_tokens || b.entropy, "grpo.entropy_token_frac < 1 needs entropy");
  const double entropy_min = entropy_tokens ? entropy_threshold(b, config.entropy_token_frac) : 0.0;

  double loss = 0.0;
  GrpoLossStats& st = out.stats;
  for (int64_t t = 0; t < b.n_tokens; ++t) {
    if (!in_loss(b, t)) continue;
    const size_t s = size_t(b.seq_index[t]);
    double w = 0.0;  // the token's weight in the aggregated loss
    switch (agg) {
      case AggKind::TokenMean:
        ZT_ASSERT(counts.tokens > 0, "counts.tokens = %g with loss tokens present", counts.tokens);
        w = 1.0 / counts.tokens;
        break;
      case AggKind::SeqMeanTokenMean:
        ZT_ASSERT(counts.sequences > 0, "counts.sequences = %g with loss tokens present", counts.sequences);
        w = 1.0 / (double(len[s]) * counts.sequences);
        break;
      case AggKind::SeqMeanTokenSumNorm:
        ZT_ASSERT(counts.sequences > 0 && counts.norm_len > 0, "counts.sequences = %g, norm_len = %g",
                  counts.sequences, counts.norm_len);
        w = 1.0 / (counts.norm_len * counts.sequences);
        break;
      case AggKind::SeqMeanTokenSum:
        ZT_ASSERT(counts.sequences > 0, "counts.sequences = %g with loss tokens present", counts.sequences);
        w = 1.0 / counts.sequences;
        break;
    }
    const double lp = b.logprob[t];
    const double a = b.advantage[s];
    const double ratio = gspo ? seq_ratio[s] : std::exp(lp - double(b.old_logprob[t]));

    // Clipped surrogate: pg = max(-A rho, -A clip(rho)); its derivative in log pi is
    // -A rho where the unclipped term is taken, 0 where the clip is active (GSPO-token:
    // the same with rho = s_i).
    const double unclipped = -a * ratio;
    const double clipped = -a * clip_ratio(ratio, lo, hi);
    double pg = unclipped, dpg = -a * ratio;
    if (sapo) {
      // SAPO's soft gate: (4 / tau) sigmoid(tau (rho - 1)) in place of the clipped ratio;
      // d/d log pi = 4 s (1 - s) rho, 1 at rho = 1.
      const double tau = a > 0.0 ? config.sapo_tau_pos : config.sapo_tau_neg;
      const double sg = 1.0 / (1.0 + std::exp(-tau * (ratio - 1.0)));
      pg = -a * (4.0 / tau) * sg;
      dpg = -a * 4.0 * sg * (1.0 - sg) * ratio;
    } else if (kl_cov) {
      // KL-Cov: no clip; the selected tokens pay cov_kl_coef |log pi - log pi_old|.
      if (selected[size_t(t)]) {
        const double d = lp - double(b.old_logprob[t]);
        pg += config.cov_kl_coef * std::fabs(d);
        dpg += config.cov_kl_coef * double((d > 0.0) - (d < 0.0));
      }
    } else if (cispo) {
      // CISPO: the clipped ratio is a constant weight of A log pi; no token loses its gradient.
      // cispo_mask: the unified form's M_t = 0 where PPO's clip is active.
      const double c = clip_ratio(ratio, lo, hi);
      pg = -a * c * lp;
      dpg = -a * c;
      if (cispo_mask && ((a > 0.0 && ratio > hi) || (a < 0.0 && ratio < lo))) pg = dpg = 0.0;
      if (ratio > hi) st.clip_high += 1.0;
      else if (ratio < lo) st.clip_low += 1.0;
    } else if (clipped > unclipped) {
      pg = clipped;
      dpg = 0.0;
      if (ratio > hi) st.clip_high += 1.0;
      else st.clip_low += 1.0;
    }
    if (dual > 0.0 && a < 0.0 && -dual * a < pg) {  // dual clip: the loss is capped at -c A
      pg = -dual * a;
      dpg = 0.0;
      st.clip_dual += 1.0;
    }
    if (!selected.empty() && selected[size_t(t)]) {
      st.cov_selected += 1.0;
      if (!kl_cov) pg = dpg = 0.0;  // Clip-Cov: the token's policy gradient is dropped
    }
    if (entropy_tokens) {  // only the high-entropy ("forking") tokens keep a policy gradient
      if (double(b.entropy[t]) >= entropy_min) st.entropy_kept += 1.0;
      else pg = dpg = 0.0;
    }
    if (b.is_weight) {  // rollout correction: a constant weight on the policy-gradient term
      const double isw = b.is_weight[t];
      pg *= isw;
      dpg *= isw;
    }
    double token_loss = pg, dtoken = dpg;
    if (use_kl) {
      double v = 0.0, dv = 0.0;
      kl_estimate(kl, double(b.ref_logprob[t]) - lp, v, dv);
      token_loss += config.kl_coef * v;
      dtoken += config.kl_coef * dv;
      st.kl_sum += v;
    }
    if (b.entropy) st.entropy_sum += b.entropy[t];
    if (use_entropy) {
      token_loss -= config.entropy_coef * double(b.entropy[t]);
      out.dentropy[size_t(t)] = float(-config.entropy_coef * w);
    }
    loss += w * token_loss;
    out.dlogprob[size_t(t)] = float(w * dtoken);
    st.tokens += 1.0;
    st.ratio_sum += ratio;
    st.pg_loss_sum += pg;
  }
  out.loss = loss;
  return out;
}

double kl_estimator_value(const GrpoConfig& config, double d) {
  double v = 0.0, dv = 0.0;
  kl_estimate(kl_kind(config.kl_estimator), d, v, dv);
  return v;
}

void MismatchStats::add(const MismatchStats& o) {
  add_fields(*this, o, kMismatchFields);
  abs_diff_max = std::max(abs_diff_max, o.abs_diff_max);
}

std::vector<double> MismatchStats::to_vector() const { return fields_to_vector(*this, kMismatchFields); }

MismatchStats MismatchStats::from_vector(const std::vector<double>& v, double abs_diff_max) {
  MismatchStats s = fields_from_vector<MismatchStats>(v, kMismatchFields);
  s.abs_diff_max = abs_diff_max;
  return s;
}

RolloutCorrection rollout_correction(const GrpoConfig& config, const GrpoTokens& b,
                                     const float* trainer_logprob, const float* rollout_logprob) {
  enum class Mode { None, TokenTruncate, TokenMask, SeqTruncate, SeqMask, GeoMask };
  const std::string& m = config.rollout_is;
  Mode mode = Mode::None;
  if (m == "token_truncate") mode = Mode::TokenTruncate;
  else if (m == "token_mask") mode = Mode::TokenMask;
  else if (m == "sequence_truncate") mode = Mode::SeqTruncate;
  else if (m == "sequence_mask") mode = Mode::SeqMask;
  else if (m == "geo_mask") mode = Mode::GeoMask;
  else ZT_ASSERT(m == "none", "unknown grpo.rollout_is '%s'", m.c_str());
  const double log_cap = std::log(config.rollout_is_cap);
  const double log_floor = config.rollout_is_floor > 0 ? std::log(config.rollout_is_floor) : -HUGE_VAL;

  RolloutCorrection out;
  out.weight.assign(size_t(b.n_tokens), 1.0f);
  out.mask.assign(b.mask, b.mask + b.n_tokens);
  if (b.n_tokens == 0) return out;
  ZT_ASSERT(trainer_logprob && rollout_logprob, "trainer_logprob and rollout_logprob are required");

  // d_t per loss token, the statistics, and D_i / n_i per sequence.
  std::vector<double> d(size_t(b.n_tokens), 0.0), seq_sum(size_t(b.n_seqs), 0.0);
  std::vector<int64_t> seq_len(size_t(b.n_seqs), 0);
  std::vector<uint8_t> bad(size_t(b.n_tokens), 0);
  MismatchStats& st = out.stats;
  for (int64_t t = 0; t < b.n_tokens; ++t) {
    if (!in_loss(b, t)) continue;
    const double lt = trainer_logprob[t], lr = rollout_logprob[t];
    const double dt = lt - lr;
    if (!std::isfinite(dt)) {  // a diverged model: no statistics, no weight (below)
      bad[size_t(t)] = 1;
      st.nonfinite += 1.0;
      continue;
    }
    d[size_t(t)] = dt;
    seq_sum[size_t(b.seq_index[t])] += dt;
    ++seq_len[size_t(b.seq_index[t])];
    st.tokens += 1.0;
    st.neg_diff_sum -= dt;
    st.k3_sum += std::expm1(dt) - dt;
    st.abs_diff_sum += std::fabs(dt);
    st.abs_diff_max = std::max(st.abs_diff_max, std::fabs(dt));
  }
  // The log of a token's weight (or of its sequence's ratio): x; returns false when the
  // token is rejected. `capped` is set where truncation applied.
  auto weigh = [&](double x, bool truncate, bool& capped, double& w) {
    capped = false;
    if (truncate) {
      capped = x > log_cap;
      w = capped ? config.rollout_is_cap : std::exp(x);
      return true;
    }
    if (x > log_cap || x < log_floor) return false;
    w = std::exp(x);
    return true;
  };
  for (int64_t t = 0; t < b.n_tokens; ++t) {
    if (!in_loss(b, t)) continue;
    const size_t s = size_t(b.seq_index[t]);
    bool keep = true, capped = false;
    double w = 1.0;
    if (bad[size_t(t)]) {  // no ratio to weigh it by: a mask mode rejects it, a truncate mode
      if (config.rollout_is_rejects()) out.mask[size_t(t)] = 0.0f;  // gives it weight 0
      else if (mode != Mode::None) out.weight[size_t(t)] = 0.0f;
      continue;
    }
    switch (mode) {
      case Mode::None: break;
      case Mode::TokenTruncate: keep = weigh(d[size_t(t)], true, capped, w); break;
      case Mode::TokenMask: keep = weigh(d[size_t(t)], false, capped, w); break;
      case Mode::SeqTruncate: keep = weigh(seq_sum[s], true, capped, w); break;
      case Mode::SeqMask: keep = weigh(seq_sum[s], false, capped, w); break;
      case Mode::GeoMask: {
        const double g = seq_sum[s] / double(std::max<int64_t>(1, seq_len[s]));
        keep = !(g > log_cap || g < log_floor);
        break;
      }
    }
    if (!keep) {
      out.mask[size_t(t)] = 0.0f;
      st.rejected += 1.0;
      continue;
    }
    out.weight[size_t(t)] = float(w);
    st.weight_sum += w;
    st.truncated += capped ? 1.0 : 0.0;
  }
  return out;
}

}  // namespace zeroth
