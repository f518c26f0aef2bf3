"""ArrayRecord: arrays and image folders converted once, read back exactly, streamed
to the same parameters as the in-memory run; bad files are DataErrors."""

from __future__ import annotations

import numpy as np
import pytest

from image_folder_files import write_image_folder
from jaxdl.data.formats.array_record import (ArrayRecordExamples, convert_image_folder, write_arrays)
from jaxdl.data.sources import step_indices
from jaxdl.data.formats.image_folder import ImageFolder
from jaxdl.data.streaming import StreamingSource
from jaxdl.errors import DataError


def test_arrays_round_trip_and_stream_in_step_order(tmp_path):
    arrays = {"x": np.random.default_rng(0).normal(size=(10, 3, 2)).astype(np.float32),
              "y": np.arange(10, dtype=np.int32)}
    path = str(tmp_path / "train.array_record")
    assert write_arrays(path, arrays) == 10
    examples = ArrayRecordExamples(path)
    assert len(examples) == 10
    np.testing.assert_array_equal(examples[7]["x"], arrays["x"][7])
    assert examples[7]["y"].dtype == np.int32
    for workers, mode in ((0, "threads"), (2, "threads")):
        source = StreamingSource(examples, 4, seed=1, workers=workers, worker_mode=mode)
        try:
            got = source.step_inputs(3, 2).fields
        finally:
            source.close()
        idx = step_indices(1, 10, 4, 3, 2)
        np.testing.assert_array_equal(np.asarray(got["x"]), arrays["x"][idx])


def test_image_folder_converted_once_reads_the_decoded_images(tmp_path):
    folder = ImageFolder(str(write_image_folder(tmp_path / "train", per_class=2)))
    path = str(tmp_path / "train.array_record")
    assert convert_image_folder(folder, path) == 6
    examples = ArrayRecordExamples(path)
    for i in range(6):
        np.testing.assert_array_equal(examples[i]["x"], folder[i]["x"])
        assert int(examples[i]["y"]) == int(folder.labels[i])


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match=r"ArrayRecord file .*missing.array_record does not exist"):
        ArrayRecordExamples(str(tmp_path / "missing.array_record"))
    junk = tmp_path / "junk.array_record"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(DataError, match=r"cannot read ArrayRecord file\(s\) .*junk.array_record"):
        ArrayRecordExamples(str(junk))
    with pytest.raises(DataError, match=r"different lengths"):
        write_arrays(str(tmp_path / "x.array_record"), {"x": np.zeros(3), "y": np.zeros(2)})
    assert not list(tmp_path.glob("x.array_record*"))  # validated before writing
