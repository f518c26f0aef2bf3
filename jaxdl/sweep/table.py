"""Result tables over sub-runs: mean ± std over seeds, paired differences, markdown.

``aggregate`` groups one result per sub-run into rows (one per mode and group,
e.g. label budget) with each mode's paired difference against a baseline:
sub-runs with the same seed share their initialisation and data order, and the
paired interval says whether a difference is real. A grid sweep's table
(``sweep_rows``) is the same aggregation with one "mode" per grid combination,
every metric's 95% interval, and the difference against the best combination.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

from ml_collections import ConfigDict

from jaxdl.errors import ConfigError, JaxdlError
from jaxdl.evaluation.paired_stats import mean_std, paired_difference
from jaxdl.sweep.grid import SubRun

ALL_LABELS = 0  # a label budget of 0 means "every labelled training example"
LOWER_IS_BETTER = ("loss", "error", "perplexity")


def _label_key(labels_per_class: int) -> Any:
    return "all" if labels_per_class == ALL_LABELS else int(labels_per_class)


def _finite_or_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def aggregate(results: Sequence[Mapping[str, Any]], *, baseline: str = "scratch",
              metric: str = "accuracy", group: Sequence[str] = ("labels_per_class",)
              ) -> list[dict]:
    """Table rows: mean ± std over seeds per mode and group, paired diffs vs baseline.

    Args:
      results: one dict per sub-run with ``mode``, ``seed``, ``metric`` and the
        ``group`` keys (e.g. ``labels_per_class``, or also ``step``).
      baseline: the mode the others are compared with, seed by seed.
      metric: the key averaged.
      group: keys that, with ``mode``, define a row.
    Returns:
      Rows ``{"mode", *group, "<metric>_mean", "<metric>_std", "seeds",
      "diff_vs_<baseline>_mean", "diff_vs_<baseline>_ci95": [lo, hi]}`` ordered
      by group then mode (the baseline's own difference fields are None).
    """
    cells: dict[tuple, dict[int, float]] = {}
    modes: list[str] = []
    for result in results:
        key = tuple(result[g] for g in group)
        cells.setdefault((result["mode"],) + key, {})[int(result["seed"])] = float(result[metric])
        if result["mode"] not in modes:
            modes.append(result["mode"])

    def order(key: tuple) -> tuple:  # "all labels" (0) sorts after every budget
        return tuple(math.inf if name == "labels_per_class" and v == ALL_LABELS else v
                     for name, v in zip(group, key))

    keys = sorted({k[1:] for k in cells}, key=order)
    rows = []
    for key in keys:
        base = cells.get((baseline,) + key)
        for mode in modes:
            values = cells.get((mode,) + key)
            if values is None:
                continue
            mean, std = mean_std([values[s] for s in sorted(values)])
            row = {"mode": mode}
            for name, value in zip(group, key):
                row[name] = _label_key(value) if name == "labels_per_class" else value
            row.update({f"{metric}_mean": mean, f"{metric}_std": std, "seeds": len(values),
                        f"diff_vs_{baseline}_mean": None, f"diff_vs_{baseline}_ci95": None})
            if mode != baseline and base is not None:
                diff = paired_difference(values, base)
                row[f"diff_vs_{baseline}_mean"] = diff["mean"]
                row[f"diff_vs_{baseline}_ci95"] = [_finite_or_none(v) for v in diff["ci"]]
            rows.append(row)
    return rows


def table_markdown(rows: Sequence[Mapping[str, Any]], *, baseline: str = "scratch",
                   metric: str = "accuracy", group: Sequence[str] = ("labels_per_class",)
                   ) -> str:
    """A markdown table of ``aggregate`` rows (numbers to 3 decimals)."""
    head = "| " + " | ".join(group) + f" | mode | {metric} (mean ± std) | seeds | " \
           f"Δ vs {baseline} (mean) | Δ 95% CI |"
    lines = [head, "|" + "---|" * (len(group) + 5)]
    for row in rows:
        diff = row[f"diff_vs_{baseline}_mean"]
        ci = row[f"diff_vs_{baseline}_ci95"]
        ci_text = "—" if not ci or ci[0] is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
        cells = [str(row[g]) for g in group] + [
            row["mode"], f"{row[metric + '_mean']:.3f} ± {row[metric + '_std']:.3f}",
            str(row["seeds"]), "—" if diff is None else f"{diff:+.3f}", ci_text]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_table_files(workdir: str, markdown: str, extra: str = "") -> str:
    """Write ``workdir/table.md`` (the main table and any further sections)."""
    path = os.path.join(workdir, "table.md")
    with open(path + ".tmp", "w") as f:
        f.write(markdown + "\n" + (("\n" + extra + "\n") if extra else ""))
    os.replace(path + ".tmp", path)
    return path


def composed_summary(experiment: str, config: ConfigDict, runs: Sequence[Mapping[str, Any]],
                     table: list[dict], markdown: str, **extra: Any) -> dict:
    """The ``summary.json`` of a composed experiment (``runs``, ``table``, markdown)."""
    return {"experiment": experiment, "seed": config.seed, "runs": list(runs),
            "table": table, "table_markdown": markdown, **extra}


def metric_mode(metric: str, mode: str = "") -> str:
    """``mode`` if given ("max"/"min"), else "min" for losses, errors and perplexities."""
    if mode:
        if mode not in ("max", "min"):
            raise ConfigError(f"--mode={mode!r}; expected 'max' or 'min'")
        return mode
    return "min" if any(word in metric.lower() for word in LOWER_IS_BETTER) else "max"


def flat_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """``{"test": {"accuracy": a}}`` -> ``{"test/accuracy": a}`` (numbers only)."""
    flat = {}
    for split, values in summary.get("metrics", {}).items():
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                flat[f"{split}/{name}"] = float(value)
    return flat


def mean_interval(values: Mapping[int, float], *, confidence: float = 0.95) -> list:
    """Student-t interval of the mean of one value per seed, ``[lo, hi]`` (None for 1 seed).

    It is the paired difference against zero, so it shares ``paired_difference``'s statistics.
    """
    ci = paired_difference(values, {seed: 0.0 for seed in values}, confidence=confidence)["ci"]
    return [None if math.isnan(v) else v for v in ci]


def sweep_rows(subruns: Sequence[SubRun], summaries: Sequence[Mapping[str, Any]], *,
               metric: str, mode: str = "") -> tuple[list[dict], dict]:
    """Table rows (grid order) and the best combination by ``metric``.

    Args:
      subruns: from ``plan_subruns``; ``summaries`` holds their ``summary.json``s.
      metric: ``split/name`` choosing the best, e.g. ``test/accuracy``.
      mode: "max", "min" or "" (from the name, ``metric_mode``).
    Returns:
      ``(rows, best)``: each row ``{"combination", "values": {key: value}, "seeds",
      "metrics": {m: {"mean", "std", "ci95"}}, "diff_vs_best": {"mean", "ci95"}}``;
      ``best`` is ``{"combination", "values", "metric", "mode", "mean", "std", "ci95"}``.
    Raises:
      JaxdlError: ``metric`` is not in every sub-run's summary (listing those that are).
    """
    mode = metric_mode(metric, mode)
    results = [dict(flat_metrics(s), mode=r.combination, seed=r.seed)
               for r, s in zip(subruns, summaries)]
    names = sorted(set.intersection(*[set(flat_metrics(s)) for s in summaries]))
    if metric not in names:
        raise JaxdlError(f"--metric={metric!r} is not in every sub-run's summary; "
                         f"expected one of {names}")
    names = [metric] + [n for n in names if n != metric]
    combos = list(dict.fromkeys(r.combination for r in subruns))
    stats = {name: {row["mode"]: row for row in aggregate(results, baseline=combos[0],
                                                          metric=name, group=())}
             for name in names}
    means = {c: stats[metric][c][f"{metric}_mean"] for c in combos}
    best = (max if mode == "max" else min)(combos, key=lambda c: means[c])
    diffs = {row["mode"]: row for row in aggregate(results, baseline=best, metric=metric,
                                                   group=())}
    rows = []
    for combo in combos:
        first = next(r for r in subruns if r.combination == combo)
        row = {"combination": combo, "values": dict(first.values),
               "seeds": stats[metric][combo]["seeds"], "metrics": {}}
        for name in names:
            per_seed = {r["seed"]: r[name] for r in results if r["mode"] == combo}
            cell = stats[name][combo]
            row["metrics"][name] = {"mean": cell[f"{name}_mean"], "std": cell[f"{name}_std"],
                                    "ci95": mean_interval(per_seed)}
        row["diff_vs_best"] = {"mean": diffs[combo][f"diff_vs_{best}_mean"],
                               "ci95": diffs[combo][f"diff_vs_{best}_ci95"]}
        rows.append(row)
    top = next(row for row in rows if row["combination"] == best)
    return rows, {"combination": best, "values": top["values"], "metric": metric,
                  "mode": mode, **top["metrics"][metric]}


def _interval(ci: Sequence[float | None] | None, signed: bool = False) -> str:
    if not ci or ci[0] is None:
        return "—"
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if signed else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def value_text(value: Any) -> str:
    """A grid value as table text: tuples and lists as ``"32, 16"``."""
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def sweep_markdown(rows: Sequence[Mapping[str, Any]], best: Mapping[str, Any]) -> str:
    """The table (one row per combination) and a line naming the best combination."""
    keys = list(rows[0]["values"])
    names = list(rows[0]["metrics"])
    metric = best["metric"]
    head = keys + ["seeds"] + [f"{n} (mean ± std [95% CI])" for n in names] + \
        [f"Δ {metric} vs best [95% CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [value_text(row["values"][k]) for k in keys] + [str(row["seeds"])]
        for name in names:
            m = row["metrics"][name]
            cells.append(f"{m['mean']:.4f} ± {m['std']:.4f} {_interval(m['ci95'])}")
        diff = row["diff_vs_best"]
        cells.append("best" if row["combination"] == best["combination"] else
                     f"{diff['mean']:+.4f} {_interval(diff['ci95'], signed=True)}")
        lines.append("| " + " | ".join(cells) + " |")
    setting = ", ".join(f"{k}={value_text(v)}" for k, v in best["values"].items()) or "default"
    lines.append("")
    lines.append(f"Best by {metric} ({best['mode']}): {setting} — {best['mean']:.4f} ± "
                 f"{best['std']:.4f} {_interval(best['ci95'])} over {rows[0]['seeds']} seeds.")
    return "\n".join(lines)


__all__ = ["ALL_LABELS", "aggregate", "table_markdown", "write_table_files", "composed_summary",
           "metric_mode", "flat_metrics", "mean_interval", "sweep_rows", "sweep_markdown",
           "value_text"]
