"""Composed experiments: sub-runs in sub-directories, aggregated into one table.

A transfer experiment is a pretraining run followed by one downstream run per
mode × label budget × seed. Each is an ordinary ``fit`` run in its own
directory (``workdir/pretrain``, ``workdir/runs/<mode>-k<labels>-s<seed>``) with
its own ``config.json``, checkpoints and ``summary.json``. Re-running the
experiment skips sub-runs whose ``summary.json`` exists and resumes the one that
was interrupted (``fit`` does that from its checkpoints), so a killed run ends
with the same table as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import jax
from jax.experimental.compilation_cache import compilation_cache
from ml_collections import ConfigDict

from jaxdl.evaluation.paired_stats import mean_std, paired_difference
from jaxdl.evaluation.plots import plot_lines
from jaxdl.recipes.progress import SubrunProgress
from jaxdl.workdir import prepare_workdir, write_summary

ALL_LABELS = 0  # a label budget of 0 means "every labelled training example"


@contextlib.contextmanager
def shared_compilation_cache(directory: str | None = None) -> Iterator[None]:
    """Let sub-runs with identical shapes reuse compiled XLA programs.

    Every ``fit`` builds fresh step functions, so ``jax.jit`` cannot see that the
    55 downstream runs of a sweep compile the same programs; XLA's persistent
    cache, keyed by the program itself, can. Inside the ``with`` block the cache
    is on (unless the user already configured one); afterwards the previous
    settings return. Results are unaffected: a cached executable is the same binary.

    Args:
      directory: cache location; default ``$JAXDL_XLA_CACHE`` or ``~/.cache/jaxdl/xla``.
    """
    if jax.config.jax_compilation_cache_dir:  # the user's own cache wins
        yield
        return
    directory = directory or os.environ.get(
        "JAXDL_XLA_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "jaxdl", "xla"))
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    previous = {name: getattr(jax.config, name) for name in names}
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:  # no writable cache: just compile every time
        yield
        return
    for name, value in zip(names, (directory, 0.0, 0)):
        jax.config.update(name, value)
    compilation_cache.reset_cache()  # the cache is set up once per process otherwise
    try:
        yield
    finally:
        for name, value in previous.items():
            jax.config.update(name, value)
        compilation_cache.reset_cache()


def subrun_name(mode: str, labels_per_class: int, seed: int) -> str:
    """``runs/<mode>-k<labels>-s<seed>`` (``kall`` for the full label set)."""
    labels = "all" if labels_per_class == ALL_LABELS else str(labels_per_class)
    return f"runs/{mode}-k{labels}-s{seed}"


def subrun_label(mode: str, labels_per_class: int, seed: int) -> str:
    """``"<mode> k=<labels> seed=<seed>"`` (``k=all``: every label), for progress lines."""
    labels = "all" if labels_per_class == ALL_LABELS else str(labels_per_class)
    return f"{mode} k={labels} seed={seed}"


def run_subrun(workdir: str, name: str, config: ConfigDict,
               train_fn: Callable[[ConfigDict, str], dict], *,
               progress: SubrunProgress | None = None, label: str | None = None,
               estimate: bool = True) -> dict:
    """Run (or skip, or resume) one sub-run in ``workdir/name``.

    Args:
      workdir: the composed experiment's directory.
      name: the sub-directory, e.g. ``"pretrain"``.
      config: the sub-run's full config (written to its ``config.json``; a
        different config already there is refused, as for any run).
      train_fn: ``train_fn(config, sub_workdir) -> summary`` doing the ``fit``.
      progress: reports the sub-run as started and finished (``label``, default ``name``);
        ``estimate`` says whether its duration predicts the other sub-runs'.
    Returns:
      The sub-run's summary (read back from ``summary.json`` when it had finished).
    """
    path = os.path.join(workdir, name)
    prepare_workdir(path, config)
    summary_path = os.path.join(path, "summary.json")
    label = label or name
    start = time.monotonic()
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
        if progress is not None:
            progress.finished(label, seconds=0.0, skipped=True)
        return summary
    if progress is not None:
        progress.started(label)
    summary = train_fn(config, path)
    write_summary(path, summary)
    if progress is not None:
        progress.finished(label, seconds=time.monotonic() - start, estimate=estimate)
    return summary


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


def write_table_files(workdir: str, markdown: str, extra: str = "") -> str:
    """Write ``workdir/table.md`` (the main table and any further sections)."""
    path = os.path.join(workdir, "table.md")
    with open(path + ".tmp", "w") as f:
        f.write(markdown + "\n" + (("\n" + extra + "\n") if extra else ""))
    os.replace(path + ".tmp", path)
    return path


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


def composed_summary(experiment: str, config: ConfigDict, runs: Sequence[Mapping[str, Any]],
                     table: list[dict], markdown: str, **extra: Any) -> dict:
    """The ``summary.json`` of a composed experiment (``runs``, ``table``, markdown)."""
    return {"experiment": experiment, "seed": config.seed, "runs": list(runs),
            "table": table, "table_markdown": markdown, **extra}


def run_sweep(workdir: str, *, modes: Sequence[str], budgets: Sequence[int],
              seeds: Sequence[int], make_config: Callable[[str, int, int], ConfigDict],
              train_fn: Callable[[ConfigDict, str], dict], metric: str = "accuracy",
              split: str = "test", progress: SubrunProgress | None = None) -> list[dict]:
    """Run every mode × label budget × seed as a sub-run; collect their results.

    Args:
      workdir: the composed experiment's directory.
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


__all__ = ["ALL_LABELS", "shared_compilation_cache", "subrun_name", "subrun_label", "run_subrun",
           "run_sweep",
           "aggregate", "curve_results", "table_markdown", "plot_by_mode", "write_table_files",
           "eval_curve", "composed_summary"]
