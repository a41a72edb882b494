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
    # The stop signal: SIGUSR1 to the batch script reaches the launcher (a fake srun that
    # stops like zeroth: exit 75 on SIGUSR1), and ZEROTH_REQUEUE=1 requeues the job.
    mkdir -p "$tmp/bin"
    cat > "$tmp/bin/srun" <<'FAKE'
#!/bin/bash
trap 'sleep 0.2; exit 75' USR1
echo started > "$FAKE_DIR/srun.started"
for _ in $(seq 1 300); do sleep 0.1; done
exit 1
FAKE
    printf '#!/bin/bash\necho "$@" > "$FAKE_DIR/scontrol.args"\n' > "$tmp/bin/scontrol"
    chmod +x "$tmp/bin/srun" "$tmp/bin/scontrol"
    FAKE_DIR="$tmp" PATH="$tmp/bin:$PATH" ZEROTH_BIN="$(type -P true)" SLURM_JOB_ID=4242 ZEROTH_REQUEUE=1 \
      bash "$sb" --resume "$tmp/run" 2> "$tmp/sbatch.err" &
    pid=$!
    for _ in $(seq 1 100); do [[ -f "$tmp/srun.started" ]] && break; sleep 0.1; done
    [[ -f "$tmp/srun.started" ]] || fail "the fake srun did not start"
    kill -USR1 "$pid"
    rc=0
    wait "$pid" || rc=$?
    ((rc == 75)) || fail "SIGUSR1: expected exit status 75 from the batch script, found $rc ($(cat "$tmp/sbatch.err"))"
    [[ "$(cat "$tmp/scontrol.args" 2> /dev/null)" == "requeue 4242" ]] || fail "ZEROTH_REQUEUE=1 did not requeue the job"
    echo "check-launchers: slurm stop signal forwarded, job requeued"
    ;;
  *) echo "usage: check-launchers.sh local ZEROTH_BINARY | slurm" >&2; exit 2 ;;
esac
