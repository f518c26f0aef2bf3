"""Rosenblatt's perceptron with the classic mistake-driven learning rule.

``y = 1 if w·x > τ else 0``. For every mistake, ``w += lr (t - y) x`` and
``τ -= lr (t - y)``. Online mode updates after each example, batch mode sums the
corrections of one pass. Training stops after the first pass with no mistake, so
once converged no further update is ever made. This is not gradient descent on a
loss, so it has its own small ``lax.while_loop`` rather than ``fit``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx


class Perceptron(nnx.Module):
    """Weights ``w [D]`` and threshold ``tau []``. Call: ``x [B, D] -> {0, 1} [B]``."""

    def __init__(self, in_features: int, *, rngs: nnx.Rngs | None = None):
        self.w = nnx.Param(jnp.zeros((in_features,), jnp.float32))
        self.tau = nnx.Param(jnp.zeros((), jnp.float32))

    def scores(self, x: jax.Array) -> jax.Array:
        """``w·x - τ`` per example ``[B]``."""
        return x @ self.w[...] - self.tau[...]

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        return (self.scores(x) > 0).astype(jnp.int32)


class PerceptronResult(NamedTuple):
    w: jax.Array  # [D]
    tau: jax.Array  # []
    epochs: jax.Array  # passes made, the last one without mistakes if converged
    updates: jax.Array  # total weight updates made
    converged: jax.Array  # bool
    mistakes_per_epoch: jax.Array  # [max_epochs], -1 after stopping


def _online_pass(w, tau, x, t, lr):
    def one(carry, example):
        w, tau, mistakes = carry
        xi, ti = example
        error = ti - (xi @ w - tau > 0).astype(jnp.float32)  # -1, 0 or +1
        return (w + lr * error * xi, tau - lr * error, mistakes + (error != 0)), None

    (w, tau, mistakes), _ = jax.lax.scan(one, (w, tau, jnp.zeros((), jnp.int32)), (x, t))
    return w, tau, mistakes


def _batch_pass(w, tau, x, t, lr):
    error = t - (x @ w - tau > 0).astype(jnp.float32)
    return w + lr * error @ x, tau - lr * jnp.sum(error), jnp.sum(error != 0).astype(jnp.int32)


def train_perceptron(x: jax.Array, y: jax.Array, *, mode: str = "online", lr: float = 1.0,
                     max_epochs: int = 1000, w0: jax.Array | None = None,
                     tau0: jax.Array | None = None) -> PerceptronResult:
    """Run the perceptron rule until a pass makes no mistake (or ``max_epochs``).

    Args:
      x: ``[N, D]`` float features.
      y: ``[N]`` labels in {0, 1}.
      mode: ``"online"`` (per example, in order) or ``"batch"`` (per pass).
      lr: the step size of each correction.
      max_epochs: upper bound on passes over the data.
      w0, tau0: starting weights (zeros by default).
    """
    if mode not in ("online", "batch"):
        from jaxdl.errors import ConfigError
        raise ConfigError(f"perceptron mode={mode!r}; expected 'online' or 'batch'")
    x = jnp.asarray(x, jnp.float32)
    t = jnp.asarray(y, jnp.float32)
    one_pass = _online_pass if mode == "online" else _batch_pass
    w = jnp.zeros(x.shape[1], jnp.float32) if w0 is None else jnp.asarray(w0, jnp.float32)
    tau = jnp.zeros((), jnp.float32) if tau0 is None else jnp.asarray(tau0, jnp.float32)

    @jax.jit
    def run(w, tau):
        history = -jnp.ones(max_epochs, jnp.int32)

        def cond(c):
            _, _, epoch, _, last_mistakes, _ = c
            return (epoch < max_epochs) & (last_mistakes != 0)

        def body(c):
            w, tau, epoch, updates, _, history = c
            if mode == "online":
                w, tau, mistakes = one_pass(w, tau, x, t, lr)
                updates = updates + mistakes
            else:
                w_new, tau_new, mistakes = one_pass(w, tau, x, t, lr)
                w = jnp.where(mistakes > 0, w_new, w)
                tau = jnp.where(mistakes > 0, tau_new, tau)
                updates = updates + (mistakes > 0)
            return w, tau, epoch + 1, updates, mistakes, history.at[epoch].set(mistakes)

        init = (w, tau, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32),
                jnp.ones((), jnp.int32), history)
        w, tau, epochs, updates, last, history = jax.lax.while_loop(cond, body, init)
        return PerceptronResult(w, tau, epochs, updates, last == 0, history)

    return run(w, tau)


def load_perceptron(model: Perceptron, result: PerceptronResult) -> None:
    """Copy trained weights into ``model``."""
    model.w[...] = result.w
    model.tau[...] = result.tau
