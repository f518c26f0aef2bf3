"""The evaluation step of streamed splits, and evaluation on one outside ``fit``.

``streamed_eval_steps`` gives ``StreamedSplit.stats`` (``jaxdl.data.streamed_split``)
its per-layout evaluation step; ``StreamedEval`` evaluates a trained model on a
split outside ``fit``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
from flax import nnx

from jaxdl import distributed
from jaxdl.data.streamed_split import StreamedSplit
from jaxdl.data.examples import ExampleReader
from jaxdl.metrics import compute_metrics
from jaxdl.train.state import split_model
from jaxdl.train.step import make_eval_step
from jaxdl.train.task import Task


def streamed_eval_batch(arrays: Any, fields: dict, mask: jax.Array) -> dict:
    """The ``gather`` of ``make_eval_step`` for streamed batches: they are already whole."""
    return {**fields, "mask": mask}


class StreamedEval:
    """Metrics of ``model`` under ``task`` over every example of ``reader`` once, outside ``fit``.

    Args:
      model: the trained ``nnx.Module`` (evaluated in eval mode: no dropout,
        BatchNorm running averages).
      task: the task whose metrics (and loss) are computed.
      reader: random-access examples, e.g. an ``ImageFolder``.
      batch_size: examples per evaluated batch (a smaller split is not padded up).
      workers: grain reader threads (0: read in this thread).
      mesh: where batches go; default one device.
    """

    def __init__(self, model: nnx.Module, task: Task, reader: ExampleReader,
                 batch_size: int, *, workers: int = 0, mesh: jax.sharding.Mesh | None = None):
        self.split = StreamedSplit(reader, workers=workers)
        self.batch_size = min(batch_size, len(reader))
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
