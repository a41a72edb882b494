"""Times KV-cached generation with the PyTorch reference (deepseek_v3_ref.py) on CPU, for
comparison with `zeroth bench rollout`, which runs this script with --ref on the same weights,
threads, batch sizes and lengths.

Owns: one benchmark program: for each batch size B, B random prompts of --prompt tokens are
prefilled together, then --new-tokens tokens are sampled per sequence (softmax at T = 1,
torch.multinomial, and the token's log-probability, as zeroth's rollout reports one) with the
reference model's KV cache (the HF layout: decompressed per-head keys and values, grown with
torch.cat every step). Prints a table on stderr and one JSON object on stdout.
Must not: assert on speed or write files; it is a measuring tool, not a test.

Usage: /usr/bin/python3 scripts/reference/bench_rollout_ref.py --config CONFIG.json
           [--weights model.safetensors] [--batch 1,16,64] [--prompt 128] [--new-tokens 512]
           [--threads 2] [--seed 0] [--repeat 1]
Weights are random (std = initializer_range) unless --weights is given.
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_v3_ref as R  # noqa: E402


@torch.no_grad()
def time_generation(model, prompt_ids, new_tokens, generator):
    """prompt_ids (B, P) -> (prefill s, decode s, decode steps). Samples at T = 1."""
    cache = model.new_cache()
    t0 = time.perf_counter()
    logits = model(prompt_ids, cache)[:, -1]  # (B, V)
    t1 = time.perf_counter()
    steps = 0
    for i in range(new_tokens):
        logp = torch.log_softmax(logits.float(), dim=-1)
        tok = torch.multinomial(logp.exp(), 1, generator=generator)  # (B, 1)
        _ = logp.gather(1, tok)  # the reported log-probability
        if i + 1 == new_tokens:
            break
        logits = model(tok, cache)[:, -1]
        steps += 1
    return t1 - t0, time.perf_counter() - t1, steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--batch", default="1,16,64")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1,
                    help="time each batch size this many times and keep the fastest decode")
    args = ap.parse_args()
    batches = [int(b) for b in args.batch.split(",") if b]
    if not batches or min(batches) <= 0:
        ap.error(f"--batch: expected positive integers, got {args.batch!r}")
    if args.prompt < 1 or args.new_tokens < 2 or args.threads < 1 or args.repeat < 1:
        ap.error("--prompt >= 1, --new-tokens >= 2, --threads >= 1 and --repeat >= 1 are required")

    torch.set_num_threads(args.threads)
    cfg = R.read_config(args.config)
    if args.prompt + args.new_tokens > cfg.max_position_embeddings:
        ap.error(f"--prompt + --new-tokens exceeds max_position_embeddings {cfg.max_position_embeddings}")
    g = torch.Generator().manual_seed(args.seed)
    model = R.from_config(cfg)
    if args.weights:
        R.load_weights(model, args.weights)
    else:
        R.init_weights(model, g)
    model.eval()

    results = []
    print(f"{'B':>4} {'prefill tok/s':>14} {'decode tok/s':>13} {'step ms':>9}", file=sys.stderr)
    for b in batches:
        ids = torch.randint(0, cfg.vocab_size, (b, args.prompt), generator=g)
        prefill_s, decode_s, steps = min((time_generation(model, ids, args.new_tokens, g)
                                          for _ in range(args.repeat)), key=lambda t: t[1])
        row = {"batch": b, "prefill_s": prefill_s, "prefill_tokens_per_s": b * args.prompt / prefill_s,
               "decode_s": decode_s, "decode_steps": steps,
               "decode_tokens_per_s": b * steps / decode_s, "decode_step_ms": 1e3 * decode_s / steps}
        results.append(row)
        print(f"{b:>4} {row['prefill_tokens_per_s']:>14.1f} {row['decode_tokens_per_s']:>13.1f} "
              f"{row['decode_step_ms']:>9.2f}", file=sys.stderr)
    print(json.dumps({"impl": "pytorch-reference (HF-layout KV cache)", "torch_version": torch.__version__,
                      "config": args.config, "threads": args.threads, "prompt": args.prompt,
                      "new_tokens": args.new_tokens, "repeat": args.repeat, "results": results}))


if __name__ == "__main__":
    main()
