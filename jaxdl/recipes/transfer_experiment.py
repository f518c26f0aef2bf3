"""A transfer experiment: pretrain once, then every downstream mode × label budget × seed.

An experiment supplies the pretraining sub-run (its config and a function that
trains it), how each transfer mode sets up its sub-run (``configure``) and how a
downstream model is built; this runs them as sub-runs (``jaxdl.sweep.subruns``:
``workdir/pretrain``; ``recipes.downstream_grid``: ``workdir/runs/<mode>-k<labels>-s<seed>``,
skipped when finished, resumed when interrupted), with progress on stderr, and
ends with the aggregated table (mean ± std over seeds, paired difference from
the baseline mode with a 95% t-interval), ``table.md`` and the plots.

The experiment's config needs ``config.downstream``: ``modes``, ``labels_per_class``
(0 = every label), ``seeds``, ``num_steps`` and ``eval_every``; learning-curve
reports (``curve_report``) read ``config.report.curve_steps`` and ``curve_budgets``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

from flax import nnx
from ml_collections import ConfigDict

from jaxdl.data.arrays import ArrayDataset
from jaxdl.errors import ConfigError
from jaxdl.data.sources import LabelBudgetSource, draw_k_per_class
from jaxdl.evaluation.plots import plots_dir
from jaxdl.recipes import few_label
from jaxdl.recipes.downstream_grid import curve_results, run_downstream_grid
from jaxdl.sweep.plots import plot_by_mode
from jaxdl.sweep.progress import SubrunProgress
from jaxdl.sweep.subruns import run_subrun
from jaxdl.sweep.table import ALL_LABELS, aggregate, composed_summary, table_markdown, \
    write_table_files
from jaxdl.train.compilation_cache import shared_compilation_cache
from jaxdl.train.loop import fit
from jaxdl.train.task import Task
from jaxdl.transfer import mode_settings
from jaxdl.workdir import fit_summary

TrainFn = Callable[[ConfigDict, str], dict]


def require_workdir(config: ConfigDict, workdir: str | None) -> str:
    """``workdir`` as an absolute path; a composed experiment cannot run in memory.

    Raises:
      ConfigError: no workdir was given.
    """
    if not workdir:
        raise ConfigError(f"{config.experiment} is a composed experiment; expected --workdir=DIR")
    return os.path.abspath(workdir)


def subrun_config(config: ConfigDict, *, drop: Sequence[str] = ("downstream", "report"),
                  **train: Any) -> ConfigDict:
    """A sub-run's config: the experiment's, without the sweep's own sections.

    Args:
      config: the experiment's config.
      drop: top-level sections that describe the sweep, not one run.
      **train: ``config.train`` keys to set (e.g. ``num_steps=200``).
    Returns:
      A copy with the progress bar and the final train-split evaluation off (the
      sweep reports progress itself and compares test accuracy only).
    """
    sub = ConfigDict(config.to_dict())
    for section in drop:
        if section in sub:
            del sub[section]
    sub.train.progress_bar = False
    sub.train.eval_train = False
    for key, value in train.items():
        sub.train[key] = value
    return sub


def run_transfer_sweep(config: ConfigDict, workdir: str, *,
                       configure: Callable[[ConfigDict], None], downstream_fn: TrainFn,
                       pretrain_config: ConfigDict | None = None,
                       pretrain_fn: TrainFn | None = None,
                       pretrains: Mapping[str, tuple[ConfigDict, TrainFn]] | None = None,
                       drop: Sequence[str] = ("downstream", "report")
                       ) -> tuple[Any, list[dict]]:
    """Pretrain in ``workdir/pretrain`` (or several sub-runs), then run the downstream grid.

    Args:
      config: the experiment's config (``config.downstream`` as in the module docstring).
      workdir: the experiment's directory (see ``require_workdir``).
      configure: sets a downstream sub-run's mode-specific keys in place (e.g.
        ``transfer.init_from``, ``transfer.frozen``); it receives ``subrun_config``'s
        copy with ``seed``, ``labels_per_class`` and ``mode`` set.
      downstream_fn: ``(config, dir) -> summary`` of one downstream run.
      pretrain_config, pretrain_fn: the one pretraining sub-run (``workdir/pretrain``)
        and ``(config, dir) -> summary``.
      pretrains: instead, several: ``{sub-directory: (config, fn)}``, run in order.
      drop: the sections ``subrun_config`` leaves out of the downstream configs.
    Returns:
      ``(pretrain summary, results)`` — with ``pretrains``, ``({sub-directory: summary},
      results)`` — results as ``downstream_grid.run_downstream_grid`` returns them.
    """
    single = pretrains is None
    if single:
        if pretrain_config is None or pretrain_fn is None:
            raise ConfigError("run_transfer_sweep needs pretrain_config and pretrain_fn, "
                              "or pretrains={sub-directory: (config, fn)}")
        pretrains = {"pretrain": (pretrain_config, pretrain_fn)}
    ds = config.downstream
    progress = SubrunProgress(len(pretrains)
                              + len(ds.modes) * len(ds.labels_per_class) * len(ds.seeds))

    def make_config(mode: str, labels: int, seed: int) -> ConfigDict:
        sub = subrun_config(config, drop=drop, num_steps=ds.num_steps, eval_every=ds.eval_every)
        sub.seed, sub.labels_per_class, sub.mode = int(seed), int(labels), mode
        configure(sub)
        return sub

    with shared_compilation_cache():
        summaries = {name: run_subrun(workdir, name, sub, fn, progress=progress,
                                      estimate=False)
                     for name, (sub, fn) in pretrains.items()}
        results = run_downstream_grid(workdir, modes=ds.modes, budgets=ds.labels_per_class,
                                      seeds=ds.seeds, make_config=make_config,
                                      train_fn=downstream_fn, progress=progress)
    return (summaries["pretrain"] if single else summaries), results


def set_mode_transfer(config: ConfigDict, init_from: str, *, head: str = "head") -> None:
    """``config.transfer`` of ``jaxdl.transfer``'s modes, chosen by ``config.mode``.

    ``scratch`` loads nothing; ``linear_probe`` and ``fine_tune`` load ``init_from``
    except ``head/`` (re-initialised); ``linear_probe`` freezes all but the head.
    """
    settings = mode_settings(config.mode, head=head)
    config.transfer.init_from = "" if config.mode == "scratch" else init_from
    config.transfer.dont_load, config.transfer.frozen = settings["dont_load"], settings["frozen"]


def fit_downstream(model: nnx.Module, task: Task, pool: ArrayDataset, test: ArrayDataset,
                   config: ConfigDict, workdir: str, **extra: Any) -> dict:
    """One downstream run: ``config.labels_per_class`` examples per class of ``pool``
    (drawn with ``config.seed``), trained by ``fit`` and evaluated on ``test``.

    A sub-run configured by ``few_label.apply_rule`` (``config.few_label`` set) holds
    out part of those examples as ``val``, evaluates ``val`` and ``test`` every
    ``eval_every`` steps, and reports as ``metrics["test"]`` the test values at the
    best ``val`` step (``few_label.best_eval``; ``metrics["final"]``: the last step's).

    Returns:
      Its summary (``fit_summary`` plus ``mode``, ``labels_per_class``,
      ``train_examples``, ``extra``, and under the rule ``labelled`` and ``selected``).
    """
    rule = few_label.rule_of(config)
    if rule is None:
        indices = draw_k_per_class(pool.arrays["y"], config.labels_per_class, config.seed)
        eval_data = {"test": test}
    else:
        indices, val = few_label.labelled_split(pool.arrays["y"], config.labels_per_class,
                                                config.seed, rule)
        eval_data = {"val": pool.subset(val, name="val"), "test": test} if len(val) else \
            {"test": test}
        extra["labelled"] = few_label.indices_digest(indices, val)
    source = LabelBudgetSource(pool, indices, config.train.batch_size, seed=config.seed)
    result = fit(model, task, source, config=config, eval_data=eval_data, workdir=workdir)
    if rule is not None:
        chosen = few_label.best_eval(result.history)
        extra["selected"] = {"step": chosen["step"] if chosen else result.steps,
                             "val": chosen["val"] if chosen else None}
        if chosen:
            result.metrics = {**result.metrics, "final": result.metrics["test"],
                              "test": chosen["test"]}
    return fit_summary(f"{config.experiment}/{config.mode}", result, config, mode=config.mode,
                       labels_per_class=config.labels_per_class, train_examples=len(indices),
                       **extra)


def table_report(workdir: str, results: list[dict], *, baseline: str, heading: str,
                 plot_title: str, pool_per_class: float, sections: str = ""
                 ) -> tuple[list[dict], str, str]:
    """The final-accuracy table, ``table.md`` and ``plots/accuracy_vs_labels.png``.

    Args:
      results: from ``run_transfer_sweep``.
      baseline: the mode every other is compared with, seed by seed.
      heading: the table's title in ``table.md`` and the headline.
      plot_title: the plot's title.
      pool_per_class: where the "all labels" budget stands on the plot's x axis.
      sections: further markdown appended to ``table.md``.
    Returns:
      ``(rows, markdown table, headline)``; the headline is ``## heading`` and the table.
    """
    table = aggregate(results, baseline=baseline)
    markdown = table_markdown(table, baseline=baseline)
    headline = f"## {heading}\n\n{markdown}"
    write_table_files(workdir, headline, sections)
    plot_by_mode(table, "labels_per_class",
                 os.path.join(plots_dir(workdir), "accuracy_vs_labels.png"),
                 x_of=lambda k: pool_per_class if k == "all" else float(k),
                 xlabel="labels per class (log; rightmost: all)", logx=True,
                 title=plot_title)
    return table, markdown, headline


def curve_report(config: ConfigDict, workdir: str, results: list[dict]
                 ) -> tuple[list[dict], str]:
    """Accuracy against training steps: rows at ``config.report.curve_steps``, a markdown
    table of the ``curve_budgets`` and one ``plots/accuracy_vs_steps_k<budget>.png`` each.

    Returns:
      ``(rows of every budget, markdown of the shown budgets)``.
    """
    group = ("labels_per_class", "step")
    rows = aggregate(curve_results(results, config.report.curve_steps), group=group)
    budgets = ["all" if b == ALL_LABELS else b for b in config.report.curve_budgets]
    markdown = table_markdown([r for r in rows if r["labels_per_class"] in budgets], group=group)
    for key in budgets:
        plot_by_mode([r for r in rows if r["labels_per_class"] == key], "step",
                     os.path.join(plots_dir(workdir), f"accuracy_vs_steps_k{key}.png"),
                     xlabel="training steps", logx=True,
                     title=f"downstream with {key} labels per class")
    return rows, markdown


def few_shot_markdown(few_shot: dict) -> str:
    """A markdown table of ``few_shot_probe`` results (``{k: {"accuracy_mean", "accuracy_std"}}``)."""
    lines = ["| k per class | linear probe (logistic regression) on pretrained features |", "|---|---|"]
    lines += [f"| {k} | {v['accuracy_mean']:.3f} ± {v['accuracy_std']:.3f} |"
              for k, v in few_shot.items()]
    return "\n".join(lines)


def sweep_summary(config: ConfigDict, results: list[dict], table: list[dict], markdown: str,
                  *, headline: str, **extra: Any) -> dict:
    """The experiment's ``summary.json``: ``sweep.table.composed_summary`` with one entry
    per sub-run (mode, budget, seed, workdir) and the ``headline`` it ends by printing."""
    runs = [{k: r[k] for k in ("mode", "labels_per_class", "seed", "workdir")} for r in results]
    return composed_summary(config.experiment, config, runs, table, markdown,
                                     headline=headline, **extra)


__all__ = ["ALL_LABELS", "require_workdir", "subrun_config", "run_transfer_sweep",
           "set_mode_transfer", "fit_downstream",
           "table_report", "curve_report", "few_shot_markdown", "sweep_summary"]
