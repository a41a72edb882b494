#!/usr/bin/env bash
# Stop signals end to end, on the zeroth binary (docs/launch.md, "Stopping a run"):
#   1. `zeroth pretrain` alone, SIGTERM while it trains: exit status 75 after the step in
#      progress, a checkpoint of the last logged step, no final/; `--resume` for 3 more
#      steps ends with final weights byte-identical to an uninterrupted run of as many.
#   2. `mpirun -n 2 zeroth pretrain`, SIGUSR1 to mpirun (which forwards it to the ranks):
#      the same, on 2 ranks.
#   3. `launch/zeroth-local.sh -np 2 -- pretrain`, SIGTERM to the wrapper: it sends mpirun
#      SIGUSR1 (mpirun itself, in a process group of its own, is not killed): exit 75.
#   4. `mpirun -n 2 zeroth train` with a rollout worker one step ahead (rl.rollout_ranks 1,
#      rl.rollout_lag 1), SIGUSR1 to mpirun: every rank stops at the same step (exit 75);
#      `--resume` finishes, byte-identical to an uninterrupted run.
#   5. `mpirun -n 2 zeroth train`, colocated with expert parallelism 2, a SIGUSR1 raised on
#      one rank in step 3's rollout (ZEROTH_TEST_SIGNAL_IN_ROLLOUT): both ranks drop the
#      step and stop as after step 2 (exit 75, checkpoint step_2, no step_3); `--resume`
#      ends byte-identical to an uninterrupted run.
# Usage: check-stop.sh ZEROTH MPIEXEC WORKDIR (run from the repository root).
set -euo pipefail
ZEROTH=$1
MPIEXEC=$2
WORK=$3
rm -rf "$WORK"
mkdir -p "$WORK"
export OMP_NUM_THREADS=1
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# mpiexec on 2 ranks (an array, not a function: the signal must reach mpiexec itself)
read -r -a flags <<< "${ZEROTH_MPIEXEC_FLAGS:-}"
MPI2=("$MPIEXEC" -n 2 "${flags[@]}" --mca btl self,vader)
# Waits until RUN/metrics.jsonl has N lines (at most 120 s).
wait_rows() {
  local file=$1/metrics.jsonl n=$2
  for _ in $(seq 1 1200); do
    if [[ -f "$file" ]] && (($(wc -l < "$file") >= n)); then return 0; fi
    sleep 0.1
  done
  fail "$file did not reach $n lines"
}
last_step() { python3 -c 'import json,sys; print(max(json.loads(l)["step"] for l in open(sys.argv[1])))' "$1/metrics.jsonl"; }
# Starts "$@" in the background, sends SIGNAL once RUN has 3 metrics rows, and checks
# the stop: exit 75, one checkpoint of the last logged step, no final/.
stop_run() {
  local run=$1 signal=$2 log=$3
  shift 3
  "$@" > "$log" 2>&1 &
  local pid=$!
  wait_rows "$run" 3
  kill "-$signal" "$pid"
  local rc=0
  wait "$pid" || rc=$?
  ((rc == 75)) || fail "expected exit status 75 after SIG$signal, found $rc (see $log)"
  grep -q "stopped early after step" "$log" || fail "no 'stopped early' line in $log"
  local n
  n=$(last_step "$run")
  [[ -f "$run/checkpoints/step_$n/trainer_state.json" ]] || fail "no checkpoint of step $n in $run"
  [[ ! -e "$run/final" ]] || fail "$run/final written by a stopped run"
  echo "$(basename "$run"): SIG$signal -> exit 75 after step $n, checkpoint step_$n"
}
same_final() {
  cmp -s "$1/final/model.safetensors" "$2/final/model.safetensors" || fail "$1 and $2: final weights differ"
}

# ---- 1 and 2: pretrain, alone (SIGTERM) and on 2 ranks under mpirun (SIGUSR1) ----
PCFG=(--config configs/pretrain-tiny.yaml --set train.save_every=0)
stop_run "$WORK/p1" TERM "$WORK/p1.log" "$ZEROTH" pretrain "${PCFG[@]}" --run-dir "$WORK/p1" --set train.steps=100000
stop_run "$WORK/p2" USR1 "$WORK/p2.log" "${MPI2[@]}" "$ZEROTH" pretrain "${PCFG[@]}" --run-dir "$WORK/p2" \
  --set train.steps=100000
for r in p1 p2; do
  n=$(($(last_step "$WORK/$r") + 3))
  launch=("$ZEROTH")
  [[ $r == p2 ]] && launch=("${MPI2[@]}" "$ZEROTH")
  "${launch[@]}" pretrain --resume "$WORK/$r" --set train.steps=$n > "$WORK/$r.resume.log" 2>&1 ||
    fail "$r --resume (see $WORK/$r.resume.log)"
  "${launch[@]}" pretrain "${PCFG[@]}" --run-dir "$WORK/$r.whole" --set train.steps=$n > "$WORK/$r.whole.log" 2>&1 ||
    fail "$r uninterrupted run (see $WORK/$r.whole.log)"
  same_final "$WORK/$r" "$WORK/$r.whole"
  echo "$r: resumed to step $n: final weights identical to the uninterrupted run"
done

# ---- launch/zeroth-local.sh: SIGTERM (or Ctrl-C) to the wrapper reaches mpirun as SIGUSR1 ----
stop_run "$WORK/p3" TERM "$WORK/p3.log" launch/zeroth-local.sh -np 2 --threads 1 --bin "$ZEROTH" -- \
  pretrain "${PCFG[@]}" --run-dir "$WORK/p3" --set train.steps=100000
grep -q "zeroth-local: stopping after the current step" "$WORK/p3.log" || fail "no wrapper line in $WORK/p3.log"

# ---- 3: GRPO with a rollout worker one step ahead, on 2 ranks (SIGUSR1 to mpirun) ----
for a in 0 1 2 3 4 5 6 7 8 9; do
  for b in 0 1 2 3 4 5 6 7 8 9; do
    echo "{\"prompt\": \"$a+$b\", \"answer\": \"$((a + b))\"}"
  done
done > "$WORK/prompts.jsonl"
cat > "$WORK/grpo.yaml" <<EOF
run: {threads: 1, seed: 5}
model: {init: configs/models/tiny.json}
optim: {lr: 0.003, weight_decay: 0.0}
train: {log_every: 1000, save_every: 0}
rollout: {group_size: 4, num_slots: 16, max_len: 48, max_new_tokens: 16, prompt_template: '{prompt}='}
grpo: {kl_coef: 0.0}
rl: {prompts_per_step: 4, rollout_ranks: 1, rollout_lag: 1}
prompts:
  sources: [{path: $WORK/prompts.jsonl}]
rewards:
  functions: [{name: accuracy, weight: 1.0}, {name: language, weight: 1.0}]
EOF
stop_run "$WORK/g" USR1 "$WORK/g.log" "${MPI2[@]}" "$ZEROTH" train --config "$WORK/grpo.yaml" --run-dir "$WORK/g" \
  --set train.steps=100000
n=$(($(last_step "$WORK/g") + 2))
"${MPI2[@]}" "$ZEROTH" train --resume "$WORK/g" --set train.steps=$n > "$WORK/g.resume.log" 2>&1 ||
  fail "GRPO --resume (see $WORK/g.resume.log)"
"${MPI2[@]}" "$ZEROTH" train --config "$WORK/grpo.yaml" --run-dir "$WORK/g.whole" --set train.steps=$n \
  > "$WORK/g.whole.log" 2>&1 || fail "GRPO uninterrupted run (see $WORK/g.whole.log)"
same_final "$WORK/g" "$WORK/g.whole"
echo "g: resumed to step $n: final weights identical to the uninterrupted run"

# ---- 5: a signal in a rollout (colocated, expert parallel 2): the step is dropped ----
COLO=(--config "$WORK/grpo.yaml" --set rl.rollout_ranks=0 --set rl.rollout_lag=0 --set run.expert_parallel=2
      --set train.steps=4)
rc=0
"${MPI2[@]}" -x ZEROTH_TEST_SIGNAL_IN_ROLLOUT=3 "$ZEROTH" train "${COLO[@]}" --run-dir "$WORK/r" > "$WORK/r.log" 2>&1 ||
  rc=$?
((rc == 75)) || fail "expected exit status 75 after a signal in step 3's rollout, found $rc (see $WORK/r.log)"
grep -q "stopped in step 3's rollout" "$WORK/r.log" || fail "no 'stopped in step 3's rollout' line in $WORK/r.log"
[[ -f "$WORK/r/checkpoints/step_2/trainer_state.json" && ! -e "$WORK/r/checkpoints/step_3" ]] ||
  fail "$WORK/r: expected the checkpoint of step 2 and none of step 3"
"${MPI2[@]}" "$ZEROTH" train --resume "$WORK/r" > "$WORK/r.resume.log" 2>&1 ||
  fail "--resume after the rollout stop (see $WORK/r.resume.log)"
"${MPI2[@]}" "$ZEROTH" train "${COLO[@]}" --run-dir "$WORK/r.whole" > "$WORK/r.whole.log" 2>&1 ||
  fail "uninterrupted colocated run (see $WORK/r.whole.log)"
for f in "$WORK"/r.whole/final/*.safetensors; do
  cmp -s "$f" "$WORK/r/final/$(basename "$f")" || fail "r: $(basename "$f") differs from the uninterrupted run"
done
echo "r: SIGUSR1 in step 3's rollout -> exit 75 after step 2; resumed: final weights identical"
echo "PASS: stop signals"
