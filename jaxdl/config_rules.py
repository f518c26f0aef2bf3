"""Checks of config keys that are fine alone but not together.

Two kinds, both run on the flat values (``{"optimizer.lr": 0.001, ...}``) before
anything is written:

- ``CROSS_KEY_RULES``: ``rule(values)`` raises a ``ConfigError`` when keys
  contradict each other (warm-up longer than the run, schedule boundaries out of
  order, class lists that overlap). A rule whose keys are absent from a config
  does nothing, so one list serves every experiment.
- ``NO_EFFECT_RULES``: ``(key, is_read(values), reason)``: a key set away from
  its default while another key makes the run ignore it (``warmup_steps`` with a
  constant schedule, ``data.dir`` for a dataset built into scikit-learn) would
  silently do nothing, and is refused.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from jaxdl.errors import ConfigError

Values = Mapping[str, Any]


def check_profile_steps(steps: Any) -> tuple[int, int]:
    """``(start, stop)`` from ``config.train.profile_steps``, checked.

    Raises:
      ConfigError: not two integers with ``0 <= start < stop``.
    """
    ok = (isinstance(steps, (tuple, list)) and len(steps) == 2
          and all(isinstance(s, int) and not isinstance(s, bool) for s in steps)
          and 0 <= steps[0] < steps[1])
    if not ok:
        raise ConfigError(f"config.train.profile_steps={steps!r}; expected () or (start, stop), "
                          "two integers with 0 <= start < stop (global steps; stop excluded)")
    return int(steps[0]), int(steps[1])


def _steps_or_epochs(values: Values) -> None:
    if values.get("train.num_steps") == 0 and values.get("train.num_epochs") == 0:
        raise ConfigError("config.train.num_steps and config.train.num_epochs are both 0; "
                          "expected one of them positive")


def _profile_range(values: Values) -> None:
    if values.get("train.profile_steps"):
        check_profile_steps(values["train.profile_steps"])


def _monitored_metric_is_evaluated(values: Values) -> None:
    for key in ("checkpoint.best_metric", "train.early_stopping_metric"):
        metric = values.get(key)
        if metric and not values.get("train.eval_every"):
            raise ConfigError(f"config.{key}={metric!r} is only read at periodic evaluations, "
                              "but config.train.eval_every=0 never runs one; set "
                              "config.train.eval_every > 0 or clear the key")


def _run_length(values: Values) -> tuple[Any, str]:
    """The run's steps and how to name them (``check_schedule_within_run`` passes the total)."""
    steps = values.get("train.num_steps")
    return steps, values.get("run_length_words", f"config.train.num_steps={steps}")


def _warmup_within_run(values: Values) -> None:
    (steps, words), warmup = _run_length(values), values.get("optimizer.warmup_steps")
    if (values.get("optimizer.schedule") == "warmup_cosine" and isinstance(steps, int)
            and isinstance(warmup, int) and steps > 0 and warmup >= steps):
        raise ConfigError(f"config.optimizer.warmup_steps={warmup} is not shorter than the run "
                          f"({words}); expected warmup_steps < the run's steps")


def _decay_boundaries(values: Values) -> None:
    """``optimizer.decay_boundaries``: fractions of the run in (0, 1) or integer steps >= 1
    (as ``jaxdl.optim.make_schedule`` reads them), increasing, inside the run."""
    bounds = values.get("optimizer.decay_boundaries")
    if values.get("optimizer.schedule") != "step" or not isinstance(bounds, (tuple, list)):
        return
    steps, words = _run_length(values)
    steps = steps or 0
    where = f"config.optimizer.decay_boundaries={tuple(bounds)!r}"
    for b in bounds:
        if isinstance(b, float) and not 0 < b < 1:
            raise ConfigError(f"{where}: {b!r} is neither a fraction of the run in (0, 1) nor an "
                              "integer step; expected fractions like (0.5, 0.75) or steps like "
                              "(1000, 1500)")
        if isinstance(b, int) and steps and b >= steps:
            raise ConfigError(f"{where}: step {b} is not inside the run ({words}); "
                              f"expected steps < {steps}")
    fractions = [b for b in bounds if isinstance(b, float)]
    ints = [b for b in bounds if isinstance(b, int)]
    resolved = [int(b * steps) if isinstance(b, float) else b for b in bounds] if steps else None
    for seq in ([fractions, ints] if resolved is None else [resolved]):
        if any(a >= b for a, b in zip(seq, seq[1:])):
            raise ConfigError(f"{where}: the boundaries are not strictly increasing"
                              + (f" (steps {resolved})" if resolved else "")
                              + "; expected each later than the one before")


def _grad_accum_divides_batch(values: Values) -> None:
    batch, accum = values.get("train.batch_size"), values.get("train.grad_accum_steps")
    if isinstance(batch, int) and isinstance(accum, int) and batch > 0 and accum > 1 \
            and batch % accum:
        raise ConfigError(f"config.train.grad_accum_steps={accum} does not divide "
                          f"config.train.batch_size={batch}; expected a divisor of the batch")


def _normalisation_lengths(values: Values) -> None:
    mean, std = values.get("data.normalize_mean"), values.get("data.normalize_std")
    if isinstance(mean, (tuple, list)) and isinstance(std, (tuple, list)) and len(mean) != len(std):
        raise ConfigError(f"config.data.normalize_mean={tuple(mean)!r} and config.data."
                          f"normalize_std={tuple(std)!r} differ in length; expected one value "
                          "per channel in each (or both empty)")


def _interval(values: Values) -> None:
    low, high = values.get("data.low"), values.get("data.high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and not low < high:
        raise ConfigError(f"config.data.low={low!r} is not below config.data.high={high!r}; "
                          "expected low < high")


def _alpha_decays(values: Values) -> None:
    alpha, floor = values.get("word2vec.alpha"), values.get("word2vec.min_alpha")
    if isinstance(alpha, (int, float)) and isinstance(floor, (int, float)) and floor > alpha:
        raise ConfigError(f"config.word2vec.min_alpha={floor!r} is above config.word2vec."
                          f"alpha={alpha!r}; expected min_alpha <= alpha (the rate decays to it)")


def _disjoint_classes(values: Values) -> None:
    first, second = values.get("data.pretrain_classes"), values.get("data.transfer_classes")
    if isinstance(first, (tuple, list)) and isinstance(second, (tuple, list)):
        shared = sorted(set(first) & set(second))
        if shared:
            raise ConfigError(f"config.data.pretrain_classes={tuple(first)!r} and config.data."
                              f"transfer_classes={tuple(second)!r} share {shared}; expected "
                              "disjoint classes (transfer is to classes never seen in pretraining)")


def _downstream_steps(values: Values) -> None:
    steps = values.get("downstream.num_steps")
    if not isinstance(steps, int):
        return
    every = values.get("downstream.eval_every")
    if isinstance(every, int) and every > steps:
        raise ConfigError(f"config.downstream.eval_every={every} is longer than the run "
                          f"(config.downstream.num_steps={steps}); expected eval_every <= num_steps")
    curve = values.get("report.curve_steps")
    if isinstance(curve, (tuple, list)) and any(isinstance(s, int) and s > steps for s in curve):
        raise ConfigError(f"config.report.curve_steps={tuple(curve)!r} goes past config."
                          f"downstream.num_steps={steps}; expected steps <= {steps}")


def _curve_budgets_are_run(values: Values) -> None:
    budgets, run = values.get("report.curve_budgets"), values.get("downstream.labels_per_class")
    if isinstance(budgets, (tuple, list)) and isinstance(run, (tuple, list)):
        missing = [b for b in budgets if b not in run]
        if missing:
            raise ConfigError(f"config.report.curve_budgets={tuple(budgets)!r}: {missing} not in "
                              f"config.downstream.labels_per_class={tuple(run)!r}; expected "
                              "budgets the downstream grid runs")


def _few_label_steps(values: Values) -> None:
    low, high = (values.get("downstream.few_label.min_steps"),
                 values.get("downstream.few_label.max_steps"))
    if isinstance(low, int) and isinstance(high, int) and low > high:
        raise ConfigError(f"config.downstream.few_label.min_steps={low} is above max_steps="
                          f"{high}; expected min_steps <= max_steps")


# Every cross-key rule; each does nothing when its keys are absent.
CROSS_KEY_RULES: tuple[Callable[[Values], None], ...] = (
    _steps_or_epochs, _profile_range, _monitored_metric_is_evaluated, _warmup_within_run,
    _decay_boundaries, _grad_accum_divides_batch, _normalisation_lengths, _interval,
    _alpha_decays, _disjoint_classes, _downstream_steps, _curve_budgets_are_run,
    _few_label_steps)
# What ``fit`` re-checks once an experiment has resolved its sentinels.
CORE_CROSS_KEY_RULES = (_profile_range, _steps_or_epochs, _warmup_within_run, _decay_boundaries)


def check_schedule_within_run(optimizer: Any, total_steps: int) -> None:
    """Warm-up and step boundaries of ``optimizer`` (a config section) against the run's
    ``total_steps`` once it is known (``num_epochs`` × steps per epoch, say).

    Raises:
      ConfigError: a warm-up not shorter than the run, or boundaries outside it or out of order.
    """
    values = {"optimizer.schedule": optimizer.get("schedule"),
              "optimizer.warmup_steps": optimizer.get("warmup_steps", 0),
              "optimizer.decay_boundaries": tuple(optimizer.get("decay_boundaries", ())),
              "train.num_steps": int(total_steps),
              "run_length_words": f"{int(total_steps)} steps in all"}
    _warmup_within_run(values)
    _decay_boundaries(values)


def _schedule_in(*names: str) -> Callable[[Values], bool]:
    return lambda v: v.get("optimizer.schedule") in names


def _optimizer_in(*names: str) -> Callable[[Values], bool]:
    return lambda v: v.get("optimizer.name") in names


def _set(key: str) -> Callable[[Values], bool]:
    return lambda v: bool(v.get(key))


def _not_builtin_digits(v: Values) -> bool:
    return v.get("data.name") != "digits"


def _digits_split(v: Values) -> bool:  # MNIST and CIFAR come with their own test split
    return v.get("data.name") not in ("mnist", "fashion_mnist", "cifar10", "cifar100")


def _no_text_files(v: Values) -> bool:
    return not (v.get("data.train") or v.get("data.test"))


# (key, is_read(values), why it is not read otherwise); a key ending in "." is a section.
NO_EFFECT_RULES: tuple[tuple[str, Callable[[Values], bool], str], ...] = (
    ("optimizer.warmup_steps", _schedule_in("warmup_cosine"),
     "only config.optimizer.schedule='warmup_cosine' warms up"),
    ("optimizer.min_lr_ratio", _schedule_in("cosine", "warmup_cosine"),
     "only the cosine schedules decay to a floor"),
    ("optimizer.decay_boundaries", _schedule_in("step"), "only config.optimizer.schedule='step' reads it"),
    ("optimizer.decay_factor", _schedule_in("step"), "only config.optimizer.schedule='step' reads it"),
    ("optimizer.momentum", _optimizer_in("momentum"), "only config.optimizer.name='momentum' reads it"),
    ("optimizer.nesterov", _optimizer_in("momentum"), "only config.optimizer.name='momentum' reads it"),
    ("optimizer.b1", _optimizer_in("adam", "adamw"), "only adam and adamw read it"),
    ("optimizer.b2", _optimizer_in("adam", "adamw"), "only adam and adamw read it"),
    ("optimizer.eps", _optimizer_in("adam", "adamw"), "only adam and adamw read it"),
    ("max_consecutive_skips", lambda v: v.get("nan_policy") == "skip",
     "only config.nan_policy='skip' counts skipped updates"),
    ("train.early_stopping_mode", _set("train.early_stopping_metric"),
     "config.train.early_stopping_metric is empty"),
    ("train.early_stopping_patience", _set("train.early_stopping_metric"),
     "config.train.early_stopping_metric is empty"),
    ("checkpoint.best_mode", _set("checkpoint.best_metric"), "config.checkpoint.best_metric is empty"),
    ("checkpoint.keep_best", _set("checkpoint.best_metric"), "config.checkpoint.best_metric is empty"),
    ("data.dir", _not_builtin_digits, "data.name='digits' is built into scikit-learn"),
    ("data.download", _not_builtin_digits, "data.name='digits' is built into scikit-learn"),
    ("data.test_fraction", lambda v: _digits_split(v) and _no_text_files(v),
     "the dataset's own test split (or the data.train/data.test files) is used"),
    ("data.split_seed", lambda v: _digits_split(v) and _no_text_files(v),
     "the dataset's own test split (or the data.train/data.test files) is used"),
    ("data.max_per_class", _no_text_files, "data.train/data.test files are read whole"),
    ("data.label_kind", lambda v: v.get("data.name") == "cifar100",
     "only CIFAR-100 has coarse labels"),
    # transfer_text reads word vectors and an encoder directory for its encoder kind only
    # (text_classifier, which has no pretrain section, reads transfer.embeddings_from).
    ("transfer.embeddings_from", lambda v: v.get("pretrain.kind") in (None, "encoder"),
     "only config.pretrain.kind='encoder' reads it (its word-vector probes)"),
    ("pretrain.encoder_from", lambda v: v.get("pretrain.kind") == "encoder",
     "only config.pretrain.kind='encoder' reads it"),
    ("downstream.num_steps", lambda v: v.get("downstream.rule") != "few_label",
     "config.downstream.rule='few_label' sets each downstream run's steps"),
    ("downstream.eval_every", lambda v: v.get("downstream.rule") != "few_label",
     "config.downstream.rule='few_label' sets each downstream run's evaluations"),
    ("downstream.few_label.", lambda v: v.get("downstream.rule") == "few_label",
     "only config.downstream.rule='few_label' reads the rule's settings"),
)


def check_no_effect(values: Values, defaults: Values) -> None:
    """Refuse a key set away from its default (``defaults``) that the run would ignore.

    Raises:
      ConfigError: naming the key, its value, and which setting makes it do nothing.
    """
    for rule_key, is_read, why in NO_EFFECT_RULES:
        keys = [k for k in values if k.startswith(rule_key)] if rule_key.endswith(".") else \
            [rule_key]
        for key in keys:
            if key in values and key in defaults and values[key] != defaults[key] \
                    and not is_read(values):
                raise ConfigError(f"config.{key}={values[key]!r} would do nothing: {why}; "
                                  f"expected its default {defaults[key]!r}, or the setting "
                                  "that reads it")


def check_cross_key_rules(values: Values, rules=CROSS_KEY_RULES) -> None:
    """Run each of ``rules`` (default ``CROSS_KEY_RULES``) on the flat ``values``."""
    for rule in rules:
        rule(values)
