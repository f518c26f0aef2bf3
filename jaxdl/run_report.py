"""What a run prints when it ends: its headline result, then where its files are.

Every experiment ends the same way, so a user reads the answer first and knows
where to look next. The headline is the summary's ``"headline"`` when the
experiment wrote one (a composed run: its main table), otherwise one line per
evaluated split and per baseline, built from ``"metrics"`` and ``"baselines"``.
"""

from __future__ import annotations

import os
from typing import Any, Mapping


def _number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 else f"{value:.4g}"


def _numbers(values: Mapping[str, Any]) -> str:
    """``"accuracy 0.9861, loss 0.0512"``: the numeric entries of one split's metrics."""
    return ", ".join(f"{name} {_number(value)}" for name, value in values.items()
                     if isinstance(value, (int, float)) and not isinstance(value, bool))


def headline(summary: Mapping[str, Any]) -> str:
    """The result a run reports first (see the module docstring).

    Args:
      summary: a ``summary.json`` payload.
    Returns:
      Text of one or more lines (never empty).
    """
    if summary.get("headline"):
        return str(summary["headline"])
    lines = []
    for split, values in (summary.get("metrics") or {}).items():
        if isinstance(values, Mapping) and _numbers(values):
            lines.append(f"{split}: {_numbers(values)}")
    for name, baseline in (summary.get("baselines") or {}).items():
        for split, values in (baseline.items() if isinstance(baseline, Mapping) else ()):
            if isinstance(values, Mapping) and _numbers(values):
                lines.append(f"baseline {name} {split}: {_numbers(values)}")
    return "\n".join(lines) or f"{summary.get('experiment', 'run')}: finished"


def output_paths(workdir: str) -> str:
    """Lines naming the run's summary, its ``table.md`` and its plots, where they exist."""
    workdir = os.path.abspath(workdir)
    lines = [f"summary: {os.path.join(workdir, 'summary.json')}"]
    table = os.path.join(workdir, "table.md")
    if os.path.exists(table):
        lines.append(f"table: {table}")
    plots = os.path.join(workdir, "plots")
    names = sorted(n for n in os.listdir(plots) if n.endswith(".png")) \
        if os.path.isdir(plots) else []
    if names:
        lines.append(f"plots: {plots}/ ({', '.join(names)})")
    return "\n".join(lines)


def final_report(summary: Mapping[str, Any], workdir: str) -> str:
    """``headline(summary)``, a blank line, then ``output_paths(workdir)``."""
    return headline(summary) + "\n\n" + output_paths(workdir)


__all__ = ["headline", "output_paths", "final_report"]
