"""Times Hugging Face `transformers` generation of a zeroth model on a GPU, for comparison with
`zeroth bench rollout --device cuda` (issue 7's target: zeroth >= 5x at batch 64).

Owns: one benchmark program for a GPU machine with torch and transformers (>= 4.51, which has
DeepseekV3ForCausalLM) installed. The model directory is the one `zeroth bench rollout
--save-model DIR` writes (config.json + model.safetensors, HF names), so both programs run the
same architecture and weights. For each batch size B: B random prompts of --prompt tokens,
`model.generate(do_sample=True, temperature=1, top_k=0, top_p=1, min_new_tokens=max_new_tokens)`
so every sequence decodes exactly --new-tokens tokens with the HF KV cache. Prefill time is
measured by a separate generate of 1 new token; decode tokens/s = B * (N - 1) / (t(N) - t(1)).
Prints a table on stderr and one JSON object on stdout.
Must not: assert on speed; it is a measuring tool, not a test.

Usage (on the GPU machine):
    zeroth bench rollout --device cuda --batch 1,64,256 --save-model /tmp/bench-model \\
        --json zeroth.json
    python3 scripts/reference/bench_rollout_hf.py --model /tmp/bench-model \\
        --batch 1,64,256 [--prompt 128] [--new-tokens 512] [--dtype bfloat16|float32]
"""

import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", default="1,64,256")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=512)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                    help="float32 matches zeroth's fp32 decode (default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    if not torch.cuda.is_available():
        sys.exit("bench_rollout_hf: no CUDA device visible to torch")
    dtype = getattr(torch, args.dtype)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype).cuda().eval()
    vocab = model.config.vocab_size
    gen = torch.Generator(device="cpu").manual_seed(args.seed)

    def timed(batch, new):
        ids = torch.randint(0, vocab, (batch, args.prompt), generator=gen).cuda()
        mask = torch.ones_like(ids)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model.generate(ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                             top_p=1.0, max_new_tokens=new, min_new_tokens=new,
                             pad_token_id=model.config.eos_token_id)
        torch.cuda.synchronize()
        assert out.shape[1] == args.prompt + new, out.shape
        return time.perf_counter() - t0

    results = []
    for b in [int(x) for x in args.batch.split(",")]:
        timed(b, 4)  # warm-up (kernels, allocator)
        t1 = timed(b, 1)
        tn = timed(b, args.new_tokens)
        dec = b * (args.new_tokens - 1) / max(tn - t1, 1e-9)
        results.append({"batch": b, "prefill_s": t1, "prefill_tokens_per_s": b * args.prompt / t1,
                        "decode_s": tn - t1, "decode_tokens_per_s": dec})
        print(f"batch {b:4d}: prefill {b * args.prompt / t1:10.1f} tok/s, decode {dec:10.1f} tok/s",
              file=sys.stderr)
    print(json.dumps({"impl": "transformers", "transformers_version": transformers.__version__,
                      "torch_version": torch.__version__, "dtype": args.dtype,
                      "device": torch.cuda.get_device_name(), "prompt": args.prompt,
                      "new_tokens": args.new_tokens, "results": results}))


if __name__ == "__main__":
    main()
