#!/usr/bin/env python3
r"""Writes the short copy tasks of docs/demo.md ("How the demo got here", items 5 and 7): one
document per line, something said twice, so that only content-based copying (an induction
head) predicts the second half.

  python3 scripts/copy-task-data.py OUT.txt [--lines 400000] [--seed 2]
      a random string of printable ASCII said twice ("k#Q.x k#Q.x"), 3 to 10 characters
  python3 scripts/copy-task-data.py OUT.txt --words TOKENIZER.json [--lines 300000] [--seed 3]
      3 to 8 items said twice (" lamp Ravi out. lamp Ravi out."): in half the lines the
      tokenizer's whole-word tokens with a leading space (never think/answer), in the other
      half made-up lower-case strings of 3 to 7 letters (several tokens each). Meant for a
      tokenizer whose words carry their leading space (zeroth train-tokenizer --pattern,
      docs/demo.md item 7), so that every item is its own token.
      --pieces: a third kind of line as well (a third each): items glued from 1-3 of the
      tokenizer's letter-only pieces without a leading space (`ink`, `ou`, `Th`), so that
      the rare pieces a tag name like `think` splits into are copied too.

Then, for example (2 layers, 8 heads, MLPs frozen: docs/demo.md):
  zeroth pretrain --config CONFIG.yaml --set data.path=OUT.txt --set train.seq_len=32 \
      --set train.batch_size=64 --set "optim.frozen=['mlp\.']"
"""
import argparse
import json
import random


def word_tokens(path):
    tok = json.load(open(path, encoding="utf-8"))
    vocab = tok.get("model", {}).get("vocab", {})
    # 'Ġ' is the byte-level alphabet's space.
    words = [t[1:] for t in vocab if t.startswith("\u0120") and t[1:].isalpha() and len(t) > 2]
    return sorted(w for w in words if w.lower() not in ("think", "answer"))


def letter_pieces(path):
    vocab = json.load(open(path, encoding="utf-8")).get("model", {}).get("vocab", {})
    return sorted(t for t in vocab if t.isascii() and t.isalpha())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--min-len", type=int, default=None)
    ap.add_argument("--max-len", type=int, default=None)
    ap.add_argument("--words", metavar="TOKENIZER_JSON", default=None)
    ap.add_argument("--pieces", action="store_true")
    a = ap.parse_args()
    words = None
    pieces = []
    if a.pieces and not a.words:
        ap.error("--pieces needs --words")
    if a.words:
        pieces = letter_pieces(a.words) if a.pieces else []
        words = word_tokens(a.words)
        if len(words) < 2:
            ap.error(f"{a.words}: fewer than 2 whole-word tokens with a leading space")
    lines = a.lines if a.lines is not None else (300000 if words else 400000)
    seed = a.seed if a.seed is not None else (3 if words else 2)
    lo = a.min_len if a.min_len is not None else 3
    hi = a.max_len if a.max_len is not None else (8 if words else 10)
    if not 1 <= lo <= hi:
        ap.error("expected 1 <= --min-len <= --max-len")
    rng = random.Random(seed)
    with open(a.out, "w") as f:
        for _ in range(lines):
            if words is None:
                w = "".join(chr(rng.randint(33, 126)) for _ in range(rng.randint(lo, hi)))
                f.write(w + " " + w + "\n")
                continue
            k = rng.randint(lo, hi)
            u = rng.random()
            if u < (1 / 3 if pieces else 0.5):
                items = [rng.choice(words) for _ in range(k)]
            elif not pieces or u < 2 / 3:
                items = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 7)))
                         for _ in range(k)]
            else:
                items = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 3))) for _ in range(k)]
            s = " " + " ".join(items) + "."
            f.write(s + s + "\n")


if __name__ == "__main__":
    main()
