"""CIFAR-10 / CIFAR-100 read one example at a time, for ``StreamingSource``.

A CIFAR batch is a pickle, which cannot be read in part; ``CifarRecords``
decodes the split's batches once, one batch in memory at a time, into two flat
files in ``cache_dir`` (uint8 NHWC images, int32 labels) and memory-maps them,
so example ``i`` is ``load_cifar``'s example ``i`` and reading it touches its
3,072 bytes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from jaxdl.data.cifar import _LAYOUTS, _decode_batch, _locate, _read_members, _unpickle_batch
from jaxdl.data.mapped_image_records import MappedImageRecords
from jaxdl.errors import DataError

IMAGE_SHAPE = (32, 32, 3)


class CifarRecords(MappedImageRecords):
    """One split of CIFAR-10 / CIFAR-100: ``{"x": float32 [32, 32, 3] in [0, 1], "y": int32}``.

    Args:
      path: as ``load_cifar`` (the extracted directory, its parent, or the archive).
      split: ``"train"`` or ``"test"``.
      num_classes, label_kind: as ``load_cifar``.
      cache_dir: where the decoded split is written (default a new temporary directory).
    Raises:
      DataError: as ``load_cifar`` (missing data, a corrupt batch), before any example is read.
    """

    def __init__(self, path: str | os.PathLike, split: str = "train", *, num_classes: int = 10,
                 label_kind: str = "fine", cache_dir: str | None = None):
        if num_classes not in _LAYOUTS or split not in ("train", "test"):
            raise DataError(f"CifarRecords num_classes={num_classes}, split={split!r}; expected "
                            "10 or 100 and 'train' or 'test'")
        if label_kind not in ("fine", "coarse"):
            raise DataError(f"CifarRecords label_kind={label_kind!r}; expected 'fine' or 'coarse'")
        _, directory_name, archive_name, train_names, test_names = _LAYOUTS[num_classes]
        source = _locate(Path(path), directory_name, archive_name)
        if source is None:
            raise DataError(f"no CIFAR-{num_classes} data at {path}: expected the directory "
                            f"{directory_name}/ (or its parent) or the archive {archive_name}")
        label_key, num_labels = ((b"labels", 10) if num_classes == 10 else
                                 (b"fine_labels", 100) if label_kind == "fine" else
                                 (b"coarse_labels", 20))
        cache_dir = cache_dir or tempfile.mkdtemp(prefix="jaxdl-cifar-")
        os.makedirs(cache_dir, exist_ok=True)
        self.images_path = os.path.join(cache_dir, f"{split}-images.u8")
        self.labels_path = os.path.join(cache_dir, f"{split}-labels.i32")
        try:
            with open(self.images_path + ".partial", "wb") as images, \
                    open(self.labels_path + ".partial", "wb") as labels:
                for name in train_names if split == "train" else test_names:
                    (content, where), = _read_members(source, directory_name, [name]).values()
                    batch_images, batch_labels = _decode_batch(
                        _unpickle_batch(content, where), label_key, num_labels, where)
                    images.write(np.ascontiguousarray(batch_images).tobytes())
                    labels.write(batch_labels.astype(np.int32).tobytes())
        except DataError:
            for partial in (self.images_path + ".partial", self.labels_path + ".partial"):
                if os.path.exists(partial):
                    os.remove(partial)
            raise
        os.replace(self.images_path + ".partial", self.images_path)
        os.replace(self.labels_path + ".partial", self.labels_path)
        self.num_examples = os.path.getsize(self.labels_path) // 4
        self._maps = None

    def _open_maps(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.memmap(self.images_path, np.uint8, mode="r",
                          shape=(self.num_examples,) + IMAGE_SHAPE),
                np.memmap(self.labels_path, np.int32, mode="r"))

