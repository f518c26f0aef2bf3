"""Losses as plain functions: ``loss(pred, target, mask=None) -> scalar``.

Every loss averages over the entries that the mask keeps (all when ``mask`` is
None), so a padded evaluation batch or a padded sequence never changes the value.
Any function with this signature plugs into ``jaxdl.train.Task``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def masked_mean(values: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Mean of ``values`` over entries where ``mask`` is non-zero.

    Args:
      values: per-entry values, any shape ``[...]``.
      mask: same leading shape as ``values`` (broadcast on trailing axes), or None.
    Returns:
      A float32 scalar; 0 when the mask keeps nothing.
    """
    if mask is None:
        return jnp.mean(values)
    mask = mask.astype(values.dtype)
    while mask.ndim < values.ndim:
        mask = mask[..., None]
    mask = jnp.broadcast_to(mask, values.shape)
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def mse(pred: jax.Array, target: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Mean squared error. ``pred`` and ``target``: ``[B]`` or ``[B, D]``."""
    pred = pred.reshape(target.shape)
    return masked_mean(jnp.square(pred - target), mask)


def softmax_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    mask: jax.Array | None = None,
    *,
    label_smoothing: float = 0.0,
) -> jax.Array:
    """Cross-entropy of integer labels under softmax logits.

    Args:
      logits: ``[..., C]``.
      labels: int ``[...]`` in ``[0, C)``.
      mask: ``[...]`` or None.
      label_smoothing: mass spread uniformly over all classes (0 = none).
    """
    num_classes = logits.shape[-1]
    logits = logits.astype(jnp.float32)
    if label_smoothing:
        onehot = jax.nn.one_hot(labels, num_classes)
        targets = onehot * (1.0 - label_smoothing) + label_smoothing / num_classes
        per_example = optax.softmax_cross_entropy(logits, targets)
    else:
        per_example = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return masked_mean(per_example, mask)


def binary_cross_entropy(
    logits: jax.Array, labels: jax.Array, mask: jax.Array | None = None
) -> jax.Array:
    """Sigmoid cross-entropy. ``logits``: ``[B]`` or ``[B, 1]``; ``labels`` in {0, 1}."""
    logits = logits.reshape(labels.shape).astype(jnp.float32)
    per_example = optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32))
    return masked_mean(per_example, mask)


def hinge(scores: jax.Array, labels: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Hinge loss ``max(0, 1 - s·y)`` for labels in {0, 1} (mapped to ±1)."""
    signs = 2.0 * labels.astype(jnp.float32) - 1.0
    scores = scores.reshape(labels.shape)
    return masked_mean(jax.nn.relu(1.0 - signs * scores), mask)


def perceptron_criterion(
    scores: jax.Array, labels: jax.Array, mask: jax.Array | None = None
) -> jax.Array:
    """Rosenblatt's criterion ``max(0, -s·y)``: zero once every example is right."""
    signs = 2.0 * labels.astype(jnp.float32) - 1.0
    scores = scores.reshape(labels.shape)
    return masked_mean(jax.nn.relu(-signs * scores), mask)
