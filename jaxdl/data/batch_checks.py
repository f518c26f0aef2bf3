"""The checks every batch of examples gets: finite floats, integer labels in range.

``ArrayDataset`` runs them on its whole arrays when it is built. A streamed split
is never whole, so ``StreamingSource``'s and ``StreamedSplit``'s loaders run the
same functions on each numpy batch where it is assembled (in the reading worker,
before it is placed on a device), naming the example by its index in the reader.
Each check is one vectorised pass per field (``isfinite(...).all()``, ``min`` and
``max``); only a failing batch pays for locating the first bad entry.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from jaxdl.errors import DataError


@dataclasses.dataclass(frozen=True)
class LabelRange:
    """Integer labels of field ``target`` must lie in ``[low, high]`` (``what``: why)."""

    target: str
    low: int
    high: int
    what: str


def _located(bad: np.ndarray, records: np.ndarray | None) -> tuple[int, ...]:
    """The first ``True`` entry of ``bad``, its leading (example) axis mapped to the
    reader's index through ``records`` when given."""
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    if records is not None:
        where = (int(records[where[0]]),) + where[1:]
    return where


def check_finite(name: str, arrays: Mapping[str, np.ndarray], *,
                 records: np.ndarray | None = None, context: str = "") -> None:
    """Raise DataError for the first non-finite value of a float field.

    Args:
      name: the split's name.
      arrays: field -> ``[N, ...]``.
      records: ``[N]`` the reader index of each row (a streamed batch), or None
        when row i is example i.
      context: appended after the index, e.g. ``" (streamed batch of step 3)"``.
    """
    for key, value in arrays.items():
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            bad = ~np.isfinite(value)
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"dataset '{name}' field '{key}' has a non-finite value "
                            f"{value[first]} at index {_located(bad, records)}{context}; "
                            "expected finite numbers (clean or impute the data first)")


def check_label_range(name: str, arrays: Mapping[str, np.ndarray], labels: LabelRange, *,
                      records: np.ndarray | None = None, context: str = "") -> None:
    """Raise DataError if a label of ``labels.target`` is outside ``[low, high]``.

    Entries whose same-shaped ``*mask`` field is 0 (padding) are not checked.
    ``records`` and ``context`` as for ``check_finite``.
    """
    values = arrays.get(labels.target)
    if values is None or not np.issubdtype(values.dtype, np.integer) or values.size == 0:
        return
    if values.min() >= labels.low and values.max() <= labels.high:
        return  # the common case: two reductions, nothing else
    checked = np.ones(values.shape, bool)
    for key, value in arrays.items():
        if key.endswith("mask") and value.shape == values.shape:
            checked &= value != 0
    bad = checked & ((values < labels.low) | (values > labels.high))
    if not bad.any():
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    where = _located(bad, records)
    raise DataError(
        f"dataset '{name}' field '{labels.target}' has label {values[first]} at index "
        f"{where[0] if len(where) == 1 else where}{context} ({int(bad.sum())} label(s) out of "
        f"range); expected integers in [{labels.low}, {labels.high}] for {labels.what}. "
        f"{'Negative labels are never valid. ' if values[first] < 0 else ''}"
        "Check the label encoding and the model's number of outputs")


@dataclasses.dataclass(frozen=True)
class BatchChecks:
    """What a streamed split's batches are checked for; picklable (worker processes).

    ``fit`` sets ``labels`` once it knows the model's output (``check_batches`` of
    the source); until then only finiteness is checked.
    """

    name: str
    labels: LabelRange | None = None

    def __call__(self, batch: Mapping[str, np.ndarray], records: np.ndarray,
                 context: str = "") -> None:
        """Check ``batch`` (fields ``[b, ...]``) whose row i is example ``records[i]``."""
        check_finite(self.name, batch, records=records, context=context)
        if self.labels is not None:
            check_label_range(self.name, batch, self.labels, records=records, context=context)
