"""Evaluation on streamed data: batch by batch, never loading the split.

``StreamedSplit`` is an evaluation split ``fit`` accepts in ``eval_data`` next
to ``ArrayDataset``s: at every ``train.eval_every`` and at the end, each batch
of ``eval_batch_size`` consecutive examples is read (on grain worker threads),
placed, evaluated by one jitted call and its statistics summed on the device.
The last batch is padded (masked out), as ``ArrayDataset.eval_batches`` pads,
so a streamed split's metrics are those of the same examples in memory. With N
processes each reads only the rows of every batch its devices hold.

``StreamedEval`` evaluates a trained model on a split outside ``fit``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterator

import grain
import jax
import numpy as np
from flax import nnx

from jaxdl import distributed
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.streaming import RecordSource, local_rows
from jaxdl.errors import DataError
from jaxdl.metrics import add_stats, compute_metrics
from jaxdl.train.state import split_model
from jaxdl.train.step import make_eval_step
from jaxdl.train.task import Task

_add = jax.jit(add_stats)  # one jitted sum for every streamed evaluation


class EvalBatchLoader:
    """Rows ``[lo, hi)`` of evaluation batch ``b``: fields ``[hi - lo, ...]`` plus ``mask``.

    Positions past the end of the split are padding: copies of a real example
    of the batch (or of the split's last example when this slice has none),
    with mask 0.
    """

    def __init__(self, records: RecordSource, batch_size: int, lo: int = 0,
                 hi: int | None = None):
        self.records, self.batch_size = records, batch_size
        self.lo, self.hi = lo, batch_size if hi is None else hi

    def __call__(self, b: int) -> dict[str, np.ndarray]:
        n = len(self.records)
        start = int(b) * self.batch_size
        positions = range(start + self.lo, start + self.hi)
        examples = [self.records[i] for i in positions if i < n]
        real = len(examples)
        pad = examples[-1] if examples else self.records[n - 1]
        examples += [pad] * (len(positions) - real)
        batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
        batch["mask"] = (np.arange(len(positions)) < real).astype(np.float32)
        return batch


def streamed_eval_batch(arrays: Any, fields: dict, mask: jax.Array) -> dict:
    """The ``gather`` of ``make_eval_step`` for streamed batches: they are already whole."""
    return {**fields, "mask": mask}


class StreamedSplit:
    """An evaluation split streamed from a ``RecordSource``, for ``fit``'s ``eval_data``.

    Args:
      records: random-access examples ``{"x": ..., "y": ...}``, e.g. an ``ImageFolder``.
      name: the split's name in error messages.
      workers: grain reader threads (0: read in the evaluating thread).
      prefetch: batches read ahead per thread.
    """

    def __init__(self, records: RecordSource, *, name: str = "test", workers: int = 0,
                 prefetch: int = 2):
        if len(records) == 0:
            raise DataError(f"streamed evaluation split '{name}' has no examples; expected "
                            "at least one")
        self.records, self.name = records, name
        self.workers, self.prefetch = workers, prefetch

    def __len__(self) -> int:
        return len(self.records)

    def sample_dataset(self, size: int) -> ArrayDataset:
        """The first ``size`` examples as an ``ArrayDataset`` (for ``fit``'s checks)."""
        examples = [self.records[i] for i in range(min(size, len(self.records)))]
        return ArrayDataset({k: np.stack([e[k] for e in examples]) for k in examples[0]},
                            name=self.name)

    def batches(self, batch_size: int, rows: tuple[int, int] | None = None
                ) -> Iterator[dict[str, np.ndarray]]:
        """Every batch once, in order: fields ``[hi - lo, ...]`` and ``mask`` ``[hi - lo]``.

        Args:
          batch_size: the global evaluation batch.
          rows: the rows ``(lo, hi)`` of each batch to read; default all.
        """
        lo, hi = rows or (0, batch_size)
        num_batches = -(-len(self.records) // batch_size)
        threads = max(1, self.workers)
        return iter(grain.MapDataset.range(num_batches).map(
            EvalBatchLoader(self.records, batch_size, lo, hi)).to_iter_dataset(
            grain.ReadOptions(num_threads=threads, prefetch_buffer_size=threads * self.prefetch)))

    def stats(self, eval_step_for: Callable, params, model_state, batch_size: int,
              mesh: jax.sharding.Mesh):
        """Summed statistics of every example, on the device.

        Args:
          eval_step_for: ``sharding -> make_eval_step(graphdef, task,
            streamed_eval_batch, sharding)``, cached (one compilation per layout).
          params, model_state: the model's variables.
          batch_size: examples per batch (``min(eval_batch_size, len(split))``).
          mesh: batches are split over its ``data`` axis when ``batch_size``
            divides by it, replicated otherwise.
        """
        sharding = (distributed.batch_sharding(mesh) if batch_size % mesh.shape["data"] == 0
                    else distributed.replicated(mesh))
        rows = local_rows(sharding, (batch_size,), axis=0)
        eval_step = eval_step_for(sharding)
        total = None
        for local in self.batches(batch_size, rows):
            if jax.process_count() == 1:
                placed = jax.device_put(local, sharding)
            else:
                placed = {k: jax.make_array_from_process_local_data(
                    sharding, v, (batch_size,) + v.shape[1:]) for k, v in local.items()}
            mask = placed.pop("mask")
            stats = eval_step(params, model_state, {}, [placed], [mask])
            total = stats if total is None else _add(total, stats)
        return total


class StreamedEval:
    """Metrics of ``model`` under ``task`` over every example of ``records`` once, outside ``fit``.

    Args:
      model: the trained ``nnx.Module`` (evaluated in eval mode: no dropout,
        BatchNorm running averages).
      task: the task whose metrics (and loss) are computed.
      records: random-access examples, e.g. an ``ImageFolder``.
      batch_size: examples per evaluated batch (a smaller split is not padded up).
      workers: grain reader threads (0: read in this thread).
      mesh: where batches go; default one device.
    """

    def __init__(self, model: nnx.Module, task: Task, records: RecordSource,
                 batch_size: int, *, workers: int = 0, mesh: jax.sharding.Mesh | None = None):
        self.split = StreamedSplit(records, workers=workers)
        self.batch_size = min(batch_size, len(records))
        _, graphdef, self.params, self.model_state = split_model(model)
        self.metrics = task.all_metrics()
        self.mesh = mesh or distributed.make_mesh(1, 1)
        self._step_for = streamed_eval_steps(graphdef, task)

    def run(self) -> dict[str, float]:
        """``{metric: value}`` over the whole split (masked padding excluded)."""
        return compute_metrics(self.metrics, self.split.stats(
            self._step_for, self.params, self.model_state, self.batch_size, self.mesh))


def streamed_eval_steps(graphdef: nnx.GraphDef, task: Task) -> Callable:
    """``sharding -> eval step`` for ``StreamedSplit.stats``: ``make_eval_step`` fed whole
    batches already laid out by ``sharding``, one per layout (the same per-batch
    evaluation in-memory splits get on CPU)."""
    return functools.lru_cache(maxsize=None)(
        functools.partial(make_eval_step, graphdef, task, streamed_eval_batch))
