"""The declarative schema of every config key, and the check run before anything is written.

``CORE_SCHEMA`` gives a ``Spec`` (``jaxdl.config_spec``: type, range, choices,
element spec) for every key of ``jaxdl.config.default_config()``;
``SECTION_SCHEMA`` for the keys of sections several experiments share (the
vision ``data`` section, ``word2vec``, ``downstream``, ``report``, ...), applied
wherever such a key exists. An experiment exports ``CONFIG_SCHEMA = {key: Spec}``
for its own keys and for the ``transfer.*`` keys it reads: a ``transfer.*`` key
it does not list is ``NOT_READ`` there (any value but the default is refused,
since it would do nothing); ``reads_transfer(...)`` lists them. Every other key
of its ``get_config()`` gets a spec inferred from its default value
(``infer_spec``). Precedence: inferred < section < core < the experiment's own.

``jaxdl.config_rules`` holds the checks of keys that are fine alone but not
together (cross-key rules, and keys another key makes the run ignore).
``validate_experiment`` / ``validate_config`` raise a ``ConfigError`` naming the
key, the value and what was expected; ``jaxdl.run`` and ``jaxdl.sweep`` call
them before anything is written. A value equal to the experiment's own default
is accepted, so that an experiment may give a core key a sentinel it resolves;
``validate_core`` checks the core keys again, sentinels resolved, when ``fit``
starts. Checks that need the model or the data are
``jaxdl.train.settings_take_effect`` and ``jaxdl.train.data_checks``.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any, Mapping

import ml_collections

from jaxdl.config_rules import (CORE_CROSS_KEY_RULES, CROSS_KEY_RULES, check_cross_key_rules,
                                check_no_effect, check_profile_steps)
from jaxdl.config_spec import (BOOL, COUNT, FRACTION, NON_NEGATIVE, NOT_READ, POSITIVE,
                               POSITIVE_INT, REGEXES, SHARE, Spec, check_value, int_list,
                               not_read)

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "step")
NAN_POLICIES = ("none", "raise", "skip")


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

TRANSFER_KEYS = tuple(k for k in CORE_SCHEMA if k.startswith("transfer."))


def reads_transfer(*keys: str) -> dict[str, Spec]:
    """``CONFIG_SCHEMA`` entries saying an experiment reads these ``transfer.*`` keys.

    Example: ``CONFIG_SCHEMA = reads_transfer("frozen", "lr_multipliers")`` for an
    experiment whose one ``fit`` takes ``config.transfer`` as it is.
    """
    return {f"transfer.{k}": CORE_SCHEMA[f"transfer.{k}"] for k in keys}


_WORD2VEC = {"alpha": POSITIVE, "min_alpha": NON_NEGATIVE, "sample": NON_NEGATIVE,
             "row_cap": NON_NEGATIVE, "dim": POSITIVE_INT, "epochs": POSITIVE_INT,
             "window": POSITIVE_INT, "negative": POSITIVE_INT, "min_count": POSITIVE_INT,
             "batch_centres": POSITIVE_INT, "chunks": POSITIVE_INT, "streams": POSITIVE_INT,
             "steps_per_call": POSITIVE_INT}
_FEW_LABEL = {"holdout_share": SHARE, "epochs": POSITIVE, "min_steps": POSITIVE_INT,
              "max_steps": POSITIVE_INT, "eval_every": POSITIVE_INT, "patience": POSITIVE_INT,
              "lr": POSITIVE, "weight_decay": NON_NEGATIVE, "dropout": FRACTION,
              "C_grid": Spec(tuple, element=POSITIVE, min_len=1, distinct=True),
              "fixed_C": POSITIVE}

# Keys of sections several experiments share, wherever they exist.
SECTION_SCHEMA: dict[str, Spec] = {
    "data.test_fraction": SHARE,
    "data.split_seed": Spec(int, low=0, high=2 ** 32, high_open=True),
    "data.crop_padding": COUNT,
    "data.workers": COUNT,
    "data.prefetch": POSITIVE_INT,
    "data.cache_mb": COUNT,
    "data.normalize_mean": Spec(tuple, element=Spec(float)),
    "data.normalize_std": Spec(tuple, element=POSITIVE),
    "data.max_per_class": POSITIVE_INT,
    "data.min_count": POSITIVE_INT,
    "data.label_kind": Spec(str, choices=("fine", "coarse")),
    "data.worker_mode": Spec(str, choices=("threads", "processes")),
    "model.dropout": FRACTION,
    "downstream.labels_per_class": int_list(0, min_len=0),  # 0: all labels
    "downstream.seeds": int_list(0, 2 ** 32 - 1),
    "downstream.num_steps": POSITIVE_INT,
    "downstream.eval_every": POSITIVE_INT,
    "downstream.linear_probe_lr": POSITIVE,
    "report.curve_steps": int_list(1),
    "report.curve_budgets": int_list(0, min_len=0),
    "report.few_shot_ks": int_list(1),
    **{f"word2vec.{k}": v for k, v in _WORD2VEC.items()},
    **{f"downstream.few_label.{k}": v for k, v in _FEW_LABEL.items()},
}

_UNIT_INTERVAL_NAMES = re.compile(r"dropout|keep_prob")


def infer_spec(key: str, default: Any) -> Spec:
    """A spec from a default value: its type, its sign, its elements' specs.

    Integers: a positive default stays >= 1, a zero one >= 0; floats finite and of
    the default's sign; keys named like ``dropout`` in [0, 1), like ``fraction`` or
    ``share`` in (0, 1); tuples element by element (ints: the least bound of them).
    """
    leaf = key.rsplit(".", 1)[-1]
    if isinstance(default, bool):
        return BOOL
    if isinstance(default, int):
        return Spec(int, low=1 if default > 0 else 0 if default == 0 else None)
    if isinstance(default, float):
        if re.search(r"fraction|share", leaf) and 0 < default < 1:
            return SHARE
        if _UNIT_INTERVAL_NAMES.search(leaf) and 0 <= default < 1:
            return FRACTION
        return Spec(float, low=0 if default >= 0 else None)
    if isinstance(default, str):
        return Spec(str)
    if isinstance(default, (tuple, list)):
        elements = [infer_spec(key, d) for d in default]
        if elements and all(e.kind is int for e in elements):
            lows = [e.low for e in elements]
            return Spec(tuple, element=Spec(int, low=None if None in lows else min(lows)))
        same = elements and all(e == elements[0] for e in elements)
        return Spec(tuple, element=elements[0] if same else None)
    return Spec(None)


def experiment_specs(defaults: ml_collections.ConfigDict | None,
                     schema: Mapping[str, Spec] | None = None) -> dict[str, Spec]:
    """Every key's spec for an experiment: inferred < section < core < its ``CONFIG_SCHEMA``.

    With ``defaults`` (an experiment), ``transfer.*`` keys missing from ``schema``
    are ``NOT_READ``.
    """
    own = flat_items(defaults) if defaults else {}
    specs = {k: infer_spec(k, v) for k, v in own.items()}
    specs.update({k: v for k, v in SECTION_SCHEMA.items() if k in own})
    specs.update(CORE_SCHEMA)
    if defaults is not None:
        specs.update({k: NOT_READ for k in TRANSFER_KEYS})
    specs.update(schema or {})
    return specs


def flat_items(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optimizer.lr": 0.001, ...}`` for a ConfigDict or nested mapping."""
    items = {}
    for key, value in tree.items():
        if isinstance(value, (ml_collections.ConfigDict, Mapping)):
            items.update(flat_items(value, f"{prefix}{key}."))
        else:
            items[f"{prefix}{key}"] = value
    return items


def validate_config(config: ml_collections.ConfigDict, *,
                    defaults: ml_collections.ConfigDict | None = None,
                    schema: Mapping[str, Spec] | None = None) -> None:
    """Check every key of ``config`` before anything is written or compiled.

    Args:
      config: the resolved config.
      defaults: the experiment's ``get_config()`` (see ``experiment_specs``; None:
        only the core's and ``schema``'s keys, and no ``transfer.*`` key is refused).
      schema: the experiment's own ``CONFIG_SCHEMA``.
    Raises:
      ConfigError: the first bad key, its value and what was expected; a key that
        would do nothing; keys that contradict each other.
    """
    values = flat_items(config)
    own = flat_items(defaults) if defaults else {}
    specs = experiment_specs(defaults, schema)
    for key in sorted(values):
        # An experiment's own default may be a sentinel it resolves itself (e.g.
        # logistic regression's batch_size=0: the whole split).
        if key in specs and not (key in own and values[key] == own[key]):
            check_value(key, values[key], specs[key], own.get(key))
    check_no_effect(values, own)
    check_cross_key_rules(values, CROSS_KEY_RULES)


def validate_experiment(module: ModuleType, config: ml_collections.ConfigDict) -> None:
    """``validate_config`` of ``config`` against experiment ``module``'s defaults and schema."""
    validate_config(config, defaults=module.get_config(),
                    schema=getattr(module, "CONFIG_SCHEMA", None))


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


__all__ = ["CORE_SCHEMA", "SECTION_SCHEMA", "TRANSFER_KEYS", "CROSS_KEY_RULES", "Spec", "NOT_READ",
           "check_profile_steps", "check_value", "experiment_specs", "flat_items", "infer_spec",
           "int_list", "not_read", "reads_transfer", "validate_config", "validate_core",
           "validate_experiment"]
