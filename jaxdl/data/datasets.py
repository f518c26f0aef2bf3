"""The table of named image datasets: name -> classes, whole-split loader, example readers.

``config.data.name`` picks a row; ``load_splits`` reads both splits into arrays
(``{"train": {"x": float32 [N, H, W, C] in [0, 1], "y": int32 [N]}, "test": ...}``)
and ``example_readers`` gives the same examples, in the same order, one at a time
(for ``data.source="stream"``). The loaders are looked up in their format module
at call time (``idx.load_mnist``, ...), so a test that replaces one sees every call.
Adding a dataset is adding a row.
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
    """

    classes: int
    load: Callable[[ml_collections.ConfigDict, str], Splits]
    read: Callable[[ml_collections.ConfigDict, str, str, str], ExampleReader] | None = None


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


DATASETS: dict[str, NamedDataset] = {
    "digits": NamedDataset(10, _load_digits),
    "mnist": NamedDataset(10, _load_idx, _read_idx),
    "fashion_mnist": NamedDataset(10, _load_idx, _read_idx),
    "cifar10": NamedDataset(10, _load_cifar, _read_cifar),
    "cifar100": NamedDataset(100, _load_cifar, _read_cifar),
}


def _row(data: ml_collections.ConfigDict) -> NamedDataset:
    if data.name not in DATASETS:
        raise ConfigError(f"config.data.name={data.name!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[data.name]


def num_classes(data: ml_collections.ConfigDict) -> int:
    """Classes of ``data.name`` (20 for CIFAR-100 with ``label_kind="coarse"``)."""
    if data.name == "cifar100" and data.label_kind == "coarse":
        return 20
    return _row(data).classes


def load_splits(data: ml_collections.ConfigDict) -> Splits:
    """Both splits of ``data.name`` as arrays (see the module docstring).

    Raises:
      ConfigError: an unknown ``data.name``.
      DataError: missing or corrupt files (the message says how to get them).
    """
    return _row(data).load(data, os.path.expanduser(data.dir))


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
    directory = os.path.expanduser(data.dir)
    return tuple(row.read(data, directory, split, cache_dir) for split in ("train", "test"))
