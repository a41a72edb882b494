#!/bin/sh
# Containment for the sandbox tests (tests/sandbox): runs "$@" (the test binary) in a
# private PID namespace inside fresh cgroup-v1 pids and memory groups, so that a bug in
# the sandbox under test cannot fork-bomb, exhaust memory or leave processes on the
# machine running the tests. Removes the cgroups on exit, killing anything left in them.
# Must not: touch any cgroup it did not create. Exits 77 (CTest: skipped) when it
# cannot build the containment (not root, no cgroup v1 pids/memory, no unshare).
#
#   run_contained.sh PIDS_MAX MEMORY_BYTES -- BINARY ARGS...
set -u
pids_max=$1
mem_max=$2
shift 3
name="zeroth-sandbox-test-$$"
pcg=/sys/fs/cgroup/pids/$name
mcg=/sys/fs/cgroup/memory/$name

if [ "$(id -u)" != 0 ] || [ ! -d /sys/fs/cgroup/pids ] || [ ! -d /sys/fs/cgroup/memory ] \
   || ! command -v unshare >/dev/null; then
  echo "SKIPPED: the sandbox tests need root, cgroup v1 pids+memory and unshare for their containment"
  exit 77
fi

cleanup() {
  for cg in "$pcg" "$mcg"; do
    [ -d "$cg" ] || continue
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      procs=$(cat "$cg/cgroup.procs" 2>/dev/null)
      [ -z "$procs" ] && break
      for p in $procs; do kill -9 "$p" 2>/dev/null; done
      sleep 0.1
    done
    rmdir "$cg" 2>/dev/null || echo "run_contained.sh: could not remove $cg" >&2
  done
}
trap cleanup EXIT INT TERM

mkdir "$pcg" "$mcg" || exit 77
echo "$pids_max" > "$pcg/pids.max" || exit 77
echo "$mem_max" > "$mcg/memory.limit_in_bytes" || exit 77
[ -f "$mcg/memory.memsw.limit_in_bytes" ] && echo "$mem_max" > "$mcg/memory.memsw.limit_in_bytes" 2>/dev/null

# The child moves itself into both groups, then becomes PID 1 of a new namespace.
ZEROTH_SANDBOX_CONTAINED=1 sh -c 'echo $$ > "$1/cgroup.procs" && echo $$ > "$2/cgroup.procs" && shift 2 &&
  exec unshare --pid --fork --kill-child --mount-proc "$@"' sh "$pcg" "$mcg" "$@"
rc=$?
exit $rc
