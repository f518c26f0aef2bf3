"""What every image-classification experiment shares: data by name, model by name,
the task (normalisation and on-device augmentation), and the run itself.

An experiment module (`experiments/cnn_digits.py`, `mnist_cnn.py`, ...) only
chooses a configuration; `run_image_classification(config, workdir)` does the
rest through the one training loop, `jaxdl.train.loop.fit`.

Configuration read here (besides the core keys of `jaxdl.config.default_config`):

- `config.data` (see `data_config`): `name` (one of `DATASETS`), `dir`,
  `download`, `test_fraction` and `split_seed` (digits only), `label_kind`
  (CIFAR-100 only), `normalize_mean` / `normalize_std` (per-channel, `()` for
  none), `crop_padding` and `flip` (training augmentation; 0 / False for none),
  `source` ("arrays" in device memory, or "stream": read per example, see
  `fit_image_classifier`), `workers`, `worker_mode`, `prefetch`, `skip_bad`.
- `config.model`: `name` (one of `MODELS`); `small_cnn` also reads `hidden` and
  `dropout`.

Images stay in [0, 1] on the device. Normalisation happens inside the model call
(`Task.forward`), for training and evaluation alike; augmentation happens only on
training batches (`Task.preprocess`), before normalisation as in torchvision (the
padding of a random crop is black), with a key derived from `(seed, step)`, so a
resumed run sees the same augmented batches as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile

import ml_collections
import numpy as np
from flax import nnx

from jaxdl.config import default_config
from jaxdl.data import datasets
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.augment import augment, normalize
from jaxdl.data.source_choice import fit_splits
from jaxdl.data.streaming import StreamingSource
from jaxdl.errors import ConfigError
from jaxdl.evaluation.plots import save_learning_curves
from jaxdl.models.cnn import LeNet5, SmallCNN, TutorialCNN
from jaxdl.models.resnet import CifarResNet, ResNet18, ResNet20
from jaxdl.train import task as task_lib
from jaxdl.train.loop import FitResult, fit
from jaxdl.workdir import fit_summary

Splits = dict[str, dict[str, np.ndarray]]

# The named datasets (name -> classes, loader, example readers): `jaxdl.data.datasets`.
DATASETS = datasets.DATASETS


def data_config(name: str, **overrides) -> ml_collections.ConfigDict:
    """The `config.data` section with every key `load_image_splits` and
    `image_task` read, set to "no normalisation, no augmentation".

    Args:
      name: one of `DATASETS`.
      **overrides: keys to change, e.g. `dir="data/mnist"`, `crop_padding=4`.

    Returns:
      A ConfigDict; tuples stay tuples so command-line overrides keep their type.
    """
    section = ml_collections.ConfigDict(dict(
        name=name, dir=f"data/{name}", download=False, test_fraction=0.2, split_seed=0,
        label_kind="fine", normalize_mean=(), normalize_std=(), crop_padding=0, flip=False,
        source="arrays", workers=0, worker_mode="threads", prefetch=2, skip_bad=False))
    for key, value in overrides.items():
        if key not in section:
            raise ConfigError(f"data_config: unknown key {key!r}; expected one of "
                              f"{sorted(section.keys())}")
        section[key] = value
    return section


def mnist_family_config(experiment: str, dataset: str, *, mean: float, std: float,
                        num_epochs: int) -> ml_collections.ConfigDict:
    """The two-convolution CNN recipe for the 28x28 IDX datasets (MNIST, Fashion-MNIST).

    `SmallCNN` at 28x28 (conv 32 -> conv 64 -> pool -> dense 128 -> dropout 0.5),
    Adam lr 1e-3 with a cosine decay to 0 over the run, batch 64, `download=False`;
    `data.dir=""` reads the files from the dataset's default places
    (`jaxdl.data.datasets.data_dir`: Debian's directory when the package is installed,
    else `data/<dataset>`).

    Args:
      experiment: the experiment's name (`config.experiment`).
      dataset: "mnist" or "fashion_mnist".
      mean: the training pixels' mean (images in [0, 1]), for standardisation.
      std: their standard deviation.
      num_epochs: length of the run.

    Returns:
      A full config: `default_config()` plus `data` and `model`.
    """
    config = default_config()
    config.experiment = experiment
    config.data = data_config(dataset, dir="", download=False,
                              normalize_mean=(mean,), normalize_std=(std,))
    config.model = dict(name="small_cnn", hidden=128, dropout=0.5)
    config.optimizer.name = "adam"
    config.optimizer.lr = 1e-3
    config.optimizer.schedule = "cosine"
    config.train.batch_size = 64
    config.train.eval_batch_size = 1000
    config.train.num_epochs = num_epochs
    config.train.log_every = 100
    # Scanned 20-step dispatches help accelerators; on CPU fit dispatches convolutional
    # steps one by one (XLA:CPU convolutions inside a loop are slow; docs/VISION_RESULTS.md).
    config.train.steps_per_loop = 20
    config.train.eval_every = 1000
    config.checkpoint.every_steps = 500
    return config


def load_image_splits(data: ml_collections.ConfigDict) -> Splits:
    """Loads the dataset `data.name` as float32 NHWC images in [0, 1].

    Args:
      data: a `config.data` section (see `data_config`).

    Returns:
      `{"train": {"x": [N, H, W, C], "y": int32 [N]}, "test": {...}}`.

    Raises:
      ConfigError: an unknown `data.name`.
      DataError: missing or corrupt files (the message says how to get them).
    """
    return datasets.load_splits(data)


def select_classes(split: dict[str, np.ndarray], classes) -> dict[str, np.ndarray]:
    """The examples of ``split`` whose label is in ``classes``, relabelled ``0..len(classes)-1``
    in the order given (``{"x": [N, ...], "y": int [N]}`` -> the same, fewer rows, int32 labels)."""
    x, y = split["x"], split["y"]
    keep = np.isin(y, classes)
    remap = np.full(int(max(y.max(), max(classes))) + 1, -1, np.int32)
    remap[list(classes)] = np.arange(len(classes))
    return {"x": x[keep], "y": remap[y[keep]]}


def rotation_split(x: np.ndarray) -> dict[str, np.ndarray]:
    """Every image four times, rotated by 0°, 90°, 180° and 270°, labelled by the rotation:
    ``x`` ``[N, H, W, C]`` (H = W) -> ``{"x": [4N, H, W, C], "y": int32 [4N]}``."""
    return {"x": np.concatenate([np.rot90(x, r, axes=(1, 2)) for r in range(4)]),
            "y": np.repeat(np.arange(4, dtype=np.int32), len(x))}


def num_classes_of(data: ml_collections.ConfigDict) -> int:
    """Classes of `data.name` (20 for CIFAR-100 with `label_kind="coarse"`)."""
    return datasets.num_classes(data)


def _resnet8(num_classes: int, in_channels: int, *, rngs: nnx.Rngs) -> CifarResNet:
    """He et al.'s CIFAR ResNet with n = 1 (6n + 2 = 8 layers): one basic block per
    stage, widths 16/32/64. A quick stand-in for ResNet-20 (same BatchNorm blocks,
    a third of the compile time)."""
    return CifarResNet((16, 32, 64), (1, 1, 1), num_classes, in_channels, rngs=rngs)


def _small_cnn(num_classes: int, in_channels: int, *, rngs: nnx.Rngs, image_size: int,
               model: ml_collections.ConfigDict) -> SmallCNN:
    """`SmallCNN` sized by `model.hidden` and `model.dropout`."""
    return SmallCNN(num_classes, in_channels, image_size=image_size, hidden=model.hidden,
                    dropout_rate=model.dropout, rngs=rngs)


# Model name -> constructor `(num_classes, in_channels, *, rngs) -> nnx.Module`; a model
# that needs more (`small_cnn`: the image size and `config.model`) is marked in `_SIZED`.
MODELS = {"small_cnn": _small_cnn, "lenet5": LeNet5, "tutorial_cnn": TutorialCNN,
          "resnet8": _resnet8, "resnet20": ResNet20, "resnet18": ResNet18}
_SIZED = ("small_cnn",)
# Models built for one input size: name -> the side of their square images.
_FIXED_SIZE = {"tutorial_cnn": 32, "lenet5": 28}


def build_model(model: ml_collections.ConfigDict, *, num_classes: int,
                image_shape: tuple[int, int, int], seed: int) -> nnx.Module:
    """The CNN named `model.name` (a key of `MODELS`), sized for the data.

    Args:
      model: a `config.model` section; `small_cnn` also reads `hidden`, `dropout`.
      num_classes: outputs of the model's `head`.
      image_shape: `(H, W, C)` of the input images.
      seed: initialisation seed (`nnx.Rngs(seed)`).

    Returns:
      An `nnx.Module` mapping `[B, H, W, C]` to logits `[B, num_classes]`.
    """
    height, width, channels = image_shape
    rngs = nnx.Rngs(seed)
    if model.name in _FIXED_SIZE and (height, width) != (_FIXED_SIZE[model.name],) * 2:
        size = _FIXED_SIZE[model.name]
        raise ConfigError(f"config.model.name={model.name!r} needs {size}x{size} images; "
                          f"the data has {height}x{width}")
    if model.name == "small_cnn" and (height != width or height % 2):
        raise ConfigError(f"config.model.name='small_cnn' needs square images with an "
                          f"even side; the data has {height}x{width}")
    if model.name not in MODELS:
        raise ConfigError(f"config.model.name={model.name!r}; expected one of {tuple(MODELS)}")
    constructor = MODELS[model.name]
    if model.name in _SIZED:
        constructor = functools.partial(constructor, image_size=height, model=model)
    return constructor(num_classes, channels, rngs=rngs)


def image_task(data: ml_collections.ConfigDict, channels: int) -> task_lib.Task:
    """Classification with the data section's normalisation and augmentation.

    Args:
      data: a `config.data` section (`normalize_mean`, `normalize_std`,
        `crop_padding`, `flip`).
      channels: image channels `C`, to check the statistics against.

    Returns:
      A `Task` whose `forward` normalises `batch["x"]` (train and eval) and whose
      `preprocess` augments training batches from the step's key.
    """
    mean, std = tuple(data.normalize_mean), tuple(data.normalize_std)
    if len(mean) != len(std) or (mean and len(mean) != channels) or any(s <= 0 for s in std):
        raise ConfigError(
            f"config.data.normalize_mean={mean} and normalize_std={std}: expected both () "
            f"or both {channels} values (one per channel), std > 0")
    if not isinstance(data.crop_padding, int) or data.crop_padding < 0:
        raise ConfigError(f"config.data.crop_padding={data.crop_padding!r}; expected an int >= 0")
    forward = preprocess = None
    if mean:
        def forward(model, batch, rngs):
            return model(normalize(batch["x"], mean, std), rngs=rngs)
    if data.crop_padding or data.flip:
        def preprocess(batch, key):
            return {**batch, "x": augment(key, batch["x"], crop_padding=data.crop_padding,
                                          flip=data.flip)}
    return dataclasses.replace(task_lib.classification(), forward=forward, preprocess=preprocess)


def fit_image_classifier(config: ml_collections.ConfigDict,
                         workdir: str | None) -> tuple[FitResult, dict]:
    """Reads `config.data`, builds `config.model` and trains it with `fit`.

    `config.data.source="arrays"` loads the splits into device memory;
    `"stream"` reads the training examples per step on host workers
    (`StreamingSource`: `data.workers`, `worker_mode`, `prefetch`) and evaluates
    "test" batch by batch (`StreamedSplit`), never holding a split whole. Both give
    the same batches, so the same parameters.

    Args:
      config: `default_config()` plus `experiment`, `data` and `model` sections.
      workdir: run directory (checkpoints, metrics); None trains in memory.

    Returns:
      `(result, data)`: `fit`'s `FitResult` (evaluated on "test" and, on the arrays
      path unless `config.train.eval_train` is off, "train") and
      `{"train_examples", "test_examples", "image_shape"}`.
    Raises:
      ConfigError: `data.source` is not one of `jaxdl.data.source_choice.SOURCES` (before
        anything is read).
    """
    data = config.data
    with tempfile.TemporaryDirectory(prefix="jaxdl-image-examples-") as cache_dir, fit_splits(
            config, functools.partial(_array_splits, data),
            functools.partial(datasets.example_readers, data, cache_dir)) as (train, test):
        return _fit(config, workdir, train, test, _image_shape(train))


def _array_splits(data: ml_collections.ConfigDict) -> tuple[ArrayDataset, ArrayDataset]:
    splits = load_image_splits(data)
    return tuple(ArrayDataset(splits[name], name=name) for name in ("train", "test"))


def _image_shape(train: ArrayDataset | StreamingSource) -> tuple[int, int, int]:
    """`(H, W, C)` of the training images, from the arrays or the first streamed example."""
    if isinstance(train, ArrayDataset):
        return tuple(train.arrays["x"].shape[1:])
    return tuple(train.reader[0]["x"].shape)


def _fit(config, workdir, train, test, image_shape) -> tuple[FitResult, dict]:
    """`fit_image_classifier` once its splits are chosen (arrays or streamed)."""
    model = build_model(config.model, num_classes=num_classes_of(config.data),
                        image_shape=image_shape, seed=config.seed)
    result = fit(model, image_task(config.data, image_shape[-1]), train,
                 eval_data={"test": test}, config=config, workdir=workdir)
    num_train = len(train.reader) if isinstance(train, StreamingSource) else len(train)
    return result, {"train_examples": int(num_train), "test_examples": int(len(test)),
                    "image_shape": list(image_shape)}


def run_image_classification(config: ml_collections.ConfigDict, workdir: str | None,
                             baselines: dict | None = None) -> dict:
    """An image experiment's `run`: train, plot the loss curves, summarise.

    Args:
      config: as for `fit_image_classifier`.
      workdir: run directory; `plots/loss.png` is written there.
      baselines: reference results for `summary.json`, e.g. a paper's accuracy.

    Returns:
      The `summary.json` payload (`jaxdl.workdir.fit_summary`) plus `data`: the
      dataset name, example counts and image shape.
    """
    result, counts = fit_image_classifier(config, workdir)
    save_learning_curves(workdir, result.history)
    data = {"name": config.data.name, **counts}
    return fit_summary(config.experiment, result, config, baselines, data=data)
