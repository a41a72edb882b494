#!/usr/bin/python3
"""PyTorch reference of zeroth's GRPO loss (include/zeroth/grpo.h, docs/training.md "GRPO").

Writes the golden files tests/golden/grpo/<loss_agg>__<clip>.json that tests/train/test_grpo.cpp
compares against: for fixed inputs (rewards of 3 groups of 4 samples, per-token log-probs of
the current, old and reference policies, entropies, a completion mask with prompt/padding
tokens and one fully masked sample) and for every advantage estimator x KL estimator
(incl. kl_coef = 0), the advantages, the aggregated loss, d loss / d logprob and
d loss / d entropy (autograd, float64) and the loss statistics.

Files: one per loss aggregation (token_mean, seq_mean_token_mean, seq_mean_token_sum_norm)
x clip setting (ppo: 0.2/0.2; clip_higher: 0.2/0.28 (DAPO); dual_clip: 0.2/0.2, c = 3;
entropy: clip-higher + dual clip + entropy_coef 0.01; gspo: policy_loss gspo, the
sequence-level ratio of GSPO (Zheng et al. 2025) with its GSPO-token gradient, 0.1/0.12,
c = 3; cispo: policy_loss cispo, -sg(clip(rho)) A log pi (MiniMax-M1), 0.2/0.28 and the
entropy bonus; cispo_mask: the same with the unified form's token mask; kl_cov / clip_cov:
the covariance-selected tokens of Cui et al. 2025 ("The Entropy Mechanism of RL for
Reasoning LMs", verl's loss modes), selected per micro-batch, so these files also hold the
loss, gradient and statistics of the two-micro-batch split, "split_*"; entropy_top: only the
top 20% of each micro-batch's tokens by entropy keep their policy gradient, Wang et al.
2025, also with its split; sapo: SAPO's soft gate with temperatures 2 / 3).

Run with Debian's torch (python3-torch) from the repository root:
    /usr/bin/python3 scripts/reference/grpo_ref.py [--out tests/golden/grpo]
The output is deterministic (fixed seeds); re-running it must leave the files unchanged.
"""
import argparse
import json
import math
import os

import torch

GROUP_SIZE = 4
ADV_EPS = 1e-6
KL_COEF = 0.1          # larger than R1-Zero's 0.001 so the KL term is visible in the test
NORM_LEN = 16          # seq_mean_token_sum_norm's constant (Dr. GRPO: max_new_tokens)
DUAL_C = 3.0

CLIP_SETTINGS = {
    "ppo": dict(clip_low=0.2, clip_high=0.2, dual_clip=0.0, entropy_coef=0.0),
    "clip_higher": dict(clip_low=0.2, clip_high=0.28, dual_clip=0.0, entropy_coef=0.0),
    "dual_clip": dict(clip_low=0.2, clip_high=0.2, dual_clip=DUAL_C, entropy_coef=0.0),
    "entropy": dict(clip_low=0.2, clip_high=0.28, dual_clip=DUAL_C, entropy_coef=0.01),
    # GSPO (sequence-level ratios; its paper clips at 3e-4 / 4e-4, which would clip every
    # sequence of these random inputs: wider bounds so some sequences are clipped, some not)
    "gspo": dict(clip_low=0.1, clip_high=0.12, dual_clip=DUAL_C, entropy_coef=0.0, policy_loss="gspo"),
    # CISPO (MiniMax-M1): the clipped ratio weights A log pi, a stop-gradient constant
    "cispo": dict(clip_low=0.2, clip_high=0.28, dual_clip=0.0, entropy_coef=0.01, policy_loss="cispo"),
    # CISPO with the unified formulation's mask M_t (MiniMax-M1 eq. 7): tokens where PPO's
    # clip is active drop out
    "cispo_mask": dict(clip_low=0.2, clip_high=0.28, dual_clip=0.0, entropy_coef=0.01,
                       policy_loss="cispo_mask"),
    # KL-Cov: no clip, |log pi - log pi_old| on the top cov_ratio tokens by covariance (a
    # larger ratio than verl's 2e-4 so several tokens of these ~60 are selected)
    "kl_cov": dict(clip_low=0.2, clip_high=0.28, dual_clip=0.0, entropy_coef=0.0, policy_loss="kl_cov",
                   cov_ratio=0.1, cov_kl_coef=1.0),
    # Clip-Cov: PPO's clip (+ dual clip), the gradient dropped on cov_ratio of the tokens drawn
    # among the unclipped ones with covariance in (cov_lb, cov_ub) (a window that leaves
    # some tokens out on both sides for these inputs)
    "clip_cov": dict(clip_low=0.2, clip_high=0.28, dual_clip=DUAL_C, entropy_coef=0.01, policy_loss="clip_cov",
                     cov_ratio=0.1, cov_lb=0.3, cov_ub=1.5),
    # Only the top 20% of the tokens by entropy keep their policy gradient (Wang et al.
    # 2025, "Beyond the 80/20 Rule"; the threshold is torch.quantile's), the entropy
    # bonus stays on every token
    "entropy_top": dict(clip_low=0.2, clip_high=0.28, dual_clip=DUAL_C, entropy_coef=0.01, entropy_token_frac=0.2),
    # SAPO (Qwen 2025; TRL loss_type sapo): the soft gate (4 / tau) sigmoid(tau (rho - 1)),
    # asymmetric temperatures (larger than TRL's 1.0 / 1.05 so the gate bends over these
    # ratios)
    "sapo": dict(clip_low=0.2, clip_high=0.28, dual_clip=0.0, entropy_coef=0.0, policy_loss="sapo",
                 sapo_tau_pos=2.0, sapo_tau_neg=3.0),
}
COV_SEED = 0x5eed1234   # clip_cov's draw: sampling_uniform(COV_SEED, token_key, 0)
MASK64 = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def sampling_uniform(seed, sequence_id, step):
    """src/tensor/sampler.cpp's counter-based uniform."""
    h = splitmix64(splitmix64(splitmix64(seed) ^ sequence_id) ^ step)
    return (h >> 11) * 2.0 ** -53
AGGS = ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm", "seq_mean_token_sum"]
ADVANTAGES = ["grpo", "dr_grpo", "rloo"]
KLS = [("none", 0.0), ("k1", KL_COEF), ("k2", KL_COEF), ("k3", KL_COEF), ("k3_clamped", KL_COEF)]
KL_CLAMP = 10.0  # k3_clamped: verl's low_var_kl clamps k3 to [-10, 10]


def make_inputs():
    """Fixed inputs: 12 sequences (3 groups of 4), prompt tokens (mask 0), completions of
    varying length, padding (seq -1), one truncated sample masked out entirely."""
    g = torch.Generator().manual_seed(1234)
    rewards = [1.1, 0.1, 0.0, 1.1,      # mixed group
               1.0, 1.0, 1.0, 1.0,      # all equal: advantage 0
               0.0, 0.1, 1.1, 0.1]      # mixed group
    n_seqs = len(rewards)
    comp_len = [5, 9, 3, 7, 4, 6, 2, 8, 6, 10, 5, 4]
    masked_out = {9}                    # e.g. a truncated sample under mask_truncated
    mask, seq = [], []
    for s in range(n_seqs):
        for _ in range(2):              # prompt tokens: not in the loss
            mask.append(0.0); seq.append(s)
        for _ in range(comp_len[s]):
            mask.append(0.0 if s in masked_out else 1.0); seq.append(s)
        if s % 3 == 2:                  # padding between sequences
            mask.append(0.0); seq.append(-1)
    n = len(mask)
    lp = -(0.05 + 3.0 * torch.rand(n, generator=g, dtype=torch.float64))
    delta = 0.35 * torch.randn(n, generator=g, dtype=torch.float64)   # log pi - log pi_old
    # a few large ratios (beyond the dual-clip constant) and exact ratio-1 tokens
    for t in range(3, n, 11):
        delta[t] = 1.3
    for t in range(5, n, 13):
        delta[t] = 0.0
    ref_delta = 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    # a few tokens the policy has all but ruled out where the reference has not: k3 =
    # e^3 - 4 = 16.1 there, beyond k3_clamped's cap
    for t in range(7, n, 17):
        ref_delta[t] = 3.0
    ent = 0.1 + 2.0 * torch.rand(n, generator=g, dtype=torch.float64)
    lp32 = lp.float()
    old32 = (lp32.double() - delta).float()
    # keep every ratio away from the clip boundaries, so the kinks are never hit
    bounds = [0.8, 1.2, 1.28, DUAL_C]
    for t in range(n):
        while True:
            r = math.exp(float(lp32[t]) - float(old32[t]))
            if all(abs(r - b) > 1e-4 for b in bounds):
                break
            old32[t] = float(old32[t]) - 0.01
    ref32 = (lp32.double() + ref_delta).float()
    # a padding token may carry garbage log-probs: it must not matter
    for t in range(n):
        if seq[t] == -1:
            lp32[t] = -50.0; old32[t] = 10.0; ref32[t] = 30.0
    # the micro-batch split for the data-parallel check: at a sequence boundary
    split = next(t for t in range(n) if seq[t] == 6)
    # clip_cov's token ids: (sequence << 32) | position in the sequence, 0 off the loss
    token_key, pos = [], {}
    for t in range(n):
        pos[seq[t]] = pos.get(seq[t], -1) + 1
        token_key.append((seq[t] << 32) | pos[seq[t]] if mask[t] > 0 else 0)
    return dict(rewards=rewards, logprob=[float(x) for x in lp32], old_logprob=[float(x) for x in old32],
                ref_logprob=[float(x) for x in ref32], entropy=[float(x) for x in ent.float()],
                mask=mask, seq_index=seq, split=split, token_key=token_key, cov_seed=COV_SEED)


def advantages(rewards, kind):
    r = torch.tensor(rewards, dtype=torch.float64).view(-1, GROUP_SIZE)
    mean = r.mean(dim=1, keepdim=True)
    if kind == "grpo":
        a = (r - mean) / (r.std(dim=1, keepdim=True) + ADV_EPS)    # torch.std: divisor G - 1
    elif kind == "dr_grpo":
        a = r - mean
    else:                                                          # rloo
        a = r - (r.sum(dim=1, keepdim=True) - r) / (GROUP_SIZE - 1)
    equal = (r == r[:, :1]).all(dim=1, keepdim=True)
    a = torch.where(equal, torch.zeros_like(a), a)                  # all-equal group: exactly 0
    return a.view(-1)


def cov_selection(inp, a, lp, old, mask, clip, parts):
    """kl_cov / clip_cov: the tokens selected in each micro-batch [b, e) of `parts`, with
    c_t = (A_t - mean A)(log pi_t - mean log pi) over its loss tokens; asserts that no
    decision sits within 1e-9 of a tie or a bound (the C++ sums in another order)."""
    n = len(inp["mask"])
    sel = torch.zeros(n, dtype=torch.float64)
    lo, hi = 1.0 - clip["clip_low"], 1.0 + clip["clip_high"]
    for b, e in parts:
        on = [t for t in range(b, e) if inp["mask"][t] > 0]
        if not on:
            continue
        a_mean = sum(float(a[t]) for t in on) / len(on)
        lp_mean = sum(float(lp[t]) for t in on) / len(on)
        cov = {t: (float(a[t]) - a_mean) * (float(lp[t]) - lp_mean) for t in on}
        k = max(1, int(clip["cov_ratio"] * len(on)))
        if clip["policy_loss"] == "kl_cov":
            order = sorted(on, key=lambda t: (-cov[t], t))
            if k < len(order):
                assert cov[order[k - 1]] - cov[order[k]] > 1e-9, "a tie at the k-th token"
            chosen = order[:k]
        else:
            cand = []
            for t in on:
                r = math.exp(float(lp[t]) - float(old[t]))
                active = -float(a[t]) * min(max(r, lo), hi) > -float(a[t]) * r
                assert abs(cov[t] - clip["cov_lb"]) > 1e-9 and abs(cov[t] - clip["cov_ub"]) > 1e-9
                if not active and clip["cov_lb"] < cov[t] < clip["cov_ub"]:
                    cand.append(t)
            chosen = sorted(cand, key=lambda t: (sampling_uniform(inp["cov_seed"], inp["token_key"][t], 0), t))[:k]
        for t in chosen:
            sel[t] = 1.0
    return sel


def grpo_loss(inp, adv, agg, clip, kl_name, kl_coef, parts=None):
    n = len(inp["mask"])
    n_seqs = len(inp["rewards"])
    lp = torch.tensor(inp["logprob"], dtype=torch.float64, requires_grad=True)
    ent = torch.tensor(inp["entropy"], dtype=torch.float64, requires_grad=True)
    old = torch.tensor(inp["old_logprob"], dtype=torch.float64)
    ref = torch.tensor(inp["ref_logprob"], dtype=torch.float64)
    mask = torch.tensor(inp["mask"], dtype=torch.float64)
    seq = torch.tensor([s if s >= 0 else n_seqs for s in inp["seq_index"]])   # n_seqs: a dummy bin
    a = torch.cat([adv, torch.zeros(1, dtype=torch.float64)])[seq]

    if clip.get("policy_loss") == "gspo":
        # s_i = exp(mean over i's loss tokens of (log pi - log pi_old)); GSPO-token:
        # s_i,t = sg[s_i] * pi(y_t) / sg[pi(y_t)] (value s_i, d s_i,t / d log pi_t = s_i)
        dl = (lp - old).detach() * mask
        s_sum = torch.zeros(n_seqs + 1, dtype=torch.float64).index_add(0, seq, dl)
        s_len = torch.zeros(n_seqs + 1, dtype=torch.float64).index_add(0, seq, mask)
        log_s = torch.where(s_len > 0, s_sum / torch.clamp(s_len, min=1.0), torch.zeros_like(s_sum))
        seq_ratio = torch.exp(log_s)
        lo_, hi_ = 1.0 - clip["clip_low"], 1.0 + clip["clip_high"]
        for i in range(n_seqs):
            if s_len[i] > 0:
                r = float(seq_ratio[i])
                assert all(abs(r - b) > 1e-4 for b in (lo_, hi_, clip["dual_clip"])), "a sequence ratio on a kink"
        ratio = torch.exp(log_s[seq] + lp - lp.detach())
    else:
        ratio = torch.exp(lp - old)
    lo, hi = 1.0 - clip["clip_low"], 1.0 + clip["clip_high"]
    pg1 = -a * ratio
    pg2 = -a * torch.clamp(ratio, lo, hi)
    pg = torch.maximum(pg1, pg2)
    clipped = (pg2 > pg1) & (mask > 0)
    sel = torch.zeros(n, dtype=torch.float64)
    if clip.get("policy_loss") in ("kl_cov", "clip_cov"):
        sel = cov_selection(inp, a.detach(), lp.detach(), old, mask, clip, parts or [(0, n)])
    if clip.get("policy_loss") == "kl_cov":
        pg = -a * ratio + clip["cov_kl_coef"] * torch.abs(lp - old) * sel
        clipped = torch.zeros(n, dtype=torch.bool)
    if clip.get("policy_loss") == "sapo":
        tau = torch.where(a > 0, torch.full_like(a, clip["sapo_tau_pos"]), torch.full_like(a, clip["sapo_tau_neg"]))
        pg = -a * (4.0 / tau) * torch.sigmoid(tau * (ratio - 1.0))
        clipped = torch.zeros(n, dtype=torch.bool)
    if clip.get("policy_loss") in ("cispo", "cispo_mask"):
        pg = -a * torch.clamp(ratio, lo, hi).detach() * lp
        clipped = ((ratio < lo) | (ratio > hi)) & (mask > 0)
        if clip["policy_loss"] == "cispo_mask":
            keep = ~(((a > 0) & (ratio > hi)) | ((a < 0) & (ratio < lo)))
            pg = torch.where(keep, pg, torch.zeros_like(pg))
    dual_active = torch.zeros(n, dtype=torch.bool)
    if clip["dual_clip"] > 0:
        pg3 = -a * clip["dual_clip"]
        dual_active = (a < 0) & (pg3 < pg) & (mask > 0)
        pg = torch.where(a < 0, torch.minimum(pg, pg3), pg)
    if clip.get("policy_loss") == "clip_cov":
        pg = pg * (1.0 - sel)
    keep = mask.clone()
    rho = clip.get("entropy_token_frac", 1.0)
    if rho < 1.0:
        ent_d = ent.detach()
        for b, e in parts or [(0, n)]:
            on = mask[b:e] > 0
            if not bool(on.any()):
                continue
            thr = float(torch.quantile(ent_d[b:e][on], 1.0 - rho))
            for t in range(b, e):
                if mask[t] > 0:
                    gap = float(ent_d[t]) - thr
                    assert gap == 0.0 or abs(gap) > 1e-9, "an entropy at the threshold"
                    keep[t] = 1.0 if gap >= 0.0 else 0.0
        pg = pg * keep
    d = ref - lp
    if kl_name == "k1":
        kl = -d
    elif kl_name == "k2":
        kl = 0.5 * d * d
    elif kl_name == "k3":
        kl = torch.exp(d) - d - 1.0
    elif kl_name == "k3_clamped":
        kl = torch.clamp(torch.exp(d) - d - 1.0, max=KL_CLAMP)
    else:
        kl = torch.zeros(n, dtype=torch.float64)
    token = pg + kl_coef * kl - clip["entropy_coef"] * ent

    masked = token * mask
    seq_sum = torch.zeros(n_seqs + 1, dtype=torch.float64).index_add(0, seq, masked)[:n_seqs]
    seq_len = torch.zeros(n_seqs + 1, dtype=torch.float64).index_add(0, seq, mask)[:n_seqs]
    live = seq_len > 0
    if agg == "token_mean":
        loss = masked.sum() / mask.sum()
    elif agg == "seq_mean_token_mean":
        loss = (seq_sum[live] / seq_len[live]).sum() / live.sum()
    elif agg == "seq_mean_token_sum":
        loss = seq_sum[live].sum() / live.sum()
    else:
        loss = (seq_sum[live] / NORM_LEN).sum() / live.sum()
    loss.backward()

    on = mask > 0
    tokens = float(mask.sum())
    ratio_d = ratio.detach()
    stats = dict(
        tokens=tokens,
        mean_ratio=float(ratio_d[on].mean()),
        clip_low=float((clipped & (ratio_d < lo)).sum()),
        clip_high=float((clipped & (ratio_d > hi)).sum()),
        clip_dual=float(dual_active.sum()),
        kl_mean=float(kl.detach()[on].mean()) if kl_coef > 0 else 0.0,
        entropy_mean=float(ent.detach()[on].mean()),
        pg_loss_mean=float(pg.detach()[on].mean()),
        cov_selected=float(sel.sum()),
        entropy_kept=float(keep.sum()) if rho < 1.0 else 0.0,
    )
    return float(loss), lp.grad.tolist(), ent.grad.tolist(), stats


def dump(obj, path):
    """One key per line, values compact: small diffs when regenerated."""
    lines = ["{"]
    keys = list(obj)
    for i, k in enumerate(keys):
        v = obj[k]
        if k == "cases":
            lines.append(' "cases": [')
            for j, c in enumerate(v):
                lines.append("  " + json.dumps(c, separators=(",", ":")) + ("," if j + 1 < len(v) else ""))
            lines.append(" ]" + ("," if i + 1 < len(keys) else ""))
        else:
            lines.append(" " + json.dumps(k) + ": " + json.dumps(v, separators=(",", ":")) +
                         ("," if i + 1 < len(keys) else ""))
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/golden/grpo")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    inp = make_inputs()
    for agg in AGGS:
        for clip_name, clip in CLIP_SETTINGS.items():
            cases = []
            for adv_kind in ADVANTAGES:
                adv = advantages(inp["rewards"], adv_kind)
                for kl_name, kl_coef in KLS:
                    loss, dlp, dent, stats = grpo_loss(inp, adv, agg, clip, kl_name, kl_coef)
                    case = dict(advantage=adv_kind, kl_estimator=kl_name if kl_coef > 0 else "k3",
                                kl_coef=kl_coef, advantages=adv.tolist(), loss=loss,
                                dlogprob=dlp, dentropy=dent if clip["entropy_coef"] > 0 else [],
                                stats=stats)
                    if clip.get("policy_loss") in ("kl_cov", "clip_cov") or clip.get("entropy_token_frac", 1.0) < 1.0:
                        # per micro-batch selection: the split's own reference
                        n = len(inp["mask"])
                        sl, sd, _, ss = grpo_loss(inp, adv, agg, clip, kl_name, kl_coef,
                                                  [(0, inp["split"]), (inp["split"], n)])
                        case.update(split_loss=sl, split_dlogprob=sd, split_stats=ss)
                    cases.append(case)
            config = dict(loss_agg=agg, adv_eps=ADV_EPS, loss_norm_len=NORM_LEN if agg == "seq_mean_token_sum_norm" else 0,
                          **clip)
            obj = dict(generator="scripts/reference/grpo_ref.py (torch %s)" % torch.__version__.split("+")[0],
                       group_size=GROUP_SIZE, norm_len=NORM_LEN, config=config, inputs=inp, cases=cases)
            path = os.path.join(args.out, "%s__%s.json" % (agg, clip_name))
            dump(obj, path)
            print("wrote", path, "(%d cases)" % len(cases))


if __name__ == "__main__":
    main()
