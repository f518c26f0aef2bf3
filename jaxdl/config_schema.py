"""The declarative schema of every config key, and the check run before anything is written.

``CORE_SCHEMA`` gives a ``Spec`` (type, range, choices, element spec) for every
key of ``jaxdl.config.default_config()``. An experiment may export its own
``CONFIG_SCHEMA = {"model.hidden": Spec(...), ...}`` for its sections; every
other key of its ``get_config()`` gets a spec inferred from its default value
(``infer_spec``): the same type, a positive default stays positive, a
non-negative one non-negative, floats finite, tuples element by element, and
keys named like ``dropout`` or ``fraction`` in [0, 1).

``CROSS_KEY_RULES`` are the checks of keys that are fine alone but not
together. ``validate_config`` raises a ``ConfigError`` naming the key, the value
and what was expected; ``jaxdl.run`` calls it before the workdir is touched. A
value equal to the experiment's own default is accepted there, so that an
experiment may give a core key a sentinel it resolves; ``validate_core`` checks
the core keys again, sentinels resolved, when ``fit`` starts. This module is the
one home of config checks; checks that need the model or the data are
``jaxdl.train.settings_take_effect`` and ``jaxdl.train.data_checks``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Mapping

import ml_collections

from jaxdl.errors import ConfigError

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "step")
NAN_POLICIES = ("none", "raise", "skip")


@dataclasses.dataclass(frozen=True)
class Spec:
    """What one config value must be.

    Attributes:
      kind: ``bool``, ``int``, ``float`` (ints accepted), ``str``, ``tuple`` (a list
        or tuple), ``"regex"`` (a str that compiles), or None (anything).
      low, high: inclusive bounds unless ``low_open`` / ``high_open``.
      choices: the allowed values, or None.
      element: the spec of each element of a tuple; ``pair``: of a 2-tuple's
        ``(first, second)`` elements instead.
    """

    kind: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    element: "Spec | None" = None
    pair: "tuple[Spec, Spec] | None" = None

    def describe(self) -> str:
        """What is expected, in words (used in error messages)."""
        if self.choices is not None:
            return f"one of {self.choices}"
        name = {bool: "a bool (True or False)", int: "an integer", float: "a finite number",
                str: "a string", tuple: "a list or tuple", "regex": "a regular expression"
                }.get(self.kind, "a value")
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {self.low!r}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {self.high!r}")
        return name + (" " + " and ".join(bounds) if bounds else "")


POSITIVE_INT = Spec(int, low=1)
COUNT = Spec(int, low=0)
FRACTION = Spec(float, low=0, high=1, high_open=True)  # [0, 1)
BOOL = Spec(bool)
REGEXES = Spec(tuple, element=Spec("regex"))

CORE_SCHEMA: dict[str, Spec] = {
    "experiment": Spec(str),
    "seed": Spec(int, low=0, high=2 ** 32, high_open=True),
    "force_resume": BOOL,
    "nan_policy": Spec(str, choices=NAN_POLICIES),
    "max_consecutive_skips": POSITIVE_INT,
    "optimizer.name": Spec(str, choices=OPTIMIZERS),
    "optimizer.lr": Spec(float, low=0, low_open=True),
    "optimizer.momentum": FRACTION,
    "optimizer.nesterov": BOOL,
    "optimizer.b1": FRACTION,
    "optimizer.b2": FRACTION,
    "optimizer.eps": Spec(float, low=0, low_open=True),
    "optimizer.weight_decay": Spec(float, low=0),
    "optimizer.grad_clip_norm": Spec(float, low=0),
    "optimizer.schedule": Spec(str, choices=SCHEDULES),
    "optimizer.warmup_steps": COUNT,
    "optimizer.min_lr_ratio": Spec(float, low=0, high=1),
    "optimizer.decay_boundaries": Spec(tuple, element=Spec(float, low=0, low_open=True)),
    "optimizer.decay_factor": Spec(float, low=0, low_open=True),
    "train.batch_size": POSITIVE_INT,
    "train.eval_batch_size": POSITIVE_INT,
    "train.num_steps": COUNT,
    "train.num_epochs": COUNT,
    "train.log_every": POSITIVE_INT,
    "train.eval_every": COUNT,
    "train.eval_train": BOOL,
    "train.steps_per_loop": POSITIVE_INT,
    "train.grad_accum_steps": POSITIVE_INT,
    "train.compute_dtype": Spec(str, choices=("float32", "bfloat16", "float16")),
    "train.ema_decay": FRACTION,
    "train.compilation_cache_dir": Spec(str),
    # () or (start, stop): its elements and their order are the rule check_profile_steps
    # (one message for all three), the run's length is checked by jaxdl.train.profile.
    "train.profile_steps": Spec(tuple),
    "train.progress_bar": BOOL,
    "train.early_stopping_metric": Spec(str),
    "train.early_stopping_mode": Spec(str, choices=("max", "min")),
    "train.early_stopping_patience": POSITIVE_INT,
    "checkpoint.every_steps": COUNT,
    "checkpoint.max_to_keep": POSITIVE_INT,
    "checkpoint.best_metric": Spec(str),
    "checkpoint.best_mode": Spec(str, choices=("max", "min")),
    "checkpoint.keep_best": POSITIVE_INT,
    "transfer.init_from": Spec(str),
    "transfer.embeddings_from": Spec(str),
    "transfer.dont_load": REGEXES,
    "transfer.frozen": REGEXES,
    "transfer.lr_multipliers": Spec(tuple, pair=(Spec("regex"), Spec(float, low=0))),
    "mesh.data": POSITIVE_INT,
    "mesh.model": POSITIVE_INT,
    "mesh.param_sharding": Spec(str, choices=("replicated", "fsdp")),
}

_UNIT_INTERVAL_NAMES = re.compile(r"dropout|fraction|keep_prob")


def infer_spec(key: str, default: Any) -> Spec:
    """A spec from a default value: its type, its sign, its elements' specs."""
    if isinstance(default, bool):
        return BOOL
    if isinstance(default, int):
        return Spec(int, low=1 if default > 0 else 0 if default == 0 else None)
    if isinstance(default, float):
        if _UNIT_INTERVAL_NAMES.search(key.rsplit(".", 1)[-1]) and 0 <= default < 1:
            return FRACTION
        return Spec(float, low=0 if default >= 0 else None)
    if isinstance(default, str):
        return Spec(str)
    if isinstance(default, (tuple, list)):
        elements = [infer_spec(key, d) for d in default]
        same = elements and all(e == elements[0] for e in elements)
        return Spec(tuple, element=elements[0] if same else None)
    return Spec(None)


def _problem(spec: Spec, value: Any) -> str | None:
    """Why ``value`` does not satisfy ``spec``, or None."""
    kind = spec.kind
    if kind is bool and not isinstance(value, bool):
        return "wrong type"
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return "wrong type"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "wrong type"
        if not math.isfinite(value):
            return "not finite"
    if kind in (str, "regex") and not isinstance(value, str):
        return "wrong type"
    if kind == "regex":
        try:
            re.compile(value)
        except re.error as err:
            return f"not a valid regular expression ({err})"
    if kind is tuple:
        if not isinstance(value, (tuple, list)):
            return "wrong type"
        for index, item in enumerate(value):
            if spec.pair is not None:
                if not isinstance(item, (tuple, list)) or len(item) != 2:
                    return f"element {index} ({item!r}) is not a (regex, factor) pair"
                for part, sub in zip(item, spec.pair):
                    if _problem(sub, part):
                        return f"element {index} ({item!r}): {part!r} is not {sub.describe()}"
            elif spec.element is not None and _problem(spec.element, item):
                return f"element {index} ({item!r}) is not {spec.element.describe()}"
        return None
    if spec.choices is not None and value not in spec.choices:
        return "not a choice"
    if kind in (int, float):
        if spec.low is not None and (value < spec.low or (spec.low_open and value == spec.low)):
            return "out of range"
        if spec.high is not None and (value > spec.high or (spec.high_open and value == spec.high)):
            return "out of range"
    return None


def flat_items(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optimizer.lr": 0.001, ...}`` for a ConfigDict or nested mapping."""
    items = {}
    for key, value in tree.items():
        if isinstance(value, (ml_collections.ConfigDict, Mapping)):
            items.update(flat_items(value, f"{prefix}{key}."))
        else:
            items[f"{prefix}{key}"] = value
    return items


def check_value(key: str, value: Any, spec: Spec) -> None:
    """Raise a ConfigError naming ``key`` unless ``value`` satisfies ``spec``."""
    problem = _problem(spec, value)
    if problem is not None:
        if problem.startswith("element"):
            raise ConfigError(f"config.{key}={value!r}: {problem}")
        detail = f" ({problem})" if "regular" in problem else ""
        raise ConfigError(f"config.{key}={value!r}{detail}; expected {spec.describe()}")


def validate_config(config: ml_collections.ConfigDict, *,
                    defaults: ml_collections.ConfigDict | None = None,
                    schema: Mapping[str, Spec] | None = None) -> None:
    """Check every key of ``config`` before anything is written or compiled.

    Args:
      config: the resolved config.
      defaults: the experiment's ``get_config()``: specs of keys outside the core
        schema are inferred from these defaults (None: only core and ``schema``).
      schema: the experiment's own ``CONFIG_SCHEMA`` (overrides inference).
    Raises:
      ConfigError: the first bad key, its value and what was expected.
    """
    values = flat_items(config)
    own = flat_items(defaults) if defaults else {}
    specs = {k: infer_spec(k, v) for k, v in own.items()}
    specs.update(CORE_SCHEMA)
    specs.update(schema or {})
    for key in sorted(values):
        # An experiment's own default may be a sentinel it resolves itself (e.g.
        # logistic regression's batch_size=0: the whole split).
        if key in specs and not (key in own and values[key] == own[key]):
            check_value(key, values[key], specs[key])
    check_cross_key_rules(values, CROSS_KEY_RULES)


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


def _steps_or_epochs(values: Mapping[str, Any]) -> None:
    if values.get("train.num_steps") == 0 and values.get("train.num_epochs") == 0:
        raise ConfigError("config.train.num_steps and config.train.num_epochs are both 0; "
                          "expected one of them positive")


def _profile_range(values: Mapping[str, Any]) -> None:
    if values.get("train.profile_steps"):
        check_profile_steps(values["train.profile_steps"])


def _monitored_metric_is_evaluated(values: Mapping[str, Any]) -> None:
    for key in ("checkpoint.best_metric", "train.early_stopping_metric"):
        metric = values.get(key)
        if metric and not values.get("train.eval_every"):
            raise ConfigError(f"config.{key}={metric!r} is only read at periodic evaluations, "
                              "but config.train.eval_every=0 never runs one; set "
                              "config.train.eval_every > 0 or clear the key")


# Keys that are fine alone but not together: ``rule(flat values)`` raises a ConfigError.
CROSS_KEY_RULES = (_steps_or_epochs, _profile_range, _monitored_metric_is_evaluated)
# What ``fit`` re-checks once an experiment has resolved its sentinels.
CORE_CROSS_KEY_RULES = (_profile_range, _steps_or_epochs)


def check_cross_key_rules(values: Mapping[str, Any], rules=CROSS_KEY_RULES) -> None:
    """Run each of ``rules`` (default ``CROSS_KEY_RULES``) on the flat ``values``."""
    for rule in rules:
        rule(values)


def validate_core(config: ml_collections.ConfigDict) -> None:
    """Check the core's keys (``CORE_SCHEMA``) and their cross-key rules, as ``fit`` starts.

    Unlike ``validate_config``, no value is exempt: an experiment's sentinels are
    resolved by now.
    Raises:
      ConfigError: the first bad key, its value and what was expected.
    """
    values = flat_items(config)
    for key, spec in CORE_SCHEMA.items():
        if key in values:
            check_value(key, values[key], spec)
    check_cross_key_rules(values, CORE_CROSS_KEY_RULES)
