#!/usr/bin/env bash
# CTest induction_recipe_smoke: scripts/demo-induction-recipe.sh (the demo's base model,
# configs/demo/base) with SMOKE=1 on the built binary, so that the recipe's stages and
# generated configs cannot rot.
# Checks the outputs of every stage, not the learning result (docs/demo.md has the runs).
#
# usage: tests/demo/check-induction-recipe.sh ZEROTH_BINARY OUT_DIR
set -euo pipefail
bin="${1:?usage: check-induction-recipe.sh ZEROTH_BINARY OUT_DIR}"
out="${2:?usage: check-induction-recipe.sh ZEROTH_BINARY OUT_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail() { echo "check-induction-recipe: FAILED: $*" >&2; exit 1; }

rm -rf "$out"
SMOKE=1 THREADS=2 ZEROTH_BIN="$bin" bash "$here/scripts/demo-induction-recipe.sh" "$out" ||
  fail "scripts/demo-induction-recipe.sh exited with $?"
for f in tokenizer/tokenizer.json warm.txt corpus.txt corpus2.txt corpus4.txt corpus5.txt corpus7.txt corpus7c.txt \
         warm/final/model.safetensors corpus/final/model.safetensors corpus2/final/model.safetensors \
         corpus3/final/model.safetensors arith/final/model.safetensors base/final/model.safetensors \
         base2/final/model.safetensors base2.yaml \
         probe.out.jsonl probe.txt cached-base.txt; do
  [[ -s $out/$f ]] || fail "$out/$f is missing or empty"
done
# Word tokens carry their leading space (the point of the recipe's tokenizer).
python3 - "$out/tokenizer/tokenizer.json" <<'PY' || fail "the tokenizer has no leading-space word tokens"
import json, sys
vocab = json.load(open(sys.argv[1], encoding="utf-8"))["model"]["vocab"]
sys.exit(0 if sum(t.startswith("\u0120") and t[1:].isalpha() for t in vocab) >= 20 else 1)
PY
# Copy lines: every line is one text said twice.
python3 - "$out/warm.txt" <<'PY' || fail "warm.txt lines are not a text said twice"
import sys
for line in open(sys.argv[1], encoding="utf-8"):
    s = line.rstrip("\n")
    h = len(s) // 2
    if not s or s[:h] != s[h:]:
        sys.exit(1)
PY
# No think/answer tag names in the corpus (the R1-Zero format must not be in pretraining).
for c in corpus.txt corpus2.txt corpus4.txt corpus5.txt corpus7.txt; do
  if grep -qiE '</?(think|answer)>' "$out/$c"; then fail "$c has a think/answer tag"; fi
done
grep -q "^16 samples with the R1-Zero template" "$out/probe.txt" || fail "probe.txt: $(cat "$out/probe.txt")"
# The arithmetic corpora: corpus5 keeps fewer instruction documents than corpus4; in corpus7
# most replies to an instruction ignore its delimiters and end "The answer is N.", and no line
# is lost or added by that.
python3 - "$out" <<'PY' || fail "the arithmetic corpora are not what the recipe says (above)"
import sys
d = sys.argv[1]
lines = lambda f: [l for l in open(f"{d}/{f}", encoding="utf-8")]
c4, c5, c7a, c7 = lines("corpus4.txt"), lines("corpus5.txt"), lines("corpus7a.txt"), lines("corpus7.txt")
if not (0 < len(c5) < len(c4) and 0 < len(c7a) < len(c4)): sys.exit(f"sizes {len(c4)} {len(c5)} {len(c7a)}")
if len(c7) != len(c7a): sys.exit("disobey changed the line count")
changed = [b for a, b in zip(c7a, c7) if a != b]
if not changed or not all(b.rstrip().endswith(".") and "The answer is " in b for b in changed):
    sys.exit(f"{len(changed)} replies changed; not all end with 'The answer is N.'")
PY
# The pretraining stages, each with its metric rows.
grep -q 'lr: 0.0015,' "$out/base2.yaml" || fail "$out/base2.yaml does not set lr 0.0015 (pretrain_stage lr:X)"
grep -q 'corpus7c.txt' "$out/base2.yaml" || fail "$out/base2.yaml does not read corpus7c.txt"
for s in warm corpus corpus2 corpus3 arith base base2; do
  n=$(grep -c '"loss"' "$out/$s/metrics.jsonl" || true)
  [[ $n -ge 1 ]] || fail "$out/$s/metrics.jsonl has no loss rows"
done
# The comparison with the cached base: one line per file of its SHA256SUMS, then the verdict
# (a smoke run's 2-step base2 is not the cached model).
[[ $(grep -cE '^(config.json|model.safetensors|tokenizer.json|tokenizer_config.json): ' "$out/cached-base.txt") -eq 4 ]] &&
  grep -q '^model.safetensors: differs from ' "$out/cached-base.txt" || fail "cached-base.txt: $(cat "$out/cached-base.txt")"
grep -q '^base2 differs from the cached base model' "$out/cached-base.txt" || fail "cached-base.txt: no verdict"
echo "check-induction-recipe: ok"
