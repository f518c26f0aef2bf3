"""What an example reader is: random access to one example at a time.

Every format's example reader (``MnistExamples``, ``CifarExamples``,
``ImageFolder``, ``ArrayRecordExamples``, ``FastTextExamples``, ...), an in-memory
``ArrayDataset`` and a ``DecodedCache`` in front of any of them satisfy
``ExampleReader``; ``StreamingSource`` and ``StreamedSplit`` read through it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

Example = dict[str, np.ndarray]


class ExampleReader(Protocol):
    """Random-access examples: ``len(reader)`` and ``reader[i] -> {"x": ..., "y": ...}``.

    ``reader.load(i, skip_bad=...)`` may return None for an unreadable example
    that is skipped (it is then masked out of its batch).
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Example: ...
