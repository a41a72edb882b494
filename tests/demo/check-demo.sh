#!/usr/bin/env bash
# CTest demo_smoke / demo_scratch_smoke: runs scripts/demo.sh (the README's first command)
# with DEMO_SMOKE=1 on an already built binary, from the cached base model (cached) or with
# DEMO_FROM_SCRATCH=1, the recipe that regenerates it (scratch), so the demo's stages,
# configs and summary cannot rot, and checks that every stage left sane outputs. It checks
# the plumbing, not the learning result (docs/demo.md has the measured full run).
#
# usage: tests/demo/check-demo.sh ZEROTH_BINARY OUT_DIR [cached|scratch]
set -euo pipefail
bin="${1:?usage: check-demo.sh ZEROTH_BINARY OUT_DIR [cached|scratch]}"
out="${2:?usage: check-demo.sh ZEROTH_BINARY OUT_DIR [cached|scratch]}"
mode="${3:-cached}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail() { echo "check-demo: FAILED: $*" >&2; exit 1; }

case $mode in
  cached) scratch=0; base=configs/demo/base; stages="data eval-before grpo eval-after" ;;
  scratch) scratch=1; base=$out/recipe/base2/final; stages="data recipe eval-before grpo eval-after" ;;
  *) fail "mode '$mode': expected cached or scratch" ;;
esac
rm -rf "$out"
# PASSIVE: CTest may run other tests beside this one (docs/perf.md, section 1).
OMP_WAIT_POLICY=PASSIVE SKIP_INSTALL=1 SKIP_BUILD=1 ZEROTH_BIN="$bin" DEMO_SMOKE=1 DEMO_DIR="$out" DEMO_THREADS=2 \
  DEMO_FROM_SCRATCH=$scratch bash "$here/scripts/demo.sh" || fail "scripts/demo.sh exited with $?"

for f in data/train.jsonl data/eval.jsonl grpo/final/model.safetensors summary.txt \
         samples-before.jsonl samples-after.jsonl; do
  [[ -s $out/$f ]] || fail "$out/$f is missing or empty"
done
[[ $(cat "$out/base-model.txt") == "$base" ]] || fail "base-model.txt: $(cat "$out/base-model.txt"), expected $base"
grep -q "^base model: $base\$" "$out/summary.txt" || fail "summary.txt does not name the base model $base"
python3 - "$out" "$stages" <<'PY' || fail "outputs are not sane (above)"
import json, sys
d, stages = sys.argv[1], sys.argv[2].split()
def rows(p):
    return [json.loads(l) for l in open(p) if l.strip()]
def bad(msg):
    print("check-demo:", msg); sys.exit(1)
m = rows(f"{d}/grpo/metrics.jsonl")
train = [r for r in m if "eval_accuracy" not in r]
evals = [r for r in m if "eval_accuracy" in r]
if [r["step"] for r in train] != [1, 2]: bad(f"grpo train rows {[r['step'] for r in train]}")
for r in train:
    for k in ("reward_mean", "accuracy", "format_rate", "kl", "entropy", "response_len_mean",
              "clip_frac", "grad_norm", "tokens_per_s", "mem_rss_gib", "mem_peak_gib"):
        if k not in r: bad(f"grpo step {r['step']}: no '{k}'")
    if not (0 <= r["accuracy"] <= 1 and 0 <= r["format_rate"] <= 1 and 0 <= r["reward_mean"] <= 3):  # accuracy + 2 x format
        bad(f"grpo step {r['step']}: accuracy/format/reward out of range")
if [int(r["step"]) for r in evals] != [1, 2]: bad(f"grpo eval rows at steps {[r['step'] for r in evals]}")
for name in ("eval-before", "eval-after"):
    j = [l for l in open(f"{d}/{name}.log") if l.startswith("{")]
    if not j: bad(f"{name}.log: no JSON line")
    e = json.loads(j[-1])
    if e.get("eval_prompts") != 4 or not (0 <= e["eval_accuracy"] <= 1 and 0 <= e["eval_format_rate"] <= 1):
        bad(f"{name}.log: {e}")
for name in ("before", "after"):
    g = rows(f"{d}/samples-{name}.jsonl")
    if len(g) != 3 or not all(isinstance(r.get("completion"), str) and r.get("finish_reason") in ("stop", "length")
                              for r in g):
        bad(f"samples-{name}.jsonl: {g}")
s = open(f"{d}/summary.txt").read()
for needle in ("pass@1", "format rate", "reward curve", "wall time: data", "grpo", "eval-after",
               "example replies", "    before: ", "    after:  "):
    if needle not in s: bad(f"summary.txt: no '{needle}'")
times = [l.split()[0] for l in open(f"{d}/times.txt")]
if times != stages: bad(f"times.txt stages {times}, expected {stages}")
PY
echo "check-demo: ok ($out)"
