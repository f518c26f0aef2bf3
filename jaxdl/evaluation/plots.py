"""Figures written under a run's ``plots/``: learning curves and line charts."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402


def plots_dir(workdir: str) -> str:
    """``workdir/plots``, created if needed."""
    path = os.path.join(workdir, "plots")
    os.makedirs(path, exist_ok=True)
    return path


def _label_and_save(fig, ax, path: str, *, xlabel: str, ylabel: str, title: str = "") -> str:
    """Axis labels, legend and grid; write ``path`` as PNG and free the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_learning_curves(history: Sequence[dict], path: str, *, metric: str = "loss") -> str:
    """Plot ``metric`` against step for each split in a ``metrics.jsonl`` history."""
    fig, ax = plt.subplots(figsize=(6, 4))
    splits = sorted({e["split"] for e in history if metric in e})
    for split in splits:
        points = [(e["step"], e[metric]) for e in history
                  if e["split"] == split and isinstance(e.get(metric), (int, float))]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o" if len(points) < 20 else None, label=split)
    return _label_and_save(fig, ax, path, xlabel="step", ylabel=metric)


def plot_lines(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str, *,
               xlabel: str, ylabel: str, title: str = "", logx: bool = False,
               errors: Mapping[str, Sequence[float]] | None = None) -> str:
    """One line per name: ``series[name] = (xs, ys)``, optional error bars."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (xs, ys) in series.items():
        if errors and name in errors:
            ax.errorbar(xs, ys, yerr=errors[name], marker="o", capsize=3, label=name)
        else:
            ax.plot(xs, ys, marker="o", label=name)
    if logx:
        ax.set_xscale("log")
    return _label_and_save(fig, ax, path, xlabel=xlabel, ylabel=ylabel, title=title)
