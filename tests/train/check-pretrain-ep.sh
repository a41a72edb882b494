#!/usr/bin/env bash
# `zeroth pretrain` with expert parallelism (run.expert_parallel), end to end under mpiexec:
#   1. np 2 with the routed experts split over both ranks (P 2) and np 4 with two expert
#      groups of 2 (P 2; the experts' gradients also reduced across the groups) train the
#      tiny model as one rank does: the same losses (relative 1e-5) and final weights
#      (1e-5 + 1e-4 relative);
#   2. the checkpoint is an HF sharded model (one file per expert part, an index,
#      config.json) that `zeroth ckpt info` reads;
#   3. stopping at step 10 and resuming gives the uninterrupted run's weights byte for
#      byte;
#   4. a P 2 checkpoint resumes at P 1 (np 2) and P 4 (np 4): the optimizer parts hold
#      HF-named moments, read by name; the results match the uninterrupted run to
#      rounding. A P 1 checkpoint (one flat optimizer buffer) resumed at P 2 is refused
#      with a CheckpointError.
#   5. P not dividing the ranks or n_routed_experts is a ConfigError naming the key.
# Usage: check-pretrain-ep.sh ZEROTH MPIEXEC WORKDIR (run from the repository root).
set -euo pipefail
ZEROTH=$1
MPIEXEC=$2
WORK=$3
HERE=$(cd "$(dirname "$0")" && pwd)
CFG=configs/pretrain-tiny.yaml
rm -rf "$WORK"
mkdir -p "$WORK"
export OMP_NUM_THREADS=1
source "$HERE/check-lib.sh"

"$ZEROTH" pretrain --config $CFG --run-dir "$WORK/ref" > "$WORK/ref.log" 2>&1 || fail "np 1 run (see $WORK/ref.log)"
mpi 2 pretrain --config $CFG --run-dir "$WORK/ep2" --set run.expert_parallel=2 > "$WORK/ep2.log" 2>&1 ||
  fail "np 2 expert-parallel run (see $WORK/ep2.log)"
mpi 4 pretrain --config $CFG --run-dir "$WORK/ep4" --set run.expert_parallel=2 > "$WORK/ep4.log" 2>&1 ||
  fail "np 4 expert-parallel run (see $WORK/ep4.log)"
grep -q "expert parallelism over 2 ranks: this rank holds routed experts \[0, 4) of 8" "$WORK/ep2.log" ||
  fail "no expert-parallel line in the np 2 log"
for run in ep2 ep4; do
  echo "== $run vs one rank"
  same_losses "$WORK/ref/metrics.jsonl" "$WORK/$run/metrics.jsonl" || fail "$run losses differ from np 1"
  python3 "$HERE/compare_safetensors.py" "$WORK/$run/final" "$WORK/ref/final" 1e-4 1e-5 ||
    fail "$run final weights differ from np 1"
done

echo "== the checkpoint is a sharded HF model"
for f in model-00001-of-00002.safetensors model-00002-of-00002.safetensors model.safetensors.index.json \
         config.json optimizer-00001-of-00002.safetensors optimizer-00002-of-00002.safetensors \
         trainer_state.json tokenizer.json; do
  [ -f "$WORK/ep2/checkpoints/step_10/$f" ] || fail "checkpoint lacks $f"
done
"$ZEROTH" ckpt info "$WORK/ep2/final" > "$WORK/info.txt" || fail "zeroth ckpt info on the expert-parallel model"
grep -q "parameters: 55144 total" "$WORK/info.txt" || { cat "$WORK/info.txt"; fail "ckpt info: not the whole model"; }

echo "== stop at step 10, resume to 20: byte-identical"
mpi 2 pretrain --config $CFG --run-dir "$WORK/part" --set run.expert_parallel=2 --set train.steps=10 \
  > "$WORK/part.log" 2>&1 || fail "np 2 run of 10 steps"
cp -r "$WORK/part" "$WORK/part_p1"  # resumed at other sizes below
cp -r "$WORK/part" "$WORK/part_p4"
mpi 2 pretrain --resume "$WORK/part" --set train.steps=20 > "$WORK/resume.log" 2>&1 ||
  fail "np 2 resume (see $WORK/resume.log)"
python3 "$HERE/compare_safetensors.py" "$WORK/part/final" "$WORK/ep2/final" --exact ||
  fail "resumed weights differ from the uninterrupted run"
[ "$(losses "$WORK/part/metrics.jsonl")" = "$(losses "$WORK/ep2/metrics.jsonl")" ] ||
  fail "resumed losses differ from the uninterrupted run"

echo "== resuming at another expert-parallel size (the optimizer parts are read by name)"
mpi 2 pretrain --resume "$WORK/part_p1" --set train.steps=20 --set run.expert_parallel=1 > "$WORK/p1.log" 2>&1 ||
  fail "resume of a P 2 checkpoint with P 1 (see $WORK/p1.log)"
mpi 4 pretrain --resume "$WORK/part_p4" --set train.steps=20 --set run.expert_parallel=4 > "$WORK/p4.log" 2>&1 ||
  fail "resume of a P 2 checkpoint with P 4 at np 4 (see $WORK/p4.log)"
for run in part_p1 part_p4; do
  grep -q "resuming from .*step_10 at step 10" "$WORK/${run#part_}.log" || fail "$run did not resume from step 10"
  same_losses "$WORK/ep2/metrics.jsonl" "$WORK/$run/metrics.jsonl" || fail "$run losses differ"
  python3 "$HERE/compare_safetensors.py" "$WORK/$run/final" "$WORK/ep2/final" 1e-4 1e-5 || fail "$run weights differ"
done

echo "== a run without expert parallelism resumed with it is refused"
set +e
mpi 2 pretrain --resume "$WORK/ref" --set train.steps=22 --set run.expert_parallel=2 > "$WORK/wrong.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "a resume with run.expert_parallel 2 from a P 1 checkpoint succeeded"
grep -q "written with run.expert_parallel 1" "$WORK/wrong.log" || { cat "$WORK/wrong.log"; fail "no clear error"; }
echo "== sizes that do not divide the ranks or the experts are config errors"
set +e
mpi 4 pretrain --config $CFG --run-dir "$WORK/bad" --set run.expert_parallel=3 > "$WORK/bad1.log" 2>&1
rc1=$?
mpi 3 pretrain --config $CFG --run-dir "$WORK/bad" --set run.expert_parallel=3 --set train.batch_size=3 > "$WORK/bad2.log" 2>&1
rc2=$?
set -e
[ $rc1 -ne 0 ] && grep -q "key 'run.expert_parallel': expected a divisor of the 4 rank(s), found 3" "$WORK/bad1.log" ||
  { cat "$WORK/bad1.log"; fail "P 3 on 4 ranks"; }
[ $rc2 -ne 0 ] && grep -q "expected a divisor of the model's n_routed_experts (8), found 3" "$WORK/bad2.log" ||
  { cat "$WORK/bad2.log"; fail "P 3 with 8 experts"; }
echo "PASS: expert-parallel pretrain matches one rank, resumes exactly and at other sizes"
