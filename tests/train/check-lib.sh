# Shared helpers of the mpiexec check scripts (check-pretrain-ep.sh, check-zero.sh); source
# it after setting ZEROTH and MPIEXEC.
#   mpi NP ARGS...     zeroth ARGS on NP ranks (ZEROTH_MPIEXEC_FLAGS, shared-memory transport)
#   fail MESSAGE       print FAIL: MESSAGE and exit 1
#   losses FILE        the "loss" of every metrics.jsonl row, 7 significant digits
#   same_losses A B    both files hold 20 rows whose losses agree within 1e-5 relative
mpi() {
  local np=$1
  shift
  "$MPIEXEC" -n "$np" ${ZEROTH_MPIEXEC_FLAGS:-} --mca btl self,vader "$ZEROTH" "$@"
}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
losses() { python3 -c 'import json,sys; print(" ".join("%.7g" % json.loads(l)["loss"] for l in open(sys.argv[1])))' "$1"; }
same_losses() {
  python3 - "$1" "$2" <<'PY'
import json, sys
a = [json.loads(l)["loss"] for l in open(sys.argv[1])]
b = [json.loads(l)["loss"] for l in open(sys.argv[2])]
assert len(a) == len(b) == 20, (len(a), len(b))
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
print("losses: %d steps, largest relative difference %.3g" % (len(a), worst))
sys.exit(0 if worst <= 1e-5 else 1)
PY
}
