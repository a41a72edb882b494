"""Minimal safetensors reader/writer (struct + json + numpy) for the reference scripts.

Owns: the on-disk format (8-byte little-endian header length N, N bytes of JSON header
padded with spaces to a multiple of 8, then one contiguous data buffer with no gaps) for
dtypes F64, F32, F16, BF16, I64, I32, U8, BOOL, and the string-only "__metadata__" map.
Must not: know about models or parameter names; import torch (numpy only), so the C++
side's format expectations can be checked without PyTorch.
The `safetensors` package is not available on these machines, hence this file.
"""

import json
import struct

import numpy as np

# safetensors dtype string -> numpy dtype (little-endian). BF16 is handled separately.
_NP_OF = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAME_OF = {v: k for k, v in _NP_OF.items()}
_MAX_HEADER = 100_000_000


class SafetensorsError(ValueError):
    """A malformed or unsupported safetensors file (message names the file and tensor)."""


def _bf16_to_f32(raw):
    """raw: uint16 array of bfloat16 bit patterns -> float32 array (exact)."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def load_safetensors(path):
    """Reads every tensor of `path`. Returns (tensors: dict name -> np.ndarray, metadata: dict).

    BF16 tensors come back as float32 (exact widening). Raises SafetensorsError naming the
    file and tensor for a truncated file, bad header, unknown dtype or inconsistent offsets.
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError(f"{path}: expected at least 8 bytes, found {len(blob)}")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise SafetensorsError(f"{path}: header length {n} exceeds the file size {len(blob)}")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not valid JSON: {e}") from e
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header must be a JSON object, found {type(header).__name__}")
    data = memoryview(blob)[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    spans = []
    for name, info in header.items():
        dtype = info.get("dtype")
        shape = info.get("shape")
        offs = info.get("data_offsets")
        if not isinstance(shape, list) or not isinstance(offs, list) or len(offs) != 2:
            raise SafetensorsError(f"{path}: tensor '{name}': malformed entry {info}")
        numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
        begin, end = int(offs[0]), int(offs[1])
        if not (0 <= begin <= end <= len(data)):
            raise SafetensorsError(
                f"{path}: tensor '{name}': offsets [{begin}, {end}) outside the data buffer "
                f"of {len(data)} bytes")
        if dtype == "BF16":
            itemsize = 2
        elif dtype in _NP_OF:
            itemsize = _NP_OF[dtype].itemsize
        else:
            raise SafetensorsError(
                f"{path}: tensor '{name}': unsupported dtype '{dtype}' "
                f"(expected one of {sorted(list(_NP_OF) + ['BF16'])})")
        if end - begin != numel * itemsize:
            raise SafetensorsError(
                f"{path}: tensor '{name}': {end - begin} bytes for shape {shape} of {dtype}, "
                f"expected {numel * itemsize}")
        raw = bytes(data[begin:end])
        if dtype == "BF16":
            arr = _bf16_to_f32(np.frombuffer(raw, dtype="<u2"))
        else:
            arr = np.frombuffer(raw, dtype=_NP_OF[dtype]).copy()
        tensors[name] = arr.reshape(shape)
        spans.append((begin, end, name))
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise SafetensorsError(
                f"{path}: tensor '{name}' starts at byte {begin}, expected {pos} (gap or overlap)")
        pos = end
    if pos != len(data):
        raise SafetensorsError(f"{path}: data buffer has {len(data)} bytes, tensors cover {pos}")
    return tensors, dict(metadata)


def save_safetensors(path, tensors, metadata=None):
    """Writes `tensors` (dict name -> np.ndarray of a supported dtype) to `path`.

    Tensors are laid out by descending element size, then name, so every tensor starts
    at an offset aligned to its element size. `metadata` values must be strings.
    """
    entries = []
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        arr = np.ascontiguousarray(arr).reshape(arr.shape)  # ascontiguousarray makes 0-d arrays 1-d
        dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        if dt not in _NAME_OF:
            raise SafetensorsError(f"{path}: tensor '{name}': unsupported numpy dtype {arr.dtype}")
        entries.append((-dt.itemsize, name, arr.astype(dt, copy=False), _NAME_OF[dt]))
    entries.sort()
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise SafetensorsError(f"{path}: metadata '{k}' must be a string, found {type(v).__name__}")
        header["__metadata__"] = dict(metadata)
    pos = 0
    for _, name, arr, dname in entries:
        header[name] = {"dtype": dname, "shape": list(arr.shape),
                        "data_offsets": [pos, pos + arr.nbytes]}
        pos += arr.nbytes
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for _, _, arr, _ in entries:
            f.write(arr.tobytes())
