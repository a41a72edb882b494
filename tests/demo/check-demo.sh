#!/usr/bin/env bash
# CTest demo_smoke: runs scripts/demo.sh (the README's first command) with DEMO_SMOKE=1 on
# an already built binary, so the demo's stages, configs and summary cannot rot, and checks
# that every stage left sane outputs. It checks the plumbing, not the learning result
# (docs/demo.md has the measured full run).
#
# usage: tests/demo/check-demo.sh ZEROTH_BINARY OUT_DIR
set -euo pipefail
bin="${1:?usage: check-demo.sh ZEROTH_BINARY OUT_DIR}"
out="${2:?usage: check-demo.sh ZEROTH_BINARY OUT_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail() { echo "check-demo: FAILED: $*" >&2; exit 1; }

rm -rf "$out"
SKIP_INSTALL=1 SKIP_BUILD=1 ZEROTH_BIN="$bin" DEMO_SMOKE=1 DEMO_DIR="$out" DEMO_THREADS=2 \
  bash "$here/scripts/demo.sh" || fail "scripts/demo.sh exited with $?"

for f in data/pretrain.txt data/train.jsonl data/eval.jsonl pretrain/final/config.json \
         pretrain/final/model.safetensors grpo/final/model.safetensors summary.txt; do
  [[ -s $out/$f ]] || fail "$out/$f is missing or empty"
done
python3 - "$out" <<'PY' || fail "outputs are not sane (above)"
import json, math, sys
d = sys.argv[1]
def rows(p):
    return [json.loads(l) for l in open(p) if l.strip()]
def bad(msg):
    print("check-demo:", msg); sys.exit(1)
pre = rows(f"{d}/pretrain/metrics.jsonl")
if [r["step"] for r in pre] != [1, 2, 3, 4]: bad(f"pretrain metrics steps {[r['step'] for r in pre]}")
if not all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in pre): bad("pretrain loss not finite")
m = rows(f"{d}/grpo/metrics.jsonl")
train = [r for r in m if "eval_accuracy" not in r]
evals = [r for r in m if "eval_accuracy" in r]
if [r["step"] for r in train] != [1, 2]: bad(f"grpo train rows {[r['step'] for r in train]}")
for r in train:
    for k in ("reward_mean", "accuracy", "format_rate", "kl", "entropy", "response_len_mean",
              "clip_frac", "grad_norm", "tokens_per_s"):
        if k not in r: bad(f"grpo step {r['step']}: no '{k}'")
    if not (0 <= r["accuracy"] <= 1 and 0 <= r["format_rate"] <= 1 and 0 <= r["reward_mean"] <= 2):
        bad(f"grpo step {r['step']}: accuracy/format/reward out of range")
if [int(r["step"]) for r in evals] != [1, 2]: bad(f"grpo eval rows at steps {[r['step'] for r in evals]}")
for name in ("eval-before", "eval-after"):
    j = [l for l in open(f"{d}/{name}.log") if l.startswith("{")]
    if not j: bad(f"{name}.log: no JSON line")
    e = json.loads(j[-1])
    if e.get("eval_prompts") != 4 or not (0 <= e["eval_accuracy"] <= 1 and 0 <= e["eval_format_rate"] <= 1):
        bad(f"{name}.log: {e}")
s = open(f"{d}/summary.txt").read()
for needle in ("pass@1", "format rate", "reward curve", "wall time: data", "pretrain", "grpo", "eval-after"):
    if needle not in s: bad(f"summary.txt: no '{needle}'")
times = [l.split()[0] for l in open(f"{d}/times.txt")]
if times != ["data", "pretrain", "eval-before", "grpo", "eval-after"]: bad(f"times.txt stages {times}")
PY
echo "check-demo: ok ($out)"
