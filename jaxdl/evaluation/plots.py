"""Figures written under a run's ``plots/``: learning curves and line charts.

Made to be read at a glance: every series has its own marker (and line style), the
legend says what error bars are (``error_kind``: "± 1 std", "95% CI", ...), and when
several series carry error bars at the same x values each series is shifted sideways
by a small fraction of the x spacing so no bar hides another (the legend says so).
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np



def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (no display needed).

    Imported on first use, not with this module: matplotlib is a slow import, and
    ``python -m jaxdl.run`` should print its first line before paying for it.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plots_dir(workdir: str) -> str:
    """``workdir/plots``, created if needed."""
    path = os.path.join(workdir, "plots")
    os.makedirs(path, exist_ok=True)
    return path


# One marker and line style per series, in order, so overlapping series stay apart.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")
# Sideways spread of all series at one x, as a fraction of the smallest x spacing.
DODGE_SPREAD = 0.3


def _label(fig, ax, *, xlabel: str, ylabel: str, title: str = "", legend_title: str = ""):
    """Axis labels, legend (titled ``legend_title``) and grid."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(title=legend_title or None, fontsize="small", title_fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _save(fig, path: str) -> str:
    """Write ``fig`` to ``path`` as PNG and free it."""
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path


def _style(index: int) -> dict:
    return {"marker": MARKERS[index % len(MARKERS)],
            "linestyle": LINESTYLES[(index // len(MARKERS)) % len(LINESTYLES)]}


def learning_curves_figure(history: Sequence[dict], *, metric: str = "loss"):
    """A figure of ``metric`` against step, one line per split of a ``metrics.jsonl``
    history (list of ``{"step", "split", metric, ...}``); each split its own marker."""
    fig, ax = pyplot().subplots(figsize=(6, 4))
    splits = sorted({e["split"] for e in history if metric in e})
    for index, split in enumerate(splits):
        points = [(e["step"], e[metric]) for e in history
                  if e["split"] == split and isinstance(e.get(metric), (int, float))]
        if points:
            steps, values = zip(*points)
            # At most ~12 markers per line: enough to tell the lines apart, not a smear.
            ax.plot(steps, values, markevery=max(1, len(points) // 12), label=split,
                    **_style(index))
    return _label(fig, ax, xlabel="step", ylabel=metric)


def plot_learning_curves(history: Sequence[dict], path: str, *, metric: str = "loss") -> str:
    """Write ``learning_curves_figure(history, metric=metric)`` to ``path``; returns it."""
    return _save(learning_curves_figure(history, metric=metric), path)


def save_learning_curves(workdir: str | None, history: Sequence[dict], *,
                         metric: str = "loss", name: str = "loss.png") -> str | None:
    """``workdir/plots/<name>``: the learning curves of a run that trained (``fit``'s
    ``result.history``). Nothing, and None, without a workdir."""
    if not workdir:
        return None
    return plot_learning_curves(history, os.path.join(plots_dir(workdir), name), metric=metric)


def dodge_offsets(xs: Sequence[float], count: int, *, logx: bool) -> list[float]:
    """Sideways shift of each of ``count`` series drawn at the x values ``xs``: series
    ``i`` moves by ``(i - (count - 1) / 2) * step``, ``step`` a share of ``DODGE_SPREAD``
    of the smallest gap between distinct xs (in log10 units when ``logx``). Returns the
    ``count`` shifts (all 0 for one series)."""
    values = np.unique(np.log10(xs) if logx else np.asarray(xs, float))
    gaps = np.diff(values)
    gap = float(gaps.min()) if gaps.size else (0.1 if logx else 1.0)
    step = DODGE_SPREAD * gap / max(count, 1)
    return [(i - (count - 1) / 2) * step for i in range(count)]


def lines_figure(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                 xlabel: str, ylabel: str, title: str = "", logx: bool = False,
                 errors: Mapping[str, Sequence[float]] | None = None,
                 error_kind: str = "± 1 std"):
    """A figure with one line per name: ``series[name] = (xs, ys)``.

    Args:
      errors: ``name -> [len(xs)]`` half-widths of error bars, for some or all names.
      error_kind: what the bars are; the legend's title says "error bars: <error_kind>".
        The default fits a standard deviation; a caller drawing anything else (a 95%
        CI, a standard error) must say so.

    Series with error bars, when there are several, are shifted sideways
    (``dodge_offsets``) so their bars do not hide each other; the legend says so.
    """
    fig, ax = pyplot().subplots(figsize=(6, 4))
    barred = [name for name in series if errors and name in errors]
    all_xs = [x for name in barred for x in series[name][0]]
    shifts = dict(zip(barred, dodge_offsets(all_xs, len(barred), logx=logx))) if barred else {}
    for index, (name, (xs, ys)) in enumerate(series.items()):
        xs = np.asarray(xs, float)
        if name in shifts:
            shifted = xs * 10.0 ** shifts[name] if logx else xs + shifts[name]
            ax.errorbar(shifted, ys, yerr=errors[name], capsize=3, label=name, **_style(index))
        else:
            ax.plot(xs, ys, label=name, **_style(index))
    if logx:
        ax.set_xscale("log")
    legend_title = ""
    if barred:
        legend_title = f"error bars: {error_kind}"
        if len(barred) > 1:
            legend_title += "\n(series offset sideways to stay apart)"
    return _label(fig, ax, xlabel=xlabel, ylabel=ylabel, title=title, legend_title=legend_title)


def plot_lines(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str, *,
               xlabel: str, ylabel: str, title: str = "", logx: bool = False,
               errors: Mapping[str, Sequence[float]] | None = None,
               error_kind: str = "± 1 std") -> str:
    """Write ``lines_figure(series, ...)`` (same arguments) to ``path``; returns it."""
    return _save(lines_figure(series, xlabel=xlabel, ylabel=ylabel, title=title, logx=logx,
                              errors=errors, error_kind=error_kind), path)
