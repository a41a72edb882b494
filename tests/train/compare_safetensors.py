#!/usr/bin/env python3
"""Compares the F32 tensors of two Hugging Face model directories (model.safetensors or a
sharded index), pure Python: the same tensor names, shapes, and every element within
atol + rtol * |b| (--exact: the same bytes). Prints the largest difference; exit 1 on a
mismatch. Used by check-pretrain-ep.sh."""
import json
import os
import struct
import sys


def read_dir(d):
    index = os.path.join(d, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) \
        else ["model.safetensors"]
    out = {}
    for f in files:
        raw = open(os.path.join(d, f), "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            assert info["dtype"] == "F32", (name, info["dtype"])
            a, b = info["data_offsets"]
            assert name not in out, "tensor %s in two files" % name
            out[name] = (info["shape"], raw[base + a:base + b])
    return out


def main():
    a_dir, b_dir = sys.argv[1], sys.argv[2]
    exact = "--exact" in sys.argv
    rtol = float(sys.argv[3]) if len(sys.argv) > 3 and not exact else 0.0
    atol = float(sys.argv[4]) if len(sys.argv) > 4 and not exact else 0.0
    a, b = read_dir(a_dir), read_dir(b_dir)
    if set(a) != set(b):
        print("tensor names differ: only in A %s, only in B %s" % (sorted(set(a) - set(b))[:5],
                                                                    sorted(set(b) - set(a))[:5]))
        return 1
    worst, worst_name, bad = 0.0, "", 0
    for name in sorted(a):
        (sa, ra), (sb, rb) = a[name], b[name]
        if sa != sb:
            print("%s: shape %s vs %s" % (name, sa, sb))
            return 1
        if exact:
            bad += ra != rb
            continue
        xa = struct.unpack("<%df" % (len(ra) // 4), ra)
        xb = struct.unpack("<%df" % (len(rb) // 4), rb)
        for u, v in zip(xa, xb):
            d = abs(u - v)
            if d > worst:
                worst, worst_name = d, name
            if d > atol + rtol * abs(v):
                bad += 1
    print("%d tensors, %s; largest |a - b| %.3g (%s); %d mismatch(es)" %
          (len(a), "byte-exact check" if exact else "rtol %g atol %g" % (rtol, atol), worst,
           worst_name, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
