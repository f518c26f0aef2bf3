"""A sweep's plots: metric means (± std) against a grid key or a mode's x axis."""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

from jaxdl.evaluation.plots import plot_lines, plots_dir
from jaxdl.sweep.table import value_text


def plot_by_mode(rows: Sequence[Mapping[str, Any]], x_key: str, path: str, *,
                 metric: str = "accuracy", x_of: Callable[[Any], float] = float,
                 xlabel: str, title: str = "", logx: bool = False) -> str:
    """One line per mode of ``metric`` mean (error bars: std) against ``x_key``."""
    series, errors = {}, {}
    for row in rows:
        xs, ys = series.setdefault(row["mode"], ([], []))
        xs.append(x_of(row[x_key]))
        ys.append(row[f"{metric}_mean"])
        errors.setdefault(row["mode"], []).append(row[f"{metric}_std"])
    return plot_lines(series, path, xlabel=xlabel, ylabel=f"test {metric}", title=title,
                      logx=logx, errors=errors)


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def plot_sweep(rows: Sequence[Mapping[str, Any]], workdir: str) -> list[str]:
    """``workdir/plots/<metric>.png`` per metric: mean (± std) against the first grid key,
    one line per setting of the other keys. Returns the paths."""
    keys = list(rows[0]["values"])
    x_key = keys[0] if keys else None
    xs_raw = list(dict.fromkeys(value_text(r["values"][x_key]) for r in rows)) if x_key else []
    numeric = x_key is not None and _numeric([r["values"][x_key] for r in rows])
    positive = numeric and all(r["values"][x_key] > 0 for r in rows)
    logx = positive and max(r["values"][x_key] for r in rows) >= \
        10 * min(r["values"][x_key] for r in rows)
    paths = []
    for name in rows[0]["metrics"]:
        series, errors = {}, {}
        for row in rows:
            label = ", ".join(f"{k}={value_text(row['values'][k])}" for k in keys[1:]) or name
            if x_key is None:
                x = 0.0
            else:
                value = row["values"][x_key]
                x = float(value) if numeric else float(xs_raw.index(value_text(value)))
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


__all__ = ["plot_by_mode", "plot_sweep"]
