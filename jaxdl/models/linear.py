"""Linear and logistic regression as NNX modules, and least squares in closed form."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class LinearRegression(nnx.Module):
    """``y = w·x + b``. Call: ``x [B, D] -> [B]`` (``[B, K]`` if ``out_features > 1``)."""

    def __init__(self, in_features: int, out_features: int = 1, *, rngs: nnx.Rngs):
        self.out_features = out_features
        self.linear = nnx.Linear(in_features, out_features, kernel_init=nnx.initializers.zeros,
                                 rngs=rngs)

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        y = self.linear(x)
        return y[:, 0] if self.out_features == 1 else y


def least_squares(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The closed-form least-squares fit of ``y ≈ x @ w + b``.

    Solves the normal equations through ``lstsq`` (SVD) on ``[x, 1]`` in float64
    when x64 is enabled, float32 otherwise.

    Args:
      x: ``[N, D]`` features.
      y: ``[N]`` targets.
    Returns:
      ``(w [D], b [])``.
    """
    design = jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)
    solution, *_ = jnp.linalg.lstsq(design, y)
    return solution[:-1], solution[-1]


def set_linear_weights(model: LinearRegression, w: jax.Array, b: jax.Array) -> None:
    """Load ``w [D]`` and ``b []`` into a single-output ``LinearRegression``."""
    model.linear.kernel.value = jnp.asarray(w, jnp.float32).reshape(-1, 1)
    model.linear.bias.value = jnp.asarray(b, jnp.float32).reshape(1)


class LogisticRegression(nnx.Module):
    """Binary (one logit, sigmoid) or multinomial (``C`` logits, softmax) regression.

    Call: ``x [B, D] -> [B]`` logits when ``num_classes == 2``, else ``[B, C]``.
    """

    def __init__(self, in_features: int, num_classes: int = 2, *, rngs: nnx.Rngs):
        self.binary = num_classes == 2
        self.head = nnx.Linear(in_features, 1 if self.binary else num_classes,
                               kernel_init=nnx.initializers.zeros, rngs=rngs)

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        logits = self.head(x)
        return logits[:, 0] if self.binary else logits
