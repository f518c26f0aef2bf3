"""A sweep's plots: metric means (± std) against a grid key or a mode's x axis."""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Mapping, Sequence


from jaxdl.evaluation.plots import plot_lines, plots_dir, pyplot
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


# Keys whose values are usually spread over orders of magnitude.
LOG_SCALE_NAMES = re.compile(r"(^|_)(lr|learning_rate|weight_decay|wd|eps|l2|decay)$")


def log_scaled(key: str, values: Sequence[Any]) -> bool:
    """Whether grid key ``key`` with ``values`` belongs on a log axis: all positive
    numbers, and either spanning a factor of 10 or more or named like a learning
    rate or weight decay (``LOG_SCALE_NAMES``)."""
    if not values or not _numeric(values) or min(values) <= 0:
        return False
    return max(values) >= 10 * min(values) or bool(LOG_SCALE_NAMES.search(key.rsplit(".", 1)[-1]))


def sweep_figure(rows: Sequence[Mapping[str, Any]], name: str):
    """The figure of metric ``name``: mean (± std) against the first grid key, one line
    per setting of the other keys. A log-spaced key (``log_scaled``) gets a log axis
    with a tick at each grid value, labelled as written in the table.

    Returns:
      ``(fig, ax)``, a matplotlib figure and its axes (not yet saved).
    """
    keys = list(rows[0]["values"])
    x_key = keys[0] if keys else None
    raw = [r["values"][x_key] for r in rows] if x_key else []
    xs_text = list(dict.fromkeys(value_text(v) for v in raw))
    numeric = x_key is not None and _numeric(raw)
    fig, ax = pyplot().subplots(figsize=(6, 4))
    series: dict[str, tuple[list, list, list]] = {}
    for row in rows:
        label = ", ".join(f"{k}={value_text(row['values'][k])}" for k in keys[1:]) or name
        if x_key is None:
            x = 0.0
        else:
            value = row["values"][x_key]
            x = float(value) if numeric else float(xs_text.index(value_text(value)))
        xs, ys, errs = series.setdefault(label, ([], [], []))
        xs.append(x)
        ys.append(row["metrics"][name]["mean"])
        errs.append(row["metrics"][name]["std"])
    for label, (xs, ys, errs) in series.items():
        ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=label)
    if numeric:
        tick_text = {float(v): value_text(v) for v in raw}
        ticks = sorted(tick_text)
        labels = [tick_text[t] for t in ticks]
    else:
        ticks, labels = list(range(len(xs_text))), xs_text
    if numeric and log_scaled(x_key, raw):
        ax.set_xscale("log")
        from matplotlib import ticker
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())  # only the grid's own values
    if x_key is not None:
        ax.set_xticks(ticks)
        ax.set_xticklabels(labels, rotation=30 if len(ticks) > 4 else 0)
    ax.set_xlabel(x_key or "setting")
    ax.set_ylabel(f"{name} (mean ± std)")
    ax.set_title(f"sweep: {name}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig, ax


def plot_sweep(rows: Sequence[Mapping[str, Any]], workdir: str) -> list[str]:
    """``workdir/plots/<metric>.png`` per metric (``sweep_figure``). Returns the paths."""
    paths = []
    for name in rows[0]["metrics"]:
        fig, _ = sweep_figure(rows, name)
        path = os.path.join(plots_dir(workdir), name.replace("/", "_") + ".png")
        fig.savefig(path, dpi=100)
        pyplot().close(fig)
        paths.append(path)
    return paths


__all__ = ["plot_by_mode", "log_scaled", "sweep_figure", "plot_sweep"]
