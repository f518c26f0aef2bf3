"""In-memory datasets: deterministic batch order, padded evaluation, sklearn sets.

The batch at training step ``s`` is a pure function of ``(seed, s)``: epoch
``e = s // steps_per_epoch`` is a permutation drawn from ``(seed, e)``, and step
``s`` takes the next ``batch_size`` indices of it (``drop_remainder``). Resuming a
run therefore needs only the step number. The arrays themselves are placed on the
device once; a step ships only its ``int32`` indices and gathers there.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.errors import DataError

Batch = dict[str, jax.Array]


class ArrayDataset:
    """A named split of equal-length arrays, e.g. ``{"x": [N, D], "y": [N]}``.

    Args:
      arrays: mapping from field name to an array whose first axis is examples.
      name: the split's name, used in error messages ("train", "test", …).
    Raises:
      DataError: on an empty dataset, mismatched lengths or non-finite floats.
    """

    def __init__(self, arrays: Mapping[str, Any], *, name: str = "data"):
        self.name = name
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        if not self.arrays:
            raise DataError(f"dataset '{name}' has no fields; expected e.g. {{'x': ..., 'y': ...}}")
        lengths = {k: len(v) for k, v in self.arrays.items()}
        if len(set(lengths.values())) != 1:
            raise DataError(f"dataset '{name}': fields have different lengths {lengths}; "
                            "expected one length (the number of examples) for all")
        self.num_examples = next(iter(lengths.values()))
        if self.num_examples == 0:
            raise DataError(f"dataset '{name}' is empty (0 examples); expected at least one")
        for key, value in self.arrays.items():
            if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
                bad = np.argwhere(~np.isfinite(value))[0]
                raise DataError(f"dataset '{name}' field '{key}' has a non-finite value "
                                f"{value[tuple(bad)]} at index {tuple(int(i) for i in bad)}; "
                                "expected finite numbers (clean or impute the data first)")

    def __len__(self) -> int:
        return self.num_examples

    def subset(self, indices: np.ndarray, *, name: str | None = None) -> "ArrayDataset":
        """A new dataset holding the examples at ``indices`` (in that order)."""
        return ArrayDataset({k: v[indices] for k, v in self.arrays.items()},
                            name=name or self.name)

    def device_arrays(self, sharding: jax.sharding.Sharding | None = None) -> Batch:
        """The arrays on the device (replicated under ``sharding`` when given)."""
        return {k: jax.device_put(v, sharding) for k, v in self.arrays.items()}

    def eval_batches(self, batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Indices and masks covering every example exactly once.

        Returns:
          A list of ``(indices int32 [batch_size], mask float32 [batch_size])``; the
          last batch is padded with index 0 and mask 0 so shapes stay static.
        """
        batches = []
        for start in range(0, self.num_examples, batch_size):
            idx = np.arange(start, min(start + batch_size, self.num_examples), dtype=np.int32)
            mask = np.ones(batch_size, np.float32)
            mask[len(idx):] = 0.0
            idx = np.pad(idx, (0, batch_size - len(idx)))
            batches.append((idx, mask))
        return batches


@functools.lru_cache(maxsize=4)
def epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """The example order of epoch ``epoch``: int32 ``[num_examples]``, a pure
    function of ``(seed, epoch)``."""
    rng = np.random.default_rng([seed, epoch])
    return rng.permutation(num_examples).astype(np.int32)


def step_indices(seed: int, num_examples: int, batch_size: int, step: int,
                 num_steps: int) -> np.ndarray:
    """Example indices of ``num_steps`` consecutive training steps from ``step``.

    The one definition of the training order, shared by in-memory and streamed
    sources so the same data gives the same batches either way: epoch
    ``e = s // (num_examples // batch_size)`` is ``epoch_permutation(seed, e)``
    and step ``s`` takes its next ``batch_size`` entries (drop-remainder).

    Returns:
      int32 ``[num_steps, batch_size]``.
    """
    steps_per_epoch = num_examples // batch_size
    out = np.empty((num_steps, batch_size), np.int32)
    for i in range(num_steps):
        epoch, within = divmod(step + i, steps_per_epoch)
        start = within * batch_size
        out[i] = epoch_permutation(seed, epoch, num_examples)[start:start + batch_size]
    return out


class ArrayTrainSource:
    """Training batches of an ``ArrayDataset``: shuffled per epoch, drop-remainder.

    Implements the trainer's source protocol: ``device_arrays``, ``step_inputs``
    (host side, cheap) and ``make_batch`` (pure, inside jit).
    """

    def __init__(self, dataset: ArrayDataset, batch_size: int, *, seed: int):
        if batch_size > dataset.num_examples:
            raise DataError(f"train batch_size={batch_size} is larger than dataset "
                            f"'{dataset.name}' ({dataset.num_examples} examples); expected "
                            f"batch_size <= {dataset.num_examples}")
        if batch_size < 1:
            raise DataError(f"batch_size={batch_size}; expected a positive integer")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = dataset.num_examples // batch_size

    def epoch_permutation(self, epoch: int) -> np.ndarray:
        """The permutation of epoch ``epoch``: a pure function of ``(seed, epoch)``."""
        return epoch_permutation(self.seed, epoch, self.dataset.num_examples)

    def step_inputs(self, step: int, num_steps: int) -> np.ndarray:
        """Indices of ``num_steps`` consecutive steps from ``step``: int32 ``[k, B]``."""
        return step_indices(self.seed, self.dataset.num_examples, self.batch_size,
                            step, num_steps)

    def device_arrays(self, sharding=None) -> Batch:
        return self.dataset.device_arrays(sharding)

    @staticmethod
    def make_batch(arrays: Batch, indices: jax.Array) -> Batch:
        """Gather the examples at ``indices [B]``; every example is real (mask 1)."""
        batch = {k: jnp.take(v, indices, axis=0) for k, v in arrays.items()}
        batch["mask"] = jnp.ones(indices.shape, jnp.float32)
        return batch


def gather_eval_batch(arrays: Batch, indices: jax.Array, mask: jax.Array) -> Batch:
    """Gather a padded evaluation batch and attach its example mask ``[B]``."""
    batch = {k: jnp.take(v, indices, axis=0) for k, v in arrays.items()}
    batch["mask"] = mask
    return batch
