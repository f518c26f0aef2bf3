"""``config.data.source``: the one place that chooses between splits held in memory
(``"arrays"``) and splits read one example at a time (``"stream"``).

``streams(config)`` is the checked choice; ``fit_splits`` turns it into the
``(train, test)`` pair ``fit`` takes: two ``ArrayDataset``s, or a
``StreamingSource`` (closed on exit) and a ``StreamedSplit``. Both give the same
batches, so the same parameters.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import ml_collections

from jaxdl.config import check_choice
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.examples import ExampleReader
from jaxdl.data.streamed_split import StreamedSplit
from jaxdl.data.streaming import StreamingSource

SOURCES = ("arrays", "stream")  # config.data.source: in memory, or streamed


def streams(config: ml_collections.ConfigDict) -> bool:
    """Whether ``config.data.source`` is ``"stream"`` (``"arrays"`` when the key is absent).

    Raises:
      ConfigError: ``config.data.source`` is not one of ``SOURCES``.
    """
    if "source" in config.data:
        check_choice(config, "data.source", SOURCES)
    return config.data.get("source", "arrays") == "stream"


@contextlib.contextmanager
def fit_splits(config: ml_collections.ConfigDict,
               load: Callable[[], tuple[ArrayDataset, ArrayDataset]],
               read: Callable[[], tuple[ExampleReader, ExampleReader]], *,
               augment: Callable | None = None) -> Iterator[tuple]:
    """``(train, test)`` for ``fit``, by ``config.data.source``.

    Args:
      config: reads ``data.source`` and, when streaming, what
        ``StreamingSource.from_config`` reads, ``data.workers`` and ``data.prefetch``.
      load: the two splits in memory (called only for ``"arrays"``).
      read: the two splits' example readers (called only for ``"stream"``).
      augment: host-side augmentation of streamed training examples.

    Yields:
      ``(ArrayDataset, ArrayDataset)`` or ``(StreamingSource, StreamedSplit)``.
    """
    if not streams(config):
        yield load()
        return
    train, test = read()
    source = StreamingSource.from_config(train, config, augment=augment)
    try:
        yield source, StreamedSplit(test, workers=config.data.get("workers", 0),
                                    prefetch=config.data.get("prefetch", 2))
    finally:
        source.close()
