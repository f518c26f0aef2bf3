"""The image datasets of `jaxdl.recipes.vision` read one example at a time, for
`data.source="stream"`: the training split through `StreamingSource`, the test
split through `StreamedSplit`, neither loaded whole."""

from __future__ import annotations

import os

import ml_collections

from jaxdl.data.formats.cifar import CifarExamples
from jaxdl.data.formats.idx import MnistExamples
from jaxdl.data.streaming import ArraysRecords, ExampleReader
from jaxdl.data.formats.sklearn import load_digits_images
from jaxdl.errors import ConfigError

NAMES = ("cifar10", "cifar100", "digits", "fashion_mnist", "mnist")


def stream_image_records(data: ml_collections.ConfigDict, cache_dir: str
                         ) -> tuple[ExampleReader, ExampleReader]:
    """The train and test examples of `data.name`, read one at a time (`load_image_splits`'
    examples, in its order: `{"x": float32 [H, W, C] in [0, 1], "y": int32}`).

    MNIST-family IDX files are memory-mapped (`MnistExamples`), CIFAR batches are
    decoded once into flat files in `cache_dir` (`CifarExamples`); digits, which
    scikit-learn holds in memory anyway, come from their arrays.

    Raises:
      ConfigError: `data.download` is set (streaming reads files already there).
      DataError: missing or corrupt files, as `load_image_splits`.
    """
    if data.name == "digits":
        splits = load_digits_images(test_fraction=data.test_fraction, seed=data.split_seed)
        return ArraysRecords(splits["train"]), ArraysRecords(splits["test"])
    if data.download:
        raise ConfigError("config.data.download=True with config.data.source='stream': the "
                          "streamed readers read the files in config.data.dir; download them "
                          "once with data.source='arrays', then stream")
    directory = os.path.expanduser(data.dir)
    if data.name in ("mnist", "fashion_mnist"):
        return tuple(MnistExamples(directory, split, cache_dir=cache_dir, kind=data.name)
                     for split in ("train", "test"))
    if data.name in ("cifar10", "cifar100"):
        num_classes = 10 if data.name == "cifar10" else 100
        return tuple(CifarExamples(directory, split, num_classes=num_classes,
                                  label_kind=data.label_kind, cache_dir=cache_dir)
                     for split in ("train", "test"))
    raise ConfigError(f"config.data.name={data.name!r}; expected one of {sorted(NAMES)}")
