#!/usr/bin/env bash
# Runs zeroth's GPU tests and benchmarks from a bundle made by scripts/gpu-bundle.sh
# (installed into the bundle as run-gpu.sh). Run it from a checkout of the bundle's
# commit (the tests read tests/golden and configs/):
#
#   run-gpu.sh tests            every GPU test (ops, op gradients, NCCL, whole model)
#   run-gpu.sh bench            zeroth bench gemm/train/rollout on the GPU
#   run-gpu.sh e2e              pretrain, GRPO train and generate of the tiny model on the GPU
#   run-gpu.sh all              tests, e2e and bench
#   run-gpu.sh exec CMD ARGS    CMD with the bundle's environment (zeroth, mpirun on PATH)
#
# Writes logs to $ZEROTH_GPU_LOGS (default ./gpu-logs) and prints a summary last.
set -uo pipefail

bundle=$(cd "$(dirname "$0")" && pwd)
repo=$(pwd)
export PATH=$bundle/bin:$PATH
export LD_LIBRARY_PATH=$bundle/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OPAL_PREFIX=$bundle
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_ess_singleton_isolated=1   # a singleton MPI_Init needs no orted
export PMIX_MCA_pcompress_base_silence_warning=1
[[ -d $bundle/etc-openmpi ]] && export OMPI_MCA_mca_base_param_files=$bundle/etc-openmpi/openmpi-mca-params.conf
logs=${ZEROTH_GPU_LOGS:-$repo/gpu-logs}
mkdir -p "$logs"

# The test binaries look for tests/golden under the source path they were built in.
src=$(cat "$bundle/SOURCE_DIR" 2>/dev/null || echo "")
if [[ -n $src && ! -d $src/tests && -d $repo/tests ]]; then
  mkdir -p "$(dirname "$src")" && ln -sfn "$repo" "$src"
fi

summary=()
run_step() {  # name, command...
  local name=$1; shift
  local t0=$SECONDS rc
  echo "=== $name: $*"
  "$@" > "$logs/$name.log" 2>&1
  rc=$?
  tail -n 25 "$logs/$name.log"
  local verdict=PASS
  ((rc == 77)) && verdict=SKIP
  ((rc != 0 && rc != 77)) && verdict="FAIL(rc=$rc)"
  summary+=("$(printf '%-28s %-12s %4ds' "$name" "$verdict" $((SECONDS - t0)))")
}

tests() {
  local t=$bundle/tests
  [[ -x $t/test_ops ]] && run_step ops_cuda "$t/test_ops" "[cuda]" --require-gpu
  [[ -x $t/test_op_grads ]] && run_step op_grads_cuda "$t/test_op_grads" "[cuda]" --require-gpu
  [[ -x $t/test_model ]] && run_step model_cuda "$t/test_model" "[cuda]" --require-gpu
  [[ -x $t/comm_test ]] && run_step comm_mpi_np2 mpirun -np 2 --oversubscribe "$t/comm_test"
  [[ -x $t/comm_nccl_test ]] && run_step comm_nccl_np1 mpirun -np 1 "$t/comm_nccl_test" --require-gpu
}

bench() {
  local j=$logs
  run_step bench_gemm zeroth bench gemm --device cuda --json "$j/bench_gemm.json"
  run_step bench_train_small zeroth bench train --device cuda --batch 32 --seq 512 --steps 5 \
    --model-config configs/models/bench-small.json --json "$j/bench_train_small.json"
  run_step bench_train_1b zeroth bench train --device cuda --batch 8 --seq 2048 --steps 5 \
    --model-config configs/models/r1zero-1b.json --json "$j/bench_train_1b.json"
  run_step bench_train_1b_t512 zeroth bench train --device cuda --batch 32 --seq 512 --steps 5 \
    --model-config configs/models/r1zero-1b.json --json "$j/bench_train_1b_t512.json"
  if zeroth bench --help 2>&1 | grep -q rollout; then
    run_step bench_rollout_small zeroth bench rollout --device cuda --batch 1,64,256 \
      --save-model /tmp/zeroth-bench-small --json "$j/bench_rollout_small.json"
    run_step bench_rollout_1b zeroth bench rollout --device cuda --batch 1,64,256 \
      --model-config configs/models/r1zero-1b.json --json "$j/bench_rollout_1b.json"
    if python3 -c 'import torch, transformers' 2>/dev/null; then
      run_step bench_rollout_hf python3 scripts/reference/bench_rollout_hf.py \
        --model /tmp/zeroth-bench-small --batch 1,64,256
    else
      echo "bench_rollout_hf: skipped (no torch + transformers on this machine)"
    fi
  fi
}

# The commands a user runs, on the GPU, end to end (small: they prove the wiring, not speed):
# pretrain and GRPO train of the tiny model with run.device=cuda, and generate --device cuda.
e2e() {
  local d=/tmp/zeroth-e2e
  rm -rf "$d" && mkdir -p "$d"
  run_step e2e_pretrain zeroth pretrain --config configs/pretrain-tiny.yaml \
    --set run.device=cuda --set run.run_dir=$d/pretrain --set train.steps=20
  python3 - "$d" <<'PY'
import json, sys
d = sys.argv[1]
with open(f"{d}/train.jsonl", "w") as t, open(f"{d}/eval.jsonl", "w") as e, \
        open(f"{d}/prompts.jsonl", "w") as p:
    for a in range(10):
        for b in range(10 - a):
            (e if (a + 2 * b) % 5 == 0 else t).write(
                json.dumps({"prompt": f"{a}+{b}", "answer": str(a + b)}) + "\n")
            p.write(json.dumps({"prompt": f"{a}+{b}"}) + "\n")
PY
  cat > "$d/grpo.yaml" <<YAML
run: {device: cuda, seed: 7}
model: {init: configs/models/tiny.json}
optim: {lr: 0.003, weight_decay: 0.0}
train: {steps: 4, save_every: 2, log_every: 1}
rollout: {group_size: 4, num_slots: 16, max_len: 64, max_new_tokens: 32, prompt_template: '{prompt}='}
grpo: {kl_coef: 0.05}
rl: {prompts_per_step: 4, micro_batch: 8, eval_at_start: false, eval_at_end: true, eval_every: 4}
prompts: {sources: [{path: $d/train.jsonl}], eval_sources: [{path: $d/eval.jsonl}]}
rewards: {functions: [{name: accuracy, weight: 1.0}, {name: format, weight: 0.5, variant: lenient}]}
eval: {max_prompts: 8, pass_k: 2}
YAML
  run_step e2e_train zeroth train --config "$d/grpo.yaml" --run-dir "$d/train"
  run_step e2e_generate zeroth generate --device cuda --model "$d/pretrain/final" \
    --tokenizer "$d/pretrain/final" --prompts "$d/prompts.jsonl" --output "$d/gen.jsonl" \
    --group-size 4 --max-new-tokens 24 --set 'rollout.stop=[]'
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
echo "bundle commit $(cat "$bundle/COMMIT"), repo $repo"
case ${1:-all} in
  tests) tests ;;
  bench) bench ;;
  e2e) e2e ;;
  all) tests; e2e; bench ;;
  exec) shift; exec "$@" ;;
  *) echo "usage: run-gpu.sh tests|bench|e2e|all|exec CMD..." >&2; exit 2 ;;
esac
echo "=== summary (logs in $logs)"
printf '%s\n' "${summary[@]}"
