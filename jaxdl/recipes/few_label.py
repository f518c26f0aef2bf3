"""The few-label rule: downstream settings fixed in advance as a function of the label budget.

With a handful of labels per class a fixed schedule (one step count, learning
rate and dropout for every budget) either over- or under-trains, and nothing
but test accuracy would tell which. The rule below decides everything before
any result is seen, and the only data it looks at besides the training labels
is a held-out share of those same labels, never the test split:

* **Hold-out.** Of each class's ``n_c`` labelled examples (``k``, or the whole
  class at "all labels"), ``max(1, round(holdout_share * n_c))`` are held out as
  the validation split ``val`` when ``n_c >= 2`` (default share 0.2: 1 of 5, 2 of
  10, 4 of 20, 10 of 50). With ``n_c = 1`` there is nothing to hold out: the
  single example is trained on, nothing is selected, the run ends at
  ``min_steps`` with its final parameters, and the logistic regressions use
  ``fixed_C``. Which examples are held out is a pure function of
  ``(seed, class)``, so every mode of a budget and seed sees the same split.
* **Steps.** ``epochs`` passes over the remaining training examples, within
  ``[min_steps, max_steps]``, rounded up to a multiple of ``eval_every``
  (defaults 30 epochs, 200 to 1,500 steps, batches of ``config.train.batch_size``).
* **Optimiser and regularisation.** AdamW at ``lr`` (2e-3) with decoupled weight
  decay ``weight_decay`` (0.01), dropout ``dropout`` (0.5, Kim 2014's value).
* **Early stopping.** ``val`` and ``test`` are evaluated every ``eval_every``
  (25) steps; training stops after ``patience`` (12) evaluations without a
  better ``val`` accuracy. The reported test figures are those at the best
  ``val`` step: highest ``val`` accuracy, ties broken by lower ``val`` loss, then
  by the earlier step. Test values are recorded but never compared.
* **Logistic regressions** (TF-IDF baseline, pooled probes): inverse
  regularisation ``C`` from ``C_grid`` (0.01 to 100) by the same ``val``
  accuracy (ties: lower ``val`` log-loss, then smaller ``C``), fitted on the
  training part only; with no hold-out, ``C = fixed_C`` (1.0).

The constants are ``FewLabelRule``'s defaults; an experiment opts in with
``config.downstream.rule = "few_label"`` (overrides in ``config.downstream.few_label``),
and ``apply_rule`` writes the resulting settings into a sub-run's config, so its
``config.json`` records them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any, Mapping, Sequence

import numpy as np
from ml_collections import ConfigDict

from jaxdl.config_schema import SECTION_SCHEMA, check_value
from jaxdl.data.sources import draw_k_per_class
from jaxdl.errors import ConfigError

RULES = ("fixed", "few_label")


@dataclasses.dataclass(frozen=True)
class FewLabelRule:
    """The rule's constants (see the module docstring for what each decides)."""

    holdout_share: float = 0.2
    epochs: float = 30.0
    min_steps: int = 200
    max_steps: int = 1500
    eval_every: int = 25
    patience: int = 12
    lr: float = 2e-3
    weight_decay: float = 0.01
    dropout: float = 0.5
    C_grid: tuple = (0.01, 0.1, 1.0, 10.0, 100.0)
    fixed_C: float = 1.0

    def __post_init__(self):
        # The same specs jaxdl.run checks the config against (config_schema.SECTION_SCHEMA).
        for field in dataclasses.fields(self):
            key = f"downstream.few_label.{field.name}"
            if key in SECTION_SCHEMA:
                check_value(key, getattr(self, field.name), SECTION_SCHEMA[key])
        if self.min_steps > self.max_steps:
            raise ConfigError(f"few_label steps: min_steps={self.min_steps}, max_steps="
                              f"{self.max_steps}; expected min_steps <= max_steps")

    @classmethod
    def from_config(cls, overrides: Mapping[str, Any] | None) -> "FewLabelRule":
        """The rule with ``overrides`` (e.g. ``config.downstream.few_label``) replacing defaults.

        Raises:
          ConfigError: an unknown key (naming it and the known ones) or a bad value.
        """
        overrides = dict(overrides or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"config.downstream.few_label has unknown keys {unknown}; "
                              f"expected some of {sorted(known)}")
        if "C_grid" in overrides:
            overrides["C_grid"] = tuple(float(c) for c in overrides["C_grid"])
        return cls(**overrides)

    def holdout(self, class_size: int) -> int:
        """Examples of a class with ``class_size`` labels held out for ``val`` (0 when 1)."""
        if class_size < 2:
            return 0
        return max(1, int(round(self.holdout_share * class_size)))

    def num_steps(self, train_examples: int, batch_size: int) -> int:
        """``epochs`` over ``train_examples`` in batches, clipped, a multiple of ``eval_every``."""
        steps = math.ceil(self.epochs * train_examples / batch_size)
        steps = min(max(steps, self.min_steps), self.max_steps)
        return math.ceil(steps / self.eval_every) * self.eval_every

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}


def downstream_rule(downstream: ConfigDict) -> FewLabelRule | None:
    """``FewLabelRule`` when ``downstream.rule == "few_label"``, None for ``"fixed"`` (default).

    Raises:
      ConfigError: another rule name.
    """
    name = downstream.get("rule", "fixed")
    if name not in RULES:
        raise ConfigError(f"config.downstream.rule={name!r}; expected one of {list(RULES)}")
    return FewLabelRule.from_config(downstream.get("few_label")) if name == "few_label" else None


def labelled_split(labels: np.ndarray, labels_per_class: int, seed: int,
                   rule: FewLabelRule | None) -> tuple[np.ndarray, np.ndarray]:
    """The labelled examples of a budget and seed, split into training and ``val`` parts.

    Args:
      labels: int ``[N]`` labels of the pool.
      labels_per_class: ``k`` (0: every label), drawn by ``draw_k_per_class(labels, k, seed)``.
      seed: which subset (and which of it is held out).
      rule: None keeps every drawn example for training (``val`` empty).
    Returns:
      ``(train_indices, val_indices)``, sorted int64 indices into ``labels``.
    """
    drawn = draw_k_per_class(labels, labels_per_class, seed)
    if rule is None:
        return drawn, np.zeros((0,), np.int64)
    labels = np.asarray(labels)
    held = []
    for cls in np.unique(labels[drawn]):
        members = drawn[labels[drawn] == cls]
        order = np.random.default_rng([int(seed), int(cls), 1]).permutation(members)
        held.append(order[:rule.holdout(len(members))])
    val = np.sort(np.concatenate(held)).astype(np.int64)
    return np.setdiff1d(drawn, val).astype(np.int64), val


def indices_digest(train: np.ndarray, val: np.ndarray) -> dict:
    """``{"train", "val", "sha256"}``: sizes and a digest of both index lists (for summaries)."""
    h = hashlib.sha256(np.asarray(train, np.int64).tobytes() + b"|"
                       + np.asarray(val, np.int64).tobytes())
    return {"train": int(len(train)), "val": int(len(val)), "sha256": h.hexdigest()}


def schedule_phrase(downstream: ConfigDict) -> str:
    """How a table's test accuracy was read: ``"after N steps"`` or at the best held-out step."""
    if downstream_rule(downstream) is None:
        return f"after {downstream.num_steps} steps"
    return "at the best held-out step (few-label rule)"


def apply_rule(sub: ConfigDict, rule: FewLabelRule | None, pool_labels: np.ndarray) -> None:
    """Write the rule's settings for ``sub.labels_per_class`` and ``sub.seed`` into ``sub``
    (nothing when ``rule`` is None).

    Sets ``train.num_steps``, ``train.eval_every``, the early stopping keys,
    ``optimizer`` (adamw, lr, weight decay), ``model.dropout`` (when the model
    has one) and ``sub.few_label`` (the rule's constants, which ``fit_downstream``
    and the logistic-regression modes read).
    """
    if rule is None:
        return
    train, _ = labelled_split(pool_labels, sub.labels_per_class, sub.seed, rule)
    sub.train.num_steps = rule.num_steps(len(train), sub.train.batch_size)
    sub.train.eval_every = rule.eval_every
    sub.train.early_stopping_metric = "val/accuracy"
    sub.train.early_stopping_mode = "max"
    sub.train.early_stopping_patience = rule.patience
    sub.optimizer.update(name="adamw", lr=rule.lr, weight_decay=rule.weight_decay)
    if "model" in sub and "dropout" in sub.model:
        sub.model.dropout = rule.dropout
    sub.few_label = rule.as_dict()


def rule_of(sub: ConfigDict) -> FewLabelRule | None:
    """The rule a sub-run was configured with by ``apply_rule``, or None."""
    return FewLabelRule.from_config(sub.few_label) if "few_label" in sub else None


def best_eval(history: Sequence[Mapping[str, Any]], select: str = "val",
              report: str = "test") -> dict | None:
    """The evaluation chosen on ``select`` and the ``report`` split's values at its step.

    Args:
      history: ``fit``'s logged events (``{"step", "split", metric: value}``).
      select: the split that chooses (highest accuracy, then lowest loss, then earliest).
      report: the split whose values at that step are returned; never compared.
    Returns:
      ``{"step", select: {...}, report: {...}}``, or None when ``select`` was never evaluated.
    """
    by_split: dict[str, dict[int, dict]] = {}
    for event in history:
        if event.get("split") in (select, report):
            values = {k: v for k, v in event.items() if k not in ("step", "split")}
            by_split.setdefault(event["split"], {})[int(event["step"])] = values
    chosen = by_split.get(select, {})
    if not chosen:
        return None
    step = min(chosen, key=lambda s: (-chosen[s]["accuracy"], chosen[s].get("loss", 0.0), s))
    return {"step": step, select: chosen[step], report: by_split.get(report, {}).get(step, {})}


def select_logistic_regression(train: tuple, val: tuple, rule: FewLabelRule | None):
    """A scikit-learn logistic regression with ``C`` chosen by the rule.

    Args:
      train, val: ``(features [n, D] dense or sparse, labels int [n])``; ``val`` may be empty.
      rule: None (or an empty ``val``) fits ``C = FewLabelRule().fixed_C``.
    Returns:
      ``(fitted classifier, {"C", "val": {"accuracy", "loss"} or None})``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    def fitted(C: float):
        return LogisticRegression(C=C, max_iter=5000).fit(*train)

    rule_ = rule or FewLabelRule()
    if rule is None or len(val[1]) == 0:
        return fitted(rule_.fixed_C), {"C": rule_.fixed_C, "val": None}
    best = None
    for C in sorted(rule_.C_grid):
        model = fitted(C)
        acc = float(np.mean(model.predict(val[0]) == val[1]))
        loss = float(log_loss(val[1], model.predict_proba(val[0]), labels=model.classes_))
        if best is None or (-acc, loss) < (-best[1]["accuracy"], best[1]["loss"]):
            best = (C, {"accuracy": acc, "loss": loss}, model)
    return best[2], {"C": best[0], "val": best[1]}


__all__ = ["RULES", "FewLabelRule", "downstream_rule", "labelled_split", "indices_digest",
           "schedule_phrase", "apply_rule", "rule_of", "best_eval", "select_logistic_regression"]
