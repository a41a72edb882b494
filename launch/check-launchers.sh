#!/usr/bin/env bash
# Checks the launchers on this machine (CTest: launch_local_np2, launch_slurm_dry_run).
#
# usage: launch/check-launchers.sh local ZEROTH_BINARY   # zeroth-local.sh -np 2 runs 2 ranks
#        launch/check-launchers.sh slurm                  # the sbatch script's commands (dry run)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fail() { echo "check-launchers: FAILED: $*" >&2; exit 1; }

case "${1:-}" in
  local)
    bin="${2:?usage: check-launchers.sh local ZEROTH_BINARY}"
    out="$(ZEROTH_BIN="$bin" bash "$here/zeroth-local.sh" -np 2 -- version)"
    echo "$out"
    n="$(grep -c '^zeroth [0-9]' <<< "$out" || true)"
    [[ "$n" == 2 ]] || fail "expected 'zeroth version' from 2 ranks, found $n"
    # Each rank gets its rank and the exported thread count.
    env_out="$(bash "$here/zeroth-local.sh" -np 2 --threads 3 --bin "$(type -P env)")"
    for r in 0 1; do
      grep -qx "OMPI_COMM_WORLD_RANK=$r" <<< "$env_out" || fail "no rank $r in the ranks' environments"
    done
    [[ "$(grep -cx 'OMP_NUM_THREADS=3' <<< "$env_out")" == 2 ]] || fail "OMP_NUM_THREADS=3 not on both ranks"
    # Bad input is refused with exit 2.
    set +e
    bash "$here/zeroth-local.sh" -np zero -- version 2> /dev/null
    rc=$?
    set -e
    [[ "$rc" == 2 ]] || fail "-np zero: expected exit 2, found $rc"
    ;;
  slurm)
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    sb="$here/slurm/zeroth-train.sbatch"
    run() { ZEROTH_DRY_RUN=1 ZEROTH_BIN="$(type -P true)" SLURM_NTASKS=16 SLURM_JOB_NUM_NODES=2 \
              SLURM_NTASKS_PER_NODE=8 bash "$sb" "$@" 2> /dev/null; }
    out="$(run configs/x.yaml "$tmp/run" --set grpo.kl_coef=0)"
    [[ "$out" == *"srun --mpi=pmix"*"train --config configs/x.yaml --run-dir $tmp/run --set grpo.kl_coef=0"* ]] ||
      fail "new run: $out"
    mkdir -p "$tmp/run/checkpoints/step_10"
    out="$(run configs/x.yaml "$tmp/run")"
    [[ "$out" == *"train --resume $tmp/run"* && "$out" != *--config* ]] || fail "existing checkpoints should resume: $out"
    out="$(ZEROTH_LAUNCHER=mpirun run --resume "$tmp/run")"
    [[ "$out" == "mpirun -np 16 --map-by ppr:8:node"*"-x CUDA_DEVICE_MAX_CONNECTIONS"*"train --resume $tmp/run"* ]] ||
      fail "mpirun launcher: $out"
    echo "check-launchers: slurm dry runs ok"
    ;;
  *) echo "usage: check-launchers.sh local ZEROTH_BINARY | slurm" >&2; exit 2 ;;
esac
