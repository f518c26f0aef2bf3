"""The NumPy safetensors reader and writer: round trips, the byte layout, bfloat16
and the errors of damaged files."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from jaxdl.errors import DataError
from jaxdl.pretrained.safetensors_format import read_safetensors, write_safetensors


def test_round_trip_keeps_names_dtypes_shapes_and_bytes(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"conv1.weight": rng.normal(size=(4, 3, 7, 7)).astype(np.float32),
               "bn1.num_batches_tracked": np.array(12, np.int64),
               "fc.bias": rng.normal(size=5).astype(np.float16),
               "mask": np.array([True, False]), "empty": np.zeros((0, 3), np.float64)}
    path = tmp_path / "t.safetensors"
    write_safetensors(path, tensors, metadata={"format": "pt"})
    back = read_safetensors(path)
    assert sorted(back) == sorted(tensors)
    for name, array in tensors.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        assert back[name].tobytes() == array.tobytes()


def test_layout_is_the_reference_one(tmp_path):
    path = tmp_path / "t.safetensors"
    write_safetensors(path, {"b": np.array([1.5], np.float32), "a": np.arange(2, dtype="<i4")})
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0
    header = json.loads(data[8:8 + n])
    assert header == {"a": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}
    assert data[8 + n:] == np.arange(2, dtype="<i4").tobytes() + np.float32(1.5).tobytes()


def test_bfloat16_is_widened_to_float32_exactly(tmp_path):
    values = np.array([1.0, -2.5, 3.140625], np.float32)  # exact in bfloat16
    raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + raw)
    back = read_safetensors(path)["w"]
    assert back.dtype == np.float32 and back.tolist() == values.tolist()


def test_matches_the_safetensors_package_when_installed(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    tensors = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "y": np.array([3], np.int64)}
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    write_safetensors(ours, tensors)
    st.save_file(tensors, str(theirs))
    for name, array in st.load_file(str(ours)).items():
        assert array.tobytes() == tensors[name].tobytes()
    for name, array in read_safetensors(theirs).items():
        assert array.tobytes() == tensors[name].tobytes()


def _file(tmp_path, header: bytes, body: bytes = b"", length: int | None = None):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + body)
    return path


def test_damaged_files_raise_data_errors_naming_the_problem(tmp_path):
    with pytest.raises(DataError, match="header length 999 does not fit"):
        read_safetensors(_file(tmp_path, b"{}", length=999))
    with pytest.raises(DataError, match="not UTF-8 JSON"):
        read_safetensors(_file(tmp_path, b"{oops"))
    entry = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}
    with pytest.raises(DataError, match=r"tensor 'w' \(F32 \[2, 2\]\) has data_offsets \[0, 12\]; "
                                        "expected 16 bytes"):
        read_safetensors(_file(tmp_path, json.dumps(entry).encode(), b"\0" * 12))
    entry = {"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}
    with pytest.raises(DataError, match="dtype 'F8_E4M3'"):
        read_safetensors(_file(tmp_path, json.dumps(entry).encode(), b"\0"))
    with pytest.raises(DataError, match="too short"):
        (tmp_path / "tiny.safetensors").write_bytes(b"\1\2")
        read_safetensors(tmp_path / "tiny.safetensors")
    with pytest.raises(DataError, match="tensor 'c' has dtype complex64"):
        write_safetensors(tmp_path / "c.safetensors", {"c": np.zeros(2, np.complex64)})
