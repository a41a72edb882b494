#!/usr/bin/env python3
"""Reads zeroth's TensorBoard events files without TensorBoard, and checks them.

Decodes the TFRecord framing (uint64 length, masked CRC-32C of the length, data, masked
CRC-32C of the data), verifies both checksums of every record, decodes each Event's
protobuf wire format (wall_time 1, step 2, file_version 3, summary 5; Summary.value 1;
Value.tag 1, Value.simple_value 2: TensorBoard's field numbers) and prints the scalars.
Pure Python 3, no packages.

  scripts/tfevents-check.py RUN_DIR/tb                        # print every scalar
  scripts/tfevents-check.py RUN_DIR/tb --jsonl RUN_DIR/metrics.jsonl
      # also check every series equals metrics.jsonl's (as float32; null <-> nan/inf)
  scripts/tfevents-check.py RUN_DIR/tb --jsonl ... --tensorboard
      # read the files with TensorBoard's own EventAccumulator instead of this reader
      # (exit 77, "skipped", when the tensorboard package is not importable)

Files are read in name order and, like TensorBoard with "brain.Event:2" files, a
SessionLog START event at step s drops the points already read at steps >= s (as recent
TensorBoard does, the first START of the directory is taken as the run's start and drops
nothing: zeroth writes a START into every file, at step 0 or at the resume step + 1).
Exit status: 0 ok, 1 a check failed, 2 usage, 77 TensorBoard requested but not installed.
"""
import argparse
import json
import math
import os
import struct
import sys


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class CheckError(Exception):
    pass


def read_records(path):
    """Yields each record's payload, checking the framing and both CRCs."""
    with open(path, "rb") as f:
        data = f.read()
    at, n = 0, 0
    while at < len(data):
        if len(data) - at < 12:
            raise CheckError(f"{path}: record {n}: {len(data) - at} bytes left, a header needs 12")
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        if length_crc != masked_crc32c(header):
            raise CheckError(f"{path}: record {n} at byte {at}: length CRC mismatch")
        end = at + 12 + length
        if end + 4 > len(data):
            raise CheckError(f"{path}: record {n}: length {length} runs past the end of the file")
        payload = data[at + 12:end]
        (data_crc,) = struct.unpack("<I", data[end:end + 4])
        if data_crc != masked_crc32c(payload):
            raise CheckError(f"{path}: record {n} at byte {at}: data CRC mismatch")
        yield payload
        at = end + 4
        n += 1


def _varint(buf, i):
    x, shift = 0, 0
    while True:
        if i >= len(buf):
            raise CheckError("truncated varint")
        b = buf[i]
        i += 1
        x |= (b & 0x7F) << shift
        if not b & 0x80:
            return x, i
        shift += 7


def parse_fields(buf):
    """Protobuf wire format: yields (field number, wire type, value)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise CheckError(f"unsupported wire type {wire} (field {field})")
        if i > len(buf):
            raise CheckError(f"field {field} runs past the end of its message")
        yield field, wire, value


def decode_event(payload):
    """Returns a dict with wall_time, step, and file_version or scalars {tag: float}."""
    ev = {"wall_time": 0.0, "step": 0}
    for field, wire, value in parse_fields(payload):
        if field == 1 and wire == 1:
            ev["wall_time"] = struct.unpack("<d", value)[0]
        elif field == 2 and wire == 0:
            ev["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif field == 3 and wire == 2:
            ev["file_version"] = value.decode()
        elif field == 7 and wire == 2:
            ev["session_log"] = 0
            for f2, w2, v2 in parse_fields(value):
                if f2 == 1 and w2 == 0:
                    ev["session_log"] = v2
        elif field == 5 and wire == 2:
            scalars = ev.setdefault("scalars", {})
            for f2, w2, v2 in parse_fields(value):
                if f2 != 1 or w2 != 2:
                    continue
                tag, simple = None, None
                for f3, w3, v3 in parse_fields(v2):
                    if f3 == 1 and w3 == 2:
                        tag = v3.decode()
                    elif f3 == 2 and w3 == 5:
                        simple = struct.unpack("<f", v3)[0]
                if tag is None or simple is None:
                    raise CheckError(f"a Summary.Value without tag or simple_value (tag {tag!r})")
                scalars[tag] = simple
    return ev


def event_files(tb_dir):
    names = sorted(n for n in os.listdir(tb_dir) if "tfevents" in n)
    if not names:
        raise CheckError(f"{tb_dir}: no events.out.tfevents.* files")
    return [os.path.join(tb_dir, n) for n in names]


SESSION_START = 1


def read_series(tb_dir):
    """{tag: [(step, value)]} over every events file, with TensorBoard's purge of the
    points a resumed run rewrites (a SessionLog START at step s drops points at >= s)."""
    series = {}
    seen_start = False
    for path in event_files(tb_dir):
        records = list(read_records(path))
        if not records:
            raise CheckError(f"{path}: empty")
        first = decode_event(records[0])
        if first.get("file_version") != "brain.Event:2":
            raise CheckError(f"{path}: first record is not file_version 'brain.Event:2': {first}")
        for payload in records[1:]:
            ev = decode_event(payload)
            step = ev["step"]
            if ev.get("session_log") == SESSION_START:
                if seen_start:  # recent TensorBoard ignores a run's first START
                    for tag in series:
                        series[tag] = [(s, v) for s, v in series[tag] if s < step]
                seen_start = True
            if "scalars" not in ev:
                continue
            for tag, v in ev["scalars"].items():
                series.setdefault(tag, []).append((step, v))
    return series


def read_series_tensorboard(tb_dir):
    from tensorboard.backend.event_processing import event_accumulator  # noqa: import may fail

    acc = event_accumulator.EventAccumulator(tb_dir, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def jsonl_series(path):
    series = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            row = json.loads(line)
            step = row.pop("step")
            for tag, v in row.items():
                series.setdefault(tag, []).append((step, v))
    return series


def as_f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def compare(tb, js):
    problems = []
    if set(tb) != set(js):
        problems.append(f"tags differ: only in tfevents {sorted(set(tb) - set(js))}, "
                        f"only in jsonl {sorted(set(js) - set(tb))}")
    for tag in sorted(set(tb) & set(js)):
        a, b = tb[tag], js[tag]
        if [s for s, _ in a] != [s for s, _ in b]:
            problems.append(f"{tag}: steps {[s for s, _ in a]} in tfevents, {[s for s, _ in b]} in jsonl")
            continue
        for (step, x), (_, y) in zip(a, b):
            ok = (not math.isfinite(x)) if y is None else (math.isfinite(x) and x == as_f32(float(y)))
            if not ok:
                problems.append(f"{tag} at step {step}: {x!r} in tfevents, {y!r} in jsonl")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tb_dir", help="the run's tb/ directory")
    ap.add_argument("--jsonl", help="metrics.jsonl to compare every series with")
    ap.add_argument("--tensorboard", action="store_true",
                    help="read with TensorBoard's EventAccumulator (exit 77 if not installed)")
    ap.add_argument("--min-points", type=int, default=1, help="fail with fewer scalar points")
    args = ap.parse_args()
    try:
        if args.tensorboard:
            try:
                series = read_series_tensorboard(args.tb_dir)
            except ImportError as e:
                print(f"tfevents-check: skipped: TensorBoard is not installed ({e})")
                return 77
            reader = "TensorBoard EventAccumulator"
        else:
            series = read_series(args.tb_dir)
            reader = "tfevents-check"
        points = sum(len(v) for v in series.values())
        if points < args.min_points:
            raise CheckError(f"{args.tb_dir}: {points} scalar points, expected at least {args.min_points}")
        if args.jsonl:
            problems = compare(series, jsonl_series(args.jsonl))
            if problems:
                raise CheckError("tfevents and jsonl differ:\n  " + "\n  ".join(problems[:20]))
        else:
            for tag in sorted(series):
                print(tag, " ".join(f"{s}:{v:.6g}" for s, v in series[tag]))
    except CheckError as e:
        print(f"tfevents-check: FAILED: {e}", file=sys.stderr)
        return 1
    print(f"tfevents-check: ok ({reader}): {len(series)} tags, {points} points"
          + (f", equal to {args.jsonl}" if args.jsonl else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
