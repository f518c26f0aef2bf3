"""What a model family plugs into the one training loop.

A ``Task`` says how to call the model on a batch, which loss to minimise and
which metrics to stream. Batches are dicts of arrays; ``batch["mask"]`` marks the
real examples (padding is 0).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import jax
from flax import nnx

from jaxdl import losses, metrics as metrics_lib

Batch = dict[str, jax.Array]


def _call_model(model: nnx.Module, batch: Batch, rngs: nnx.Rngs | None, inputs: str):
    return model(batch[inputs], rngs=rngs)


@dataclasses.dataclass(frozen=True)
class Task:
    """A supervised task.

    Attributes:
      loss: ``loss(pred, target, mask) -> scalar`` (see ``jaxdl.losses``).
      metrics: name -> streaming ``Metric``; ``loss`` is always added.
      inputs: batch key fed to the model (``model(batch[inputs], rngs=...)``).
      target: batch key of the target.
      forward: optional ``forward(model, batch, rngs) -> pred`` replacing the call.
      mask: optional ``mask(batch) -> weights`` (e.g. example mask × token mask).
      preprocess: optional ``preprocess(batch, key) -> batch`` applied to training
        batches only, on the device (augmentation); ``key`` is a pure function of
        (seed, step).
    """

    loss: Callable = losses.softmax_cross_entropy
    metrics: Mapping[str, metrics_lib.Metric] = dataclasses.field(
        default_factory=lambda: {"accuracy": metrics_lib.accuracy})
    inputs: str = "x"
    target: str = "y"
    forward: Callable | None = None
    mask: Callable | None = None
    preprocess: Callable | None = None

    def predict(self, model: nnx.Module, batch: Batch, rngs: nnx.Rngs | None = None):
        """The model's output on ``batch``."""
        if self.forward is not None:
            return self.forward(model, batch, rngs)
        return _call_model(model, batch, rngs, self.inputs)

    def weights(self, batch: Batch):
        """Per-entry loss weights of ``batch``."""
        return self.mask(batch) if self.mask is not None else batch["mask"]

    def all_metrics(self) -> dict[str, metrics_lib.Metric]:
        """The streamed metrics, with ``loss`` first."""
        return {"loss": metrics_lib.loss_metric(self.loss), **dict(self.metrics)}


def classification(num_classes: int | None = None, *, label_smoothing: float = 0.0) -> Task:
    """Softmax cross-entropy with accuracy (integer labels)."""
    if label_smoothing:
        loss = lambda p, t, m=None: losses.softmax_cross_entropy(  # noqa: E731
            p, t, m, label_smoothing=label_smoothing)
    else:
        loss = losses.softmax_cross_entropy
    return Task(loss=loss, metrics={"accuracy": metrics_lib.accuracy})


def binary_classification() -> Task:
    """Sigmoid cross-entropy on one logit per example, with accuracy."""
    return Task(loss=losses.binary_cross_entropy, metrics={"accuracy": metrics_lib.accuracy})


def regression() -> Task:
    """Mean squared error with ``mse`` and ``r2``."""
    return Task(loss=losses.mse, metrics={"mse": metrics_lib.mse, "r2": metrics_lib.r2})
