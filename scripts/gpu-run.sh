#!/usr/bin/env bash
# Runs zeroth's GPU tests and benchmarks from a bundle made by scripts/gpu-bundle.sh
# (installed into the bundle as run-gpu.sh). Run it from a checkout of the bundle's
# commit (the tests read tests/golden and configs/):
#
#   run-gpu.sh tests            every GPU test (ops, op gradients, NCCL, whole model)
#   run-gpu.sh bench            zeroth bench gemm/train/rollout on the GPU
#   run-gpu.sh all              both
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
    run_step bench_rollout zeroth bench rollout --device cuda --json "$j/bench_rollout.json"
  fi
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
echo "bundle commit $(cat "$bundle/COMMIT"), repo $repo"
case ${1:-all} in
  tests) tests ;;
  bench) bench ;;
  all) tests; bench ;;
  exec) shift; exec "$@" ;;
  *) echo "usage: run-gpu.sh tests|bench|all|exec CMD..." >&2; exit 2 ;;
esac
echo "=== summary (logs in $logs)"
printf '%s\n' "${summary[@]}"
