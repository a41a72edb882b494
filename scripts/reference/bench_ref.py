"""Times the PyTorch reference (deepseek_v3_ref.py) on CPU for comparison with zeroth.

Owns: one benchmark program: forward+backward (masked mean CE) of a config.json at a given
batch, sequence length, thread count and dtype, and optionally KV-cache decode; prints a small
table on stderr and one JSON object on stdout.
Must not: assert on speed or write files; it is a measuring tool, not a test.

Usage: /usr/bin/python3 scripts/reference/bench_ref.py --config path/to/config.json
           [--batch 4] [--seq 256] [--threads 2] [--dtype float32] [--iters 5] [--warmup 1]
           [--decode-tokens 0] [--weights model.safetensors]
Weights are random (std = initializer_range) unless --weights is given; time does not depend on them
except through routing balance.
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_v3_ref as R  # noqa: E402


def time_train_step(model, ids, mask, iters, warmup):
    """-> list of seconds per forward+backward."""
    times = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss = R.masked_mean_nll(model(ids), ids, mask)
        loss.backward()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    return times


@torch.no_grad()
def time_decode(model, prompt, n_new):
    """Greedy decode of n_new tokens after a prefill of `prompt` (B, P). -> (prefill s, decode s)."""
    cache = model.new_cache()
    t0 = time.perf_counter()
    logits = model(prompt, cache)
    t1 = time.perf_counter()
    tok = logits[:, -1].argmax(-1, keepdim=True)
    for _ in range(n_new):
        tok = model(tok, cache)[:, -1].argmax(-1, keepdim=True)
    return t1 - t0, time.perf_counter() - t1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", choices=["float32", "float64", "bfloat16"], default="float32")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--decode-tokens", type=int, default=0,
                    help="also time greedy KV-cache decode of this many tokens after a --seq prefill")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for name in ("batch", "seq", "threads", "iters"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.seq < 2:
        ap.error(f"--seq must be at least 2, got {args.seq}")

    torch.set_num_threads(args.threads)
    cfg = R.read_config(args.config)
    if args.seq > cfg.max_position_embeddings:
        ap.error(f"--seq {args.seq} exceeds max_position_embeddings {cfg.max_position_embeddings} of {args.config}")
    g = torch.Generator().manual_seed(args.seed)
    model = R.from_config(cfg)
    if args.weights:
        R.load_weights(model, args.weights)
    else:
        R.init_weights(model, g)
    model = model.to(getattr(torch, args.dtype))
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), generator=g)
    mask = torch.ones(args.batch, args.seq - 1)

    times = time_train_step(model, ids, mask, args.iters, args.warmup)
    best, mean = min(times), sum(times) / len(times)
    tokens = args.batch * args.seq
    result = {
        "impl": "pytorch-reference", "torch_version": torch.__version__, "config": args.config,
        "dtype": args.dtype, "threads": args.threads, "batch": args.batch, "seq": args.seq,
        "params": sum(p.numel() for p in model.parameters()),
        "fwd_bwd_s_best": best, "fwd_bwd_s_mean": mean,
        "fwd_bwd_tokens_per_s": tokens / best,
    }
    if args.decode_tokens > 0:
        if args.seq + args.decode_tokens > cfg.max_position_embeddings:
            ap.error("--seq + --decode-tokens exceeds max_position_embeddings")
        prefill_s, decode_s = time_decode(model, ids, args.decode_tokens)
        result.update({"decode_tokens": args.decode_tokens, "prefill_s": prefill_s, "decode_s": decode_s,
                       "decode_tokens_per_s": args.batch * args.decode_tokens / decode_s})
    print(f"{'config':<40} {'B':>4} {'T':>6} {'thr':>4} {'fwd+bwd s':>10} {'tok/s':>10}", file=sys.stderr)
    print(f"{os.path.basename(os.path.dirname(os.path.abspath(args.config))):<40} {args.batch:>4} {args.seq:>6} "
          f"{args.threads:>4} {best:>10.4f} {tokens / best:>10.1f}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
