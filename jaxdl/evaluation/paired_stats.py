"""Seed statistics for result tables: mean ± std, and paired differences with a
95% Student-t interval.

Runs that share a seed share everything the seed draws (label subset, data
order), so comparing two methods seed by seed — a *paired* difference — removes
the variance the two have in common and gives a much tighter interval than
comparing two independent means.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from jaxdl.errors import DataError


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value).

    Args:
      values: one number per seed, at least one.
    Returns:
      ``(mean, std)`` as Python floats.
    """
    array = np.asarray(values, np.float64)
    if array.size == 0:
        raise DataError("mean_std got no values; expected one number per seed")
    std = float(np.std(array, ddof=1)) if array.size > 1 else 0.0
    return float(np.mean(array)), std


def paired_difference(method: Mapping[int, float], baseline: Mapping[int, float],
                      *, confidence: float = 0.95) -> dict:
    """Mean of ``method[seed] - baseline[seed]`` over shared seeds, with a t-interval.

    The interval is ``mean ± t_{n-1, (1+confidence)/2} · std / sqrt(n)``; with a
    single seed it is undefined and reported as ``[nan, nan]``.

    Args:
      method: seed -> metric of the method.
      baseline: seed -> metric of the baseline (same seeds).
      confidence: coverage of the interval, in (0, 1).
    Returns:
      ``{"mean": float, "ci": [lo, hi], "n": number of pairs}``.
    Raises:
      DataError: when the two do not hold the same seeds.
    """
    if set(method) != set(baseline) or not method:
        raise DataError(f"paired_difference: seeds {sorted(method)} vs {sorted(baseline)}; "
                        "expected the same non-empty set of seeds for both")
    seeds = sorted(method)
    diffs = np.array([method[s] - baseline[s] for s in seeds], np.float64)
    mean = float(np.mean(diffs))
    if len(diffs) < 2:
        return {"mean": mean, "ci": [math.nan, math.nan], "n": len(diffs)}
    half = float(stats.t.ppf((1 + confidence) / 2, len(diffs) - 1)
                 * np.std(diffs, ddof=1) / math.sqrt(len(diffs)))
    return {"mean": mean, "ci": [mean - half, mean + half], "n": len(diffs)}
