#!/usr/bin/env python3
r"""Writes the short copy task of docs/demo.md ("What is missing", item 5): one document per
line, a random string of printable ASCII said twice ("k#Q.x k#Q.x"), 3 to 10 characters,
so that only content-based copying (an induction head) predicts the second half.

  python3 scripts/copy-task-data.py OUT.txt [--lines 400000] [--seed 2]

Then, for example (2 layers, 8 heads, MLPs frozen: docs/demo.md):
  zeroth pretrain --config CONFIG.yaml --set data.path=OUT.txt --set train.seq_len=32 \
      --set train.batch_size=64 --set "optim.frozen=['mlp\.']"
"""
import argparse
import random


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=400000)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--min-len", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=10)
    a = ap.parse_args()
    if not 1 <= a.min_len <= a.max_len:
        ap.error("expected 1 <= --min-len <= --max-len")
    rng = random.Random(a.seed)
    with open(a.out, "w") as f:
        for _ in range(a.lines):
            w = "".join(chr(rng.randint(33, 126)) for _ in range(rng.randint(a.min_len, a.max_len)))
            f.write(w + " " + w + "\n")


if __name__ == "__main__":
    main()
