"""Evaluation splits read from an example reader: batch by batch, never loading the split.

``StreamedSplit`` is an evaluation split ``fit`` accepts in ``eval_data`` next
to ``ArrayDataset``s: at every ``train.eval_every`` and at the end, each batch
of ``eval_batch_size`` consecutive examples is read (on grain worker threads),
placed, evaluated by one jitted call and its statistics summed on the device.
The last batch is padded (masked out), as ``ArrayDataset.eval_batches`` pads,
so a streamed split's metrics are those of the same examples in memory. With N
processes each reads only the rows of every batch its devices hold. The
evaluation step itself comes from ``jaxdl.train.streamed_eval``.
"""

from __future__ import annotations

from typing import Callable, Iterator

import grain
import jax
import numpy as np

from jaxdl import distributed
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.batch_checks import BatchChecks
from jaxdl.data.examples import ExampleReader
from jaxdl.data.streaming import local_rows
from jaxdl.errors import DataError
from jaxdl.metrics import add_stats

_add = jax.jit(add_stats)  # one jitted sum for every streamed evaluation


class EvalBatchLoader:
    """Rows ``[lo, hi)`` of evaluation batch ``b``: fields ``[hi - lo, ...]`` plus ``mask``.

    Positions past the end of the split are padding: copies of a real example
    of the batch (or of the split's last example when this slice has none),
    with mask 0.
    """

    def __init__(self, reader: ExampleReader, batch_size: int, lo: int = 0,
                 hi: int | None = None, checks: BatchChecks | None = None):
        self.reader, self.batch_size = reader, batch_size
        self.lo, self.hi = lo, batch_size if hi is None else hi
        self.checks = checks

    def __call__(self, b: int) -> dict[str, np.ndarray]:
        n = len(self.reader)
        start = int(b) * self.batch_size
        positions = range(start + self.lo, start + self.hi)
        examples = [self.reader[i] for i in positions if i < n]
        real = len(examples)
        pad = examples[-1] if examples else self.reader[n - 1]
        examples += [pad] * (len(positions) - real)
        batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
        if self.checks is not None:
            last = positions[real - 1] if real else n - 1  # the example padding copies
            records = np.asarray([i if i < n else last for i in positions])
            self.checks(batch, records, f" of the reader (evaluation batch {int(b)})")
        batch["mask"] = (np.arange(len(positions)) < real).astype(np.float32)
        return batch


class StreamedSplit:
    """An evaluation split streamed from a ``ExampleReader``, for ``fit``'s ``eval_data``.

    Args:
      reader: random-access examples ``{"x": ..., "y": ...}``, e.g. an ``ImageFolder``.
      name: the split's name in error messages.
      workers: grain reader threads (0: read in the evaluating thread).
      prefetch: batches read ahead per thread.

    Every batch is checked as it is read (``BatchChecks``), as ``ArrayDataset``
    checks its arrays: a non-finite float or (once ``fit`` has set the model's
    range) a label out of range is a ``DataError`` naming its index in the reader.
    """

    def __init__(self, reader: ExampleReader, *, name: str = "test", workers: int = 0,
                 prefetch: int = 2):
        if len(reader) == 0:
            raise DataError(f"streamed evaluation split '{name}' has no examples; expected "
                            "at least one")
        self.reader, self.name = reader, name
        self.workers, self.prefetch = workers, prefetch
        self.checks = BatchChecks(name)

    def check_batches(self, checks: BatchChecks) -> None:
        """Check every batch read from now on with ``checks`` (``fit`` passes the
        model's label range; until then only finiteness is checked)."""
        self.checks = checks

    def __len__(self) -> int:
        return len(self.reader)

    def sample_dataset(self, size: int) -> ArrayDataset:
        """The first ``size`` examples as an ``ArrayDataset`` (for ``fit``'s checks)."""
        examples = [self.reader[i] for i in range(min(size, len(self.reader)))]
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
        num_batches = -(-len(self.reader) // batch_size)
        threads = max(1, self.workers)
        return iter(grain.MapDataset.range(num_batches).map(
            EvalBatchLoader(self.reader, batch_size, lo, hi, self.checks)).to_iter_dataset(
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
