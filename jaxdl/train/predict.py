"""A trained text model's outputs on a whole dataset, batch by batch."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from jaxdl.data.arrays import ArrayDataset
from jaxdl.train.task import TEXT_INPUT_KEYS, model_inputs


def predict(model: nnx.Module, dataset: ArrayDataset, *, batch_size: int = 256) -> np.ndarray:
    """The model's outputs on every example of `dataset`, in eval mode (dropout off).

    Args:
      model: a trained text model (e.g. `fit(...).model`).
      dataset: a dataset from `jaxdl.data.sequence_sets`.
      batch_size: examples per jitted call (the last call is padded, then cut).

    Returns:
      numpy outputs `[N, ...]`, e.g. tag logits `[N, T, num_tags]`.
    """
    graphdef, state = nnx.split(nnx.view(model, deterministic=True, raise_if_not_found=False))
    apply = jax.jit(lambda state, inputs: nnx.merge(graphdef, state)(inputs))
    keys = ("tokens", "token_mask", *TEXT_INPUT_KEYS)
    arrays = {k: v for k, v in dataset.arrays.items() if k in keys}
    outputs = []
    for start in range(0, len(dataset), batch_size):
        chunk = {k: v[start:start + batch_size] for k, v in arrays.items()}
        real = len(chunk["tokens"])
        chunk = {k: np.pad(v, [(0, batch_size - real)] + [(0, 0)] * (v.ndim - 1)) for k, v in chunk.items()}
        outputs.append(np.asarray(apply(state, model_inputs(chunk)))[:real])
    return np.concatenate(outputs)


__all__ = ["predict"]
