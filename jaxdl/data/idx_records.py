"""MNIST-family IDX files read one example at a time, for ``StreamingSource``.

``MnistRecords(directory, split)`` is a ``RecordSource`` over the same files
``load_mnist`` reads, giving the same examples (``x`` float32 ``[28, 28, 1]`` in
[0, 1], ``y`` int32) without loading the split: the files are memory-mapped
past their headers, so example ``i`` reads its 784 bytes. A gzipped file cannot
be mapped; it is decompressed once, chunk by chunk, into ``cache_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from jaxdl.data.idx import MNIST_FILES, _check_split, _find_idx_file, _missing_files_error, idx_header
from jaxdl.data.mapped_image_records import MappedImageRecords
from jaxdl.data.opener import uncompressed_path
from jaxdl.errors import DataError


def map_idx(path: Path) -> np.memmap:
    """An uncompressed IDX file's data, memory-mapped read-only with its header's shape."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(4 + 4 * 255)
    dtype, shape, header_size = idx_header(head, size, path)
    return np.memmap(path, dtype, mode="r", offset=header_size, shape=shape)


class MnistRecords(MappedImageRecords):
    """The examples of one split of MNIST / Fashion-MNIST IDX files, read per example.

    Args:
      directory: as ``load_mnist`` (the four IDX files, each raw or ``.gz``).
      split: ``"train"`` or ``"test"``.
      cache_dir: where gzipped files are decompressed (default a new temporary
        directory).
    Raises:
      DataError: missing files, a bad header, shapes or labels (as ``load_mnist``).
    """

    def __init__(self, directory: str | os.PathLike, split: str = "train", *,
                 cache_dir: str | None = None, kind: str = "mnist"):
        if split not in MNIST_FILES:
            raise DataError(f"MnistRecords split={split!r}; expected one of {sorted(MNIST_FILES)}")
        directory = Path(directory)
        names = MNIST_FILES[split]
        missing = [n for n in names if _find_idx_file(directory, n) is None]
        if missing:
            raise _missing_files_error(directory, kind, missing)
        self.paths = [Path(uncompressed_path(_find_idx_file(directory, n), cache_dir))
                      for n in names]
        images, labels = (map_idx(p) for p in self.paths)
        _check_split(images, labels, *self.paths)
        self.num_examples = len(labels)
        self._maps = None

    def _open_maps(self) -> tuple[np.ndarray, np.ndarray]:
        images, labels = (map_idx(p) for p in self.paths)
        return images, labels

