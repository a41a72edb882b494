#!/usr/bin/env bash
# The R1-Zero demo on a CPU (docs/demo.md): installs the dependencies, builds zeroth, then
# runs six plain `zeroth` stages in runs/demo/ and prints a summary:
#
#   1. zeroth demo-data --out runs/demo/data --seed 1                  the corpus and prompts
#   2. zeroth pretrain  --config configs/demo/pretrain.yaml            the base model
#   3. zeroth eval      --model runs/demo/pretrain/final ...           held-out, before RL
#   4. zeroth train     --config configs/demo/grpo.yaml                GRPO, rule rewards only
#   5. zeroth eval      --model runs/demo/grpo/final ...               held-out, after RL
#   6. scripts/demo-summary.py                                          before/after, reward curve
#
# A re-run starts clean: runs/demo/ is deleted first (DEMO_REUSE_BASE=1 keeps the data and
# the pretrained base model when they are complete, and runs stages 3-6 again).
#
# Environment:
#   SKIP_INSTALL=1      do not run scripts/install-deps.sh
#   SKIP_BUILD=1        do not configure and build (use ZEROTH_BIN or BUILD_DIR/zeroth)
#   BUILD_DIR=build     the build directory; ZEROTH_BIN=path overrides the binary
#   DEMO_DIR=runs/demo  where everything is written
#   DEMO_SMOKE=1        a seconds-long run of the same stages (CI: tests/demo/)
#   DEMO_PRETRAIN_SET, DEMO_GRPO_SET, DEMO_EVAL_SET
#                       extra space-separated key=value overrides for stages 2, 4 and 3+5
#   DEMO_THREADS=2      CPU threads (run.threads of every stage)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DEMO_DIR=${DEMO_DIR:-runs/demo}
THREADS=${DEMO_THREADS:-2}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

now() { date +%s%N; }
since() { awk -v t0="$1" -v t1="$(now)" 'BEGIN { printf "%.1f", (t1 - t0) / 1e9 }'; }
t_build=""
if [[ ${SKIP_INSTALL:-0} != 1 ]]; then bash scripts/install-deps.sh; fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  t0=$(now)
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target zeroth
  t_build=$(since "$t0")
fi
Z=${ZEROTH_BIN:-$BUILD_DIR/zeroth}
[[ -x $Z ]] || { echo "demo: no zeroth binary at $Z (build it, or set ZEROTH_BIN)" >&2; exit 2; }

# Overrides: the run directories follow DEMO_DIR; DEMO_SMOKE shrinks every stage.
data_sets=()
pre_sets=(--set "data.path=$DEMO_DIR/data/pretrain.txt" --set "run.threads=$THREADS")
prompt_sets=(--set "prompts.sources[0].path=$DEMO_DIR/data/train.jsonl"
             --set "prompts.eval_sources[0].path=$DEMO_DIR/data/eval.jsonl" --set "run.threads=$THREADS")
grpo_sets=(--set "model.init=$DEMO_DIR/pretrain/final")
eval_sets=(--set eval.max_prompts=0)
if [[ ${DEMO_SMOKE:-0} == 1 ]]; then
  data_sets=(--train 200 --eval 16 --corpus-bytes 200000)
  pre_sets+=(--set train.steps=4 --set train.batch_size=2 --set optim.warmup_steps=1 --set train.log_every=2)
  grpo_sets+=(--set train.steps=2 --set train.save_every=1 --set rl.prompts_per_step=2 --set rollout.group_size=2
              --set rollout.max_new_tokens=8 --set rl.eval_every=1 --set eval.max_prompts=2)
  eval_sets=(--set eval.max_prompts=4 --set rollout.max_new_tokens=8)
fi
for kv in ${DEMO_PRETRAIN_SET:-}; do pre_sets+=(--set "$kv"); done
for kv in ${DEMO_GRPO_SET:-}; do grpo_sets+=(--set "$kv"); done
for kv in ${DEMO_EVAL_SET:-}; do eval_sets+=(--set "$kv"); done

if [[ ${DEMO_REUSE_BASE:-0} == 1 && -f $DEMO_DIR/pretrain/final/config.json && -f $DEMO_DIR/times.txt ]]; then
  echo "demo: reusing the data and base model in $DEMO_DIR"
  rm -rf "$DEMO_DIR/grpo" "$DEMO_DIR"/eval-*.txt
  grep -E '^(data|pretrain) ' "$DEMO_DIR/times.txt" > "$DEMO_DIR/times.tmp" || true
  mv "$DEMO_DIR/times.tmp" "$DEMO_DIR/times.txt"
  reuse=1
else
  rm -rf "$DEMO_DIR"
  mkdir -p "$DEMO_DIR"
  : > "$DEMO_DIR/times.txt"
  reuse=0
fi
[[ -n $t_build ]] && echo "build $t_build" >> "$DEMO_DIR/times.txt"

# stage NAME CMD...: runs and times one stage, with its output on the console and in
# DEMO_DIR/NAME.log.
stage() {
  local name=$1; shift
  echo
  echo "== demo: $name: $*"
  local t0; t0=$(now)
  "$@" 2>&1 | tee "$DEMO_DIR/$name.log"
  echo "$name $(since "$t0")" >> "$DEMO_DIR/times.txt"
}

if [[ $reuse == 0 ]]; then
  stage data "$Z" demo-data --out "$DEMO_DIR/data" --seed 1 "${data_sets[@]}"
  stage pretrain "$Z" pretrain --config configs/demo/pretrain.yaml --run-dir "$DEMO_DIR/pretrain" "${pre_sets[@]}"
fi
stage eval-before "$Z" eval --model "$DEMO_DIR/pretrain/final" --config configs/demo/grpo.yaml \
  "${prompt_sets[@]}" "${eval_sets[@]}"
stage grpo "$Z" train --config configs/demo/grpo.yaml --run-dir "$DEMO_DIR/grpo" "${prompt_sets[@]}" "${grpo_sets[@]}"
stage eval-after "$Z" eval --model "$DEMO_DIR/grpo/final" --config configs/demo/grpo.yaml \
  "${prompt_sets[@]}" "${eval_sets[@]}"

echo
python3 scripts/demo-summary.py "$DEMO_DIR" | tee "$DEMO_DIR/summary.txt"
# The PNG of the curves, where matplotlib exists (Debian: python3-matplotlib).
for py in /usr/bin/python3 python3; do
  if "$py" -c 'import matplotlib' 2>/dev/null; then
    "$py" scripts/plot-metrics.py "$DEMO_DIR/grpo/metrics.jsonl" -o "$DEMO_DIR/metrics.png" &&
      echo "demo: curves in $DEMO_DIR/metrics.png"
    break
  fi
done
