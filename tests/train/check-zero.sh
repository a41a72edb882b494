#!/usr/bin/env bash
# ZeRO-1 (run.zero_stage 1: the AdamW moments sharded over the data-parallel ranks) with
# `zeroth pretrain`, end to end under mpiexec:
#   1. np 2 and np 4 (and np 4 with run.expert_parallel 2) train the tiny model as the
#      replicated optimizer does at np 2: the same losses (relative 1e-5) and final weights
#      (1e-5 + 1e-4 relative), with the moments split (the log says how);
#   2. the checkpoint holds one optimizer part per rank and no optimizer.safetensors;
#   3. stopping at step 10 and resuming gives the uninterrupted run's weights byte for byte;
#   4. the parts resume with ZeRO off (np 2), at another rank count (np 4), and with expert
#      parallelism (np 4, P 2); a checkpoint written without ZeRO (one flat optimizer file)
#      resumes with it: each matches its uninterrupted run to rounding.
# Usage: check-zero.sh ZEROTH MPIEXEC WORKDIR (run from the repository root).
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
close() {  # model dirs $1 and $2 within 1e-5 + 1e-4 relative, losses within 1e-5
  same_losses "$1/metrics.jsonl" "$2/metrics.jsonl" || fail "$1: losses differ from $2"
  python3 "$HERE/compare_safetensors.py" "$1/final" "$2/final" 1e-4 1e-5 || fail "$1: weights differ from $2"
}

echo "== ZeRO-1 trains as the replicated optimizer"
mpi 2 pretrain --config $CFG --run-dir "$WORK/ddp" > "$WORK/ddp.log" 2>&1 || fail "np 2 run (see $WORK/ddp.log)"
mpi 2 pretrain --config $CFG --run-dir "$WORK/z2" --set run.zero_stage=1 > "$WORK/z2.log" 2>&1 ||
  fail "np 2 ZeRO-1 run (see $WORK/z2.log)"
mpi 4 pretrain --config $CFG --run-dir "$WORK/z4" --set run.zero_stage=1 > "$WORK/z4.log" 2>&1 ||
  fail "np 4 ZeRO-1 run (see $WORK/z4.log)"
mpi 4 pretrain --config $CFG --run-dir "$WORK/z4ep" --set run.zero_stage=1 --set run.expert_parallel=2 \
  > "$WORK/z4ep.log" 2>&1 || fail "np 4 ZeRO-1 + expert-parallel run (see $WORK/z4ep.log)"
grep -q "ZeRO-1 over 2 ranks: this rank keeps the AdamW moments of .* of 55264 elements" "$WORK/z2.log" ||
  fail "no ZeRO-1 line in the np 2 log"
for run in z2 z4 z4ep; do
  echo "== $run vs the replicated optimizer"
  close "$WORK/$run" "$WORK/ddp"
done

echo "== the checkpoint holds one optimizer part per rank"
for f in optimizer-00001-of-00002.safetensors optimizer-00002-of-00002.safetensors model.safetensors \
         config.json trainer_state.json tokenizer.json; do
  [ -f "$WORK/z2/checkpoints/step_10/$f" ] || fail "checkpoint lacks $f"
done
[ ! -e "$WORK/z2/checkpoints/step_10/optimizer.safetensors" ] || fail "a ZeRO-1 checkpoint with optimizer.safetensors"
[ -f "$WORK/z4ep/checkpoints/step_10/optimizer-00004-of-00004.safetensors" ] || fail "np 4 P 2: no part 4 of 4"

echo "== stop at step 10, resume to 20: byte-identical"
mpi 2 pretrain --config $CFG --run-dir "$WORK/part" --set run.zero_stage=1 --set train.steps=10 \
  > "$WORK/part.log" 2>&1 || fail "np 2 run of 10 steps"
for copy in off np4 ep; do cp -r "$WORK/part" "$WORK/part_$copy"; done
mpi 2 pretrain --resume "$WORK/part" --set train.steps=20 > "$WORK/resume.log" 2>&1 ||
  fail "np 2 resume (see $WORK/resume.log)"
python3 "$HERE/compare_safetensors.py" "$WORK/part/final" "$WORK/z2/final" --exact ||
  fail "resumed weights differ from the uninterrupted run"
[ "$(losses "$WORK/part/metrics.jsonl")" = "$(losses "$WORK/z2/metrics.jsonl")" ] ||
  fail "resumed losses differ from the uninterrupted run"

echo "== the parts resume without ZeRO, at np 4, and with expert parallelism"
mpi 2 pretrain --resume "$WORK/part_off" --set train.steps=20 --set run.zero_stage=0 > "$WORK/off.log" 2>&1 ||
  fail "resume with run.zero_stage 0 (see $WORK/off.log)"
mpi 4 pretrain --resume "$WORK/part_np4" --set train.steps=20 > "$WORK/np4.log" 2>&1 ||
  fail "resume at np 4 (see $WORK/np4.log)"
mpi 4 pretrain --resume "$WORK/part_ep" --set train.steps=20 --set run.expert_parallel=2 > "$WORK/ep.log" 2>&1 ||
  fail "resume at np 4 with run.expert_parallel 2 (see $WORK/ep.log)"
for run in off np4 ep; do
  grep -q "resuming from .*step_10 at step 10" "$WORK/$run.log" || fail "$run did not resume from step 10"
  close "$WORK/part_$run" "$WORK/z2"
done

echo "== a checkpoint without ZeRO resumes with it"
mpi 2 pretrain --config $CFG --run-dir "$WORK/flat" --set train.steps=10 > "$WORK/flat.log" 2>&1 ||
  fail "np 2 run of 10 steps without ZeRO"
[ -f "$WORK/flat/checkpoints/step_10/optimizer.safetensors" ] || fail "no flat optimizer file"
mpi 2 pretrain --resume "$WORK/flat" --set train.steps=20 --set run.zero_stage=1 > "$WORK/flat_zero.log" 2>&1 ||
  fail "resume of a flat optimizer file with ZeRO-1 (see $WORK/flat_zero.log)"
close "$WORK/flat" "$WORK/ddp"

echo "== a bad zero_stage is a config error"
set +e
"$ZEROTH" pretrain --config $CFG --run-dir "$WORK/bad" --set run.zero_stage=2 > "$WORK/bad.log" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && grep -q "run.zero_stage" "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "run.zero_stage=2 accepted"; }
echo "PASS: ZeRO-1 pretrain matches the replicated optimizer and resumes exactly and across layouts"
