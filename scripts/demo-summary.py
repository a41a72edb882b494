#!/usr/bin/env python3
"""The summary that scripts/demo.sh prints at the end (docs/demo.md); standard library only.

  python3 scripts/demo-summary.py runs/demo

Reads DEMO_DIR/eval-before.log and eval-after.log (the JSON line `zeroth eval` prints
last), DEMO_DIR/grpo/metrics.jsonl, DEMO_DIR/times.txt ("stage seconds" lines) and
DEMO_DIR/base-model.txt (the base model's path, optional), DEMO_DIR/samples-before.jsonl
and samples-after.jsonl (`zeroth generate` output, optional), and prints held-out pass@1
and format rate before and after GRPO, the reward curve as an ASCII chart, the training
accuracy / format rate as sparklines, the evals made during training, example replies
before and after, and the wall time of every stage. Exit status: 0, or 1 when a file is missing
or unreadable.
"""
import json
import os
import sys

SPARK = "_.:-=+*#%@"  # 10 levels, ASCII


def last_json(path):
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        sys.exit(f"demo-summary: {path}: {e.strerror}")
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    sys.exit(f"demo-summary: {path}: no JSON line (did `zeroth eval` finish?)")


def read_metrics(path):
    train, evals = [], []
    try:
        f = open(path)
    except OSError as e:
        sys.exit(f"demo-summary: {path}: {e.strerror}")
    with f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                (evals if "eval_accuracy" in row else train).append(row)
    return train, evals


def read_samples(path):
    """The rows of a `zeroth generate` output file, or [] when there is none."""
    if not os.path.exists(path):
        return []
    try:
        return [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
    except (OSError, ValueError) as e:
        print(f"demo-summary: {path}: {e} (example replies left out)", file=sys.stderr)
        return []


def one_line(text, limit=160):
    """`text` on one line (whitespace runs as one space), cut to `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def buckets(values, width):
    """Means of `values` over at most `width` equal consecutive buckets."""
    if len(values) <= width:
        return list(values)
    out = []
    for b in range(width):
        lo, hi = b * len(values) // width, (b + 1) * len(values) // width
        chunk = [v for v in values[lo:hi] if v is not None]
        out.append(sum(chunk) / len(chunk) if chunk else None)
    return out


def chart(values, lo, hi, height=8, width=60):
    """Rows of an ASCII chart of `values` (one column per step or bucket), y from lo to hi."""
    cols = buckets(values, width)
    rows = []
    for r in range(height, -1, -1):
        y = lo + (hi - lo) * r / height
        line = "".join(
            "*" if v is not None and round((v - lo) / (hi - lo) * height) == r else " " for v in cols)
        rows.append(f"  {y:6.3f} |{line}")
    rows.append("         +" + "-" * len(cols))
    return rows


def spark(values, lo, hi, width=60):
    out = ""
    for v in buckets(values, width):
        if v is None:
            out += " "
        else:
            out += SPARK[max(0, min(len(SPARK) - 1, int((v - lo) / (hi - lo) * (len(SPARK) - 1) + 0.5)))]
    return out


def reward_weights(path):
    """(names, weights) of rewards.functions in the run's config.yaml, which `zeroth train`
    writes in `zeroth config show` form ("  functions:" then "    - name: N" / "      weight:
    W" items); ([], []) if the file is missing."""
    names, weights = [], []
    if not os.path.exists(path):
        return names, weights
    section = sub = None
    for line in open(path):
        text = line.rstrip("\n")
        if text and not text.startswith(" "):
            section, sub = text.rstrip(":"), None
        elif section == "rewards" and text.startswith("  ") and not text.startswith("   "):
            sub = text.strip().rstrip(":")
        elif section == "rewards" and sub == "functions":
            item = text.strip().lstrip("- ").strip()
            if item.startswith("name:"):
                names.append(item.split(":", 1)[1].strip())
            elif item.startswith("weight:") and len(weights) < len(names):
                weights.append(float(item.split(":", 1)[1]))
    return names[:len(weights)], weights


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: demo-summary.py DEMO_DIR")
    d = sys.argv[1]
    before = last_json(os.path.join(d, "eval-before.log"))
    after = last_json(os.path.join(d, "eval-after.log"))
    train, evals = read_metrics(os.path.join(d, "grpo", "metrics.jsonl"))
    times = []
    if os.path.exists(os.path.join(d, "times.txt")):
        for line in open(os.path.join(d, "times.txt")):
            parts = line.split()
            if len(parts) == 2:
                times.append((parts[0], float(parts[1])))

    print(f"== R1-Zero demo summary ({d})")
    base_txt = os.path.join(d, "base-model.txt")
    if os.path.exists(base_txt):
        print(f"base model: {open(base_txt).read().strip()}")
    n = int(after.get("eval_prompts", 0))
    print(f"held-out problems: {n}, greedy decoding        before    after")
    a0, a1 = before["eval_accuracy"], after["eval_accuracy"]
    f0, f1 = before["eval_format_rate"], after["eval_format_rate"]
    ratio = f"x{a1 / a0:.1f}" if a0 > 0 else ("from 0" if a1 > 0 else "")
    c0, c1 = round(a0 * n), round(a1 * n)
    print(f"  pass@1 (accuracy reward)                   {a0:6.3f}   {a1:6.3f}   {ratio} ({c0} -> {c1} of {n})")
    print(f"  format rate (strict <think>/<answer>)      {f0:6.3f}   {f1:6.3f}")
    print(f"  response length (tokens)                   {before['eval_response_len_mean']:6.1f}   "
          f"{after['eval_response_len_mean']:6.1f}")
    doubled = "yes" if a1 >= 2 * a0 and a1 > 0 else "no"
    if doubled == "yes" and c1 < 10:
        doubled += f" (but {c1} right answers are too few to tell)"
    print(f"  target: pass@1 at least doubled: {doubled}; format rate from near 0 (< 0.1): "
          f"{'yes' if f0 < 0.1 else 'no'} to above 0.9: {'yes' if f1 > 0.9 else 'no'}")

    if train:
        rewards = [r.get("reward_mean") for r in train]
        top = max([v for v in rewards if v is not None] or [0.0])
        hi = next(h for h in (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 3.0, 4.0, float("inf")) if h >= top)
        hi = top if hi == float("inf") else hi
        print()
        names, weights = reward_weights(os.path.join(d, "grpo", "config.yaml"))
        terms = " + ".join(f"{w:g} x {n}" if w != 1 else n for n, w in zip(names, weights))
        most = f", at most {sum(w for w in weights if w > 0):g}" if weights else ""
        print(f"reward curve: mean reward of the sampled completions per step ({terms or 'the rewards'}"
              f"{most}; y axis to {hi:g}), steps 1-{train[-1]['step']}")
        for row in chart(rewards, 0.0, hi):
            print(row)
        print(f"  accuracy  |{spark([r.get('accuracy') for r in train], 0, 1)}|  "
              f"{train[0].get('accuracy', 0):.2f} -> {train[-1].get('accuracy', 0):.2f}")
        print(f"  format    |{spark([r.get('format_rate') for r in train], 0, 1)}|  "
              f"{train[0].get('format_rate', 0):.2f} -> {train[-1].get('format_rate', 0):.2f}")
        print(f"  (sparklines from 0 '{SPARK[0]}' to 1 '{SPARK[-1]}')")
    if evals:
        print("evals during training (step: pass@1 / format rate): " + ", ".join(
            f"{int(e['step'])}: {e['eval_accuracy']:.2f}/{e['eval_format_rate']:.2f}" for e in evals))

    samples = [read_samples(os.path.join(d, f"samples-{w}.jsonl")) for w in ("before", "after")]
    if samples[0] and samples[1]:
        print()
        print("example replies (greedy, held-out problems):")
        for b, a in zip(samples[0], samples[1]):
            print(f"  problem: {b.get('prompt', '').strip()}  (gold: {b.get('answer', '?')})")
            print(f"    before: {one_line(b['completion'])}")
            print(f"    after:  {one_line(a['completion'])}")

    if times:
        print()
        total = sum(t for name, t in times if name != "build")
        print("wall time: " + ", ".join(f"{name} {t:.1f} s" for name, t in times) +
              f"; total without the build {total / 60:.1f} min")


if __name__ == "__main__":
    main()
