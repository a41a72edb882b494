#!/usr/bin/env bash
# Runs zeroth on this machine under Open MPI's mpirun: N ranks, each with its share of
# the cores as OpenMP threads. See docs/launch.md.
#
# usage: launch/zeroth-local.sh [-np N] [--threads T] [--bin PATH] [--dry-run] [--] ZEROTH_ARGS...
#   launch/zeroth-local.sh -np 2 -- train --config configs/X.yaml --run-dir runs/x
#   launch/zeroth-local.sh -np 2 -- train --resume runs/x
#
#   -np N        ranks (default: $ZEROTH_NP or 1)
#   --threads T  OpenMP threads per rank (default: $OMP_NUM_THREADS, else cores / N, at least 1)
#   --bin PATH   the program to run (default: $ZEROTH_BIN, else build/zeroth of this checkout)
#   --dry-run    print the mpirun command instead of running it
#
# What it adds to mpirun: --allow-run-as-root when run as root; --oversubscribe when N is
# more than the cores; --bind-to none (each rank runs OpenMP threads, which a one-core
# binding would pile onto one core); shared-memory transport only (--mca btl "self,vader");
# and exports OMP_NUM_THREADS, OMP_WAIT_POLICY (PASSIVE when ranks x threads exceed the
# cores, so idle threads do not spin on cores other ranks need) and any ZEROTH_* variables
# set here to every rank.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
np="${ZEROTH_NP:-1}"
threads="${OMP_NUM_THREADS:-}"
bin="${ZEROTH_BIN:-$root/build/zeroth}"
dry_run=0

die() { echo "zeroth-local: $*" >&2; exit 2; }
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

while (($#)); do
  case "$1" in
    -np|-n|--np) (($# >= 2)) || die "$1 needs a value"; np="$2"; shift 2 ;;
    --threads) (($# >= 2)) || die "$1 needs a value"; threads="$2"; shift 2 ;;
    --bin) (($# >= 2)) || die "$1 needs a value"; bin="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done

is_count "$np" || die "-np: expected a positive integer, found '$np'"
cores="$(nproc)"
if [[ -z "$threads" ]]; then
  threads=$((cores / np))
  ((threads >= 1)) || threads=1
fi
is_count "$threads" || die "--threads / OMP_NUM_THREADS: expected a positive integer, found '$threads'"
[[ -x "$bin" ]] || die "'$bin' is not an executable (build zeroth, or pass --bin PATH / set ZEROTH_BIN)"

mpirun_bin="${MPIRUN:-mpirun}"
command -v "$mpirun_bin" >/dev/null || die "'$mpirun_bin' not found (install openmpi-bin, or set MPIRUN)"
if ! "$mpirun_bin" --version 2>&1 | grep -q "Open MPI"; then
  die "'$mpirun_bin' is not Open MPI's mpirun; this wrapper uses Open MPI flags (see docs/launch.md)"
fi

wait_policy="${OMP_WAIT_POLICY:-}"
if [[ -z "$wait_policy" ]] && ((np * threads > cores)); then wait_policy=PASSIVE; fi

cmd=("$mpirun_bin" -np "$np" --bind-to none --mca btl "self,vader")
if [[ "$(id -u)" == 0 ]]; then cmd+=(--allow-run-as-root); fi
if ((np > cores)); then cmd+=(--oversubscribe); fi
export OMP_NUM_THREADS="$threads"
cmd+=(-x OMP_NUM_THREADS)
if [[ -n "$wait_policy" ]]; then
  export OMP_WAIT_POLICY="$wait_policy"
  cmd+=(-x OMP_WAIT_POLICY)
fi
while IFS='=' read -r name _; do
  cmd+=(-x "$name")
done < <(env | grep -E '^ZEROTH_[A-Z0-9_]*=' || true)
cmd+=("$bin" "$@")

if ((dry_run)); then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
echo "zeroth-local: $np rank(s) x $threads thread(s) on $cores core(s)${wait_policy:+, OMP_WAIT_POLICY=$wait_policy}" >&2

# Ctrl-C: mpirun answers SIGINT/SIGTERM by killing the ranks a second later, but forwards
# SIGUSR1, on which zeroth stops after the step in progress with a checkpoint (exit 75).
# So mpirun runs in a process group of its own (the terminal's Ctrl-C does not reach it or
# the ranks) and a first SIGINT/SIGTERM here is passed on as SIGUSR1, a second as SIGTERM
# (stop at once). The exit status is zeroth's.
setsid "${cmd[@]}" &
pid=$!
signals=0
interrupted=0
on_signal() {
  interrupted=1
  signals=$((signals + 1))
  if ((signals == 1)); then
    echo "zeroth-local: stopping after the current step with a checkpoint (again: stop at once)" >&2
    kill -USR1 "$pid" 2> /dev/null || true
  else
    kill -TERM "$pid" 2> /dev/null || true
  fi
}
trap on_signal INT TERM
# SIGUSR1 (what zeroth sweep sends) is the same first request; a SIGINT/SIGTERM after it
# then stops at once.
trap 'interrupted=1; if ((signals == 0)); then signals=1; fi; kill -USR1 "$pid" 2> /dev/null || true' USR1
while :; do
  interrupted=0
  rc=0
  wait "$pid" || rc=$?
  if ((interrupted && rc > 128)); then  # a trap cut the wait short
    if kill -0 "$pid" 2> /dev/null; then continue; fi
    rc=0
    wait "$pid" 2> /dev/null || rc=$?   # it ended meanwhile: its own status
  fi
  break
done
exit "$rc"
