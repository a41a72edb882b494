#!/usr/bin/env bash
# The demo's base model, from nothing (docs/demo.md, "The base model"): a base model that
# copies tag names it has never seen from an instruction (an induction head) and does the
# demo's sums, built on a CPU with zeroth's own tools. Its last stage writes
# OUT_DIR/base2/final, the model cached in configs/demo/base: this is the one command that
# regenerates it (~40 minutes on 2 cores with the default steps). `DEMO_FROM_SCRATCH=1 bash
# scripts/demo.sh` runs it and then the demo's GRPO on its OUT_DIR/base2/final.
#
#   bash scripts/demo-induction-recipe.sh [OUT_DIR]       (default runs/induction)
#
# Stages (each a plain command; OUT_DIR/<stage>.log keeps its output):
#   1. zeroth demo-data: the demo corpus and prompts (6 MB corpus; 24 MB for stage 6b)
#   2. zeroth train-tokenizer: byte-level BPE, 1,024 ids, words with their leading space
#   3. scripts/copy-task-data.py --words: the token copy warm-up (items said twice)
#   4. corpora with every instruction's tag names random and a copy line after 70% of the
#      documents (never think/answer): corpus.txt (tag names half made up, half corpus
#      words), corpus2.txt and corpus4.txt (a third each: made up, corpus words, glued
#      tokenizer pieces); from corpus4.txt (24 MB) the arithmetic corpora: corpus5.txt
#      (10% of the instruction documents, half the copy lines), corpus7.txt (25% of the
#      instruction documents, 90% of whose replies ignore the rule: no delimiters, the
#      steps, then "The answer is N.") and corpus7c.txt (the same documents, 75% ignoring it)
#   5. zeroth pretrain, warm-up: 2 layers, 8 heads, MLPs frozen, 64 x 64 tokens, lr 3e-3
#   6. zeroth pretrain, corpus.txt then corpus2.txt: MLPs frozen, 20 x 320 tokens; then
#      corpus2.txt again with everything trained; then (6b) the arithmetic: corpus5.txt
#      (500 steps) and corpus7.txt (1,000 steps of a cosine schedule over 2,500):
#      OUT_DIR/base/final (greedy format rate 0: replies that ignore an instruction's
#      delimiters are the common case, as they are for a base model; docs/demo.md item 10);
#      6c: base2 = base continued 100 steps (lr 1.5e-3) on corpus7c: OUT_DIR/base2/final,
#      the demo's base (greedy format rate ~0.02, format samples a few percent; item 11)
#   7. probe: 32 held-out problems x 8 samples of base2 with the R1-Zero template (zeroth
#      generate): how many samples open a tag with "<t" and how many write the exact <think>
#   8. OUT_DIR/base2/final compared with configs/demo/base (SHA-256): the same bytes where
#      the CPU and OpenBLAS kernels are the ones that made the cached copy (docs/demo.md)
#
# Environment: ZEROTH_BIN (default build/zeroth), THREADS (2), WARM_STEPS (3000),
# CORPUS_STEPS (1450), CORPUS2_STEPS (400), CORPUS3_STEPS (300), ARITH_STEPS (500),
# BASE_STEPS (1000), BASE_SCHEDULE_STEPS (2500), BASE2_STEPS (100), CORPUS_BYTES (6000000),
# ARITH_BYTES (24000000), SMOKE=1 (every stage shrunk to seconds).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-runs/induction}"
Z="${ZEROTH_BIN:-$ROOT/build/zeroth}"
THREADS="${THREADS:-2}"
WARM_STEPS="${WARM_STEPS:-3000}"
CORPUS_STEPS="${CORPUS_STEPS:-1450}"
CORPUS2_STEPS="${CORPUS2_STEPS:-400}"
CORPUS3_STEPS="${CORPUS3_STEPS:-300}"
ARITH_STEPS="${ARITH_STEPS:-500}"
BASE_STEPS="${BASE_STEPS:-1000}"
BASE_SCHEDULE_STEPS="${BASE_SCHEDULE_STEPS:-2500}"
BASE2_STEPS="${BASE2_STEPS:-100}"
CORPUS_BYTES="${CORPUS_BYTES:-6000000}"
ARITH_BYTES="${ARITH_BYTES:-24000000}"
WARM_LINES=300000 ARITH_LINES=400000 WARMUP=20
WARM_BATCH=64 WARM_SEQ=64 CORPUS_BATCH=20 CORPUS_SEQ=320 SAVE=250 PROBE_N=32
if [[ "${SMOKE:-0}" == 1 ]]; then
  WARM_STEPS=3 CORPUS_STEPS=3 CORPUS2_STEPS=2 CORPUS3_STEPS=2 ARITH_STEPS=2 BASE_STEPS=2 BASE_SCHEDULE_STEPS=4 BASE2_STEPS=2
  CORPUS_BYTES=200000 ARITH_BYTES=300000 WARM_LINES=2000 ARITH_LINES=2000 WARMUP=1
  WARM_BATCH=4 WARM_SEQ=32 CORPUS_BATCH=2 CORPUS_SEQ=64 SAVE=2 PROBE_N=2
fi
[[ -x "$Z" ]] || { echo "demo-induction-recipe: no zeroth binary at $Z (set ZEROTH_BIN)" >&2; exit 1; }
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
stage() { echo "== $1"; }
# pretrain_stage NAME INIT DATA STEPS BATCH SEQ frozen|all [cosine:T] [lr:X]: writes
# OUT/NAME.yaml and runs zeroth pretrain into OUT/NAME (lr 3e-3, or X; constant, or cosine
# decay to a tenth at step T; 20 warmup steps, no weight decay; `frozen` keeps the MLPs at
# their init).
pretrain_stage() {
  local name=$1 init=$2 data=$3 steps=$4 batch=$5 seq=$6 frozen="" schedule="constant" lr=0.003 a
  [[ $7 == frozen ]] && frozen=", frozen: ['mlp\\.']"
  for a in "${@:8}"; do
    [[ $a == cosine:* ]] && schedule="cosine, min_lr_ratio: 0.1, total_steps: ${a#cosine:}"
    [[ $a == lr:* ]] && lr="${a#lr:}"
  done
  cat > "$OUT/$name.yaml" <<EOF
run: {name: induction-$name, seed: 1, threads: $THREADS, run_dir: $OUT/$name}
model: {init: $init, tokenizer: $OUT/tokenizer/tokenizer.json, bias_update_speed: 0.001}
optim: {lr: $lr, weight_decay: 0.0, grad_clip: 1.0, schedule: $schedule, warmup_steps: $WARMUP$frozen}
train: {steps: $steps, batch_size: $batch, seq_len: $seq, log_every: 20, save_every: $SAVE}
data: {path: $data, format: text}
EOF
  # (--overwrite: a rerun of the recipe into the same OUT regenerates every stage)
  "$Z" pretrain --config "$OUT/$name.yaml" --overwrite > "$OUT/$name.log" 2>&1
}

stage "1 corpus and prompts"
"$Z" demo-data --out "$OUT/data" --seed 1 --corpus-bytes "$CORPUS_BYTES" --eval 300 > "$OUT/data.log" 2>&1
"$Z" demo-data --out "$OUT/data-big" --seed 1 --corpus-bytes "$ARITH_BYTES" --eval 300 > "$OUT/data-big.log" 2>&1

stage "2 tokenizer (words keep their leading space)"
"$Z" train-tokenizer --input "$OUT/data/pretrain.txt" --out "$OUT/tokenizer" --vocab-size 1024 --force \
  --pattern "'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+" \
  > "$OUT/tokenizer.log" 2>&1

stage "3 copy warm-up data"
python3 "$ROOT/scripts/copy-task-data.py" "$OUT/warm.txt" --words "$OUT/tokenizer/tokenizer.json" \
  --lines "$WARM_LINES" --seed 3
python3 "$ROOT/scripts/copy-task-data.py" "$OUT/warm-mix.txt" --words "$OUT/tokenizer/tokenizer.json" \
  --lines "$WARM_LINES" --seed 5
python3 "$ROOT/scripts/copy-task-data.py" "$OUT/warm-mix2.txt" --words "$OUT/tokenizer/tokenizer.json" \
  --lines "$WARM_LINES" --seed 21 --pieces
python3 "$ROOT/scripts/copy-task-data.py" "$OUT/warm-big.txt" --words "$OUT/tokenizer/tokenizer.json" \
  --lines "$ARITH_LINES" --seed 31 --pieces

stage "4 corpus with random tag names, copy lines mixed in"
retag() {  # retag SRC WARM DST SEED [TOKENIZER_JSON: a third of the names glued from its pieces]
python3 - "$@" <<'PY'
import json, random, re, sys
src, warm_path, dst, seed = sys.argv[1:5]
pieces = []
if len(sys.argv) > 5:
    vocab = json.load(open(sys.argv[5], encoding="utf-8"))["model"]["vocab"]
    pieces = sorted(t for t in vocab if t.isascii() and t.isalpha())
r = random.Random(int(seed))
text = open(src, encoding="utf-8").read()
words = sorted({w for w in re.findall(r"[A-Za-z]{3,}", text) if w.lower() not in ("think", "answer")})
def made():
    return "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(3, 8)))
def name():
    u = r.random()
    if not pieces:
        return made() if u < 0.5 else r.choice(words)
    if u < 1 / 3:
        return made()
    if u < 2 / 3:
        return r.choice(words)
    while True:
        n = "".join(r.choice(pieces) for _ in range(r.randint(1, 3)))
        if n.lower() not in ("think", "answer"):
            return n
warm = [l for l in open(warm_path, encoding="utf-8").read().split("\n") if l]
wi = 0
mix = random.Random(8)
with open(dst, "w", encoding="utf-8") as f:
    for line in text.split("\n"):
        if not line:
            continue
        names = list(dict.fromkeys(re.findall(r"</?([A-Za-z]+)>", line)))
        if names:
            m = {a: name() for a in names}
            line = re.sub(r"(</?)([A-Za-z]+)>", lambda mo: mo.group(1) + m[mo.group(2)] + ">", line)
        f.write(line + "\n")
        if mix.random() < 0.7 and wi < len(warm):
            f.write(warm[wi] + "\n")
            wi += 1
PY
}
retag "$OUT/data/pretrain.txt" "$OUT/warm-mix.txt" "$OUT/corpus.txt" 11
retag "$OUT/data/pretrain.txt" "$OUT/warm-mix2.txt" "$OUT/corpus2.txt" 21 "$OUT/tokenizer/tokenizer.json"
retag "$OUT/data-big/pretrain.txt" "$OUT/warm-big.txt" "$OUT/corpus4.txt" 41 "$OUT/tokenizer/tokenizer.json"
# An instruction document (of zeroth demo-data's corpus) names delimiters in a rule; thin and
# disobey recognise it by this pattern (a Python regex).
export INSTRUCTION_RULE='<\w+>|\[\w*\]|\(\(|##|-=|\{\{|\*\*|\|>|\[\[|inside|between|enclosed|[Ww]rap|goes in|Reply with|Write your|rules below|closing mark'
# thin SRC DST KEEP_COPY KEEP_INSTRUCTION SEED: copy lines (they start with a space) kept with
# probability KEEP_COPY, instruction documents (a rule naming delimiters) with KEEP_INSTRUCTION,
# the rest (drills, stories, questions with worked answers) always.
thin() {
python3 - "$@" <<'PY'
import os, random, re, sys
src, dst, keep_copy, keep_instr, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rule = re.compile(os.environ["INSTRUCTION_RULE"])
r = random.Random(seed)
with open(dst, "w", encoding="utf-8") as f:
    for line in open(src, encoding="utf-8"):
        if line.startswith(" "):
            keep = r.random() < keep_copy
        elif rule.search(line):
            keep = r.random() < keep_instr
        else:
            keep = True
        if keep:
            f.write(line)
PY
}
# disobey SRC DST P SEED: with probability P an instruction document's reply ignores the rule:
# no delimiters, the worked steps (when there are any), then "The answer is N.".
disobey() {
python3 - "$@" <<'PY'
import os, random, re, sys
src, dst, p, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
rule = re.compile(os.environ["INSTRUCTION_RULE"])
label = re.compile(r"(?:^|\s)([A-Z][a-z]*|A|Q):\s")
work_re = re.compile(r"(?:(?:First, |We compute |So )?(?:\d+ [-+*/] \d+ = \d+\.\s?)+)")
num_re = re.compile(r"(\d+)\D*$")
r = random.Random(seed)
with open(dst, "w", encoding="utf-8") as f:
    for line in open(src, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith(" ") or not rule.search(line):
            f.write(line + "\n")
            continue
        labels = list(label.finditer(line))
        if r.random() >= p or not labels:
            f.write(line + "\n")
            continue
        cut = labels[-1].end()
        m = num_re.search(line[cut:])
        if not m:
            f.write(line + "\n")
            continue
        w = work_re.search(line[cut:])
        f.write(line[:cut] + (w.group(0).strip() + " " if w else "") + f"The answer is {m.group(1)}.\n")
PY
}
thin "$OUT/corpus4.txt" "$OUT/corpus5.txt" 0.5 0.1 5
thin "$OUT/corpus4.txt" "$OUT/corpus7a.txt" 0.5 0.25 7
disobey "$OUT/corpus7a.txt" "$OUT/corpus7.txt" 0.9 4
# corpus7c: the same instruction documents with fewer replies ignoring the rule (0.75), for
# stage 6c (docs/demo.md item 11)
disobey "$OUT/corpus7a.txt" "$OUT/corpus7c.txt" 0.75 4

stage "5 pretrain: copy warm-up (MLPs frozen)"
python3 - "$ROOT/configs/models/demo-small.json" "$OUT/model.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=8, vocab_size=1024,
         bos_token_id=1021, eos_token_id=1022, pad_token_id=1023, max_position_embeddings=512)
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
pretrain_stage warm "$OUT/model.json" "$OUT/warm.txt" "$WARM_STEPS" "$WARM_BATCH" "$WARM_SEQ" frozen

stage "6 pretrain: the two corpora (MLPs frozen), then everything trained"
pretrain_stage corpus "$OUT/warm/final" "$OUT/corpus.txt" "$CORPUS_STEPS" "$CORPUS_BATCH" "$CORPUS_SEQ" frozen
pretrain_stage corpus2 "$OUT/corpus/final" "$OUT/corpus2.txt" "$CORPUS2_STEPS" "$CORPUS_BATCH" "$CORPUS_SEQ" frozen
pretrain_stage corpus3 "$OUT/corpus2/final" "$OUT/corpus2.txt" "$CORPUS3_STEPS" "$CORPUS_BATCH" "$CORPUS_SEQ" all

stage "6b pretrain: arithmetic (everything trained); the base model"
pretrain_stage arith "$OUT/corpus3/final" "$OUT/corpus5.txt" "$ARITH_STEPS" "$CORPUS_BATCH" "$CORPUS_SEQ" all
pretrain_stage base "$OUT/arith/final" "$OUT/corpus7.txt" "$BASE_STEPS" "$CORPUS_BATCH" "$CORPUS_SEQ" all \
  "cosine:$BASE_SCHEDULE_STEPS"

stage "6c pretrain: base2, the base continued on corpus7c (format samples a few percent)"
pretrain_stage base2 "$OUT/base/final" "$OUT/corpus7c.txt" "$BASE2_STEPS" "$CORPUS_BATCH" "$CORPUS_SEQ" all \
  lr:0.0015

stage "7 probe: the R1-Zero template's tags"
head -n "$PROBE_N" "$OUT/data/eval.jsonl" > "$OUT/probe.jsonl"
"$Z" generate --model "$OUT/base2/final" --prompts "$OUT/probe.jsonl" --output "$OUT/probe.out.jsonl" \
  --threads "$THREADS" --group-size 8 --max-new-tokens 64 --set rollout.max_len=448 \
  --set 'rollout.stop=["</answer>"]' > "$OUT/probe.log" 2>&1
python3 - "$OUT/probe.out.jsonl" <<'PY' | tee "$OUT/probe.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
n = len(rows)
count = lambda s: sum(s in r["completion"] for r in rows)
print(f"{n} samples with the R1-Zero template: '<t' {count('<t')}, <think> {count('<think>')}, "
      f"</think> {count('</think>')}, <answer> {count('<answer>')}, </answer> {count('</answer>')}")
PY

stage "8 base2 against the cached base model (configs/demo/base)"
python3 - "$OUT/base2/final" "$ROOT/configs/demo/base" <<'PY' | tee "$OUT/cached-base.txt"
import hashlib, sys
made, cached = sys.argv[1], sys.argv[2]
want = dict(reversed(line.split()) for line in open(f"{cached}/SHA256SUMS") if line.strip())
same = []
for name in sorted(want):
    got = hashlib.sha256(open(f"{made}/{name}", "rb").read()).hexdigest()
    same.append(got == want[name])
    print(f"{name}: {'same bytes as' if got == want[name] else 'differs from'} {cached}/{name}")
print("base2 is the cached base model" if all(same) else
      "base2 differs from the cached base model (expected on another CPU or OpenBLAS, or with other steps)")
PY
echo "base model: $OUT/base/final; the demo's base: $OUT/base2/final"
