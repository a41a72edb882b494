#!/usr/bin/env bash
# Compares zeroth's CPU forward+backward with the PyTorch reference on the same config,
# batch, sequence length and threads, in one run: `zeroth bench train` then
# scripts/reference/bench_ref.py. Prints a table and one JSON object (last line).
# Needs /usr/bin/python3 with torch (scripts/reference/install.sh) and a built zeroth
# (ZEROTH_BIN, default build/zeroth). Must not: build anything or assert on speed.
#
# usage: scripts/bench-train.sh [--model-config FILE] [--batch B] [--seq T] [--threads N]
#                               [--steps S] [--warmup W]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ZEROTH_BIN=${ZEROTH_BIN:-$ROOT/build/zeroth}
PY=/usr/bin/python3
CONFIG=$ROOT/configs/models/bench-small.json
BATCH=8
SEQ=512
THREADS=$(nproc)
STEPS=3
WARMUP=1

while [ $# -gt 0 ]; do
  case "$1" in
    --model-config) CONFIG=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --seq) SEQ=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench-train.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

if [ ! -x "$ZEROTH_BIN" ]; then
  echo "bench-train.sh: $ZEROTH_BIN not found: build zeroth first or set ZEROTH_BIN" >&2
  exit 1
fi
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
  echo "bench-train.sh: $PY cannot import torch: run scripts/reference/install.sh" >&2
  exit 1
fi

# libgomp's default (active) waiting spins for milliseconds after every parallel
# region; on a machine shared with other work that starves the threads doing the work
# (docs/perf.md: 5-10x slower on the shared 2-core box). Both programs use libgomp, so
# both get the same policy unless the caller chose one.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
echo "OMP_WAIT_POLICY=$OMP_WAIT_POLICY"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "== zeroth bench train (config $CONFIG, B=$BATCH T=$SEQ threads=$THREADS)"
"$ZEROTH_BIN" bench train --model-config "$CONFIG" --batch "$BATCH" --seq "$SEQ" \
  --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" --json "$TMP/zeroth.json"
echo
echo "== PyTorch reference (scripts/reference/bench_ref.py)"
"$PY" "$ROOT/scripts/reference/bench_ref.py" --config "$CONFIG" --batch "$BATCH" --seq "$SEQ" \
  --threads "$THREADS" --iters "$STEPS" --warmup "$WARMUP" > "$TMP/ref.json"
echo

"$PY" - "$TMP/zeroth.json" "$TMP/ref.json" <<'PYEOF'
import json, sys
z = json.load(open(sys.argv[1]))
r = json.load(open(sys.argv[2]))
flops = z["flops_per_step"]
rows = [
    ("zeroth", z["fwd_bwd_s_best"], z["fwd_bwd_tokens_per_s"], flops / z["fwd_bwd_s_best"] / 1e9),
    ("pytorch " + r["torch_version"], r["fwd_bwd_s_best"], r["fwd_bwd_tokens_per_s"],
     flops / r["fwd_bwd_s_best"] / 1e9),
]
peak = z.get("sgemm_peak_gflops", 0.0)
print(f"{'impl':<24} {'fwd+bwd s':>10} {'tok/s':>10} {'GFLOP/s':>9} {'% sgemm':>8}")
for name, s, tps, gf in rows:
    pct = f"{100 * gf / peak:7.1f}%" if peak else "       -"
    print(f"{name:<24} {s:>10.3f} {tps:>10.1f} {gf:>9.1f} {pct}")
ratio = r["fwd_bwd_s_best"] / z["fwd_bwd_s_best"]
print(f"zeroth speed-up over PyTorch (best step time ratio): {ratio:.2f}x")
print(json.dumps({
    "config": z["config"], "batch": z["batch"], "seq": z["seq"], "threads": r["threads"],
    "flops_per_step": flops, "sgemm_peak_gflops": peak,
    "zeroth_fwd_bwd_s_best": z["fwd_bwd_s_best"], "pytorch_fwd_bwd_s_best": r["fwd_bwd_s_best"],
    "zeroth_tokens_per_s": z["fwd_bwd_tokens_per_s"], "pytorch_tokens_per_s": r["fwd_bwd_tokens_per_s"],
    "zeroth_fraction_of_sgemm_peak": z.get("fraction_of_sgemm_peak"),
    "speedup_vs_pytorch": ratio,
}))
PYEOF
