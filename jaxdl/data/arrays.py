"""In-memory datasets: named splits of equal-length arrays, padded evaluation batches.

Training order lives in ``jaxdl.data.sources`` (``ArrayTrainSource`` shuffles an
``ArrayDataset`` per epoch); evaluation covers every example once in padded
batches of static shape.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.data.batch_checks import check_finite
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
        check_finite(name, self.arrays)

    def __len__(self) -> int:
        return self.num_examples

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        """Example ``index``: row ``index`` of every field (an ``ExampleReader``, so a split
        in memory can also be streamed)."""
        return {k: v[index] for k, v in self.arrays.items()}

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


def gather_eval_batch(arrays: Batch, indices: jax.Array, mask: jax.Array) -> Batch:
    """Gather a padded evaluation batch and attach its example mask ``[B]``."""
    batch = {k: jnp.take(v, indices, axis=0) for k, v in arrays.items()}
    batch["mask"] = mask
    return batch
