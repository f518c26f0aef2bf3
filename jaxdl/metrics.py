"""Metrics as plain functions, and a streaming aggregator for evaluation.

A streaming metric is a ``Metric(stats, compute)``: ``stats(pred, target, mask)``
returns additive sums for one batch (inside jit), and ``compute(totals)`` turns the
summed totals into the final number on the host. Summing statistics rather than
averaging per-batch values makes a padded last batch count exactly once.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Stats = dict[str, jax.Array]


class Metric(NamedTuple):
    """A streaming metric: additive sufficient statistics and a final formula."""

    stats: Callable[[jax.Array, jax.Array, jax.Array], Stats]
    compute: Callable[[Mapping[str, float]], float]


def _weights(target: jax.Array, mask: jax.Array | None) -> jax.Array:
    if mask is None:
        return jnp.ones(target.shape, jnp.float32)
    mask = mask.astype(jnp.float32)
    while mask.ndim < target.ndim:  # an example mask [B] over targets [B, ...]
        mask = mask[..., None]
    return jnp.broadcast_to(mask, target.shape)


def _accuracy_stats(pred, target, mask):
    w = _weights(target, mask)
    if pred.ndim == target.ndim:  # one score per example: binary decision at 0
        guess = (pred > 0).astype(target.dtype)
    else:
        guess = jnp.argmax(pred, axis=-1)
    return {"correct": jnp.sum((guess == target) * w), "count": jnp.sum(w)}


def _ratio(numerator: str) -> Callable[[Mapping[str, float]], float]:
    return lambda t: float(t[numerator]) / max(float(t["count"]), 1e-12)


accuracy = Metric(_accuracy_stats, _ratio("correct"))
"""Fraction of correct predictions: argmax of ``[..., C]`` logits, or ``score > 0``."""


def _mse_stats(pred, target, mask):
    w = _weights(target, mask)
    err = jnp.square(pred.reshape(target.shape) - target)
    return {"sse": jnp.sum(err * w), "count": jnp.sum(w)}


mse = Metric(_mse_stats, _ratio("sse"))
"""Mean squared error over unmasked entries."""


def _r2_stats(pred, target, mask):
    w = _weights(target, mask)
    err = jnp.square(pred.reshape(target.shape) - target)
    return {
        "sse": jnp.sum(err * w),
        "sum_y": jnp.sum(target * w),
        "sum_y2": jnp.sum(jnp.square(target) * w),
        "count": jnp.sum(w),
    }


def _r2_compute(t: Mapping[str, float]) -> float:
    n = float(t["count"])
    total = float(t["sum_y2"]) - float(t["sum_y"]) ** 2 / n
    return 1.0 - float(t["sse"]) / total


r2 = Metric(_r2_stats, _r2_compute)
"""Coefficient of determination ``1 - SSE / SST`` (SST around the split's own mean)."""


def loss_metric(loss_fn: Callable) -> Metric:
    """The mean of ``loss_fn`` weighted by the number of unmasked entries."""

    def stats(pred, target, mask):
        w = _weights(target, mask)
        count = jnp.sum(w)
        return {"loss_sum": loss_fn(pred, target, mask) * count, "count": count}

    return Metric(stats, _ratio("loss_sum"))


def perplexity_metric(loss_fn: Callable) -> Metric:
    """``exp`` of the mean per-token cross-entropy (``loss_fn`` must be it)."""
    base = loss_metric(loss_fn)
    return Metric(base.stats, lambda t: math.exp(base.compute(t)))


def batch_stats(metrics: Mapping[str, Metric], pred, target, mask) -> dict[str, Stats]:
    """Per-metric statistics of one batch (inside jit)."""
    return {name: m.stats(pred, target, mask) for name, m in metrics.items()}


def add_stats(a, b):
    """Sum two statistics pytrees of the same structure."""
    return jax.tree.map(jnp.add, a, b)


def compute_metrics(metrics: Mapping[str, Metric], totals) -> dict[str, float]:
    """Finalise summed statistics (fetched to the host) into plain floats."""
    host = jax.tree.map(lambda v: np.asarray(v, np.float64), jax.device_get(totals))
    return {name: float(m.compute(host[name])) for name, m in metrics.items()}
