"""Read and write safetensors files with NumPy alone.

Layout: an 8-byte little-endian unsigned header length N, N bytes of JSON
(``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}``
plus an optional ``"__metadata__"`` object of strings), then the raw little-endian
tensor bytes, offsets counted from the end of the header. The writer pads the
header with spaces to a multiple of 8 bytes, as the reference implementation does.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping

import numpy as np

from jaxdl.errors import DataError

# BF16 has no NumPy dtype: it is read as its 16 raw bits and widened to float32.
_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items() if k not in ("BF16",)}
# Headers above this size are not model files; refuse before reading them.
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file, by name, as host arrays.

    BF16 tensors come back as float32 (exactly: bfloat16 is float32's top half).

    Returns:
      ``{name: array}`` with the shapes the header gives.
    Raises:
      DataError: the header is not valid JSON, names an unknown dtype, or a
        tensor's byte range does not match its shape or lies outside the file.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 8:
        raise DataError(f"{path}: {len(data)} bytes, too short for a safetensors file "
                        "(expected an 8-byte header length first)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(_MAX_HEADER_BYTES, len(data) - 8):
        raise DataError(f"{path}: safetensors header length {header_len} does not fit the "
                        f"{len(data)}-byte file; is this really a safetensors file?")
    try:
        header = json.loads(data[8:8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: safetensors header is not UTF-8 JSON ({error})") from None
    if not isinstance(header, dict):
        raise DataError(f"{path}: safetensors header is a {type(header).__name__}, expected "
                        "a JSON object of tensors")
    body = memoryview(data)[8 + header_len:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _tensor(path, name, entry, body)
    return tensors


def _tensor(path, name: str, entry, body: memoryview) -> np.ndarray:
    try:
        dtype_name, shape = entry["dtype"], [int(d) for d in entry["shape"]]
        begin, end = (int(o) for o in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: tensor {name!r} header entry {entry!r}; expected dtype, "
                        "shape and data_offsets [begin, end]") from None
    if dtype_name not in _DTYPES:
        raise DataError(f"{path}: tensor {name!r} has dtype {dtype_name!r}; expected one of "
                        f"{sorted(_DTYPES)}")
    dtype = np.dtype(_DTYPES[dtype_name])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if not 0 <= begin <= end <= len(body) or end - begin != expected:
        raise DataError(f"{path}: tensor {name!r} ({dtype_name} {shape}) has data_offsets "
                        f"[{begin}, {end}]; expected {expected} bytes inside the "
                        f"{len(body)}-byte data section")
    array = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape)
    if dtype_name == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.copy()


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` as a safetensors file, in name order.

    Args:
      path: output file.
      tensors: ``{name: array}``; any dtype of the format but bfloat16.
      metadata: optional string-to-string ``__metadata__``.
    Raises:
      DataError: a dtype the format has no name for, or non-string metadata.
    """
    header: dict = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise DataError(f"safetensors metadata {dict(metadata)!r}: expected str -> str")
        header["__metadata__"] = dict(metadata)
    chunks, offset = [], 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        little = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
        if little not in _NAMES:
            raise DataError(f"write_safetensors: tensor {name!r} has dtype {array.dtype}; "
                            f"expected one of {sorted(str(d) for d in _NAMES)}")
        raw = np.ascontiguousarray(array, dtype=little).tobytes()
        header[name] = {"dtype": _NAMES[little], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for raw in chunks:
            handle.write(raw)
