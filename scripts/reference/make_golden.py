"""Writes tests/golden/<name>/ for zeroth's DeepSeek-V3 golden test, after running self-checks.

Owns: the tiny golden configs, their deterministic weights and batch, the float64 forward and
backward through deepseek_v3_ref.py, the checks that make the golden data trustworthy
(gradcheck, tied-weight gradients, routing reductions and margins, KV-cache equivalence,
safetensors round trip, a float32 re-run that measures the tolerances a float32 implementation
needs) and the README in tests/golden.
Must not: write anything outside the output directory; produce data whose expert selection
sits near a tie (a float32 implementation could then legitimately route differently).

Usage: /usr/bin/python3 scripts/reference/make_golden.py [--out tests/golden] [--skip-gradcheck]
"""

import argparse
import datetime
import json
import os
import sys

import numpy as np
import torch
from torch.nn.utils import stateless

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_v3_ref as R  # noqa: E402
from safetensors_io import load_safetensors, save_safetensors  # noqa: E402

B, T = 2, 7
TEMPERATURE_ALT = 0.7
INIT_STD = 0.2
NORM_STD = 0.1
BIAS_RANGE = 0.1          # e_score_correction_bias ~ U(-BIAS_RANGE, BIAS_RANGE)
MIN_ROUTING_MARGIN = 2e-3  # smallest allowed gap at any top-k / top-group boundary

_BASE = {
    "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 8,
    "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 4,
    "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8,
    "n_shared_experts": 1, "first_k_dense_replace": 1, "norm_topk_prob": True,
    "routed_scaling_factor": 2.5, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "max_position_embeddings": 128, "initializer_range": 0.02, "rope_interleave": True,
    "bos_token_id": 0, "eos_token_id": 1,
}

# name -> (config overrides, aux balance-loss alpha (0 = none), base seed)
GOLDEN = {
    "tiny_q_full_tied": ({"q_lora_rank": None, "tie_word_embeddings": True, "n_routed_experts": 8,
                          "n_group": 4, "topk_group": 2, "num_experts_per_tok": 2}, 0.0, 1000),
    "tiny_q_lora_untied": ({"q_lora_rank": 24, "tie_word_embeddings": False, "n_routed_experts": 12,
                            "n_group": 4, "topk_group": 2, "num_experts_per_tok": 3}, 0.0, 2000),
    "tiny_yarn_aux": ({"q_lora_rank": 24, "tie_word_embeddings": False, "n_routed_experts": 8,
                       "n_group": 4, "topk_group": 2, "num_experts_per_tok": 2,
                       "max_position_embeddings": 128,
                       "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32,
                                        "beta_fast": 32, "beta_slow": 1, "mscale": 0.9,
                                        "mscale_all_dim": 1.0}}, 0.125, 3000),
}


def make_config(overrides):
    d = dict(_BASE)
    d.update(overrides)
    return R.Config(d)


def build_model(cfg, seed):
    """Float32 weights (what model.safetensors stores) and a non-zero router bias."""
    g = torch.Generator().manual_seed(seed)
    model = R.from_config(cfg)
    R.init_weights(model, g, std=INIT_STD, norm_std=NORM_STD)
    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            if isinstance(layer.mlp, R.DeepseekV3MoE):
                b = layer.mlp.gate.e_score_correction_bias
                b.copy_((torch.rand(b.shape, generator=g, dtype=torch.float64) * 2 - 1) * BIAS_RANGE)
    return model, g


def make_batch(cfg, g):
    ids = torch.randint(0, cfg.vocab_size, (B, T), generator=g, dtype=torch.int64)
    mask = torch.ones(B, T - 1, dtype=torch.float64)
    mask[0, :2] = 0.0   # a "prompt": the first two predictions do not count
    mask[1, -1] = 0.0   # a "pad" at the end
    mask[1, 0] = 0.0
    return ids, mask


def run(model, ids, mask, alpha):
    """Forward + backward. -> dict of outputs (tensors detached) and {param name: grad}."""
    model.zero_grad(set_to_none=True)
    logits = model(ids)
    ce = R.masked_mean_nll(logits, ids, mask)
    aux = R.total_balance_loss(model, alpha) if alpha > 0 else None
    loss = ce if aux is None else ce + aux
    loss.backward()
    out = {"logits": logits.detach(), "loss": loss.detach(), "ce_loss": ce.detach(),
           "logprobs": R.token_logprobs(logits.detach(), ids, 1.0),
           f"logprobs_t{TEMPERATURE_ALT}": R.token_logprobs(logits.detach(), ids, TEMPERATURE_ALT)}
    if aux is not None:
        out["aux_loss"] = aux.detach()
    for i, r in model.moe_routing().items():
        out[f"routing.layers.{i}.topk_idx"] = r["topk_idx"].detach()
        out[f"routing.layers.{i}.topk_weight"] = r["topk_weight"].detach()
        out[f"routing.layers.{i}.scores"] = r["scores"].detach()
    # An expert no token chose gets no .grad from autograd; its gradient is zero.
    grads = {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
             for n, p in model.named_parameters()}
    return out, grads


# ----------------------------------------------------------------------------- routing checks

def route_token_loop(scores, bias, cfg):
    """Plain-python group-limited routing of one token (HF rules, 0.0 fill), as a second opinion.
    scores, bias: lists of E floats -> sorted list of chosen expert ids."""
    e, per = cfg.n_routed_experts, cfg.n_routed_experts // cfg.n_group
    biased = [s + b for s, b in zip(scores, bias)]
    gscore = [sum(sorted(biased[gi * per:(gi + 1) * per], reverse=True)[:2]) for gi in range(cfg.n_group)]
    keep = sorted(range(cfg.n_group), key=lambda gi: -gscore[gi])[:cfg.topk_group]
    masked = [biased[i] if i // per in keep else 0.0 for i in range(e)]
    return sorted(sorted(range(e), key=lambda i: -masked[i])[:cfg.num_experts_per_tok])


def routing_margins(scores, bias, cfg):
    """-> (min gap at the top-k boundary, min gap at the top-group boundary, whether 0-fill
    (HF) and -inf-fill (DeepSeek's reference code) select the same experts for every token)."""
    n, e = scores.shape
    per = e // cfg.n_group
    biased = scores + bias.unsqueeze(0)
    gs = biased.view(n, cfg.n_group, per).topk(2, dim=-1)[0].sum(-1)
    gsorted = gs.sort(dim=-1, descending=True)[0]
    gmargin = (gsorted[:, cfg.topk_group - 1] - gsorted[:, cfg.topk_group]).min().item() \
        if cfg.topk_group < cfg.n_group else float("inf")
    gidx = gs.topk(cfg.topk_group, dim=-1)[1]
    gmask = torch.zeros_like(gs).scatter_(1, gidx, 1.0).unsqueeze(-1).expand(n, cfg.n_group, per).reshape(n, e)
    zero_fill = biased.masked_fill(gmask == 0, 0.0)
    inf_fill = biased.masked_fill(gmask == 0, float("-inf"))
    k = cfg.num_experts_per_tok
    zs = zero_fill.sort(dim=-1, descending=True)[0]
    kmargin = (zs[:, k - 1] - zs[:, k]).min().item()
    same = torch.equal(zero_fill.topk(k, dim=-1)[1].sort(-1)[0], inf_fill.topk(k, dim=-1)[1].sort(-1)[0])
    return kmargin, gmargin, same


def check_routing(model, out, cfg):
    """Asserts the golden routing is far from ties, agrees with the per-token loop, and that the
    correction bias changes at least one selection. -> min margin seen."""
    min_margin = float("inf")
    changed = 0
    for i, r in model.moe_routing().items():
        scores = r["scores"].detach().reshape(-1, cfg.n_routed_experts)
        bias = model.model.layers[i].mlp.gate.e_score_correction_bias.to(scores.dtype)
        km, gm, same = routing_margins(scores, bias, cfg)
        assert same, f"layer {i}: 0-fill and -inf-fill group masking select different experts"
        min_margin = min(min_margin, km, gm)
        idx = out[f"routing.layers.{i}.topk_idx"].reshape(scores.shape[0], -1)
        for tkn in range(scores.shape[0]):
            loop = route_token_loop(scores[tkn].tolist(), bias.tolist(), cfg)
            assert loop == sorted(idx[tkn].tolist()), f"layer {i} token {tkn}: loop {loop} vs {idx[tkn].tolist()}"
            plain = route_token_loop(scores[tkn].tolist(), [0.0] * len(bias), cfg)
            changed += loop != plain
    return min_margin, changed


# ----------------------------------------------------------------------------- self-checks

def check_gradcheck():
    """torch.autograd.gradcheck of CE + balance loss w.r.t. every parameter of a micro model."""
    cfg = R.Config({"vocab_size": 11, "hidden_size": 8, "intermediate_size": 12, "moe_intermediate_size": 4,
                    "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
                    "kv_lora_rank": 4, "q_lora_rank": 6, "qk_nope_head_dim": 2, "qk_rope_head_dim": 2,
                    "v_head_dim": 3, "n_routed_experts": 4, "n_group": 2, "topk_group": 1,
                    "num_experts_per_tok": 2, "first_k_dense_replace": 1, "n_shared_experts": 1,
                    "rope_scaling": {"type": "yarn", "factor": 2.0, "original_max_position_embeddings": 4,
                                     "mscale": 1.0, "mscale_all_dim": 1.0},
                    "max_position_embeddings": 8})
    model, g = build_model(cfg, 7)
    model = model.double()
    ids = torch.randint(0, cfg.vocab_size, (1, 5), generator=g)
    mask = torch.tensor([[0.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in model.named_parameters())
    buffers = {n: b for n, b in model.named_buffers()}

    def f(*ps):
        state = dict(zip(names, ps))
        state.update(buffers)
        logits = stateless.functional_call(model, state, (ids,))
        return R.masked_mean_nll(logits, ids, mask) + R.total_balance_loss(model, 0.3)

    ok = torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-7, rtol=1e-5)
    assert ok
    return sum(p.numel() for p in params)


def check_tied(cfg_tied, seed):
    """Tied gradient = embedding-lookup gradient + lm_head gradient of an untied twin."""
    model, g = build_model(cfg_tied, seed)
    model = model.double()
    ids, mask = make_batch(cfg_tied, g)
    _, grads = run(model, ids, mask, 0.0)
    assert "lm_head.weight" not in grads
    untied_cfg = R.Config(dict(cfg_tied.to_dict(), tie_word_embeddings=False))
    twin = R.from_config(untied_cfg).double()
    sd = dict(model.state_dict())
    twin.load_state_dict(sd)  # lm_head.weight gets a copy of the embedding
    assert torch.equal(twin.lm_head.weight, twin.model.embed_tokens.weight)
    assert twin.lm_head.weight.data_ptr() != twin.model.embed_tokens.weight.data_ptr()
    _, tg = run(twin, ids, mask, 0.0)
    combined = tg["model.embed_tokens.weight"] + tg["lm_head.weight"]
    err = (grads["model.embed_tokens.weight"] - combined).abs().max().item()
    assert err < 1e-12, f"tied gradient mismatch {err}"
    return err


def check_plain_topk():
    """With n_group = topk_group = 1 and a zero bias, routing is plain top-k of the sigmoid scores."""
    cfg = make_config({"q_lora_rank": None, "n_routed_experts": 8, "n_group": 1, "topk_group": 1,
                       "num_experts_per_tok": 3})
    model, g = build_model(cfg, 11)
    model = model.double()
    for layer in model.model.layers:
        if isinstance(layer.mlp, R.DeepseekV3MoE):
            layer.mlp.gate.e_score_correction_bias.zero_()
    x = torch.randn(50, cfg.hidden_size, generator=g, dtype=torch.float64)
    gate = model.model.layers[1].mlp.gate
    idx, w, scores = gate(x)
    ref = torch.sigmoid(x @ gate.weight.t())
    rv, ri = ref.topk(3, dim=-1)
    assert torch.equal(idx, ri), "plain top-k selection mismatch"
    rw = rv / rv.sum(-1, keepdim=True) * cfg.routed_scaling_factor
    err = (w - rw).abs().max().item()
    assert err < 1e-14, f"plain top-k weights mismatch {err}"
    return err


def check_kv_cache(model, ids):
    """Prefill 3 tokens then decode one at a time: logits equal the full forward."""
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache()
        parts = [model(ids[:, :3], cache)] + [model(ids[:, t:t + 1], cache) for t in range(3, ids.shape[1])]
        err = (torch.cat(parts, 1) - full).abs().max().item()
    assert err < 1e-12, f"kv-cache decode mismatch {err}"
    return err


def check_rope_interleave():
    """HF's rope_interleave path equals DeepSeek's original complex-pair rotation of
    (x0 + i x1, x2 + i x3, ...) up to one fixed permutation of the output, so q.k is unchanged."""
    cfg = make_config({"q_lora_rank": None, "n_routed_experts": 8, "n_group": 4, "topk_group": 2,
                       "num_experts_per_tok": 2, "qk_rope_head_dim": 8})
    g = torch.Generator().manual_seed(3)
    inv, _ = R.rope_tables(cfg)
    pos = torch.arange(6, dtype=torch.float64)
    freqs = torch.outer(pos, inv)                                    # (T, d/2)
    emb = torch.cat((freqs, freqs), -1).unsqueeze(0)                 # (1, T, d)
    q = torch.randn(1, 1, 6, 8, generator=g, dtype=torch.float64)
    k = torch.randn(1, 1, 6, 8, generator=g, dtype=torch.float64)
    hq = R.apply_rope(q, emb.cos(), emb.sin(), True)
    hk = R.apply_rope(k, emb.cos(), emb.sin(), True)
    rot = torch.polar(torch.ones_like(freqs), freqs)                 # (T, d/2) complex

    def complex_rope(x):
        return torch.view_as_real(torch.view_as_complex(x.reshape(1, 1, 6, 4, 2).contiguous()) * rot).reshape(1, 1, 6, 8)

    cq, ck = complex_rope(q), complex_rope(k)
    err = (hq @ hk.transpose(2, 3) - cq @ ck.transpose(2, 3)).abs().max().item()
    perm = torch.cat((torch.arange(0, 8, 2), torch.arange(1, 8, 2)))
    err = max(err, (hq - cq[..., perm]).abs().max().item())
    assert err < 1e-12, f"interleaved RoPE differs from the complex-pair rotation: {err}"
    return err


def rel_err(a, b):
    """max |a - b| / max |b| (0 when both are 0)."""
    den = b.abs().max().item()
    num = (a.double() - b.double()).abs().max().item()
    return num / den if den > 0 else num


# ----------------------------------------------------------------------------- golden writing

def to_np(t):
    if t.dtype == torch.int64:
        return t.numpy().astype(np.int64)
    return t.double().numpy().astype(np.float32)


def make_one(name, overrides, alpha, seed0, out_dir):
    cfg = make_config(overrides)
    for attempt in range(50):
        seed = seed0 + attempt
        model32, g = build_model(cfg, seed)
        ids, mask = make_batch(cfg, g)
        model = R.from_config(cfg).double()
        model.load_state_dict(model32.state_dict())  # float64 copy of the float32 values
        out, grads = run(model, ids, mask, alpha)
        margin, changed = check_routing(model, out, cfg)
        if margin >= MIN_ROUTING_MARGIN and changed > 0:
            break
    else:
        raise RuntimeError(f"{name}: no seed in [{seed0}, {seed0 + 50}) gives routing margins >= "
                           f"{MIN_ROUTING_MARGIN} with a bias-changed selection")

    # Float32 re-run from the same weights: the errors a correct float32 implementation makes.
    out32, grads32 = run(model32, ids, mask.float(), alpha)
    for i in model.moe_routing():
        key = f"routing.layers.{i}.topk_idx"
        assert torch.equal(out32[key], out[key]), f"{name}: float32 run routes differently in layer {i}"
    f32 = {"logits": rel_err(out32["logits"], out["logits"]),
           "loss": rel_err(out32["loss"], out["loss"]),
           "logprobs": rel_err(out32["logprobs"], out["logprobs"]),
           "grad_max": max(rel_err(grads32[n], grads[n]) for n in grads)}
    kv_err = check_kv_cache(model, ids)

    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    R.write_config(os.path.join(d, "config.json"), cfg)
    R.save_weights(model32, os.path.join(d, "model.safetensors"))
    golden = {"input_ids": ids, "loss_mask": mask}
    golden.update(out)
    golden.update({f"grad.{n}": gr for n, gr in grads.items()})
    meta = {"generator": "scripts/reference/make_golden.py", "torch_version": torch.__version__,
            "seed": str(seed), "compute_dtype": "float64", "temperature_alt": str(TEMPERATURE_ALT),
            "aux_loss_alpha": repr(alpha), "init_std": repr(INIT_STD),
            "loss": "masked mean next-token CE" + (" + sum over MoE layers of sequence balance loss"
                                                   if alpha > 0 else "")}
    save_safetensors(os.path.join(d, "golden.safetensors"), {k: to_np(v) for k, v in golden.items()}, meta)

    # Round trip: reload both files and rebuild the model from them.
    rcfg = R.read_config(os.path.join(d, "config.json"))
    assert rcfg.to_dict() == cfg.to_dict()
    re = R.from_config(rcfg).double()
    R.load_weights(re, os.path.join(d, "model.safetensors"))
    gt, gmeta = load_safetensors(os.path.join(d, "golden.safetensors"))
    assert gmeta["seed"] == str(seed)
    for k, v in golden.items():
        assert gt[k].shape == tuple(v.shape), f"{name}: '{k}' reloads as {gt[k].shape}, wrote {tuple(v.shape)}"
        assert np.array_equal(gt[k], to_np(v)), f"{name}: '{k}' changed in the round trip"
    with torch.no_grad():
        relog = re(torch.from_numpy(gt["input_ids"]))
    assert np.array_equal(relog.numpy().astype(np.float32), gt["logits"]), f"{name}: reload mismatch"

    sizes = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    return {"name": name, "seed": seed, "min_routing_margin": margin, "bias_changed_selections": changed,
            "loss": out["loss"].item(), "float32_rel_err": f32, "kv_cache_err": kv_err, "bytes": sizes,
            "n_grads": len(grads)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "golden"))
    ap.add_argument("--skip-gradcheck", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)  # deterministic reductions
    report = {"torch_version": torch.__version__, "date": datetime.date.today().isoformat()}
    if not args.skip_gradcheck:
        report["gradcheck_params"] = check_gradcheck()
    report["tied_grad_err"] = check_tied(make_config(GOLDEN["tiny_q_full_tied"][0]), 5)
    report["plain_topk_err"] = check_plain_topk()
    report["rope_interleave_err"] = check_rope_interleave()
    report["configs"] = [make_one(n, o, a, s, args.out) for n, (o, a, s) in GOLDEN.items()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
