"""Checks that a dataset fits a model and task, before anything is compiled.

``fit`` calls ``check_data_fits_model`` first, so a wrong feature size, a
non-numeric dtype or labels outside the model's classes fail in a second with
a message naming the split, the field, the value seen and what was expected,
instead of as an XLA shape error deep in a trace (or, for out-of-range labels,
not at all: an out-of-bounds gather is clamped on the device and trains on the
wrong class silently).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np
from flax import nnx

from jaxdl import losses
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.batch_checks import BatchChecks, LabelRange, check_label_range
from jaxdl.errors import DataError
from jaxdl.train.task import Task

# Losses whose integer targets are 0/1 labels of one score per example.
BINARY_LOSSES = (losses.binary_cross_entropy, losses.hinge, losses.perceptron_criterion)
SAMPLE_SIZE = 2  # examples traced abstractly per split (shapes only, nothing runs)


def _describe(array: np.ndarray) -> str:
    return f"shape {list(array.shape)} dtype {array.dtype}"


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0].rstrip('.') if text else ''}"


def _as_dataset(data: Any) -> ArrayDataset | None:
    """The ``ArrayDataset`` behind ``data`` (an ``ArrayTrainSource`` has one; a streamed
    split or source gives its first examples), or None."""
    if isinstance(data, ArrayDataset):
        return data
    if callable(getattr(data, "sample_dataset", None)):
        return data.sample_dataset(SAMPLE_SIZE)
    inner = getattr(data, "dataset", None)
    return inner if isinstance(inner, ArrayDataset) else None


def check_numeric_fields(dataset: ArrayDataset) -> None:
    """Raise DataError for a field that is not bool, integer or float (e.g. strings)."""
    for key, value in dataset.arrays.items():
        if not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_) or \
                np.issubdtype(value.dtype, np.complexfloating):
            raise DataError(f"dataset '{dataset.name}' field '{key}' has dtype {value.dtype}; "
                            "expected bool, integer or float numbers (encode text as ids first)")


def label_range(dataset: ArrayDataset, target: str, pred_shape: tuple,
                task: Task) -> LabelRange | None:
    """The labels the model can take for integer ``target``, or None (not a label field).

    Classification: ``pred [B, ..., C]`` for ``target [B, ...]`` needs labels in
    ``[0, C)``. Binary losses need labels in {0, 1}.
    """
    labels = dataset.arrays[target]
    if not np.issubdtype(labels.dtype, np.integer):
        return None
    sample_shape = (min(SAMPLE_SIZE, len(dataset)),) + labels.shape[1:]
    if tuple(pred_shape) == sample_shape + (pred_shape[-1],) and pred_shape[-1] >= 2:
        return LabelRange(target, 0, pred_shape[-1] - 1,
                          f"the model's {pred_shape[-1]} output classes")
    if task.loss in BINARY_LOSSES:
        return LabelRange(target, 0, 1, "a binary loss (labels 0 or 1)")
    return None


def check_labels(dataset: ArrayDataset, target: str, pred_shape: tuple,
                 task: Task) -> LabelRange | None:
    """Raise DataError if integer labels fall outside the classes the model predicts
    (``label_range``); entries whose same-shaped ``*mask`` field is 0 are not checked.

    Returns:
      The range checked (a streamed split checks every batch against it), or None.
    """
    labels = label_range(dataset, target, pred_shape, task)
    if labels is not None:
        check_label_range(dataset.name, dataset.arrays, labels)
    return labels


def check_data_fits_model(model: nnx.Module, task: Task, datasets: Mapping[str, Any]) -> None:
    """Check every split against the model and task, by abstract evaluation only.

    Args:
      model: the ``nnx.Module`` to be trained (not modified).
      task: the task whose ``predict`` and ``loss`` the trainer will use.
      datasets: split name -> ``ArrayDataset`` (or a source holding one in
        ``.dataset``, or a ``StreamingSource`` / ``StreamedSplit``, checked on its
        first examples and then given ``BatchChecks`` with the label range, which
        its loader applies to every batch as it arrives); other sources are
        skipped. The ``"train"`` split goes through ``task.preprocess`` as in training.
    Raises:
      DataError: a field is not numeric, the inputs do not fit the model, the
        targets do not fit the model's output, or labels are out of range.
    """
    eval_view = nnx.view(model, deterministic=True, use_running_average=True,
                         raise_if_not_found=False)
    graphdef, state = nnx.split(eval_view)
    for split, data in datasets.items():
        dataset = _as_dataset(data)
        if dataset is None:
            continue
        check_numeric_fields(dataset)
        sample = {k: v[:SAMPLE_SIZE] for k, v in dataset.arrays.items()}
        sample["mask"] = np.ones(len(next(iter(sample.values()))), np.float32)
        for needed in (task.inputs, task.target):
            if task.forward is None and needed not in dataset.arrays:
                raise DataError(f"dataset '{dataset.name}' has no field '{needed}' (fields: "
                                f"{sorted(dataset.arrays)}); the task reads batch['{needed}']")
        if task.forward is None:
            fed = f"field '{task.inputs}' ({_describe(dataset.arrays[task.inputs])})"
        else:
            fed = "fields " + ", ".join(f"'{k}' ({_describe(v)})" for k, v in dataset.arrays.items())

        def predict(state_, batch, preprocess=split == "train"):
            if preprocess and task.preprocess is not None:
                batch = task.preprocess(batch, jax.random.PRNGKey(0))
            return task.predict(nnx.merge(graphdef, state_), batch, None)

        try:
            pred = jax.eval_shape(predict, state, sample)
        except Exception as err:  # noqa: BLE001 - any trace failure means a misfit
            raise DataError(
                f"dataset '{dataset.name}' {fed} does not fit the model "
                f"{type(model).__name__}: {_first_line(err)}; expected inputs shaped and typed "
                "as the model's first layer takes them (check the feature size, channels, dtype)"
            ) from err
        target = sample.get(task.target)
        if target is None or not hasattr(pred, "shape"):
            if callable(getattr(data, "check_batches", None)):
                data.check_batches(BatchChecks(dataset.name))  # finiteness only
            continue  # a custom forward/loss pair with its own target layout
        try:
            jax.eval_shape(task.loss, pred, target, sample["mask"])
        except Exception as err:  # noqa: BLE001
            raise DataError(
                f"dataset '{dataset.name}' field '{task.target}' ({_describe(dataset.arrays[task.target])}) "
                f"does not fit the model's output (shape {list(pred.shape)} for "
                f"{len(target)} examples) under the task's loss: {_first_line(err)}") from err
        labels = check_labels(dataset, task.target, tuple(pred.shape), task)
        if callable(getattr(data, "check_batches", None)):
            data.check_batches(BatchChecks(dataset.name, labels))  # streamed: every batch
