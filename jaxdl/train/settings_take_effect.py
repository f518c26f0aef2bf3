"""Settings that would silently do nothing are refused before training starts.

A ``transfer.frozen`` / ``dont_load`` / ``lr_multipliers`` regex that matches no
parameter path freezes, re-initialises or scales nothing; a
``checkpoint.best_metric`` or ``train.early_stopping_metric`` that names no
metric the run logs never ranks a checkpoint nor stops a run. Both need the
model and the evaluation splits, so ``fit`` calls this once it has them.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

import jax
from ml_collections import ConfigDict

from jaxdl.errors import ConfigError
from jaxdl.optim import param_path

_SHOWN_PATHS = 40


def parameter_paths(params: Any) -> list[str]:
    """Every parameter's path (``"layers/0/kernel"``), in tree order."""
    return [param_path(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def check_regexes_match(config: ConfigDict, params: Any) -> None:
    """Raise a ConfigError for a transfer regex that matches no parameter path.

    Args:
      config: the run's config (``transfer.frozen``, ``dont_load``, ``lr_multipliers``).
      params: the model's parameter tree.
    """
    transfer = config.get("transfer")
    if transfer is None:
        return
    settings = [("transfer.frozen", p) for p in transfer.get("frozen", ())]
    settings += [("transfer.dont_load", p) for p in transfer.get("dont_load", ())]
    settings += [("transfer.lr_multipliers", pair[0]) for pair in transfer.get("lr_multipliers", ())]
    if not settings:
        return
    paths = parameter_paths(params)
    for key, pattern in settings:
        if not any(re.search(pattern, path) for path in paths):
            shown = "\n  ".join(paths[:_SHOWN_PATHS])
            more = f"\n  ... and {len(paths) - _SHOWN_PATHS} more" if len(paths) > _SHOWN_PATHS else ""
            raise ConfigError(
                f"config.{key}: regex {pattern!r} matches no parameter path, so it would do "
                f"nothing; expected a regex (re.search) matching at least one of the model's "
                f"{len(paths)} parameter paths:\n  {shown}{more}")


def check_metric_names(config: ConfigDict, eval_splits: Iterable[str],
                       metric_names: Iterable[str]) -> None:
    """Raise a ConfigError for a monitored metric the run does not log.

    Args:
      config: the run's config (``checkpoint.best_metric``, ``train.early_stopping_metric``).
      eval_splits: the names of the splits evaluated periodically (``fit``'s ``eval_data``).
      metric_names: the task's metric names (``loss``, ``accuracy``, ...).
    """
    logged = sorted(f"{split}/{name}" for split in eval_splits for name in metric_names)
    for key in ("checkpoint.best_metric", "train.early_stopping_metric"):
        section, name = key.split(".")
        metric = config.get(section, {}).get(name, "")
        if metric and metric not in logged:
            raise ConfigError(
                f"config.{key}={metric!r} is not a metric this run logs at its evaluations; "
                f"expected one of {logged or '[] (no evaluation split)'}")


def check_settings_take_effect(config: ConfigDict, params: Any,
                               eval_data: Mapping[str, Any], metrics: Iterable[str]) -> None:
    """Both checks above, as ``fit`` runs them before compiling."""
    check_regexes_match(config, params)
    check_metric_names(config, eval_data, metrics)
