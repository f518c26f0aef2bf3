"""The training state: a pytree of arrays that one pure step maps to the next.

The model's structure (``nnx.GraphDef``) is static and lives outside the state;
the state holds only arrays, so it can be donated, sharded and checkpointed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxdl.optim import param_path

PyTree = Any


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training.

    Attributes:
      step: int32 scalar, the number of updates applied so far.
      params: pure dict of the model's ``nnx.Param`` values.
      model_state: pure dict of the other model variables (BatchNorm statistics).
      opt_state: the optax state of ``params``.
      rng: raw uint32 ``[2]`` base key; step ``s`` uses ``fold_in(rng, s)``.
      skipped: int32 scalar, consecutive updates skipped for NaN/Inf.
      ema_params: exponential moving average of ``params`` (or None).
    """

    step: jax.Array
    params: PyTree
    model_state: PyTree
    opt_state: PyTree
    rng: jax.Array
    skipped: jax.Array
    ema_params: PyTree = None


def split_model(model: nnx.Module):
    """Split a model into ``(graphdef_train, graphdef_eval, params, model_state)``.

    The two graph definitions differ only in the static train/eval attributes
    (``deterministic`` for dropout, ``use_running_average`` for BatchNorm).
    """
    train_view = nnx.view(model, deterministic=False, use_running_average=False,
                          raise_if_not_found=False)
    eval_view = nnx.view(model, deterministic=True, use_running_average=True,
                         raise_if_not_found=False)
    graphdef_train, params, model_state = nnx.split(train_view, nnx.Param, ...)
    graphdef_eval, _, _ = nnx.split(eval_view, nnx.Param, ...)
    return (graphdef_train, graphdef_eval, nnx.to_pure_dict(params),
            nnx.to_pure_dict(model_state))


def create_train_state(params: PyTree, model_state: PyTree,
                       tx: optax.GradientTransformation, *, seed: int,
                       ema: bool = False) -> TrainState:
    """A fresh state at step 0 with the run's base RNG key from ``seed``."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=tx.init(params),
        rng=jax.random.PRNGKey(seed ^ 0x5EED),  # raw key: checkpoints as uint32
        skipped=jnp.zeros((), jnp.int32),
        ema_params=jax.tree.map(jnp.copy, params) if ema else None,
    )


def merge_model(graphdef: nnx.GraphDef, params: PyTree, model_state: PyTree) -> nnx.Module:
    """Rebuild an ``nnx.Module`` from its graph definition and pure-dict state."""
    return nnx.merge(graphdef, params, model_state)


def params_sha256(params: PyTree) -> str:
    """SHA-256 of the parameters: path-sorted leaves, each path, dtype, shape, bytes.

    Two runs ended bit-identical exactly when their hashes are equal.
    """
    leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(params))[0]
    digest = hashlib.sha256()
    for path, leaf in sorted(leaves, key=lambda item: param_path(item[0])):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(param_path(path).encode())
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def count_params(params: PyTree) -> int:
    """The number of scalar parameters."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))
