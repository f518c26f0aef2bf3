"""What a run prints when it ends: its headline result, then where its files are.

Every experiment ends the same way, so a user reads the answer first and knows
where to look next. The headline is the summary's ``"headline"`` when the
experiment wrote one (a composed run: its main table), otherwise one line per
evaluated split and per baseline, built from ``"metrics"`` and ``"baselines"``,
then what the experiment shows in words (``result_lines``: a tagged sentence,
nearest neighbours). The paths follow: the summary, the table, the plots, the
word vectors and a profile trace, where they exist.
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
    lines += result_lines(summary)
    return "\n".join(lines) or f"{summary.get('experiment', 'run')}: finished"


def result_lines(summary: Mapping[str, Any]) -> list[str]:
    """The experiment's result in words, from the summary keys that carry one:

    - ``sentence`` + ``predicted_tags`` (+ ``expected_tags``): ``"The dog ate the apple
      -> DET NN V DET NN (as expected)"``;
    - ``evaluation.neighbours`` (word -> nearest words): one line per word.
    """
    lines = []
    tags = summary.get("predicted_tags")
    if tags and summary.get("sentence"):
        line = f"{summary['sentence']} -> {' '.join(tags)}"
        expected = summary.get("expected_tags")
        if expected:
            line += " (as expected)" if list(expected) == list(tags) else \
                f" (expected {' '.join(expected)})"
        lines.append(line)
    evaluation = summary.get("evaluation")
    neighbours = evaluation.get("neighbours") if isinstance(evaluation, Mapping) else None
    if neighbours:
        lines.append("nearest neighbours:")
        lines += [f"  {word}: {', '.join(map(str, near))}" for word, near in neighbours.items()]
    return lines


def output_paths(workdir: str, summary: Mapping[str, Any] | None = None) -> str:
    """Lines naming the run's summary, its ``table.md``, its plots, its word vectors
    (``summary["vectors_file"]``) and its profile traces, where they exist."""
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
    vectors = (summary or {}).get("vectors_file")
    if vectors and os.path.exists(vectors):
        lines.append(f"vectors: {os.path.abspath(vectors)}")
    lines += [f"trace: {path}" for path in trace_files(workdir)]
    return "\n".join(lines)


def trace_files(workdir: str) -> list[str]:
    """The profile traces under ``workdir/profile`` (TensorBoard's ``.xplane.pb``,
    Perfetto's ``.json.gz``), sorted."""
    found = []
    for root, _, names in os.walk(os.path.join(workdir, "profile")):
        found += [os.path.join(root, n) for n in names
                  if n.endswith((".xplane.pb", "perfetto_trace.json.gz"))]
    return sorted(found)


def final_report(summary: Mapping[str, Any], workdir: str) -> str:
    """``headline(summary)``, a blank line, then ``output_paths(workdir)``."""
    return headline(summary) + "\n\n" + output_paths(workdir, summary)


__all__ = ["headline", "result_lines", "output_paths", "trace_files", "final_report"]
