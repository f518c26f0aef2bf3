"""Evaluation on streamed data: batch by batch, never loading the split.

Each batch of ``batch_size`` consecutive examples is read (on grain worker
threads), placed, evaluated by one jitted call and its statistics summed on the
device; the last batch is padded with copies of its last example, masked out.
"""

from __future__ import annotations

import grain
import jax
import numpy as np
from flax import nnx

from jaxdl.data.streaming import RecordSource
from jaxdl.metrics import add_stats, batch_stats, compute_metrics
from jaxdl.train.state import split_model
from jaxdl.train.task import Task


class EvalBatchLoader:
    """Batch ``b`` of a split: fields ``[batch_size, ...]`` plus ``mask`` float32."""

    def __init__(self, records: RecordSource, batch_size: int):
        self.records, self.batch_size = records, batch_size

    def __call__(self, b: int) -> dict[str, np.ndarray]:
        start = int(b) * self.batch_size
        stop = min(start + self.batch_size, len(self.records))
        examples = [self.records[i] for i in range(start, stop)]
        examples += [examples[-1]] * (self.batch_size - len(examples))
        batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
        batch["mask"] = (np.arange(self.batch_size) < stop - start).astype(np.float32)
        return batch


class StreamedEval:
    """Metrics of ``model`` under ``task`` over every example of ``records`` once.

    Args:
      model: the trained ``nnx.Module`` (evaluated in eval mode: no dropout,
        BatchNorm running averages).
      task: the task whose metrics (and loss) are computed.
      records: random-access examples, e.g. an ``ImageFolder``.
      batch_size: examples per evaluated batch (a smaller split is not padded up).
      workers: grain reader threads (0: read in this thread).
    """

    def __init__(self, model: nnx.Module, task: Task, records: RecordSource,
                 batch_size: int, *, workers: int = 0):
        self.task, self.records = task, records
        self.batch_size = min(batch_size, len(records))
        _, self.graphdef, self.params, self.model_state = split_model(model)
        self.workers = workers
        metrics = task.all_metrics()
        self.metrics = metrics

        def stats_of(params, model_state, batch):
            evaluated = nnx.merge(self.graphdef, params, model_state)
            pred = task.predict(evaluated, batch, None)
            return batch_stats(metrics, pred, batch[task.target], task.weights(batch))

        self._stats = jax.jit(stats_of)
        self._add = jax.jit(add_stats)

    def run(self) -> dict[str, float]:
        """``{metric: value}`` over the whole split (masked padding excluded)."""
        num_batches = -(-len(self.records) // self.batch_size)
        dataset = grain.MapDataset.range(num_batches).map(
            EvalBatchLoader(self.records, self.batch_size)).to_iter_dataset(
            grain.ReadOptions(num_threads=max(1, self.workers), prefetch_buffer_size=2))
        total = None
        for batch in dataset:
            stats = self._stats(self.params, self.model_state, batch)
            total = stats if total is None else self._add(total, stats)
        return compute_metrics(self.metrics, total)
