#!/usr/bin/env bash
# The R1-Zero demo on a CPU (docs/demo.md): installs the dependencies, builds zeroth, then
# runs plain `zeroth` stages in runs/demo/ and prints a summary:
#
#   1. zeroth demo-data --out runs/demo/data --seed 1                  the prompts
#   2. the base model: configs/demo/base (cached, checked against its SHA256SUMS), or with
#      DEMO_FROM_SCRATCH=1, scripts/demo-induction-recipe.sh runs/demo/recipe (~40 min on
#      2 cores): the one command that regenerates configs/demo/base
#   3. zeroth eval      --model BASE ...                                held-out, before RL
#   4. zeroth train     --config configs/demo/grpo.yaml                GRPO, rule rewards only
#   5. zeroth eval      --model runs/demo/grpo/final ...               held-out, after RL
#   6. zeroth generate  (greedy, 3 held-out problems, both models)     example replies
#   7. scripts/demo-summary.py                                          before/after, reward curve
#
# A re-run starts clean: runs/demo/ is deleted first (DEMO_FROM_SCRATCH=1 with
# DEMO_REUSE_BASE=1 keeps a complete runs/demo/recipe and its base model).
#
# Environment:
#   SKIP_INSTALL=1      do not run scripts/install-deps.sh
#   SKIP_BUILD=1        do not configure and build (use ZEROTH_BIN or BUILD_DIR/zeroth)
#   BUILD_DIR=build     the build directory; ZEROTH_BIN=path overrides the binary
#   DEMO_DIR=runs/demo  where everything is written
#   DEMO_FROM_SCRATCH=1 build the base model with the recipe instead of using the cached one
#   DEMO_SMOKE=1        a seconds-long run of the same stages (CI: tests/demo/)
#   DEMO_GRPO_SET, DEMO_EVAL_SET
#                       extra space-separated key=value overrides for stage 4 and 3+5
#   DEMO_THREADS=2      CPU threads (run.threads of every stage)
#   OMP_WAIT_POLICY     unset (active waiting, for a dedicated machine); PASSIVE when shared
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
DEMO_DIR=${DEMO_DIR:-runs/demo}
THREADS=${DEMO_THREADS:-2}
CACHED_BASE=configs/demo/base
# OMP_WAIT_POLICY is left as it is: libgomp's default (active waiting) is ~12% faster on the
# dedicated 2-core machine the demo is for; on a shared machine export OMP_WAIT_POLICY=PASSIVE
# (docs/perf.md, section 1).

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
Z=$(cd "$(dirname "$Z")" && pwd)/$(basename "$Z")

# Overrides: the run directories follow DEMO_DIR; DEMO_SMOKE shrinks every stage.
data_sets=()
prompt_sets=(--set "prompts.sources[0].path=$DEMO_DIR/data/train.jsonl"
             --set "prompts.eval_sources[0].path=$DEMO_DIR/data/eval.jsonl" --set "run.threads=$THREADS")
grpo_sets=()
eval_sets=(--set eval.max_prompts=0)
gen_sets=(--max-new-tokens 64)
if [[ ${DEMO_SMOKE:-0} == 1 ]]; then
  data_sets=(--train 200 --eval 16 --corpus-bytes 200000)
  grpo_sets+=(--set train.steps=2 --set train.save_every=1 --set rl.prompts_per_step=2 --set rollout.group_size=2
              --set rollout.num_slots=4 --set rollout.max_new_tokens=8 --set rl.eval_every=1
              --set eval.max_prompts=2)
  eval_sets=(--set eval.max_prompts=4 --set rollout.max_new_tokens=8)
  gen_sets=(--max-new-tokens 8)
fi
for kv in ${DEMO_GRPO_SET:-}; do grpo_sets+=(--set "$kv"); done
for kv in ${DEMO_EVAL_SET:-}; do eval_sets+=(--set "$kv"); done

scratch=${DEMO_FROM_SCRATCH:-0}
if [[ $scratch == 1 && ${DEMO_REUSE_BASE:-0} == 1 && -f $DEMO_DIR/recipe/base2/final/model.safetensors &&
      -f $DEMO_DIR/times.txt ]] && grep -q '^recipe ' "$DEMO_DIR/times.txt"; then
  echo "demo: reusing the recipe's base model in $DEMO_DIR/recipe"
  find "$DEMO_DIR" -mindepth 1 -maxdepth 1 ! -name recipe ! -name times.txt -exec rm -rf {} +
  grep -E '^recipe ' "$DEMO_DIR/times.txt" > "$DEMO_DIR/times.tmp" || true
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

stage data "$Z" demo-data --out "$DEMO_DIR/data" --seed 1 "${data_sets[@]}"
if [[ $scratch == 1 ]]; then
  if [[ $reuse == 0 ]]; then
    recipe_env=()
    [[ ${DEMO_SMOKE:-0} == 1 ]] && recipe_env=(SMOKE=1)
    stage recipe env "${recipe_env[@]}" ZEROTH_BIN="$Z" THREADS="$THREADS" \
      bash scripts/demo-induction-recipe.sh "$DEMO_DIR/recipe"
  fi
  base=$DEMO_DIR/recipe/base2/final
else
  # The cached base model: the files must be the ones the recipe wrote (a Git LFS pointer or
  # a truncated copy would otherwise fail later with a less clear error).
  (cd "$CACHED_BASE" && sha256sum --quiet -c SHA256SUMS) ||
    { echo "demo: $CACHED_BASE does not match its SHA256SUMS (regenerate it:" \
           "DEMO_FROM_SCRATCH=1 bash scripts/demo.sh, docs/demo.md)" >&2; exit 2; }
  base=$CACHED_BASE
fi
echo "$base" > "$DEMO_DIR/base-model.txt"
grpo_sets=(--set "model.init=$base" "${grpo_sets[@]}")

stage eval-before "$Z" eval --model "$base" --config configs/demo/grpo.yaml \
  "${prompt_sets[@]}" "${eval_sets[@]}"
stage grpo "$Z" train --config configs/demo/grpo.yaml --run-dir "$DEMO_DIR/grpo" "${prompt_sets[@]}" "${grpo_sets[@]}"
stage eval-after "$Z" eval --model "$DEMO_DIR/grpo/final" --config configs/demo/grpo.yaml \
  "${prompt_sets[@]}" "${eval_sets[@]}"

# Example replies: the first 3 held-out problems, greedy, before and after (the summary
# prints them).
head -n 3 "$DEMO_DIR/data/eval.jsonl" > "$DEMO_DIR/samples.jsonl"
for which in before after; do
  model=$base
  [[ $which == after ]] && model=$DEMO_DIR/grpo/final
  "$Z" generate --model "$model" --prompts "$DEMO_DIR/samples.jsonl" --config configs/demo/grpo.yaml \
    --output "$DEMO_DIR/samples-$which.jsonl" --threads "$THREADS" --group-size 1 --temperature 0 \
    "${gen_sets[@]}" > "$DEMO_DIR/samples-$which.log" 2>&1 ||
    { echo "demo: zeroth generate failed (see $DEMO_DIR/samples-$which.log)" >&2; exit 1; }
done

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
