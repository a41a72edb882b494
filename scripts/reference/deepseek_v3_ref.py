"""Independent PyTorch reference of Hugging Face's DeepseekV3ForCausalLM (model_type deepseek_v3).

Owns: the model as plain torch modules whose state_dict() keys equal HF's (including the
persistent `mlp.gate.e_score_correction_bias` buffers), config.json reading/writing with
HF's key names and defaults, F32 safetensors weight loading/saving, the RL-side functions
(per-token log-probabilities at a temperature, masked mean next-token cross-entropy) and the
DeepSeek-V3 sequence-wise auxiliary balance loss. zeroth's C++ model is tested against it.
Must not: depend on `transformers` or `safetensors` (not installed here); drift from HF's
semantics. The only deliberate difference: where HF up-casts to float32 (RMSNorm, router,
attention softmax, RoPE tables) this code computes in max(float32, input dtype), so a float64
run is float64 throughout. Run with Debian's /usr/bin/python3 (see scripts/reference/install.sh).
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import load_safetensors, save_safetensors  # noqa: E402

# ----------------------------------------------------------------------------- config

# HF DeepseekV3Config defaults (the values of deepseek-ai/DeepSeek-V3).
CONFIG_DEFAULTS = {
    "vocab_size": 129280,
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "num_hidden_layers": 61,
    "num_attention_heads": 128,
    "num_key_value_heads": 128,
    "n_shared_experts": 1,
    "n_routed_experts": 256,
    "routed_scaling_factor": 2.5,
    "kv_lora_rank": 512,
    "q_lora_rank": 1536,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "qk_nope_head_dim": 128,
    "n_group": 8,
    "topk_group": 4,
    "num_experts_per_tok": 8,
    "first_k_dense_replace": 3,
    "norm_topk_prob": True,
    "hidden_act": "silu",
    "max_position_embeddings": 4096,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-6,
    "use_cache": True,
    "pad_token_id": None,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "pretraining_tp": 1,
    "tie_word_embeddings": False,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "rope_interleave": True,
    "attention_bias": False,
    "attention_dropout": 0.0,
}

# Keys of real checkpoints' config.json that must hold these values for this model to
# be what the file describes (absent is fine).
_REQUIRED_IF_PRESENT = {
    "model_type": "deepseek_v3",
    "scoring_func": "sigmoid",
    "topk_method": "noaux_tc",
    "moe_layer_freq": 1,
    "hidden_act": "silu",
    "attention_bias": False,
}


class ConfigError(ValueError):
    """A config.json that this model cannot represent (message names file, key, expected, found)."""


class Config:
    """Attribute view of a config dict with HF defaults filled in and invariants checked."""

    def __init__(self, d, source="<dict>"):
        full = dict(CONFIG_DEFAULTS)
        full.update(d)
        # Newer transformers write `rope_parameters` (with rope_theta inside) instead of
        # rope_theta + rope_scaling; accept both.
        rp = d.get("rope_parameters")
        if isinstance(rp, dict) and "rope_scaling" not in d:
            full["rope_theta"] = float(rp.get("rope_theta", full["rope_theta"]))
            rtype = rp.get("rope_type", rp.get("type", "default"))
            full["rope_scaling"] = None if rtype == "default" else {k: v for k, v in rp.items() if k != "rope_theta"}
        full.pop("rope_parameters", None)
        self._d = full
        self.source = source
        for k, v in full.items():
            setattr(self, k, v)
        self.qk_head_dim = self.qk_nope_head_dim + self.qk_rope_head_dim
        self._check()

    def _fail(self, key, expected, found):
        raise ConfigError(f"{self.source}: key '{key}': expected {expected}, found {found!r}")

    def _check(self):
        for key, want in _REQUIRED_IF_PRESENT.items():
            if key in self._d and self._d[key] != want:
                self._fail(key, repr(want), self._d[key])
        for key in ("vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size",
                    "num_hidden_layers", "num_attention_heads", "n_routed_experts", "kv_lora_rank",
                    "qk_rope_head_dim", "v_head_dim", "qk_nope_head_dim", "n_group", "topk_group",
                    "num_experts_per_tok"):
            v = self._d[key]
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                self._fail(key, "a positive integer", v)
        if self.q_lora_rank is not None and (not isinstance(self.q_lora_rank, int) or self.q_lora_rank <= 0):
            self._fail("q_lora_rank", "null or a positive integer", self.q_lora_rank)
        if self.num_key_value_heads != self.num_attention_heads:
            self._fail("num_key_value_heads", f"== num_attention_heads ({self.num_attention_heads})",
                       self.num_key_value_heads)
        if self.qk_rope_head_dim % 2:
            self._fail("qk_rope_head_dim", "an even number", self.qk_rope_head_dim)
        if self.n_routed_experts % self.n_group:
            self._fail("n_group", f"a divisor of n_routed_experts ({self.n_routed_experts})", self.n_group)
        per_group = self.n_routed_experts // self.n_group
        if per_group < 2:
            self._fail("n_group", "at most n_routed_experts / 2 (group score = sum of a group's top-2)",
                       self.n_group)
        if self.topk_group > self.n_group:
            self._fail("topk_group", f"<= n_group ({self.n_group})", self.topk_group)
        if self.num_experts_per_tok > self.topk_group * per_group:
            self._fail("num_experts_per_tok", f"<= topk_group * experts per group ({self.topk_group * per_group})",
                       self.num_experts_per_tok)
        if not (0 <= self.first_k_dense_replace <= self.num_hidden_layers):
            self._fail("first_k_dense_replace", f"in [0, {self.num_hidden_layers}]", self.first_k_dense_replace)
        if self.n_shared_experts is not None and self.n_shared_experts < 0:
            self._fail("n_shared_experts", "null or >= 0", self.n_shared_experts)
        if self.rope_scaling is not None:
            rtype = self.rope_scaling.get("rope_type", self.rope_scaling.get("type"))
            if rtype not in ("yarn", "default"):
                self._fail("rope_scaling.type", "'yarn' or 'default'", rtype)
            if rtype == "yarn" and "factor" not in self.rope_scaling:
                self._fail("rope_scaling.factor", "a number", None)

    def to_dict(self):
        d = dict(self._d)
        d["model_type"] = "deepseek_v3"
        d["architectures"] = ["DeepseekV3ForCausalLM"]
        return d


def read_config(path):
    """Parses an HF config.json into a Config (HF defaults for missing keys)."""
    try:
        with open(path) as f:
            d = json.load(f)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from e
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a JSON object, found {type(d).__name__}")
    return Config(d, source=path)


def write_config(path, cfg):
    """Writes `cfg` (Config or dict) as an HF config.json (all keys, sorted)."""
    d = cfg.to_dict() if isinstance(cfg, Config) else Config(cfg).to_dict()
    with open(path, "w") as f:
        json.dump(d, f, indent=2, sort_keys=True)
        f.write("\n")


# ----------------------------------------------------------------------------- layers

def _work_dtype(x):
    """max(float32, x.dtype): HF's float32 up-cast that keeps float64 runs float64."""
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32


class DeepseekV3RMSNorm(nn.Module):
    """y = w * x / sqrt(mean(x^2) + eps), statistics in >= float32."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))  # (dim,)
        self.variance_epsilon = eps

    def forward(self, x):  # x: (..., dim)
        in_dtype = x.dtype
        h = x.to(_work_dtype(x))
        var = h.pow(2).mean(-1, keepdim=True)
        h = h * torch.rsqrt(var + self.variance_epsilon)
        return self.weight * h.to(in_dtype)


class DeepseekV3MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)); no biases."""

    def __init__(self, hidden, inter):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inter, bias=False)  # (inter, hidden)
        self.up_proj = nn.Linear(hidden, inter, bias=False)    # (inter, hidden)
        self.down_proj = nn.Linear(inter, hidden, bias=False)  # (hidden, inter)

    def forward(self, x):  # x: (..., hidden)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DeepseekV3TopkRouter(nn.Module):
    """Sigmoid router with the aux-loss-free bias (selection only) and group-limited top-k."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.weight = nn.Parameter(torch.empty(cfg.n_routed_experts, cfg.hidden_size))  # (E, hidden)
        self.register_buffer("e_score_correction_bias", torch.zeros(cfg.n_routed_experts))  # (E,)

    @torch.no_grad()
    def select(self, scores):
        """scores: (N, E) sigmoid scores -> (N, K) expert ids, by descending biased score.

        HF semantics: biased = scores + bias; group score = sum of the group's top-2 biased
        scores; keep the topk_group best groups; biased scores of other groups are set to
        0.0 (not -inf, as in HF); top-K of the result.
        """
        c = self.cfg
        n, e = scores.shape
        per = e // c.n_group
        biased = scores + self.e_score_correction_bias.to(scores.dtype).unsqueeze(0)
        group_scores = biased.view(n, c.n_group, per).topk(2, dim=-1)[0].sum(-1)  # (N, G)
        group_idx = group_scores.topk(c.topk_group, dim=-1)[1]                   # (N, topk_group)
        group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1.0)
        expert_mask = group_mask.unsqueeze(-1).expand(n, c.n_group, per).reshape(n, e)
        masked = biased.masked_fill(expert_mask == 0, 0.0)
        return masked.topk(c.num_experts_per_tok, dim=-1, sorted=True)[1]

    def forward(self, x):
        """x: (N, hidden) -> topk_idx (N, K) int64, topk_weight (N, K), scores (N, E)."""
        wd = _work_dtype(x)
        scores = F.linear(x.to(wd), self.weight.to(wd)).sigmoid()
        idx = self.select(scores)
        w = scores.gather(1, idx)
        if self.cfg.norm_topk_prob:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        return idx, w * self.cfg.routed_scaling_factor, scores


class DeepseekV3MoE(nn.Module):
    """shared_experts(x) + sum_k w_k * experts[idx_k](x); no capacity limit, no dropping."""

    def __init__(self, cfg):
        super().__init__()
        self.experts = nn.ModuleList(
            [DeepseekV3MLP(cfg.hidden_size, cfg.moe_intermediate_size) for _ in range(cfg.n_routed_experts)])
        self.gate = DeepseekV3TopkRouter(cfg)
        self.shared_experts = DeepseekV3MLP(cfg.hidden_size, cfg.moe_intermediate_size * cfg.n_shared_experts) \
            if cfg.n_shared_experts else None
        self.last_routing = None  # dict of the last forward's router outputs (see forward)

    def forward(self, x):  # x: (B, T, hidden)
        b, t, h = x.shape
        flat = x.reshape(b * t, h)
        idx, w, scores = self.gate(flat)
        self.last_routing = {"topk_idx": idx.view(b, t, -1), "topk_weight": w.view(b, t, -1),
                             "scores": scores.view(b, t, -1)}
        out = torch.zeros_like(flat, dtype=w.dtype)
        for e, expert in enumerate(self.experts):
            tok, slot = torch.where(idx == e)
            if tok.numel() == 0:
                continue
            y = expert(flat[tok]) * w[tok, slot].unsqueeze(-1).to(flat.dtype)
            out = out.index_add(0, tok, y.to(out.dtype))
        out = out.to(x.dtype).view(b, t, h)
        if self.shared_experts is not None:
            out = out + self.shared_experts(x)
        return out


def _yarn_mscale(scale, mscale=1.0):
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def rope_tables(cfg):
    """-> (inv_freq (rope_dim/2,) float64, attention_factor) for default or yarn RoPE (HF rules)."""
    dim = cfg.qk_rope_head_dim
    base = float(cfg.rope_theta)
    exps = torch.arange(0, dim, 2, dtype=torch.float64) / dim
    rs = cfg.rope_scaling
    rtype = None if rs is None else rs.get("rope_type", rs.get("type"))
    if rtype in (None, "default"):
        return 1.0 / base ** exps, 1.0
    factor = float(rs["factor"])
    if "original_max_position_embeddings" in rs:
        orig = rs["original_max_position_embeddings"]
        factor = cfg.max_position_embeddings / orig
    else:
        orig = cfg.max_position_embeddings
    att = rs.get("attention_factor")
    ms, ms_all = rs.get("mscale"), rs.get("mscale_all_dim")
    if att is None:
        att = _yarn_mscale(factor, ms) / _yarn_mscale(factor, ms_all) if (ms and ms_all) else _yarn_mscale(factor)
    beta_fast = rs.get("beta_fast") or 32
    beta_slow = rs.get("beta_slow") or 1

    def corr_dim(rot):
        return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

    low, high = corr_dim(beta_fast), corr_dim(beta_slow)
    if rs.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    extrap = 1 - ramp
    pos = base ** exps
    inv = (1.0 / (factor * pos)) * (1 - extrap) + (1.0 / pos) * extrap
    return inv, float(att)


def _rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def apply_rope(x, cos, sin, interleave):
    """x: (B, heads, T, rope_dim); cos/sin: (B, T, rope_dim). With `interleave` (HF's
    rope_interleave) the pairs (x0,x1),(x2,x3).. are first regrouped to [x0,x2,..,x1,x3,..];
    the output stays in that regrouped layout, as in HF."""
    if interleave:
        b, h, t, d = x.shape
        x = x.view(b, h, t, d // 2, 2).transpose(4, 3).reshape(b, h, t, d)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return x * cos + _rotate_half(x) * sin


class DeepseekV3Attention(nn.Module):
    """Multi-head latent attention (MLA), HF layout; causal; optional per-layer KV cache."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        h, nh = cfg.hidden_size, cfg.num_attention_heads
        if cfg.q_lora_rank is None:
            self.q_proj = nn.Linear(h, nh * cfg.qk_head_dim, bias=False)             # (nh*qk, hidden)
        else:
            self.q_a_proj = nn.Linear(h, cfg.q_lora_rank, bias=False)                 # (q_lora, hidden)
            self.q_a_layernorm = DeepseekV3RMSNorm(cfg.q_lora_rank)                   # eps 1e-6 as in HF
            self.q_b_proj = nn.Linear(cfg.q_lora_rank, nh * cfg.qk_head_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(h, cfg.kv_lora_rank + cfg.qk_rope_head_dim, bias=False)
        self.kv_a_layernorm = DeepseekV3RMSNorm(cfg.kv_lora_rank)
        self.kv_b_proj = nn.Linear(cfg.kv_lora_rank, nh * (cfg.qk_nope_head_dim + cfg.v_head_dim), bias=False)
        self.o_proj = nn.Linear(nh * cfg.v_head_dim, h, bias=False)
        self.scaling = cfg.qk_head_dim ** -0.5
        rs = cfg.rope_scaling
        if rs is not None:
            ms_all = rs.get("mscale_all_dim", 0)
            if ms_all:
                m = _yarn_mscale(float(rs["factor"]), ms_all)
                self.scaling = self.scaling * m * m

    def forward(self, x, cos, sin, cache=None):
        """x: (B, T, hidden); cos/sin: (B, T, rope_dim); cache: None or a dict with 'k' (B, nh, P, qk)
        and 'v' (B, nh, P, v_dim) of earlier positions (updated in place). -> (B, T, hidden)."""
        c = self.cfg
        b, t, _ = x.shape
        nh = c.num_attention_heads
        q = self.q_proj(x) if c.q_lora_rank is None else self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q = q.view(b, t, nh, c.qk_head_dim).transpose(1, 2)                     # (B, nh, T, qk)
        q_pass, q_rot = q.split([c.qk_nope_head_dim, c.qk_rope_head_dim], dim=-1)
        ckv = self.kv_a_proj_with_mqa(x)                                          # (B, T, kv_lora + rope)
        k_lat, k_rot = ckv.split([c.kv_lora_rank, c.qk_rope_head_dim], dim=-1)
        kv = self.kv_b_proj(self.kv_a_layernorm(k_lat)).view(b, t, nh, -1).transpose(1, 2)
        k_pass, v = kv.split([c.qk_nope_head_dim, c.v_head_dim], dim=-1)        # (B, nh, T, .)
        k_rot = k_rot.reshape(b, 1, t, c.qk_rope_head_dim)                       # shared by all heads
        q_rot = apply_rope(q_rot, cos, sin, c.rope_interleave)
        k_rot = apply_rope(k_rot, cos, sin, c.rope_interleave).expand(b, nh, t, c.qk_rope_head_dim)
        q = torch.cat((q_pass, q_rot), dim=-1)
        k = torch.cat((k_pass, k_rot), dim=-1)
        past = 0
        if cache is not None:
            if "k" in cache:
                past = cache["k"].shape[2]
                k = torch.cat((cache["k"], k), dim=2)
                v = torch.cat((cache["v"], v), dim=2)
            cache["k"], cache["v"] = k, v
        s = k.shape[2]
        att = torch.matmul(q, k.transpose(2, 3)) * self.scaling                 # (B, nh, T, S)
        qpos = torch.arange(t).unsqueeze(1) + past
        kpos = torch.arange(s).unsqueeze(0)
        att = att.masked_fill(kpos > qpos, float("-inf"))
        p = F.softmax(att, dim=-1, dtype=_work_dtype(att)).to(q.dtype)
        o = torch.matmul(p, v).transpose(1, 2).reshape(b, t, nh * c.v_head_dim)
        return self.o_proj(o)


class DeepseekV3DecoderLayer(nn.Module):
    def __init__(self, cfg, layer_idx):
        super().__init__()
        self.self_attn = DeepseekV3Attention(cfg)
        self.mlp = DeepseekV3MoE(cfg) if layer_idx >= cfg.first_k_dense_replace \
            else DeepseekV3MLP(cfg.hidden_size, cfg.intermediate_size)
        self.input_layernorm = DeepseekV3RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = DeepseekV3RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, cache=None):  # x: (B, T, hidden)
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class DeepseekV3Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, cfg.pad_token_id)  # (V, hidden)
        self.layers = nn.ModuleList([DeepseekV3DecoderLayer(cfg, i) for i in range(cfg.num_hidden_layers)])
        self.norm = DeepseekV3RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        inv_freq, self.attention_factor = rope_tables(cfg)
        self.register_buffer("inv_freq", inv_freq, persistent=False)  # (rope_dim/2,) float64

    def forward(self, input_ids, cache=None):
        """input_ids: (B, T) int64; cache: None or a list of per-layer dicts (see Attention).
        Positions start at the cached length. -> (B, T, hidden) final-normed states."""
        b, t = input_ids.shape
        x = self.embed_tokens(input_ids)
        past = 0 if not cache or "k" not in cache[0] else cache[0]["k"].shape[2]
        pos = torch.arange(past, past + t, dtype=torch.float64)
        freqs = torch.outer(pos, self.inv_freq.to(torch.float64))
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = (emb.cos() * self.attention_factor).to(x.dtype).expand(b, t, -1)
        sin = (emb.sin() * self.attention_factor).to(x.dtype).expand(b, t, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if cache is None else cache[i])
        return self.norm(x)


class DeepseekV3ForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = DeepseekV3Model(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)  # (V, hidden)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids, cache=None):
        """input_ids: (B, T) -> logits (B, T, V). After the call, moe_routing() holds the routers' outputs."""
        return self.lm_head(self.model(input_ids, cache))

    def new_cache(self):
        return [dict() for _ in range(self.cfg.num_hidden_layers)]

    def moe_routing(self):
        """-> {layer index: {'topk_idx' (B,T,K), 'topk_weight' (B,T,K), 'scores' (B,T,E)}} of the last forward."""
        return {i: layer.mlp.last_routing for i, layer in enumerate(self.model.layers)
                if isinstance(layer.mlp, DeepseekV3MoE)}


def from_config(config):
    """config: dict (HF keys) or Config -> DeepseekV3ForCausalLM (float32, uninitialised weights)."""
    cfg = config if isinstance(config, Config) else Config(config)
    return DeepseekV3ForCausalLM(cfg)


@torch.no_grad()
def init_weights(model, generator, std=None, norm_std=0.0):
    """HF's _init_weights with a given generator: Linear, Embedding and router weights ~ N(0, std)
    (std defaults to initializer_range), RMSNorm weights 1 + N(0, norm_std); the padding row of
    the embedding is zeroed as in HF. Correction biases are left at zero."""
    std = model.cfg.initializer_range if std is None else std
    for name, p in model.named_parameters():  # tied lm_head appears once (as the embedding)
        if name.endswith("norm.weight"):  # every RMSNorm weight (input_, post_attention_, q_a_, kv_a_, final)
            p.copy_(1.0 + norm_std * torch.randn(p.shape, generator=generator, dtype=torch.float64))
        else:
            p.copy_(std * torch.randn(p.shape, generator=generator, dtype=torch.float64))
    pad = model.cfg.pad_token_id
    if pad is not None:
        model.model.embed_tokens.weight[pad].zero_()


def hf_state_keys(model):
    """Keys HF writes to model.safetensors (the tied lm_head.weight is omitted, as in HF)."""
    keys = list(model.state_dict().keys())
    if model.cfg.tie_word_embeddings:
        keys.remove("lm_head.weight")
    return keys


def save_weights(model, path, dtype=np.float32):
    sd = model.state_dict()
    save_safetensors(path, {k: sd[k].detach().cpu().numpy().astype(dtype) for k in hf_state_keys(model)},
                     metadata={"format": "pt"})


@torch.no_grad()
def load_weights(model, path):
    """Loads an HF-named safetensors file; every key must be present with its shape. Keys of the
    multi-token-prediction layers (index >= num_hidden_layers, up to num_nextn_predict_layers)
    are ignored as HF does; any other unexpected key is an error."""
    tensors, _ = load_safetensors(path)
    sd = model.state_dict()
    want = set(hf_state_keys(model))
    cfg = model.cfg
    extra_layers = getattr(cfg, "num_nextn_predict_layers", 0) or 0
    for name, arr in tensors.items():
        if name not in want:
            parts = name.split(".")
            if (len(parts) > 2 and parts[:2] == ["model", "layers"] and parts[2].isdigit()
                    and cfg.num_hidden_layers <= int(parts[2]) < cfg.num_hidden_layers + extra_layers):
                continue
            raise ValueError(f"{path}: unexpected tensor '{name}' for this config")
        if tuple(arr.shape) != tuple(sd[name].shape):
            raise ValueError(f"{path}: tensor '{name}': expected shape {tuple(sd[name].shape)}, "
                             f"found {tuple(arr.shape)}")
        sd[name].copy_(torch.from_numpy(np.asarray(arr)).to(sd[name].dtype))
        want.discard(name)
    if want:
        raise ValueError(f"{path}: missing tensors: {sorted(want)[:5]}{' ...' if len(want) > 5 else ''}")


# ----------------------------------------------------------------------------- losses

def token_logprobs(logits, input_ids, temperature=1.0):
    """logits: (B, T, V); input_ids: (B, T) -> (B, T-1) log p(x_{t+1} | x_<=t) of softmax(logits / T),
    computed in >= float32."""
    lg = logits[:, :-1].to(_work_dtype(logits)) / temperature
    return F.log_softmax(lg, dim=-1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def masked_mean_nll(logits, input_ids, loss_mask):
    """Mean next-token cross-entropy over the target positions with loss_mask (B, T-1) != 0
    (loss_mask[b, t] weights the prediction of input_ids[b, t+1])."""
    lp = token_logprobs(logits, input_ids)
    m = loss_mask.to(lp.dtype)
    return -(lp * m).sum() / m.sum()


def sequence_balance_loss(scores, topk_idx, alpha, token_mask=None):
    """DeepSeek-V3 sequence-wise balance loss (paper eqs. 17-20), averaged over the batch.

    scores: (B, T, E) unbiased sigmoid scores (differentiable); topk_idx: (B, T, K) chosen experts;
    token_mask: optional (B, T), 1 = token counts. Per sequence: f_i = E / (K * T_b) * #tokens
    choosing i; P_i = mean_t s_{i,t} / sum_j s_{j,t}; L = alpha * sum_i f_i P_i.
    """
    b, t, e = scores.shape
    k = topk_idx.shape[-1]
    m = torch.ones(b, t, dtype=scores.dtype) if token_mask is None else token_mask.to(scores.dtype)
    n_tok = m.sum(1)                                                         # (B,)
    counts = torch.zeros(b, e, dtype=scores.dtype).scatter_add_(
        1, topk_idx.reshape(b, t * k), m.repeat_interleave(k, dim=1))         # (B, E)
    f = counts * e / (k * n_tok.unsqueeze(1))
    s_norm = scores / scores.sum(-1, keepdim=True)
    p = (s_norm * m.unsqueeze(-1)).sum(1) / n_tok.unsqueeze(1)               # (B, E)
    return alpha * (f.detach() * p).sum(1).mean()


def total_balance_loss(model, alpha, token_mask=None):
    """Sum over MoE layers of sequence_balance_loss for the last forward."""
    total = None
    for r in model.moe_routing().values():
        l = sequence_balance_loss(r["scores"], r["topk_idx"], alpha, token_mask)
        total = l if total is None else total + l
    return total
