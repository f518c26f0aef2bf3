"""A bounded in-memory cache of decoded examples, in front of any ``ExampleReader``.

Decoding (a PNG, a JPEG) can cost more host time than a training step; after
the first epoch a cached example costs a dictionary look-up. The cache holds at
most ``max_bytes`` of example arrays and then stops adding (no eviction: under
the uniformly shuffled order of ``step_indices`` every resident example is as
likely to be read next as any other, so keeping the first ones is as good as
any policy and costs nothing), so memory stays bounded whatever the dataset
size. Examples are returned as stored, so callers must not modify them in
place (``StepLoader`` stacks them into new arrays; ``HostAugment`` copies).

With worker threads the cache is shared; each worker process holds its own.
"""

from __future__ import annotations

import threading

import numpy as np

from jaxdl.data.examples import Example, ExampleReader
from jaxdl.errors import ConfigError


class DecodedCache:
    """``reader`` with its decoded examples kept in memory up to ``max_bytes``.

    Args:
      reader: the example reader (an ``ImageFolder``, ``MnistExamples``, ...).
      max_bytes: the most bytes of example arrays held; 0 holds none.
    """

    def __init__(self, reader: ExampleReader, max_bytes: int):
        if max_bytes < 0:
            raise ConfigError(f"config.data.cache_mb gives max_bytes={max_bytes}; expected >= 0")
        self.reader, self.max_bytes = reader, int(max_bytes)
        self.held_bytes = 0
        self._cache: dict[int, Example] = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        # A worker process starts with an empty cache of its own.
        return {**{k: v for k, v in self.__dict__.items() if k != "_lock"},
                "_cache": {}, "held_bytes": 0}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.reader)

    def __getattr__(self, name):
        # Everything else (classes, paths, image_shape ...) is the wrapped reader's.
        if name in ("reader", "_cache", "_lock"):
            raise AttributeError(name)
        return getattr(self.reader, name)

    def _keep(self, index: int, example: Example) -> Example:
        size = sum(np.asarray(v).nbytes for v in example.values())
        with self._lock:
            if self.held_bytes + size <= self.max_bytes and index not in self._cache:
                self._cache[index] = example
                self.held_bytes += size
        return example

    def __getitem__(self, index: int) -> Example:
        hit = self._cache.get(index)
        return hit if hit is not None else self._keep(index, self.reader[index])

    def load(self, index: int, *, skip_bad: bool = False) -> Example | None:
        """As the reader's ``load``: None (not cached) for a skipped bad example."""
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        example = (self.reader.load(index, skip_bad=skip_bad) if hasattr(self.reader, "load")
                   else self.reader[index])
        return None if example is None else self._keep(index, example)
