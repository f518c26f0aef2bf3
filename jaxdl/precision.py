"""Mixed precision: compute in bfloat16, keep parameters and updates in float32.

The train step casts a float32 copy of the parameters and the floating inputs to
the compute dtype for the forward and backward pass. The gradient flows back
through the cast, so it arrives in float32 for the optimizer; the stored
parameters, the optimizer state and the EMA never leave float32. Predictions are
cast back to float32 before the loss so the loss and metrics are float32 sums.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxdl.errors import ConfigError

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def compute_dtype(name: str) -> Any:
    """The jnp dtype named by ``config.train.compute_dtype``.

    Args:
      name: ``"float32"`` (no casting), ``"bfloat16"`` or ``"float16"``.
    Returns:
      The dtype, e.g. ``jnp.bfloat16``.
    Raises:
      ConfigError: for any other name.
    """
    if name not in COMPUTE_DTYPES:
        raise ConfigError(f"config.train.compute_dtype={name!r}; expected one of "
                          f"{tuple(COMPUTE_DTYPES)}")
    return COMPUTE_DTYPES[name]


def cast_floating(tree: Any, dtype: Any) -> Any:
    """Cast every floating-point leaf of ``tree`` to ``dtype``; others unchanged.

    Integer leaves (labels, token ids, indices) keep their dtype, so casting a
    whole batch is safe.

    Args:
      tree: a pytree of arrays (any shapes).
      dtype: the target floating dtype.
    Returns:
      A pytree of the same structure and shapes.
    """
    def cast(x):
        x = jnp.asarray(x)
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree.map(cast, tree)
