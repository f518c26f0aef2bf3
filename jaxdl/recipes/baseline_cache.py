"""Baselines computed once per input: results cached by a hash of their data and settings.

A classical baseline (scikit-learn's MLPClassifier on the digits, a TF-IDF
model, ...) depends on the data and its own settings, not on the grid a sweep
varies (learning rate, dropout, the network's seed). Every sub-run of a sweep
would otherwise refit it, often for longer than the network trains.
``cached_baseline`` keys the result by a SHA-256 of the arrays' bytes, dtypes
and shapes and of the settings, so the same inputs give the same file and any
change in them a new one. The cache directory is ``$JAXDL_BASELINE_CACHE``
(``python -m jaxdl.sweep`` sets it to ``<sweep workdir>/baseline_cache`` for its
sub-runs); unset, the baseline is simply computed. Sub-runs running in parallel
take a file lock per entry, so one computes and the others read its result.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import time
from typing import Any, Callable, Mapping

import numpy as np

CACHE_ENV = "JAXDL_BASELINE_CACHE"


def baseline_key(name: str, arrays: Mapping[str, np.ndarray], settings: Mapping[str, Any]
                 ) -> str:
    """``<name>-<sha256[:16]>`` of the arrays (name, dtype, shape, bytes) and ``settings``."""
    digest = hashlib.sha256(name.encode())
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    digest.update(json.dumps(dict(settings), sort_keys=True, default=str).encode())
    return f"{name}-{digest.hexdigest()[:16]}"


def cached_baseline(name: str, compute: Callable[[], dict], *,
                    arrays: Mapping[str, np.ndarray], settings: Mapping[str, Any],
                    cache_dir: str | None = None) -> dict:
    """``compute()``'s result, read from the cache when these inputs were seen before.

    Args:
      name: the baseline's name (e.g. ``"sklearn_mlp"``), part of the key and announced.
      compute: fits and evaluates the baseline; returns a JSON-serialisable dict.
      arrays: every array ``compute`` reads (e.g. ``{"train/x": ..., "test/y": ...}``).
      settings: every other input of ``compute`` (hyper-parameters, its seed).
      cache_dir: where entries live; default ``$JAXDL_BASELINE_CACHE``; neither: no cache.
    Returns:
      The result dict (from the cache, or just computed and stored).
    """
    cache_dir = cache_dir or os.environ.get(CACHE_ENV, "")
    if not cache_dir:
        return _announced(name, compute, "")
    os.makedirs(cache_dir, exist_ok=True)
    key = baseline_key(name, arrays, settings)
    path = os.path.join(cache_dir, key + ".json")
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel sub-run computing it: wait for it
        if os.path.exists(path):
            with open(path) as f:
                result = json.load(f)
            print(f"baseline {name}: reused {path}", file=sys.stderr, flush=True)
            return result
        result = _announced(name, compute, f" (cached as {path})")
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, path)  # a kill never leaves a half-written entry
    return result


def _announced(name: str, compute: Callable[[], dict], where: str) -> dict:
    """Run ``compute`` between two lines on stderr, so a slow baseline is never silent."""
    print(f"baseline {name}: fitting...", file=sys.stderr, flush=True)
    start = time.monotonic()
    result = compute()
    print(f"baseline {name}: done in {time.monotonic() - start:.1f}s{where}",
          file=sys.stderr, flush=True)
    return result


__all__ = ["CACHE_ENV", "baseline_key", "cached_baseline"]
