"""Training sources: the protocol ``fit`` reads batches from, and its implementations.

``fit`` never iterates over data. It asks a source for the inputs of a run of
steps on the host (cheap: batch indices, step numbers) and builds each batch
on the device, inside the jitted step, with a pure ``make_batch``. The batch of
global step ``s`` is therefore a pure function of ``(seed, s)``, and resuming a
run needs only the step number.

Implementations here: ``ArrayTrainSource`` (an in-memory ``ArrayDataset``,
shuffled per epoch), ``LabelBudgetSource`` (only a labelled subset of a pool,
e.g. ``draw_k_per_class``). word2vec's ``Word2VecSource``
(``jaxdl.word2vec.training``) implements the same protocol with step numbers
as step inputs.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.data.arrays import ArrayDataset, Batch
from jaxdl.errors import ConfigError, DataError


@runtime_checkable
class TrainSource(Protocol):
    """What ``fit(model, task, train, ...)`` accepts as ``train`` (besides an ``ArrayDataset``).

    Shapes, with ``k`` steps per dispatch and global batch size ``B``:

    * ``steps_per_epoch: int`` — turns ``config.train.num_epochs`` into steps.
    * ``device_arrays(sharding) -> arrays``: called once; a pytree of device
      arrays placed with ``sharding`` (``fit`` passes a replicated sharding),
      e.g. ``{"x": [N, ...], "y": [N]}`` or word2vec's padded corpus.
    * ``step_inputs(step, k) -> np.ndarray [k, B, ...]``: host side, per
      dispatch; row ``i`` describes global step ``step + i`` and must be a pure
      function of ``(seed, step + i)``. Axis 1 is sharded over the mesh's
      ``data`` axis, so its length must divide by it. ``ArrayTrainSource``:
      int32 example indices ``[k, B]``; ``Word2VecSource``: the step numbers,
      int32 ``[k, 1]``.
    * ``make_batch(arrays, step_input) -> batch``: pure, traced inside jit;
      ``step_input`` is one row ``[B, ...]`` of ``step_inputs``. The batch is
      what the train step reads: for ``make_train_step``, the task's fields
      with leading axis ``B`` plus ``"mask"`` float32 ``[B]`` (1 for a real
      example); for a family's own step, whatever it takes (word2vec: centre,
      context and negative ids).

    Optional: ``dataset`` (an ``ArrayDataset``) lets ``fit`` check the fields
    against the model before compiling (``jaxdl.train.data_checks``).
    """

    steps_per_epoch: int

    def device_arrays(self, sharding: jax.sharding.Sharding | None = None) -> Any: ...

    def step_inputs(self, step: int, num_steps: int) -> np.ndarray: ...

    def make_batch(self, arrays: Any, step_input: jax.Array) -> Any: ...


def as_train_source(train: ArrayDataset | TrainSource, *, batch_size: int,
                    seed: int) -> TrainSource:
    """``train`` as a ``TrainSource``: an ``ArrayDataset`` becomes an ``ArrayTrainSource``.

    Raises:
      DataError: ``train`` is neither, naming the members it lacks.
    """
    if isinstance(train, ArrayDataset):
        return ArrayTrainSource(train, batch_size, seed=seed)
    missing = [name for name in ("steps_per_epoch", "device_arrays", "step_inputs", "make_batch")
               if not hasattr(train, name)]
    if missing:
        raise DataError(f"fit's train data is a {type(train).__name__}, which lacks {missing}; "
                        "expected an ArrayDataset or a source implementing "
                        "jaxdl.data.sources.TrainSource")
    return train


def gather_batch(arrays: Batch, indices: jax.Array) -> Batch:
    """Gather the examples at ``indices [B]``; every example is real (mask 1)."""
    batch = {k: jnp.take(v, indices, axis=0) for k, v in arrays.items()}
    batch["mask"] = jnp.ones(indices.shape, jnp.float32)
    return batch


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

    Epoch ``e = s // steps_per_epoch`` is a permutation drawn from
    ``(seed, e)``, and step ``s`` takes the next ``batch_size`` indices of it.
    The arrays are placed on the device once; a step ships only its int32
    indices and gathers there.
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
        """The dataset's arrays ``{name: [N, ...]}`` on the device."""
        return self.dataset.device_arrays(sharding)

    make_batch = staticmethod(gather_batch)


class LabelBudgetSource:
    """Training batches drawn only from ``indices`` of a larger labelled pool.

    The device holds the whole pool, so every label budget of a sweep compiles
    the same program (same array and batch shapes); a batch of ``batch_size``
    may exceed the budget, in which case it continues into the next epoch's
    permutation. Position ``p = step * batch_size + j`` takes element
    ``p % n`` of epoch ``p // n``'s permutation of the ``n`` indices, drawn
    from ``(seed, epoch)`` — a pure function of ``(seed, step)``.

    Args:
      dataset: the labelled pool (``ArrayDataset``).
      indices: the examples this run may learn from (e.g. ``draw_k_per_class``).
      batch_size: examples per step.
      seed: the data-order seed.
    """

    def __init__(self, dataset: ArrayDataset, indices: np.ndarray, batch_size: int, *,
                 seed: int):
        self.dataset = dataset
        self.indices = np.asarray(indices, np.int32)
        if self.indices.size == 0:
            raise ConfigError("LabelBudgetSource got no indices; expected at least one example")
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.steps_per_epoch = max(1, -(-len(self.indices) // self.batch_size))

    def _epoch(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        return self.indices[rng.permutation(len(self.indices))]

    def step_inputs(self, step: int, num_steps: int) -> np.ndarray:
        """Pool indices of ``num_steps`` steps from ``step``: int32 ``[k, batch_size]``."""
        n = len(self.indices)
        positions = (step * self.batch_size
                     + np.arange(num_steps * self.batch_size)).reshape(num_steps, -1)
        epochs = positions // n
        out = np.empty_like(positions, dtype=np.int32)
        for epoch in np.unique(epochs):
            where = epochs == epoch
            out[where] = self._epoch(int(epoch))[positions[where] % n]
        return out

    def device_arrays(self, sharding=None) -> Batch:
        """The whole pool's arrays ``{name: [N, ...]}`` on the device."""
        return self.dataset.device_arrays(sharding)

    make_batch = staticmethod(gather_batch)


def draw_k_per_class(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Indices of ``k`` examples of every class, a pure function of ``(seed, class)``.

    Each class's examples are permuted with ``default_rng([seed, class])`` and
    the first ``k`` taken, so budgets are nested: the 5-shot set of a seed
    contains its 1-shot set.

    Args:
      labels: int ``[N]``.
      k: examples per class; 0 means all of them.
      seed: which subset.
    Returns:
      int64 ``[k * num_classes]`` indices into ``labels``, sorted.
    Raises:
      DataError: a class has fewer than ``k`` examples.
    """
    labels = np.asarray(labels)
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if k > len(members):
            raise DataError(f"class {int(cls)} has {len(members)} labelled examples; "
                            f"expected at least k={k} to draw {k} per class")
        order = np.random.default_rng([int(seed), int(cls)]).permutation(members)
        chosen.append(order[:k] if k else order)
    return np.sort(np.concatenate(chosen))
