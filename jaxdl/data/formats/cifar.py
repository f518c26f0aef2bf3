"""CIFAR-10 and CIFAR-100 from the official "python version" pickles.

Format (https://www.cs.toronto.edu/~kriz/cifar.html): each batch file is a
Python-2 pickle of a dict with bytes keys. `b'data'` is a uint8 array
[N, 3072]: per image 1024 red, then 1024 green, then 1024 blue values, each
plane a 32x32 image in row-major order. CIFAR-10 (`cifar-10-batches-py/`) has
`data_batch_1`..`data_batch_5` and `test_batch` with `b'labels'`; CIFAR-100
(`cifar-100-python/`) has `train` and `test` with `b'fine_labels'` and
`b'coarse_labels'`.

The pickles are read with an unpickler that only builds the numpy arrays these
files contain, so a hostile file cannot run code.

``load_cifar`` reads both splits into arrays. A pickle cannot be read in part, so
``CifarExamples`` decodes a split's batches once, one batch in memory at a time,
into two flat files in ``cache_dir`` (uint8 NHWC images, int32 labels) and
memory-maps them: example ``i`` is ``load_cifar``'s example ``i`` and reading it
touches its 3,072 bytes. Both find the data and choose the labels through
``_locate_dataset``.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from jaxdl.data.download import BASE_URLS, fetch_dataset_files
from jaxdl.data.formats.mapped_images import MappedImageExamples
from jaxdl.errors import DataError

IMAGE_SHAPE_CHW = (3, 32, 32)
IMAGE_SHAPE = (32, 32, 3)
_LAYOUTS = {
    # num_classes -> (dataset name, directory in the archive, archive, train files, test files)
    10: ("cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz",
         [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]),
    100: ("cifar100", "cifar-100-python", "cifar-100-python.tar.gz", ["train"], ["test"]),
}
# What a CIFAR pickle may reference: numpy's array reconstruction, and the codec
# Python 3 uses to pickle bytes at protocol 2.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _unpickle_batch(content: bytes, where: str) -> dict:
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(content), encoding="bytes").load()
    except Exception as err:  # a corrupt pickle can fail in many ways
        raise DataError(
            f"{where}: cannot unpickle ({type(err).__name__}: {err}); expected a complete "
            "CIFAR python-version batch (a pickled dict with b'data' uint8 [N, 3072] and "
            "labels). The file may be truncated: download it again."
        ) from err
    if not isinstance(batch, dict):
        raise DataError(f"{where}: unpickled a {type(batch).__name__}; expected a dict batch")
    return batch


def decode_batch(
    batch: dict, label_key: bytes, num_labels: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """`(images uint8 [N, 32, 32, 3], labels int32 [N])` from one batch dict."""
    for key in (b"data", label_key):
        if key not in batch:
            raise DataError(f"{where}: key {key!r} missing; the batch has keys {sorted(batch)}")
    data = np.asarray(batch[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE_CHW)):
        raise DataError(
            f"{where}: b'data' has shape {data.shape} and dtype {data.dtype}; expected "
            "uint8 [N, 3072] (R, G, B planes of 32x32)"
        )
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise DataError(
            f"{where}: {label_key!r} has shape {labels.shape}; expected ({data.shape[0]},), "
            "one label per image"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_labels):
        raise DataError(
            f"{where}: {label_key!r} holds values in [{labels.min()}, {labels.max()}]; "
            f"expected 0..{num_labels - 1}"
        )
    images = data.reshape(-1, *IMAGE_SHAPE_CHW).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int32)


def _locate(path: Path, directory_name: str, archive_name: str) -> Path | None:
    """The extracted directory or the archive, given either of them or their parent."""
    if path.is_file():
        return path
    if path.is_dir() and path.name == directory_name:
        return path
    for candidate in (path / directory_name, path / archive_name):
        if candidate.exists():
            return candidate
    return None


def _read_members(location: Path, directory_name: str, names: list[str]) -> dict[str, tuple[bytes, str]]:
    """Each member's bytes and a description of where it came from."""
    contents = {}
    if location.is_dir():
        for name in names:
            member = location / name
            if not member.is_file():
                raise DataError(
                    f"{member} is missing; {location} should hold {', '.join(names)}"
                )
            contents[name] = (member.read_bytes(), str(member))
        return contents
    try:
        with tarfile.open(location, "r:*") as archive:
            for name in names:
                member_name = f"{directory_name}/{name}"
                try:
                    handle = archive.extractfile(member_name)
                except KeyError:
                    handle = None
                if handle is None:
                    raise DataError(
                        f"{location}: member {member_name} missing; expected the official "
                        f"archive holding {directory_name}/ with {', '.join(names)}"
                    )
                contents[name] = (handle.read(), f"{location}:{member_name}")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataError(
            f"{location}: cannot read the tar archive ({type(err).__name__}: {err}); "
            "expected the complete official .tar.gz. Download it again."
        ) from err
    return contents


def load_cifar(
    path: str | os.PathLike,
    *,
    num_classes: int = 10,
    label_kind: str = "fine",
    download: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """Loads CIFAR-10 or CIFAR-100 from the official python-version batches.

    Args:
      path: the extracted directory (`cifar-10-batches-py/` or
        `cifar-100-python/`), its parent, or the `.tar.gz` archive (or a
        directory holding the archive). Archives are read without extracting.
      num_classes: 10 or 100.
      label_kind: CIFAR-100 only: "fine" (100 classes) or "coarse" (20 superclasses).
      download: when nothing is found, fetch the archive (SHA-256 verified)
        into `path`.

    Returns:
      `{"train": {"x": float32 [50000, 32, 32, 3] in [0, 1] (NHWC, RGB),
      "y": int32 [50000]}, "test": {...10000...}}` (counts as in the files).
    """
    layout, location, label_key, num_labels = _locate_dataset(
        Path(path), num_classes, label_kind, download, "load_cifar")
    _, directory_name, _, train_names, test_names = layout
    contents = _read_members(location, directory_name, train_names + test_names)
    splits = {}
    for split, names in (("train", train_names), ("test", test_names)):
        images, labels = [], []
        for name in names:
            content, where = contents[name]
            batch_images, batch_labels = decode_batch(
                _unpickle_batch(content, where), label_key, num_labels, where
            )
            images.append(batch_images)
            labels.append(batch_labels)
        splits[split] = {
            "x": np.concatenate(images).astype(np.float32) / 255.0,
            "y": np.concatenate(labels),
        }
    return splits


def _locate_dataset(path: Path, num_classes: int, label_kind: str, download: bool, caller: str):
    """``(layout, the directory or archive, label key, number of labels)`` of the CIFAR
    data at ``path`` (fetched there when missing and ``download``).

    Raises:
      DataError: a bad ``num_classes`` / ``label_kind``, or no data at ``path``.
    """
    if num_classes not in _LAYOUTS:
        raise DataError(f"{caller} num_classes={num_classes}; expected 10 or 100")
    if label_kind not in ("fine", "coarse"):
        raise DataError(f"{caller} label_kind={label_kind!r}; expected 'fine' or 'coarse'")
    layout = _LAYOUTS[num_classes]
    dataset, directory_name, archive_name, _, _ = layout
    location = _locate(path, directory_name, archive_name)
    if location is None and download:
        location = fetch_dataset_files(dataset, path, [archive_name])[0]
    elif location is None:
        raise DataError(
            f"no CIFAR-{num_classes} data at {path}: expected the directory "
            f"{directory_name}/ (or its parent) or the archive {archive_name}. Get it from "
            f"{BASE_URLS[dataset]}{archive_name} or set config.data.download=True."
        )
    if num_classes == 10:
        label_key, num_labels = b"labels", 10
    elif label_kind == "fine":
        label_key, num_labels = b"fine_labels", 100
    else:
        label_key, num_labels = b"coarse_labels", 20
    return layout, location, label_key, num_labels


class CifarExamples(MappedImageExamples):
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
        if split not in ("train", "test"):
            raise DataError(f"CifarExamples split={split!r}; expected 'train' or 'test'")
        (_, directory_name, _, train_names, test_names), location, label_key, num_labels = (
            _locate_dataset(Path(path), num_classes, label_kind, False, "CifarExamples"))
        cache_dir = cache_dir or tempfile.mkdtemp(prefix="jaxdl-cifar-")
        os.makedirs(cache_dir, exist_ok=True)
        self.images_path = os.path.join(cache_dir, f"{split}-images.u8")
        self.labels_path = os.path.join(cache_dir, f"{split}-labels.i32")
        try:
            with open(self.images_path + ".partial", "wb") as images, \
                    open(self.labels_path + ".partial", "wb") as labels:
                for name in train_names if split == "train" else test_names:
                    (content, where), = _read_members(location, directory_name, [name]).values()
                    batch_images, batch_labels = decode_batch(
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

    def open_maps(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.memmap(self.images_path, np.uint8, mode="r",
                          shape=(self.num_examples,) + IMAGE_SHAPE),
                np.memmap(self.labels_path, np.int32, mode="r"))
