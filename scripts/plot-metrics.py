#!/usr/bin/env python3
"""Plots a run's metrics.jsonl: one panel per main curve, saved as a PNG.

  /usr/bin/python3 scripts/plot-metrics.py RUN_DIR/metrics.jsonl            # -> RUN_DIR/metrics.png
  /usr/bin/python3 scripts/plot-metrics.py RUN_DIR/metrics.jsonl -o a.png --keys kl,entropy
  /usr/bin/python3 scripts/plot-metrics.py runs/a/metrics.jsonl runs/b/metrics.jsonl -o ab.png

Several files overlay their curves (labelled by run directory). Default panels:
reward_mean, accuracy, format_rate, kl, entropy, response_len_mean, eval_accuracy; a
panel whose key no file has is left out. null values (non-finite metrics) are gaps; eval
rows (which hold only some keys) are drawn as points joined by a line.

Needs matplotlib (Debian: apt-get install python3-matplotlib, then run with
/usr/bin/python3). Without it the file is still read and checked, and the script exits 3
with a message saying so. Exit status: 0 ok, 1 unreadable metrics, 2 usage, 3 no matplotlib.
"""
import argparse
import json
import math
import os
import sys

DEFAULT_KEYS = ["reward_mean", "accuracy", "format_rate", "kl", "entropy", "response_len_mean",
                "eval_accuracy"]


def load(path):
    """{key: ([steps], [values])}, values None -> nan."""
    series = {}
    try:
        f = open(path)
    except OSError as e:
        raise SystemExit(f"plot-metrics: {path}: {e.strerror}")
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                step = row["step"]
            except (ValueError, KeyError, TypeError):
                print(f"plot-metrics: {path}:{n}: expected a JSON object with \"step\"", file=sys.stderr)
                sys.exit(1)
            for key, v in row.items():
                if key == "step" or not (v is None or isinstance(v, (int, float))):
                    continue
                steps, values = series.setdefault(key, ([], []))
                steps.append(step)
                values.append(math.nan if v is None else float(v))
    return series


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("jsonl", nargs="+", help="metrics.jsonl file(s)")
    ap.add_argument("-o", "--output", help="PNG to write (default: metrics.png beside the first file)")
    ap.add_argument("--keys", help="comma-separated metrics to plot (default: the main curves)")
    ap.add_argument("--title", help="figure title (default: the run directories)")
    args = ap.parse_args()

    keys = [k for k in args.keys.split(",") if k] if args.keys else DEFAULT_KEYS
    runs = [(os.path.basename(os.path.dirname(os.path.abspath(p))) or p, load(p)) for p in args.jsonl]
    keys = [k for k in keys if any(k in s for _, s in runs)]
    if not keys:
        print(f"plot-metrics: none of the metrics to plot are in {', '.join(args.jsonl)}", file=sys.stderr)
        return 1
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.jsonl[0])), "metrics.png")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot-metrics: matplotlib is not installed; read "
              f"{sum(len(s) for _, s in runs)} series from {len(runs)} file(s) but cannot draw them. "
              "Install it (Debian: apt-get install python3-matplotlib) and run this script with "
              "/usr/bin/python3.", file=sys.stderr)
        return 3

    cols = min(len(keys), 3)
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for i, key in enumerate(keys):
        ax = axes[i // cols][i % cols]
        for label, series in runs:
            if key not in series:
                continue
            steps, values = series[key]
            sparse = len(steps) < 0.5 * max(len(s[0]) for s in series.values())
            ax.plot(steps, values, marker="o" if sparse else None, markersize=3,
                    label=label if len(runs) > 1 else None)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if len(runs) > 1 and i == 0:
            ax.legend(fontsize=7)
    for j in range(len(keys), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(args.title or ", ".join(label for label, _ in runs), fontsize=11)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    if not os.path.getsize(output):
        print(f"plot-metrics: {output} is empty", file=sys.stderr)
        return 1
    print(f"plot-metrics: wrote {output} ({len(keys)} panels: {', '.join(keys)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
