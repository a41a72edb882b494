// GRPO, the algorithm core: the `grpo:` config section, group-relative advantages, the
// clipped policy loss with its KL and entropy terms and its gradient with respect to the
// per-token log-probabilities, and the DAPO overlong helpers. docs/training.md ("GRPO")
// has every formula with its source (DeepSeekMath/R1-Zero, DAPO, Dr. GRPO).
//
// Everything here is host arithmetic in float64 over O(tokens) data: the trainer copies
// log-probs to the host, calls grpo_policy_loss, and feeds `dlogprob` / `dentropy` to
// Model::backward_from_logprob_grad. Data parallelism: rewards are all-gathered before
// compute_advantages (it is exact over the global batch), and the loss normalisers are
// global counts (GrpoCounts, summed over ranks by the caller), so the per-micro-batch
// losses and gradients of all ranks add up to those of the whole batch.
//
// Owns: GrpoConfig (keys, defaults, constraints, docs, cross-field checks; inline so the
// config module parses it without linking zeroth_train), the advantage estimators, the
// per-token loss/gradient, the loss statistics and the overlong rules.
// Must not: communicate, touch tensors or models, or sample (the trainer loop does).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "zeroth/config_reflect.h"
#include "zeroth/error.h"

namespace zeroth {

// `grpo:` the RL algorithm. Defaults follow DeepSeek-R1-Zero / the GRPO paper where they
// state a value (kl_coef 0.001, k3, reference reset every 400 steps, std-normalised
// advantages, sequence-mean of token-means); DAPO and Dr. GRPO variants are options.
// The cap of grpo.kl_estimator k3_clamped (verl's low_var_kl clamps k3 to [-10, 10]).
constexpr double kKlClampMax = 10.0;

struct GrpoConfig {
  std::string advantage = "grpo";
  std::string policy_loss = "ppo_clip";
  double adv_eps = 1e-6;
  double clip_low = 0.2;
  double clip_high = 0.2;
  double dual_clip = 0.0;
  double kl_coef = 0.001;
  std::string kl_estimator = "k3";
  std::string loss_agg = "seq_mean_token_mean";
  int64_t loss_norm_len = 0;
  double entropy_coef = 0.0;
  int64_t ppo_epochs = 1;
  int64_t mini_batches = 1;
  int64_t ref_reset_every = 400;
  double ref_mixup_alpha = 1.0;
  bool kl_in_reward = false;
  double kl_target = 0.0;
  int64_t kl_horizon = 10000;
  bool dynamic_sampling = false;
  int64_t dynamic_max_extra_batches = 4;
  std::string overlong = "none";
  int64_t overlong_max_len = 0;
  int64_t overlong_buffer = 0;
  double overlong_penalty = 1.0;
  std::string old_logprobs = "auto";
  std::string rollout_is = "none";
  double rollout_is_cap = 2.0;
  double rollout_is_floor = 0.5;
  double cov_ratio = 0.0002;
  double cov_kl_coef = 1.0;
  double cov_lb = 1.0;
  double cov_ub = 5.0;
  double entropy_token_frac = 1.0;
  double sapo_tau_pos = 1.0;
  double sapo_tau_neg = 1.05;

  template <class V>
  void visit(V& v) {
    v.field("advantage", advantage,
            "Advantage estimator: 'grpo' (r - mean) / (std + adv_eps) per group (GRPO paper), "
            "'dr_grpo' r - mean (Dr. GRPO), 'rloo' r - mean of the other G-1 rewards, "
            "'reinforce_pp' REINFORCE++-baseline: r - mean, then whitened over the trained batch's "
            "completion tokens, (a - batch mean) / (batch std + adv_eps); 'batch_std' "
            "(r - group mean) / (std of the trained batch's rewards + adv_eps) (LitePPO; TRL "
            "scale_rewards: batch); the trained batch is the step's groups on every rank, after "
            "dynamic sampling's filter")
        .one_of({"grpo", "dr_grpo", "rloo", "reinforce_pp", "batch_std"});
    v.field("policy_loss", policy_loss,
            "The importance ratio of the clipped surrogate: 'ppo_clip' per token, "
            "pi(y_t) / pi_old(y_t) (GRPO paper); 'gspo' per sequence, the geometric mean "
            "of its tokens' ratios, clipped per sequence (GSPO, Zheng et al. 2025: it uses "
            "clip_low 3e-4, clip_high 4e-4); 'cispo' the REINFORCE-style loss of CISPO "
            "(MiniMax-M1): -sg(clip(rho_t, 1 - clip_low, 1 + clip_high)) A log pi(y_t), "
            "every token keeps a gradient; 'cispo_mask' CISPO with its paper's unified token "
            "mask: tokens where PPO's clip is active (A > 0 and rho_t > 1 + clip_high, or "
            "A < 0 and rho_t < 1 - clip_low) drop out, PPO's trust region; 'kl_cov' and "
            "'clip_cov' (Cui et al. 2025, 'The Entropy Mechanism of RL for Reasoning LMs'; verl's "
            "loss modes): in each micro-batch the tokens whose centred advantage x centred "
            "log-prob (their covariance term) is large are the ones that collapse the entropy: "
            "'kl_cov' takes the unclipped -A rho_t and adds cov_kl_coef * |log pi - log pi_old| "
            "on the top cov_ratio of the tokens by that term; 'clip_cov' takes PPO's clipped "
            "loss and drops the gradient of cov_ratio of the tokens, drawn at random among the "
            "unclipped ones whose term lies in (cov_lb, cov_ub); 'sapo' (Soft Adaptive Policy "
            "Optimization, Qwen 2025; TRL's loss_type sapo): a smooth gate instead of the clip, "
            "pg = -A (4 / tau) sigmoid(tau (rho_t - 1)), tau = sapo_tau_pos for A > 0 and "
            "sapo_tau_neg otherwise; its gradient is GRPO's at rho = 1 and fades as rho leaves 1")
        .one_of({"ppo_clip", "gspo", "cispo", "cispo_mask", "kl_cov", "clip_cov", "sapo"});
    v.field("adv_eps", adv_eps, "Added to the std the advantage is divided by (the group's reward std with "
            "'grpo', the batch's advantage std with 'reinforce_pp', the batch's reward std with 'batch_std')").min(0);
    v.field("clip_low", clip_low, "PPO clip epsilon below: ratio clipped at 1 - clip_low (< 1)")
        .min(0);
    v.field("clip_high", clip_high,
            "PPO clip epsilon above: ratio clipped at 1 + clip_high (DAPO clip-higher: 0.28)")
        .min(0);
    v.field("dual_clip", dual_clip,
            "Dual-clip constant c (> 1): for negative advantages the token loss is at most "
            "-c * A; 0 = off")
        .min(0);
    v.field("kl_coef", kl_coef,
            "Weight beta of the KL penalty to the reference model (R1-Zero: 0.001); 0 = no "
            "reference model")
        .min(0);
    v.field("kl_estimator", kl_estimator,
            "Per-token KL estimator, with d = log pi_ref - log pi: k1 = -d, k2 = d^2 / 2, "
            "k3 = exp(d) - d - 1 (GRPO paper), k3_clamped = min(k3, 10) with no gradient where "
            "clamped (verl's low_var_kl: one token the policy has all but ruled out cannot dominate "
            "the loss)")
        .one_of({"k1", "k2", "k3", "k3_clamped"});
    v.field("kl_in_reward", kl_in_reward,
            "Put the KL penalty into the reward instead of the loss (verl's use_kl_in_reward; "
            "REINFORCE++): each completion's reward becomes r - kl_coef * sum over its tokens of "
            "kl_estimator(log pi_ref - log pi), before the advantages; the loss then has no KL "
            "term. Needs kl_coef > 0, colocated rollout (rl.rollout_ranks 0) and rl.rollout_lag 0");
    v.field("kl_target", kl_target,
            "Adaptive KL coefficient (Ziegler et al. 2019; verl's kl_ctrl type adaptive): after each "
            "step kl_coef *= 1 + clip(kl / kl_target - 1, -0.2, 0.2) * n / kl_horizon, with kl the "
            "step's per-token KL and n its trained sequences; the coefficient is checkpointed and "
            "logged as the metric kl_coef; 0 = a fixed kl_coef")
        .min(0);
    v.field("kl_horizon", kl_horizon, "kl_target: the controller's horizon, in sequences (verl: 10000)").min(1);
    v.field("loss_agg", loss_agg,
            "Loss aggregation: 'token_mean' over all tokens of the batch (DAPO), "
            "'seq_mean_token_mean' mean over sequences of token means (GRPO paper), "
            "'seq_mean_token_sum_norm' token sums over loss_norm_len, mean over sequences "
            "(Dr. GRPO), 'seq_mean_token_sum' token sums, mean over sequences (verl's "
            "seq-mean-token-sum: a sequence weighs by its length)")
        .one_of({"token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm", "seq_mean_token_sum"});
    v.field("loss_norm_len", loss_norm_len,
            "The constant of 'seq_mean_token_sum_norm'; 0 = rollout.max_new_tokens")
        .min(0);
    v.field("entropy_coef", entropy_coef, "Entropy bonus: the loss gets -entropy_coef * token entropy; 0 = off")
        .min(0);
    v.field("ppo_epochs", ppo_epochs, "Passes (mu) over each rollout batch").min(1);
    v.field("mini_batches", mini_batches,
            "Optimizer steps per pass: the rollout batch's groups are split into this many "
            "mini-batches")
        .min(1);
    v.field("ref_reset_every", ref_reset_every,
            "Copy the policy into the reference model every this many steps (R1-Zero: 400); "
            "0 = never; unused when kl_coef = 0")
        .min(0);
    v.field("ref_mixup_alpha", ref_mixup_alpha,
            "At each reference reset the reference becomes alpha * policy + (1 - alpha) * "
            "reference (TR-DPO's soft update; TRL's ref_model_mixup_alpha, 0.6 there); 1 = a copy "
            "of the policy (R1-Zero); in (0, 1]")
        .min(0);
    v.field("dynamic_sampling", dynamic_sampling,
            "DAPO dynamic sampling: drop groups whose rewards are all equal and sample more "
            "prompts until the batch is full");
    v.field("dynamic_max_extra_batches", dynamic_max_extra_batches,
            "dynamic_sampling: most extra prompt batches sampled per step before training on a "
            "smaller batch")
        .min(0);
    v.field("overlong", overlong,
            "Completions that reach the length limit: 'none', 'mask_truncated' (no loss on "
            "them), 'soft_penalty' (DAPO overlong reward shaping)")
        .one_of({"none", "mask_truncated", "soft_penalty"});
    v.field("overlong_max_len", overlong_max_len,
            "soft_penalty: L_max, the length at which the penalty reaches -overlong_penalty; "
            "0 = rollout.max_new_tokens")
        .min(0);
    v.field("overlong_buffer", overlong_buffer,
            "soft_penalty: L_cache, the penalty grows linearly over the last this many tokens "
            "before L_max (DAPO: 4096 of 20480)")
        .min(0);
    v.field("overlong_penalty", overlong_penalty, "soft_penalty: the penalty at L_max (DAPO: 1)").min(0);
    v.field("old_logprobs", old_logprobs,
            "Where log pi_old of the ratio comes from: 'rollout' the sampler's log-probs; "
            "'trainer' the trainer's at the rollout's weights (free when a step takes one "
            "optimizer step, else an extra forward pass before the first; verl's default); "
            "'auto' trainer when the trainer's compute dtype differs from the rollout's fp32 "
            "(bf16) or rollout_is is set, else the trainer's own forward when a step takes one "
            "optimizer step and the rollout's otherwise (they agree to ~1e-6 in fp32); with "
            "rl.rollout_lag 1 and no rollout_is, 'auto' is the rollout's (the behaviour policy)")
        .one_of({"auto", "rollout", "trainer"});
    v.field("rollout_is", rollout_is,
            "Training-inference mismatch correction with rho = pi_old(trainer) / "
            "pi_rollout: 'token_truncate' weights each token's policy loss by "
            "min(rho_t, cap) (TIS), 'token_mask' by rho_t inside [floor, cap] and drops the "
            "others (MIS), 'sequence_truncate' / 'sequence_mask' the same with the "
            "sequence's product of ratios, 'geo_mask' drops sequences whose geometric-mean "
            "ratio is outside [floor, cap] (weight 1 otherwise); 'none' = off")
        .one_of({"none", "token_truncate", "token_mask", "sequence_truncate", "sequence_mask", "geo_mask"});
    v.field("rollout_is_cap", rollout_is_cap,
            "rollout_is: the upper bound C on rho (truncated at C, or rejected above it); >= 1")
        .min(1);
    v.field("rollout_is_floor", rollout_is_floor,
            "rollout_is mask modes: tokens/sequences with rho below this are rejected; in [0, 1]")
        .min(0);
    v.field("cov_ratio", cov_ratio,
            "policy_loss kl_cov / clip_cov: the share of a micro-batch's loss tokens selected "
            "(at least 1; verl's kl_cov_ratio / clip_cov_ratio, 2e-4; the paper uses 2e-3 for "
            "KL-Cov on a 7B model); in (0, 1]")
        .min(0);
    v.field("cov_kl_coef", cov_kl_coef,
            "policy_loss kl_cov: the weight of |log pi - log pi_old| on the selected tokens "
            "(verl's ppo_kl_coef)")
        .min(0);
    v.field("cov_lb", cov_lb, "policy_loss clip_cov: candidates have a covariance term above this (verl's clip_cov_lb)");
    v.field("cov_ub", cov_ub,
            "policy_loss clip_cov: candidates have a covariance term below this (verl's clip_cov_ub); > cov_lb");
    v.field("sapo_tau_pos", sapo_tau_pos, "policy_loss sapo: the gate's temperature for A > 0 (TRL: 1.0)")
        .min(0);
    v.field("sapo_tau_neg", sapo_tau_neg,
            "policy_loss sapo: the gate's temperature for A <= 0 (TRL: 1.05; larger: the gradient "
            "of a negative-advantage token fades faster off-policy)")
        .min(0);
    v.field("entropy_token_frac", entropy_token_frac,
            "Only the highest-entropy tokens keep their policy gradient: those of each micro-batch "
            "with an entropy at or above its (1 - this) quantile (linear interpolation, as "
            "torch.quantile; Wang et al. 2025 'Beyond the 80/20 Rule': 0.2; TRL's "
            "top_entropy_quantile); the KL and entropy terms stay on every token; 1 = every token; in (0, 1]")
        .min(0);
  }

  // Cross-field checks within the section: ConfigError "key 'grpo.<name>': ...".
  void validate() const {
    ZT_THROW_IF_NOT(clip_low < 1.0, ConfigError,
                    "key 'grpo.clip_low': expected a number in [0, 1), found %g", clip_low);
    ZT_THROW_IF_NOT(dual_clip == 0.0 || dual_clip > 1.0, ConfigError,
                    "key 'grpo.dual_clip': expected 0 (off) or a number > 1, found %g", dual_clip);
    ZT_THROW_IF_NOT(dual_clip == 0.0 || (policy_loss != "cispo" && policy_loss != "cispo_mask"), ConfigError,
                    "key 'grpo.dual_clip': expected 0 with policy_loss '%s' (its clip bounds the "
                    "importance weight, not the loss), found %g", policy_loss.c_str(), dual_clip);
    ZT_THROW_IF_NOT(loss_norm_len == 0 || loss_agg == "seq_mean_token_sum_norm", ConfigError,
                    "key 'grpo.loss_norm_len': only used by loss_agg 'seq_mean_token_sum_norm', "
                    "found %lld with loss_agg '%s' (set it to 0)",
                    (long long)loss_norm_len, loss_agg.c_str());
    if (overlong == "soft_penalty") {
      ZT_THROW_IF_NOT(overlong_buffer > 0, ConfigError,
                      "key 'grpo.overlong_buffer': expected > 0 for overlong 'soft_penalty', found %lld",
                      (long long)overlong_buffer);
      ZT_THROW_IF_NOT(overlong_max_len == 0 || overlong_buffer < overlong_max_len, ConfigError,
                      "key 'grpo.overlong_buffer': expected < overlong_max_len (%lld), found %lld",
                      (long long)overlong_max_len, (long long)overlong_buffer);
    }
    ZT_THROW_IF_NOT(rollout_is == "none" || old_logprobs != "rollout", ConfigError,
                    "key 'grpo.old_logprobs': expected 'trainer' or 'auto' with rollout_is '%s' "
                    "(its ratio is pi_old(trainer) / pi_rollout), found 'rollout'",
                    rollout_is.c_str());
    ZT_THROW_IF_NOT(rollout_is_floor <= 1.0, ConfigError,
                    "key 'grpo.rollout_is_floor': expected a number in [0, 1], found %g", rollout_is_floor);
    ZT_THROW_IF_NOT(cov_ratio > 0.0 && cov_ratio <= 1.0, ConfigError,
                    "key 'grpo.cov_ratio': expected a number in (0, 1], found %g", cov_ratio);
    ZT_THROW_IF_NOT(kl_target == 0.0 || kl_coef > 0.0, ConfigError,
                    "key 'grpo.kl_target': an adaptive coefficient needs grpo.kl_coef > 0 (its starting "
                    "value), found kl_coef %g", kl_coef);
    ZT_THROW_IF_NOT(!kl_in_reward || kl_coef > 0.0, ConfigError,
                    "key 'grpo.kl_in_reward': true needs grpo.kl_coef > 0 (the penalty's weight), found kl_coef %g",
                    kl_coef);
    ZT_THROW_IF_NOT(ref_mixup_alpha > 0.0 && ref_mixup_alpha <= 1.0, ConfigError,
                    "key 'grpo.ref_mixup_alpha': expected a number in (0, 1], found %g", ref_mixup_alpha);
    ZT_THROW_IF_NOT(entropy_token_frac > 0.0 && entropy_token_frac <= 1.0, ConfigError,
                    "key 'grpo.entropy_token_frac': expected a number in (0, 1], found %g", entropy_token_frac);
    ZT_THROW_IF_NOT(cov_lb < cov_ub, ConfigError, "key 'grpo.cov_ub': expected > cov_lb (%g), found %g", cov_lb,
                    cov_ub);
    ZT_THROW_IF_NOT(sapo_tau_pos > 0.0 && sapo_tau_neg > 0.0, ConfigError,
                    "key 'grpo.%s': expected a number > 0, found %g", sapo_tau_pos > 0.0 ? "sapo_tau_neg" : "sapo_tau_pos",
                    sapo_tau_pos > 0.0 ? sapo_tau_neg : sapo_tau_pos);
    ZT_THROW_IF_NOT(dual_clip == 0.0 || policy_loss != "sapo", ConfigError,
                    "key 'grpo.dual_clip': expected 0 with policy_loss 'sapo' (its gate replaces the "
                    "clip), found %g", dual_clip);
    ZT_THROW_IF_NOT(dual_clip == 0.0 || policy_loss != "kl_cov", ConfigError,
                    "key 'grpo.dual_clip': expected 0 with policy_loss 'kl_cov' (it takes the "
                    "unclipped loss), found %g", dual_clip);
  }

  // True when log pi_old must be the trainer's (a forward at the rollout's weights) rather
  // than the sampler's, also where a step takes several optimizer steps (then an extra
  // forward pass provides them). `dtype_differs`: the trainer computes in another dtype
  // than the rollout (bf16 mixed precision against the rollout's fp32). ('auto' in fp32
  // without rollout_is returns false; a step of one optimizer step still uses the
  // trainer's own forward there, which costs nothing.)
  bool trainer_old_logprobs(bool dtype_differs) const {
    if (old_logprobs == "trainer") return true;
    if (old_logprobs == "rollout") return false;
    return rollout_is != "none" || dtype_differs;
  }
  // True for the rollout_is modes that remove tokens or sequences from the loss.
  bool rollout_is_rejects() const {
    return rollout_is == "token_mask" || rollout_is == "sequence_mask" || rollout_is == "geo_mask";
  }

  // Checks against the `rollout:` section (call it where both are known, e.g. Config
  // validation or the trainer's start): ConfigError naming the key.
  //  * group_size (G) < 2: every estimator compares a sample with the rest of its group
  //    ('grpo' needs a std, 'rloo' a leave-one-out mean; 'dr_grpo' would give 0 always):
  //    "key 'rollout.group_size': expected >= 2 for grpo.advantage '...'".
  //  * soft_penalty: overlong_buffer < the resolved L_max; L_max <= max_new_tokens.
  void validate_with_rollout(int64_t group_size, int64_t max_new_tokens) const {
    validate_group_size(group_size);
    if (overlong == "soft_penalty") {
      int64_t l_max = resolved_overlong_max_len(max_new_tokens);
      ZT_THROW_IF_NOT(l_max <= max_new_tokens, ConfigError,
                      "key 'grpo.overlong_max_len': expected <= rollout.max_new_tokens (%lld), found %lld",
                      (long long)max_new_tokens, (long long)l_max);
      ZT_THROW_IF_NOT(overlong_buffer < l_max, ConfigError,
                      "key 'grpo.overlong_buffer': expected < L_max (%lld, from %s), found %lld",
                      (long long)l_max,
                      overlong_max_len > 0 ? "grpo.overlong_max_len" : "rollout.max_new_tokens",
                      (long long)overlong_buffer);
    }
  }

  // The group-size part of validate_with_rollout (compute_advantages checks it too).
  void validate_group_size(int64_t group_size) const {
    ZT_THROW_IF_NOT(group_size >= 2, ConfigError,
                    "key 'rollout.group_size': expected >= 2 for grpo.advantage '%s' (advantages are "
                    "relative to the other samples of the group), found %lld",
                    advantage.c_str(), (long long)group_size);
  }
  int64_t resolved_loss_norm_len(int64_t max_new_tokens) const {
    return loss_norm_len > 0 ? loss_norm_len : max_new_tokens;
  }
  int64_t resolved_overlong_max_len(int64_t max_new_tokens) const {
    return overlong_max_len > 0 ? overlong_max_len : max_new_tokens;
  }
  // True when the reference model is replaced by the policy after optimizer step `step`
  // (steps count from 1): kl_coef > 0, ref_reset_every > 0 and step % ref_reset_every == 0.
  bool reference_reset_due(int64_t step) const {
    return kl_coef > 0.0 && ref_reset_every > 0 && step > 0 && step % ref_reset_every == 0;
  }
};

// ---- advantages ----

// Per-sample advantages of one global batch whose rewards are laid out group by group
// (samples [g*G, (g+1)*G) belong to prompt g).
struct Advantages {
  std::vector<double> values;      // (n) advantage of each sample
  std::vector<uint8_t> zero_group; // (n / G) 1 = all rewards of the group are equal (advantage 0)
  int64_t zero_groups = 0;         // how many groups have zero_group = 1
};

// Advantages per config.advantage, in float64:
//   grpo:    (r_i - mean) / (std + adv_eps), std the sample std (divisor G - 1, as torch.std)
//   dr_grpo: r_i - mean
//   rloo:    r_i - (sum - r_i) / (G - 1)
//   reinforce_pp: r_i - mean here; whiten_advantages then normalises over the batch
//   batch_std: r_i - mean here; the caller divides by batch_reward_std + adv_eps
// A group whose rewards are all equal gets exactly 0. rewards.size() must be a multiple
// of group_size (else an internal error); group_size < 2 is the ConfigError of
// GrpoConfig::validate_group_size. Non-finite rewards are an internal error.
Advantages compute_advantages(const std::vector<double>& rewards, int64_t group_size,
                              const GrpoConfig& config);

// REINFORCE++-baseline's batch normalisation (Hu et al. 2025; verl's
// reinforce_plus_plus_baseline, OpenRLHF's reinforce_baseline): with the token-weighted
// mean mu and unbiased std sigma of the batch's group-centred advantages,
//   mu = sum_i w_i a_i / W,  sigma^2 = sum_i w_i (a_i - mu)^2 / (W - 1),  W = sum_i w_i,
// every value becomes (a - mu) / (sigma + eps). `batch_values` / `batch_weights` are the
// whole batch's advantages and weights (w_i: the sample's completion tokens in the loss;
// the trainer gathers them over the ranks, summed in batch order, so the result does
// not depend on the rank count); `values` are the caller's own, changed in place.
// W < 2 leaves them unchanged. A group whose rewards are all equal moves too (by
// -mu / (sigma + eps)), as in those implementations.
void whiten_advantages(std::vector<double>& values, const std::vector<double>& batch_values,
                       const std::vector<double>& batch_weights, double eps);

// The sample std (divisor n - 1) of a whole batch's rewards, summed in their order; 0
// for fewer than 2. grpo.advantage 'batch_std' (LitePPO, Liu et al. 2025 "Tricks or
// Traps"; TRL's scale_rewards: batch) divides the group-centred advantages by it + adv_eps,
// so a group's small reward differences are measured against the batch's spread, not
// blown up by their own.
double batch_reward_std(const std::vector<double>& batch_rewards);

// ---- overlong handling (DAPO) ----

// DAPO's soft overlong punishment of a completion of `length` tokens (eq. 13), in [-1, 0]:
//   0                                  length <= l_max - buffer
//   ((l_max - buffer) - length) / buffer   l_max - buffer < length <= l_max
//   -1                                 length > l_max
// Requires 0 < buffer < l_max.
double overlong_soft_penalty(int64_t length, int64_t l_max, int64_t buffer);

// Applies config.overlong to one batch of samples (all vectors of the same size n):
//   soft_penalty:   rewards[i] += overlong_penalty * overlong_soft_penalty(lengths[i], L_max, buffer)
//   mask_truncated: in_loss[i] = 0 where truncated[i] (the rewards still enter the group
//                   statistics; only the sample's tokens leave the loss)
//   none:           nothing.
// `lengths` are completion lengths in tokens, `truncated` 1 where the completion stopped
// at the length limit. Call before compute_advantages. in_loss is resized to n, filled
// with 1 and cleared per the rule.
void apply_overlong(const GrpoConfig& config, int64_t max_new_tokens, const std::vector<int64_t>& lengths,
                    const std::vector<uint8_t>& truncated, std::vector<double>& rewards,
                    std::vector<uint8_t>& in_loss);

// ---- the policy loss ----

// One micro-batch of N tokens from S sequences, as host arrays (N tokens in any layout:
// each token names its sequence). Tokens with mask 0 (prompt, padding, masked samples)
// are ignored entirely; their seq_index may be -1.
struct GrpoTokens {
  int64_t n_tokens = 0;                  // N
  int64_t n_seqs = 0;                    // S
  const float* logprob = nullptr;        // (N) log pi_theta(token), the current policy
  const float* old_logprob = nullptr;    // (N) log pi_old(token), from the rollout
  const float* ref_logprob = nullptr;    // (N) log pi_ref(token); required when kl_coef > 0
  const float* entropy = nullptr;        // (N) entropy of pi_theta at the token's position;
                                         //     required when entropy_coef > 0, else optional (stats)
  const float* mask = nullptr;           // (N) 1 = completion token in the loss, 0 = not
  const int32_t* seq_index = nullptr;    // (N) sequence of each token, in [0, S)
  const double* advantage = nullptr;     // (S) advantage of each sequence
  const float* is_weight = nullptr;      // (N) optional rollout-correction weight of each token's
                                         //     policy-gradient term (rollout_correction); null = 1
  const uint64_t* token_key = nullptr;   // (N) policy_loss clip_cov: an id of each loss token
                                         //     (e.g. its global sample and position), required
  uint64_t cov_seed = 0;                 // clip_cov: its draw is sampling_uniform(cov_seed, key, 0)
};

// Global normalisers of the loss: the loss tokens and the sequences with at least one
// loss token, summed over every micro-batch of every rank for one optimizer step
// (count_grpo_tokens on each micro-batch, then a sum-all-reduce), and the constant of
// 'seq_mean_token_sum_norm' (GrpoConfig::resolved_loss_norm_len).
struct GrpoCounts {
  double tokens = 0;
  double sequences = 0;
  double norm_len = 0;  // used by seq_mean_token_sum_norm only
};

// The local counts of one micro-batch (norm_len left 0).
GrpoCounts count_grpo_tokens(const GrpoTokens& batch);

// Sums over the loss tokens of a micro-batch; add them over micro-batches and ranks
// (to_vector / from_vector for an all-reduce), then read the means.
struct GrpoLossStats {
  double tokens = 0;        // loss tokens
  double ratio_sum = 0;     // sum of pi / pi_old
  double clip_low = 0;      // tokens where the lower clip is active (A < 0, ratio < 1 - clip_low)
  double clip_high = 0;     // tokens where the upper clip is active (A > 0, ratio > 1 + clip_high)
  double clip_dual = 0;     // tokens where the dual clip is active (A < 0, loss capped at -c A)
  double kl_sum = 0;        // sum of the KL estimator (0 when kl_coef = 0)
  double entropy_sum = 0;   // sum of token entropies (0 when no entropy is given)
  double pg_loss_sum = 0;   // sum of the clipped policy-gradient token losses
  double cov_selected = 0;  // policy_loss kl_cov / clip_cov: tokens selected by their covariance
  double entropy_kept = 0;  // entropy_token_frac < 1: tokens whose policy gradient was kept

  static constexpr int kFields = 10;
  void add(const GrpoLossStats& o);
  std::vector<double> to_vector() const;  // (kFields)
  static GrpoLossStats from_vector(const std::vector<double>& v);
  double mean_ratio() const { return tokens > 0 ? ratio_sum / tokens : 0.0; }
  double clip_frac_low() const { return tokens > 0 ? clip_low / tokens : 0.0; }
  double clip_frac_high() const { return tokens > 0 ? clip_high / tokens : 0.0; }
  double clip_frac_dual() const { return tokens > 0 ? clip_dual / tokens : 0.0; }
  double clip_frac() const { return tokens > 0 ? (clip_low + clip_high) / tokens : 0.0; }
  double kl_mean() const { return tokens > 0 ? kl_sum / tokens : 0.0; }
  double entropy_mean() const { return tokens > 0 ? entropy_sum / tokens : 0.0; }
  double pg_loss_mean() const { return tokens > 0 ? pg_loss_sum / tokens : 0.0; }
  double cov_selected_frac() const { return tokens > 0 ? cov_selected / tokens : 0.0; }
  double entropy_kept_frac() const { return tokens > 0 ? entropy_kept / tokens : 0.0; }
};

struct GrpoLossResult {
  double loss = 0;                // this micro-batch's share of the step's loss
  std::vector<float> dlogprob;    // (N) d loss / d logprob (0 off the mask)
  std::vector<float> dentropy;    // (N) d loss / d entropy when entropy_coef > 0, else empty
  GrpoLossStats stats;
};

// The GRPO loss of one micro-batch and its gradient. Per loss token t of sequence i,
// with rho = exp(logprob - old_logprob) and A = advantage[i] (policy_loss 'gspo':
// rho = s_i = exp(mean over i's loss tokens of (logprob - old_logprob)) for every token
// of i, and d rho / d logprob_t = s_i, GSPO-token's gradient; 'cispo': pg = -A c logprob
// with the constant c = clip(rho, 1 - clip_low, 1 + clip_high), gradient -A c, the
// clip statistics counting where c != rho, whatever the sign of A):
//   pg   = max(-A rho, -A clip(rho, 1 - clip_low, 1 + clip_high)),
//          then min(pg, -dual_clip * A) where A < 0 and dual_clip > 0
//   l_t  = w_is pg + kl_coef * KL_est(ref_logprob - logprob) - entropy_coef * entropy
//          (w_is = is_weight[t], a constant; 1 without it)
//   loss = sum_t w_t l_t,  w_t = 1 / counts.tokens                          token_mean
//                              = 1 / (len_i * counts.sequences)              seq_mean_token_mean
//                              = 1 / (counts.norm_len * counts.sequences)    seq_mean_token_sum_norm
//                              = 1 / counts.sequences                        seq_mean_token_sum
// (len_i: the loss tokens of sequence i, all in this micro-batch: a sequence is never
// split). 'kl_cov' / 'clip_cov' (Cui et al. 2025) select k = max(1, floor(cov_ratio * n))
// of the micro-batch's n loss tokens by c_t = (A_t - mean A) (logprob_t - mean logprob),
// the means over its loss tokens: kl_cov takes the k largest c_t (ties: the earlier
// token) and pg = -A rho + cov_kl_coef |logprob - old_logprob| on them, -A rho (no clip)
// elsewhere; clip_cov takes PPO's pg and sets it (and its gradient) to 0 on k tokens
// drawn among those where the clip is not active and cov_lb < c_t < cov_ub (fewer when
// there are fewer): the ones with the smallest sampling_uniform(cov_seed, token_key[t],
// 0). The selection is per micro-batch, as in verl. 'sapo': pg = -A (4 / tau) s,
// s = sigmoid(tau (rho - 1)), gradient -A 4 s (1 - s) rho, tau = sapo_tau_pos for A > 0,
// else sapo_tau_neg; no clip statistics. entropy_token_frac rho < 1: pg (and
// its gradient) is 0 on the loss tokens whose entropy is below the micro-batch's
// (1 - rho) quantile of the loss tokens' entropies (torch.quantile's linear
// interpolation), after everything above. Computed in float64; dlogprob/dentropy rounded to float32. Missing arrays that
// the config needs, a mask value other than 0/1 or a seq_index out of range for a loss
// token, and zero counts with loss tokens present are internal errors (ZT_ASSERT).
GrpoLossResult grpo_policy_loss(const GrpoConfig& config, const GrpoTokens& batch, const GrpoCounts& counts);

// config.kl_estimator's value at d = log pi_ref - log pi (k1 -d, k2 d^2 / 2, k3 e^d - d - 1,
// k3_clamped min(k3, 10)): what grpo.kl_in_reward sums over a completion's tokens.
double kl_estimator_value(const GrpoConfig& config, double d);

// ---- training-inference mismatch (rollout correction) ----

// How far the rollout's log-probs are from the trainer's at the same weights, and what the
// correction did, as sums over the loss tokens (add over micro-batches and ranks with
// to_vector / from_vector; abs_diff_max is reduced with a max, separately). With
// d_t = log pi_old(trainer) - log pi_rollout of a sampled token:
//   KL(pi_rollout || pi_trainer) ~ mean(-d)       (k1, the tokens are the rollout's samples)
//                                ~ mean(e^d - d - 1)  (k3, >= 0)
struct MismatchStats {
  double tokens = 0;        // loss tokens compared (before any rejection)
  double neg_diff_sum = 0;  // sum of -d
  double k3_sum = 0;        // sum of e^d - d - 1
  double abs_diff_sum = 0;  // sum of |d|
  double weight_sum = 0;    // sum of the applied weights over the tokens kept (1 each without rollout_is)
  double truncated = 0;     // tokens whose weight was capped at rollout_is_cap
  double rejected = 0;      // tokens removed from the loss by a mask mode
  double nonfinite = 0;     // loss tokens whose d is not finite (a diverged model): left out of
                            // every sum above
  double abs_diff_max = 0;  // max |d| (not in to_vector: reduce it with a max)

  static constexpr int kFields = 8;
  void add(const MismatchStats& o);
  std::vector<double> to_vector() const;  // (kFields), without abs_diff_max
  static MismatchStats from_vector(const std::vector<double>& v, double abs_diff_max);
  double kl_k1() const { return tokens > 0 ? neg_diff_sum / tokens : 0.0; }
  double kl_k3() const { return tokens > 0 ? k3_sum / tokens : 0.0; }
  double abs_diff_mean() const { return tokens > 0 ? abs_diff_sum / tokens : 0.0; }
  double weight_mean() const { return tokens > rejected ? weight_sum / (tokens - rejected) : 0.0; }
  double truncated_frac() const { return tokens > 0 ? truncated / tokens : 0.0; }
  double rejected_frac() const { return tokens > 0 ? rejected / tokens : 0.0; }
};

struct RolloutCorrection {
  std::vector<float> weight;  // (N) is_weight for grpo_policy_loss (1 off the mask and for 'none')
  std::vector<float> mask;    // (N) the batch's mask with the rejected tokens cleared
  MismatchStats stats;
};

// The rollout correction of one micro-batch (config.rollout_is) from the trainer's log-probs
// at the rollout's weights (`trainer_logprob`, what becomes old_logprob) and the sampler's
// (`rollout_logprob`), over the loss tokens of `batch` (its mask, seq_index, n_seqs; a
// sequence is never split between micro-batches). In float64, per loss token t of
// sequence i, with d_t as above and D_i = sum of d_t over i's loss tokens (n_i of them):
//   none               w = 1
//   token_truncate     w = min(e^d_t, cap)
//   token_mask         w = e^d_t if floor <= e^d_t <= cap, else rejected
//   sequence_truncate  w = min(e^D_i, cap)
//   sequence_mask      w = e^D_i if floor <= e^D_i <= cap, else the sequence is rejected
//   geo_mask           w = 1 if floor <= e^(D_i / n_i) <= cap, else the sequence is rejected
// Rejected tokens leave `mask`, so the caller's loss normalisers (count_grpo_tokens on the
// new mask) do not count them. A loss token whose d is not finite (NaN or infinite
// log-probs: a diverged model) is counted in stats.nonfinite only and left out of D_i; the
// mask modes remove it from the loss, the truncate modes give it weight 0, 'none' 1.
RolloutCorrection rollout_correction(const GrpoConfig& config, const GrpoTokens& batch,
                                     const float* trainer_logprob, const float* rollout_logprob);

}  // namespace zeroth
