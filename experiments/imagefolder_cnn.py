"""A CNN on your own image folder: `--config.data.dir=ROOT` with
`ROOT/train/<class>/*.png|jpg|jpeg` and `ROOT/test/<class>/...`.

Images (grayscale or colour, any size) are decoded with Pillow and resized to
`data.image_size` (`data.resize`: "stretch" or "crop"). `data.source="stream"`
(the default here) reads them from disk on host workers every step
(`data.workers`, `data.worker_mode`, `data.prefetch`; `data.cache_mb` keeps
decoded training images in memory up to that size) and evaluates `test/`
batch by batch at `train.eval_every` and at the end; `"arrays"` decodes the
splits into memory first. Both give the same batches, so the same parameters.
The model is the tutorial CNN at 32x32, or `small_cnn` at any even size.
"""

from __future__ import annotations

import os

import ml_collections

from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.image_folder import HostAugment, ImageFolder
from jaxdl.data.streamed_split import StreamedSplit
from jaxdl.data.source_choice import streams
from jaxdl.data.streaming import StreamingSource
from jaxdl.evaluation.plots import save_learning_curves
from jaxdl.recipes.vision import build_model, image_task
from jaxdl.train.loop import fit
from jaxdl.workdir import fit_summary
from jaxdl.config_schema import reads_transfer


# The keys' specs beyond those inferred from get_config() (jaxdl.config_schema), and
# the transfer keys this experiment reads (any other is refused: it would do nothing).
CONFIG_SCHEMA = reads_transfer("frozen", "lr_multipliers")


def get_config():
    """The configuration of this experiment (core keys plus `data` and `model`)."""
    config = default_config()
    config.experiment = "imagefolder_cnn"
    config.data = ml_collections.ConfigDict(dict(
        dir="data/images", source="stream", workers=2, worker_mode="threads", prefetch=2,
        cache_mb=0,
        image_size=32, channels=3, resize="stretch", skip_bad=False,
        normalize_mean=(), normalize_std=(), crop_padding=0, flip=False))
    config.model = dict(name="tutorial_cnn", hidden=128, dropout=0.0)
    config.optimizer.name = "adam"
    config.optimizer.lr = 1e-3
    config.train.batch_size = 32
    config.train.eval_batch_size = 256
    config.train.num_epochs = 10
    config.train.log_every = 50
    config.train.eval_every = 0
    config.train.eval_train = False
    config.checkpoint.every_steps = 500
    return config


def splits_of(data: ml_collections.ConfigDict) -> tuple[ImageFolder, ImageFolder]:
    """The train and test `ImageFolder`s under `data.dir` (test labelled by train's classes)."""
    root = os.path.expanduser(data.dir)
    options = dict(image_size=data.image_size, channels=data.channels, resize=data.resize)
    train = ImageFolder(os.path.join(root, "train"), **options)
    test = ImageFolder(os.path.join(root, "test"), classes=train.classes, **options)
    return train, test


def run(config, workdir: str | None):
    """Train on `train/`, evaluate on `test/`; returns the `summary.json` payload."""
    data = config.data
    stream = streams(config)
    train, test = splits_of(data)
    image_shape = train.image_shape()
    model = build_model(config.model, num_classes=len(train.classes),
                        image_shape=image_shape, seed=config.seed)
    # Host-side augmentation on the streamed path; the task's on-device one otherwise.
    host_augment = stream and (data.crop_padding or data.flip)
    task_data = data.copy_and_resolve_references()
    if host_augment:
        task_data.crop_padding, task_data.flip = 0, False
    task = image_task(task_data, image_shape[-1])
    if stream:
        source = StreamingSource.from_config(
            train, config,
            augment=HostAugment(data.crop_padding, data.flip) if host_augment else None)
        test_split = StreamedSplit(test, workers=data.workers, prefetch=data.prefetch)
        try:
            result = fit(model, task, source, eval_data={"test": test_split}, config=config,
                         workdir=workdir)
        finally:
            source.close()
        extra = {"skipped_examples": source.skipped}
    else:
        result = fit(model, task, ArrayDataset(train.to_arrays(), name="train"),
                     eval_data={"test": ArrayDataset(test.to_arrays(), name="test")},
                     config=config, workdir=workdir)
        extra = {}
    save_learning_curves(workdir, result.history)
    summary = {"classes": train.classes, "train_examples": len(train),
               "test_examples": len(test), "image_shape": list(image_shape), **extra}
    return fit_summary(config.experiment, result, config, None, data=summary)
