#!/usr/bin/env python3
"""Does a byte-level base model copy from its context? (docs/demo.md, "How the demo got here")

Scores three kinds of text with `zeroth score` and prints the mean loss in nats/byte on
the part that only copying predicts:
  repeat  "Repeat after me: L. " -> the second "L." (L: 6 made-up words)
  instr   an instruction naming two made-up tags, a question, and the reply's first tag name
  r1      the R1-Zero template with a question -> "think>" after the reply's "<"
A model that does not copy scores about ln(26) = 3.3 on made-up letters (more on the tags);
one that copies scores well under 1.

usage: scripts/demo-copy-probe.py MODEL_DIR [--zeroth build/zeroth] [--n 20] [--threads 2]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

R1 = ("A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
      "The assistant first thinks about the reasoning process in the mind and then provides the user with "
      "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
      "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
      "</answer>. User: {q}. Assistant: <")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--zeroth", default="build/zeroth")
    ap.add_argument("--n", type=int, default=20, help="texts per kind")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bos", type=int, default=256, help="BOS id of the byte tokenizer")
    a = ap.parse_args()
    rng = random.Random(5)

    def word():
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 7)))

    texts = []
    for i in range(a.n):
        q = "Tom has %d apples. Tom buys 7 more apples. How many apples does Tom have now?" % (i + 3)
        lst = " ".join(word() for _ in range(6))
        texts.append(("repeat", "Repeat after me: " + lst + ". ", lst + "."))
        t1, t2 = word(), word()
        texts.append(("instr", "Put the working inside <%s> </%s> and the final number inside <%s> </%s>. "
                      "User: %s Assistant: <" % (t1, t1, t2, t2, q), t1 + ">"))
        texts.append(("r1", R1.format(q=q), "think>"))
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
        with open(inp, "w") as f:
            for kind, prefix, target in texts:
                ids = [a.bos] + list(prefix.encode()) + list(target.encode())
                f.write(json.dumps({"ids": ids, "kind": kind, "n": len(target.encode())}) + "\n")
        subprocess.run([a.zeroth, "score", "--model", a.model, "--input", inp, "--output", out,
                        "--threads", str(a.threads)], check=True, stdout=subprocess.DEVNULL)
        loss, first = {}, {}
        for line in open(out):
            r = json.loads(line)
            lp = r["logprobs"][-r["n"]:]
            loss.setdefault(r["kind"], []).append(-sum(lp) / len(lp))
            first.setdefault(r["kind"], []).append(-lp[0])
    for kind in ("repeat", "instr", "r1"):
        print("%-6s nats/byte on the copied part %.2f (its first byte %.2f)" %
              (kind, sum(loss[kind]) / len(loss[kind]), sum(first[kind]) / len(first[kind])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
