"""The table of named image datasets: name -> classes, whole-split loader, example readers.

``config.data.name`` picks a row; ``load_splits`` reads both splits into arrays
(``{"train": {"x": float32 [N, H, W, C] in [0, 1], "y": int32 [N]}, "test": ...}``)
and ``example_readers`` gives the same examples, in the same order, one at a time
(for ``data.source="stream"``). The loaders are looked up in their format module
at call time (``idx.load_mnist``, ...), so a test that replaces one sees every call.
Adding a dataset is adding a row.

Where the files are (``data_dir``): ``config.data.dir`` when it is set; when it is
``""``, the first of the row's ``system_dirs`` (a directory an operating-system
package installs, e.g. Debian's ``dataset-fashion-mnist``) that holds every file,
else ``data/<name>`` (where ``data.download=True`` puts them).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import ml_collections
import numpy as np

from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.examples import ExampleReader
from jaxdl.data.formats import cifar, idx, sklearn
from jaxdl.errors import ConfigError

Splits = dict[str, dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class NamedDataset:
    """One row of ``DATASETS``.

    Attributes:
      classes: number of labels (CIFAR-100 with ``label_kind="coarse"``: see ``num_classes``).
      load: ``(config.data, directory) -> Splits``, the whole splits.
      read: ``(config.data, directory, split, cache_dir) -> ExampleReader``; None when the
        examples come from the loaded arrays (a dataset held in memory anyway).
      system_dirs: directories where a system package installs the files, tried in order
        when ``config.data.dir`` is ``""``.
      files: the file names a directory must hold (each raw or ``.gz``) to count as
        having the dataset; needed with ``system_dirs``.
    """

    classes: int
    load: Callable[[ml_collections.ConfigDict, str], Splits]
    read: Callable[[ml_collections.ConfigDict, str, str, str], ExampleReader] | None = None
    system_dirs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


def _load_digits(data, directory: str) -> Splits:
    return sklearn.load_digits_images(test_fraction=data.test_fraction, seed=data.split_seed)


def _load_idx(data, directory: str) -> Splits:
    return idx.load_mnist(directory, kind=data.name, download=data.download)


def _read_idx(data, directory: str, split: str, cache_dir: str) -> ExampleReader:
    return idx.MnistExamples(directory, split, cache_dir=cache_dir, kind=data.name)


def _load_cifar(data, directory: str) -> Splits:
    return cifar.load_cifar(directory, num_classes=DATASETS[data.name].classes,
                            label_kind=data.label_kind, download=data.download)


def _read_cifar(data, directory: str, split: str, cache_dir: str) -> ExampleReader:
    return cifar.CifarExamples(directory, split, num_classes=DATASETS[data.name].classes,
                               label_kind=data.label_kind, cache_dir=cache_dir)


_IDX_FILES = tuple(name for pair in idx.MNIST_FILES.values() for name in pair)

# Debian packages MNIST-family data: `apt-get install dataset-fashion-mnist` installs the
# four gzipped IDX files here. (Debian has no MNIST package; `apt-cache search mnist`.)
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

DATASETS: dict[str, NamedDataset] = {
    "digits": NamedDataset(10, _load_digits),
    "mnist": NamedDataset(10, _load_idx, _read_idx, files=_IDX_FILES),
    "fashion_mnist": NamedDataset(10, _load_idx, _read_idx,
                                  system_dirs=(DEBIAN_FASHION_MNIST_DIR,), files=_IDX_FILES),
    "cifar10": NamedDataset(10, _load_cifar, _read_cifar),
    "cifar100": NamedDataset(100, _load_cifar, _read_cifar),
}


def _row(data: ml_collections.ConfigDict) -> NamedDataset:
    if data.name not in DATASETS:
        raise ConfigError(f"config.data.name={data.name!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[data.name]


def holds_files(directory: str, names: tuple[str, ...]) -> bool:
    """Whether ``directory`` holds every one of ``names``, each raw or ``.gz``."""
    return all(os.path.isfile(os.path.join(directory, name))
               or os.path.isfile(os.path.join(directory, f"{name}.gz")) for name in names)


def data_dir(data: ml_collections.ConfigDict) -> str:
    """The directory ``data.name`` is read from (see the module docstring).

    Returns:
      ``data.dir`` expanded when it is set; for ``""``, the first system directory of
      the row holding every file, else ``data/<name>``.

    Raises:
      ConfigError: ``data.dir`` is ``""``, the row has system directories, and neither
        they nor ``data/<name>`` hold the files (and ``data.download`` is off): the
        message names every place looked in and how to fill one.
    """
    if data.dir:
        return os.path.expanduser(data.dir)
    row = _row(data)
    fallback = os.path.join("data", data.name)
    for directory in row.system_dirs:
        if holds_files(directory, row.files):
            return directory
    if not row.system_dirs or data.download or holds_files(fallback, row.files):
        return fallback
    places = " nor ".join(repr(d) for d in (*row.system_dirs, fallback))
    raise ConfigError(
        f"config.data.dir='' (look in the default places) for data.name={data.name!r}: "
        f"neither {places} holds the files {', '.join(row.files)} (each raw or .gz). "
        f"Pass --config.data.dir=DIR, install the system package (Debian: apt-get "
        f"install dataset-{data.name.replace('_', '-')}), or set "
        f"--config.data.download=True to fetch them into {fallback!r}")


def num_classes(data: ml_collections.ConfigDict) -> int:
    """Classes of ``data.name`` (20 for CIFAR-100 with ``label_kind="coarse"``)."""
    if data.name == "cifar100" and data.label_kind == "coarse":
        return 20
    return _row(data).classes


def load_splits(data: ml_collections.ConfigDict) -> Splits:
    """Both splits of ``data.name`` as arrays (see the module docstring).

    Raises:
      ConfigError: an unknown ``data.name``; no default place holds the files (``data_dir``).
      DataError: missing or corrupt files (the message says how to get them).
    """
    return _row(data).load(data, data_dir(data))


def example_readers(data: ml_collections.ConfigDict, cache_dir: str
                    ) -> tuple[ExampleReader, ExampleReader]:
    """The train and test examples of ``data.name``, read one at a time (``load_splits``'
    examples, in its order: ``{"x": float32 [H, W, C] in [0, 1], "y": int32}``).

    MNIST-family IDX files are memory-mapped (``MnistExamples``), CIFAR batches are
    decoded once into flat files in ``cache_dir`` (``CifarExamples``); digits, which
    scikit-learn holds in memory anyway, come from their arrays.

    Raises:
      ConfigError: an unknown ``data.name``, or ``data.download`` set (streaming reads
        files already there).
      DataError: missing or corrupt files, as ``load_splits``.
    """
    row = _row(data)
    if row.read is None:
        splits = load_splits(data)
        return ArrayDataset(splits["train"], name="train"), ArrayDataset(splits["test"], name="test")
    if data.download:
        raise ConfigError("config.data.download=True with config.data.source='stream': the "
                          "streamed readers read the files in config.data.dir; download them "
                          "once with data.source='arrays', then stream")
    directory = data_dir(data)
    return tuple(row.read(data, directory, split, cache_dir) for split in ("train", "test"))
