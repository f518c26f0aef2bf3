"""Multi-layer perceptrons of any depth, width and activation."""

from __future__ import annotations

from typing import Callable, Sequence

import jax
from flax import nnx

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jax.nn.tanh,
    "sigmoid": jax.nn.sigmoid,
    "gelu": jax.nn.gelu,
    "elu": jax.nn.elu,
    "identity": lambda x: x,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation function called ``name`` (see ``ACTIVATIONS``)."""
    if name not in ACTIVATIONS:
        from jaxdl.errors import ConfigError
        raise ConfigError(f"activation '{name}'; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nnx.Module):
    """``Linear → act → (dropout) → … → Linear`` head.

    Args:
      in_features: input size ``D``.
      hidden: widths of the hidden layers (empty: a linear model).
      out_features: output size ``C``.
      activation: name in ``ACTIVATIONS``.
      dropout: dropout rate after each hidden activation (0 disables).
    Call: ``x [B, D] -> [B, C]``. The last layer is ``self.head``; the hidden
    layers are ``self.layers`` and ``features(x) -> [B, hidden[-1]]``.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, *,
                 activation: str = "relu", dropout: float = 0.0, rngs: nnx.Rngs):
        self.activation = activation
        self._act = get_activation(activation)
        sizes = [in_features, *hidden]
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.dropout = nnx.Dropout(dropout) if dropout else None
        self.head = nnx.Linear(sizes[-1], out_features, rngs=rngs)

    def features(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """The last hidden representation ``[B, hidden[-1]]``."""
        for layer in self.layers:
            x = self._act(layer(x))
            if self.dropout is not None:
                x = self.dropout(x, rngs=rngs)
        return x

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        return self.head(self.features(x, rngs=rngs))
