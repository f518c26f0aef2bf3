"""A sweep's table with paired differences against several baseline modes at once.

``jaxdl.sweep.table.aggregate`` compares every mode with one baseline, seed by seed; a
transfer table often needs two (the same model trained from scratch, and the
strongest cheap method, e.g. TF-IDF + logistic regression). ``aggregate_against``
runs it once per baseline and merges the difference fields into one row per
mode and budget; ``markdown_against`` renders them side by side.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from jaxdl.sweep.table import aggregate


def aggregate_against(results: Sequence[Mapping[str, Any]], baselines: Sequence[str], *,
                      metric: str = "accuracy", group: Sequence[str] = ("labels_per_class",)
                      ) -> list[dict]:
    """``jaxdl.sweep.table.aggregate`` rows carrying ``diff_vs_<b>_mean`` / ``_ci95`` for each baseline.

    Args:
      results: one dict per sub-run (``mode``, ``seed``, ``metric``, the ``group`` keys).
      baselines: the modes compared with; a baseline absent at a budget leaves its
        fields None there (and a baseline's difference with itself is None).
    Returns:
      Rows in ``jaxdl.sweep.table.aggregate``'s order.
    """
    merged: list[dict] | None = None
    for baseline in baselines:
        rows = aggregate(results, baseline=baseline, metric=metric, group=group)
        if merged is None:
            merged = rows
            continue
        for row, other in zip(merged, rows):  # same grouping and order for every baseline
            row[f"diff_vs_{baseline}_mean"] = other[f"diff_vs_{baseline}_mean"]
            row[f"diff_vs_{baseline}_ci95"] = other[f"diff_vs_{baseline}_ci95"]
    return merged or []


def markdown_against(rows: Sequence[Mapping[str, Any]], baselines: Sequence[str], *,
                     metric: str = "accuracy", group: Sequence[str] = ("labels_per_class",)
                     ) -> str:
    """A markdown table of ``aggregate_against`` rows: mean ± std, then for each baseline
    the mean paired difference and its 95% interval (3 decimals; "—" where none)."""
    head = ["| " + " | ".join(group) + f" | mode | {metric} (mean ± std) | seeds"]
    for baseline in baselines:
        head.append(f" | Δ vs {baseline} | 95% CI")
    lines = ["".join(head) + " |", "|" + "---|" * (len(group) + 3 + 2 * len(baselines))]
    for row in rows:
        cells = [str(row[g]) for g in group] + [
            row["mode"], f"{row[metric + '_mean']:.3f} ± {row[metric + '_std']:.3f}",
            str(row["seeds"])]
        for baseline in baselines:
            diff, ci = row[f"diff_vs_{baseline}_mean"], row[f"diff_vs_{baseline}_ci95"]
            cells.append("—" if diff is None else f"{diff:+.3f}")
            cells.append("—" if not ci or ci[0] is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["aggregate_against", "markdown_against"]
