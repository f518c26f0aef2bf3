"""A transfer experiment's downstream grid: every mode × label budget × seed as a sub-run.

Each downstream run is an ordinary ``fit`` run in its own directory
(``workdir/runs/<mode>-k<labels>-s<seed>``), run by ``jaxdl.sweep.subruns.run_subrun``:
skipped when its ``summary.json`` exists, resumed when it was interrupted, so a
killed experiment ends with the same table as an uninterrupted one. Each result
carries its evaluation curve, read back from the sub-run's ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping, Sequence

from ml_collections import ConfigDict

from jaxdl.sweep.progress import SubrunProgress
from jaxdl.sweep.subruns import run_subrun
from jaxdl.sweep.table import ALL_LABELS


def subrun_name(mode: str, labels_per_class: int, seed: int) -> str:
    """``runs/<mode>-k<labels>-s<seed>`` (``kall`` for the full label set)."""
    labels = "all" if labels_per_class == ALL_LABELS else str(labels_per_class)
    return f"runs/{mode}-k{labels}-s{seed}"


def subrun_label(mode: str, labels_per_class: int, seed: int) -> str:
    """``"<mode> k=<labels> seed=<seed>"`` (``k=all``: every label), for progress lines."""
    labels = "all" if labels_per_class == ALL_LABELS else str(labels_per_class)
    return f"{mode} k={labels} seed={seed}"


def eval_curve(history_path: str, split: str = "test", metric: str = "accuracy"
               ) -> list[tuple[int, float]]:
    """``[(step, value), ...]`` of one split's evaluations in a ``metrics.jsonl``."""
    curve = {}
    with open(history_path) as f:
        for line in f:
            if line.strip():
                event = json.loads(line)
                if event.get("split") == split and metric in event:
                    curve[int(event["step"])] = float(event[metric])
    return sorted(curve.items())


def run_downstream_grid(workdir: str, *, modes: Sequence[str], budgets: Sequence[int],
              seeds: Sequence[int], make_config: Callable[[str, int, int], ConfigDict],
              train_fn: Callable[[ConfigDict, str], dict], metric: str = "accuracy",
              split: str = "test", progress: SubrunProgress | None = None) -> list[dict]:
    """Run every mode × label budget × seed as a sub-run; collect their results.

    Args:
      workdir: the transfer experiment's directory.
      modes, budgets, seeds: the grid (budget 0 = all labels).
      make_config: ``(mode, labels_per_class, seed) -> sub-run config``.
      train_fn: ``(config, sub_workdir) -> summary`` (a ``fit`` run).
      progress: reports each sub-run (see ``run_subrun``).
    Returns:
      One dict per sub-run: ``mode``, ``labels_per_class``, ``seed``, ``workdir``,
      ``metric`` (final ``split`` value) and ``curve`` (``[[step, value], ...]``
      of the evaluations during training, read from its ``metrics.jsonl``).
    """
    results = []
    for labels in budgets:
        for seed in seeds:
            for mode in modes:
                name = subrun_name(mode, labels, seed)
                summary = run_subrun(workdir, name, make_config(mode, labels, seed), train_fn,
                                     progress=progress, label=subrun_label(mode, labels, seed))
                curve = eval_curve(os.path.join(workdir, name, "metrics.jsonl"), split, metric)
                results.append({"mode": mode, "labels_per_class": labels, "seed": seed,
                                "workdir": name, metric: summary["metrics"][split][metric],
                                "curve": [[s, v] for s, v in curve]})
    return results


def curve_results(results: Sequence[Mapping[str, Any]], steps: Sequence[int], *,
                  metric: str = "accuracy") -> list[dict]:
    """Results at given training steps (from each run's ``curve``), for ``aggregate``
    with ``group=("labels_per_class", "step")``; steps a run never evaluated are skipped."""
    out = []
    for result in results:
        curve = {int(s): v for s, v in result["curve"]}
        for step in steps:
            if step in curve:
                out.append({"mode": result["mode"], "labels_per_class": result["labels_per_class"],
                            "seed": result["seed"], "step": int(step), metric: curve[step]})
    return out


__all__ = ["subrun_name", "subrun_label", "run_downstream_grid", "eval_curve",
           "curve_results"]
