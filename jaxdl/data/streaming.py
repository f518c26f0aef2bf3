"""Streamed training data: examples read and decoded on host workers, per step.

``StreamingSource`` implements the trainer's source protocol for data that does
not sit in memory. Its ``step_inputs(step, k)`` returns the decoded examples of
steps ``[step, step + k)`` — already on the devices — and ``make_batch`` inside
jit only passes them on. The examples of step ``s`` are ``step_indices(seed, n,
B, s, 1)``, the very function the in-memory ``ArrayTrainSource`` gathers by, so
the same data gives the same batches whether it streams or sits on the device,
and resuming needs only the step.

Reading runs on grain: a ``MapDataset`` over steps (random access: a step's
batch is computed from its number, never replayed), ``ReadOptions`` threads or
``mp_prefetch`` worker processes, and a background thread that stacks and
places the next dispatch's batches while the current one trains. With N
processes each reads and decodes only its own slice of every global batch (the
rows its devices hold) and places it with ``jax.make_array_from_process_local_data``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import signal
import sys
from typing import Any, Callable, Mapping

import grain
import jax
import numpy as np
from absl import flags, logging

from jaxdl import distributed
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.batch_checks import BatchChecks
from jaxdl.data.decoded_cache import DecodedCache
from jaxdl.data.examples import Example, ExampleReader
from jaxdl.data.sources import step_indices
from jaxdl.errors import ConfigError, DataError

WORKER_MODES = ("threads", "processes")
# Steps ahead the iterator is opened for: grain ranges are lazy, so this is only a bound.
_HORIZON = 2 ** 40


@jax.tree_util.register_pytree_node_class
class StepInputs:
    """A dispatch's streamed batches, fields ``[k, B, ...]``; ``inputs[i]`` is step i's.

    A pytree, so jit and ``lax.scan`` see its leaves; ``shape`` and integer
    indexing are those of the leading axes, as for the array source's index array.
    """

    def __init__(self, fields: Mapping[str, Any]):
        self.fields = dict(fields)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.fields["mask"].shape)

    def __getitem__(self, i) -> "StepInputs":
        return StepInputs({k: v[i] for k, v in self.fields.items()})

    def tree_flatten(self):
        keys = tuple(sorted(self.fields))
        return tuple(self.fields[k] for k in keys), keys

    @classmethod
    def tree_unflatten(cls, keys, leaves):
        return cls(dict(zip(keys, leaves)))


class StepLoader:
    """Reads and decodes one process's slice ``[lo, hi)`` of a step's global batch.

    Picklable, so worker processes can run it. ``augment(example, rng)`` (host
    side) gets ``np.random.default_rng([seed, step, index])``: the same
    augmentation for an example at a step on any worker, host or resume.
    """

    def __init__(self, reader: ExampleReader, batch_size: int, seed: int, lo: int, hi: int,
                 augment: Callable | None = None, skip_bad: bool = False,
                 checks: BatchChecks | None = None):
        self.reader, self.batch_size, self.seed = reader, batch_size, seed
        self.lo, self.hi, self.augment, self.skip_bad = lo, hi, augment, skip_bad
        self.checks = checks

    def __call__(self, step: int) -> Example:
        """The local batch of ``step``: fields ``[hi - lo, ...]`` plus ``mask`` float32."""
        indices = step_indices(self.seed, len(self.reader), self.batch_size, int(step), 1)[0]
        examples, mask = [], []
        for index in indices[self.lo:self.hi]:
            example = (self.reader.load(int(index), skip_bad=True) if self.skip_bad
                       else self.reader[int(index)])
            mask.append(example is not None)
            if example is None:
                logging.warning("skipped unreadable example %d at step %d", index, step)
            elif self.augment is not None:
                example = self.augment(example, np.random.default_rng([self.seed, step, index]))
            examples.append(example)
        template = next((e for e in examples if e is not None), None)
        if template is None:
            raise DataError(f"every example of step {step} (indices {indices.tolist()}) was "
                            "unreadable and skipped; expected at least one readable example")
        examples = [e if e is not None else {k: np.zeros_like(v) for k, v in template.items()}
                    for e in examples]
        batch = {k: np.stack([e[k] for e in examples]) for k in template}
        if self.checks is not None:  # skipped rows are zeros: finite, label 0
            self.checks(batch, indices[self.lo:self.hi],
                        f" of the reader (streamed batch of step {step})")
        batch["mask"] = np.asarray(mask, np.float32)
        return batch


def die_with_parent(worker_index: int, worker_count: int) -> None:
    """A grain worker's start: on Linux, ask the kernel to kill it with its parent.

    grain's workers otherwise outlive a training process that is SIGKILLed
    (preempted), holding memory and CPU until someone reaps them.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def local_rows(sharding: jax.sharding.Sharding, shape: tuple[int, ...], axis: int) -> tuple[int, int]:
    """The contiguous range ``[lo, hi)`` of ``axis`` this process's devices hold."""
    slices = [idx[axis] for idx in sharding.addressable_devices_indices_map(shape).values()]
    starts = [s.start or 0 for s in slices]
    stops = [shape[axis] if s.stop is None else s.stop for s in slices]
    lo, hi = min(starts), max(stops)
    if sum(b - a for a, b in set(zip(starts, stops))) != hi - lo:
        raise ConfigError(f"this process's devices hold rows {sorted(set(zip(starts, stops)))} "
                          "of the batch; expected one contiguous range (order the mesh's "
                          "devices by process)")
    return lo, hi


class StreamingSource:
    """Training batches streamed from a ``ExampleReader``; the source protocol of ``fit``.

    Args:
      reader: random-access examples (an image folder, ArrayRecord files, arrays).
      batch_size: the global batch ``B`` (over all processes).
      seed: the order's seed (``config.seed``), as for ``ArrayTrainSource``.
      workers: 0 reads in the training process; N > 0 uses N grain workers.
      worker_mode: ``"threads"`` or ``"processes"`` (grain's ``mp_prefetch``).
      prefetch: steps read ahead per worker (host prefetch); the next dispatch is
        also stacked and placed on the devices while the current one runs.
      augment: ``augment(example, rng) -> example`` on the host, or None.
      skip_bad: mask out (and count, and log) examples that cannot be decoded
        instead of raising ``DataError``.

    Every batch is checked as it is assembled (``BatchChecks``: finite floats;
    once ``fit`` has called ``check_batches``, labels in the model's range), so a
    bad example stops the run with a ``DataError`` naming its index in the reader.
    """

    def __init__(self, reader: ExampleReader, batch_size: int, *, seed: int, workers: int = 0,
                 worker_mode: str = "threads", prefetch: int = 2,
                 augment: Callable | None = None, skip_bad: bool = False):
        if not 1 <= batch_size <= len(reader):
            raise DataError(f"train batch_size={batch_size} with {len(reader)} streamed "
                            f"examples; expected 1 <= batch_size <= {len(reader)}")
        if worker_mode not in WORKER_MODES:
            raise ConfigError(f"config.data.worker_mode={worker_mode!r}; expected one of "
                              f"{WORKER_MODES}")
        if workers < 0 or prefetch < 1:
            raise ConfigError(f"config.data.workers={workers}, config.data.prefetch={prefetch}; "
                              "expected workers >= 0 and prefetch >= 1")
        self.reader, self.batch_size, self.seed = reader, batch_size, seed
        self.workers, self.worker_mode, self.prefetch = workers, worker_mode, prefetch
        self.augment, self.skip_bad = augment, skip_bad
        self.steps_per_epoch = len(reader) // batch_size
        self.skipped = 0  # examples masked out so far (under skip_bad)
        self._sharding = None
        self._rows = (0, batch_size)
        self._iterator, self._next_step = None, None
        self._recent: collections.OrderedDict = collections.OrderedDict()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="device-prefetch")
        self._pending = None
        self._skips: dict[int, int] = {}  # per step read, counted once it is handed out
        self.checks = BatchChecks("train")

    def check_batches(self, checks: BatchChecks) -> None:
        """Check every batch read from now on with ``checks`` (``fit`` passes the
        model's label range)."""
        self.checks = checks
        self._iterator, self._next_step = None, None  # reopened with the new checks
        self._recent.clear()

    def sample_dataset(self, size: int) -> ArrayDataset:
        """The first ``size`` readable examples (augmented as in training) as an
        ``ArrayDataset`` named 'train', for ``fit``'s checks of shapes and dtypes."""
        examples = []
        for index in range(len(self.reader)):
            example = (self.reader.load(index, skip_bad=True) if self.skip_bad
                       else self.reader[index])
            if example is not None and self.augment is not None:
                example = self.augment(example, np.random.default_rng([self.seed, 0, index]))
            if example is not None:
                examples.append(example)
            if len(examples) == size:
                break
        if not examples:
            raise DataError(f"no example of the {len(self.reader)} streamed ones could be "
                            "read; expected at least one readable example")
        return ArrayDataset({k: np.stack([e[k] for e in examples]) for k in examples[0]},
                            name=self.checks.name)

    @classmethod
    def from_config(cls, reader: ExampleReader, config, *,
                    augment: Callable | None = None) -> "StreamingSource":
        """A source with ``config.train.batch_size``, ``config.seed`` and the
        ``config.data`` keys ``workers``, ``worker_mode``, ``prefetch``, ``skip_bad`` and
        ``cache_mb`` (decoded examples kept in memory, ``DecodedCache``; 0: none)."""
        data = config.data
        if data.get("cache_mb", 0):
            reader = DecodedCache(reader, int(data.cache_mb * 2 ** 20))
        return cls(reader, config.train.batch_size, seed=config.seed,
                   workers=data.get("workers", 0), worker_mode=data.get("worker_mode", "threads"),
                   prefetch=data.get("prefetch", 2), skip_bad=data.get("skip_bad", False),
                   augment=augment)

    def device_arrays(self, sharding: jax.sharding.Sharding | None = None) -> dict:
        """Nothing lives on the device; notes where batches go (``sharding``'s mesh)."""
        if sharding is not None and hasattr(sharding, "mesh"):
            self._sharding = distributed.batch_sharding(sharding.mesh, batch_axis=1)
            self._rows = local_rows(self._sharding, (1, self.batch_size), axis=1)
        return {}

    @staticmethod
    def make_batch(arrays: dict, step_input: StepInputs) -> dict:
        """The streamed batch as it is (its ``mask`` marks skipped examples)."""
        return dict(step_input.fields)

    def _open(self, step: int) -> None:
        loader = StepLoader(self.reader, self.batch_size, self.seed, *self._rows,
                            augment=self.augment, skip_bad=self.skip_bad, checks=self.checks)
        steps = grain.MapDataset.range(step, step + _HORIZON).map(loader)
        if self.workers and self.worker_mode == "threads":
            dataset = steps.to_iter_dataset(grain.ReadOptions(
                num_threads=self.workers, prefetch_buffer_size=self.workers * self.prefetch))
        else:
            dataset = steps.to_iter_dataset(grain.ReadOptions(num_threads=1,
                                                              prefetch_buffer_size=1))
            if self.workers:
                if not flags.FLAGS.is_parsed():
                    # grain's workers read absl flags (defaults suffice); a library
                    # caller (a notebook, a test) has not parsed any.
                    flags.FLAGS.mark_as_parsed()
                dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(
                    num_workers=self.workers, per_worker_buffer_size=self.prefetch),
                    worker_init_fn=die_with_parent)
        self._iterator, self._next_step = iter(dataset), step

    def _host_batch(self, step: int) -> Example:
        if step in self._recent:
            return self._recent[step]
        if self._next_step != step:
            self._open(step)
        batch = next(self._iterator)
        self._next_step += 1
        self._skips[step] = int(np.sum(batch["mask"] == 0))
        self._recent[step] = batch
        while len(self._recent) > 64:
            self._recent.popitem(last=False)
        return batch

    def _load(self, step: int, num_steps: int) -> StepInputs:
        batches = [self._host_batch(step + i) for i in range(num_steps)]
        if num_steps == 1:  # a view with the leading axis, not a copy of the batch
            local = {k: v[None] for k, v in batches[0].items()}
        else:
            local = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
        if self._sharding is None:
            return StepInputs(local)
        if jax.process_count() == 1:
            return StepInputs(jax.device_put(local, self._sharding))
        return StepInputs({k: jax.make_array_from_process_local_data(
            self._sharding, v, (num_steps, self.batch_size) + v.shape[2:])
            for k, v in local.items()})

    def step_inputs(self, step: int, num_steps: int) -> StepInputs:
        """The batches of steps ``[step, step + num_steps)``: fields ``[k, B, ...]``,
        on the devices once ``device_arrays`` has been called; the next dispatch's
        batches are prepared in the background."""
        result = None
        if self._pending is not None:
            key, future = self._pending
            self._pending = None
            ready = future.result()
            if key == (step, num_steps):
                result = ready
        if result is None:
            result = self._load(step, num_steps)
        self.skipped += sum(self._skips.pop(s, 0) for s in range(step, step + num_steps))
        self._pending = ((step + num_steps, num_steps),
                         self._pool.submit(self._load, step + num_steps, num_steps))
        return result

    def close(self) -> None:
        """Stop the background thread and the workers."""
        if self._pending is not None:
            self._pending[1].cancel()
        self._pool.shutdown(wait=True)
        if hasattr(self._iterator, "close"):
            self._iterator.close()  # stops grain's worker processes now, not at exit
        self._iterator = None
