"""The IDX file format (MNIST, Fashion-MNIST): the whole-split loader and the example reader.

IDX layout (http://yann.lecun.com/exdb/mnist/): two zero bytes; a type byte
(0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64); a byte with the number of dimensions; one big-endian uint32 size
per dimension; then the data, big-endian, in C (row-major) order.
Files may be gzip-compressed; that is detected from the content, not the name.

``load_mnist`` reads both splits into arrays; ``MnistExamples(directory, split)``
gives the same examples one at a time (``x`` float32 ``[28, 28, 1]`` in [0, 1],
``y`` int32) without loading the split: the files are memory-mapped past their
headers, so example ``i`` reads its 784 bytes. A gzipped file cannot be mapped;
it is decompressed once, chunk by chunk, into ``cache_dir``. Both find and check
the files through ``_split_files`` and ``_check_split``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from jaxdl.data.download import BASE_URLS, fetch_dataset_files
from jaxdl.data.formats.mapped_images import MappedImageExamples
from jaxdl.data.opener import uncompressed_path
from jaxdl.errors import DataError

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

# Split name -> (images file, labels file), as the datasets distribute them.
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SIZE = 28
NUM_CLASSES = 10


def _read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read IDX file {path}: {err}") from err
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{path}: corrupt or truncated gzip data ({err}); expected a complete "
            ".gz of an IDX file. Download the file again."
        ) from err


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file, raw or gzipped.

    Args:
      path: the file.

    Returns:
      An array with the header's shape and dtype (native byte order).

    Raises:
      DataError: bad magic, unknown type code, or data length different from
        the header's; the message names the file, the bytes seen and expected.
    """
    path = Path(path)
    content = _read_bytes(path)
    dtype, shape, header_size = idx_header(content, len(content), path)
    data = np.frombuffer(content, dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def idx_header(head: bytes, size: int, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """The big-endian dtype, shape and header size of an IDX file's (uncompressed) content.

    Args:
      head: the content's first bytes (at least the header: 4 + 4 * ndim).
      size: the content's length in bytes.
      path: the file, named in errors.
    Raises:
      DataError: as ``read_idx``.
    """
    if size < 4 or len(head) < 4:
        raise DataError(
            f"{path}: {size} bytes, too short for an IDX header (expected "
            "4 magic bytes: 0x00 0x00 <type> <number of dimensions>)"
        )
    if head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
        raise DataError(
            f"{path}: bad IDX magic number {head[:4].hex(' ')}; expected 00 00 <type> "
            f"<ndim> with type one of {', '.join(f'{t:02x}' for t in IDX_TYPES)}. "
            "Is this an IDX file (e.g. train-images-idx3-ubyte)?"
        )
    dtype = IDX_TYPES[head[2]]
    ndim = head[3]
    header_size = 4 + 4 * ndim
    if ndim == 0 or size < header_size or len(head) < header_size:
        raise DataError(
            f"{path}: header declares {ndim} dimensions, which need a {header_size}-byte "
            f"header, but the file has {size} bytes"
        )
    shape = tuple(int(s) for s in np.frombuffer(head, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = size - header_size
    if actual != expected:
        raise DataError(
            f"{path}: header shape {shape} of {dtype.name} needs {expected} data bytes "
            f"after the {header_size}-byte header, but the file has {actual}"
            + (" (truncated?)" if actual < expected else " (trailing bytes)")
        )
    return dtype, shape, header_size


def _find_idx_file(directory: Path, name: str) -> Path | None:
    """`name` or `name.gz` in `directory`; the raw file wins when both exist."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing_files_error(directory: Path, kind: str, missing: list[str]) -> DataError:
    names = [n for pair in MNIST_FILES.values() for n in pair]
    return DataError(
        f"{kind} files missing in {directory}: {', '.join(missing)}. Expected the four "
        f"IDX files {', '.join(names)} (each raw or .gz). Download them from "
        f"{BASE_URLS[kind]} (append the file name and '.gz'), or set "
        "config.data.download=True to fetch and verify them automatically."
    )


def _check_split(images: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path) -> None:
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.dtype != np.uint8:
        raise DataError(
            f"{image_path}: images of shape {images.shape} and dtype {images.dtype}; "
            f"expected [N, {IMAGE_SIZE}, {IMAGE_SIZE}] unsigned bytes (type 0x08)"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(
            f"{label_path}: labels of shape {labels.shape} and dtype {labels.dtype}; "
            "expected [N] unsigned bytes (type 0x08)"
        )
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{label_path} has {labels.shape[0]} labels but {image_path} has "
            f"{images.shape[0]} images; expected the same count"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DataError(
            f"{label_path}: label {int(labels.max())} out of range; expected 0..{NUM_CLASSES - 1}"
        )


def load_mnist(
    directory: str | os.PathLike, *, kind: str = "mnist", download: bool = False
) -> dict[str, dict[str, np.ndarray]]:
    """Loads MNIST or Fashion-MNIST from its four IDX files.

    Args:
      directory: holds train-images-idx3-ubyte, train-labels-idx1-ubyte,
        t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each raw or `.gz`).
      kind: "mnist" or "fashion_mnist" (same format; chooses the download
        location and checksums).
      download: fetch missing files (verified by SHA-256) into `directory`.

    Returns:
      `{"train": {"x": float32 [60000, 28, 28, 1] in [0, 1], "y": int32 [60000]},
      "test": {...10000...}}` (counts as in the files).
    """
    if kind not in ("mnist", "fashion_mnist"):
        raise DataError(f"load_mnist kind={kind!r}; expected 'mnist' or 'fashion_mnist'")
    paths = _split_files(Path(directory), list(MNIST_FILES), kind, download)
    splits = {}
    for split, (image_path, label_path) in paths.items():
        images, labels = read_idx(image_path), read_idx(label_path)
        _check_split(images, labels, image_path, label_path)
        splits[split] = {
            "x": (images.astype(np.float32) / 255.0)[..., None],
            "y": labels.astype(np.int32),
        }
    return splits


def _split_files(directory: Path, splits: list[str], kind: str,
                 download: bool) -> dict[str, tuple[Path, Path]]:
    """``split -> (images file, labels file)`` for ``splits``, each raw or ``.gz``.

    Raises:
      DataError: a file of these splits is missing and ``download`` is off.
    """
    names = [n for split in splits for n in MNIST_FILES[split]]
    missing = [n for n in names if _find_idx_file(directory, n) is None]
    if missing and download:
        fetch_dataset_files(kind, directory, [f"{n}.gz" for n in missing])
    elif missing:
        raise _missing_files_error(directory, kind, missing)
    return {split: tuple(_find_idx_file(directory, n) for n in MNIST_FILES[split])
            for split in splits}


def map_idx(path: Path) -> np.memmap:
    """An uncompressed IDX file's data, memory-mapped read-only with its header's shape."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(4 + 4 * 255)
    dtype, shape, header_size = idx_header(head, size, path)
    return np.memmap(path, dtype, mode="r", offset=header_size, shape=shape)


class MnistExamples(MappedImageExamples):
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
            raise DataError(f"MnistExamples split={split!r}; expected one of {sorted(MNIST_FILES)}")
        files = _split_files(Path(directory), [split], kind, download=False)[split]
        self.paths = [Path(uncompressed_path(f, cache_dir)) for f in files]
        images, labels = (map_idx(p) for p in self.paths)
        _check_split(images, labels, *self.paths)
        self.num_examples = len(labels)
        self._maps = None

    def open_maps(self) -> tuple[np.ndarray, np.ndarray]:
        images, labels = (map_idx(p) for p in self.paths)
        return images, labels
