"""A sweep's result table: every metric's mean ± std and 95% interval per combination.

Rows come from ``composed.aggregate`` (one "mode" per grid combination, seeds
paired), so the named metric also gets each combination's paired difference
against the best one: sub-runs with the same seed share their initialisation and
data order, and the paired interval says whether the best is really ahead.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

from jaxdl.errors import ConfigError, JaxdlError
from jaxdl.evaluation.paired_stats import paired_difference
from jaxdl.evaluation.plots import plot_lines, plots_dir
from jaxdl.recipes.composed import aggregate
from jaxdl.recipes.sweep_grid import SubRun

LOWER_IS_BETTER = ("loss", "error", "perplexity")


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


def _value_text(value: Any) -> str:
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
        cells = [_value_text(row["values"][k]) for k in keys] + [str(row["seeds"])]
        for name in names:
            m = row["metrics"][name]
            cells.append(f"{m['mean']:.4f} ± {m['std']:.4f} {_interval(m['ci95'])}")
        diff = row["diff_vs_best"]
        cells.append("best" if row["combination"] == best["combination"] else
                     f"{diff['mean']:+.4f} {_interval(diff['ci95'], signed=True)}")
        lines.append("| " + " | ".join(cells) + " |")
    setting = ", ".join(f"{k}={_value_text(v)}" for k, v in best["values"].items()) or "default"
    lines.append("")
    lines.append(f"Best by {metric} ({best['mode']}): {setting} — {best['mean']:.4f} ± "
                 f"{best['std']:.4f} {_interval(best['ci95'])} over {rows[0]['seeds']} seeds.")
    return "\n".join(lines)


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def plot_sweep(rows: Sequence[Mapping[str, Any]], workdir: str) -> list[str]:
    """``workdir/plots/<metric>.png`` per metric: mean (± std) against the first grid key,
    one line per setting of the other keys. Returns the paths."""
    keys = list(rows[0]["values"])
    x_key = keys[0] if keys else None
    xs_raw = list(dict.fromkeys(_value_text(r["values"][x_key]) for r in rows)) if x_key else []
    numeric = x_key is not None and _numeric([r["values"][x_key] for r in rows])
    positive = numeric and all(r["values"][x_key] > 0 for r in rows)
    logx = positive and max(r["values"][x_key] for r in rows) >= \
        10 * min(r["values"][x_key] for r in rows)
    paths = []
    for name in rows[0]["metrics"]:
        series, errors = {}, {}
        for row in rows:
            label = ", ".join(f"{k}={_value_text(row['values'][k])}" for k in keys[1:]) or name
            if x_key is None:
                x = 0.0
            else:
                value = row["values"][x_key]
                x = float(value) if numeric else float(xs_raw.index(_value_text(value)))
            xs, ys = series.setdefault(label, ([], []))
            xs.append(x)
            ys.append(row["metrics"][name]["mean"])
            errors.setdefault(label, []).append(row["metrics"][name]["std"])
        xlabel = x_key or "setting"
        if x_key and not numeric:
            xlabel = f"{x_key} (0..{len(xs_raw) - 1}: {'; '.join(xs_raw)})"
        path = os.path.join(plots_dir(workdir), name.replace("/", "_") + ".png")
        paths.append(plot_lines(series, path, xlabel=xlabel, ylabel=f"{name} (mean ± std)",
                                title=f"sweep: {name}", logx=logx, errors=errors))
    return paths


__all__ = ["metric_mode", "flat_metrics", "mean_interval", "sweep_rows", "sweep_markdown",
           "plot_sweep"]
