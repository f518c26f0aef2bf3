"""The configuration every run shares, and the names of its keys.

``default_config()`` holds the keys the training core reads; an experiment's
``get_config()`` starts from it and adds ``data`` and ``model`` keys. Configs are
locked: setting a key that does not exist is an error naming the closest key.
What each key's value must be is ``jaxdl.config_schema``.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable

import ml_collections

from jaxdl.errors import ConfigError

# What absl's boolean parser accepts (compared lower-cased).
BOOL_WORDS = ("true", "false", "t", "f", "1", "0")


def default_config() -> ml_collections.ConfigDict:
    """The core's keys with their defaults (an experiment overrides and extends)."""
    c = ml_collections.ConfigDict()
    c.experiment = ""
    c.seed = 0
    c.force_resume = False  # resume even if the workdir's config differs
    c.nan_policy = "none"  # "raise": stop at the first NaN/Inf; "skip": skip that update
    c.max_consecutive_skips = 10

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "adam"
    c.optimizer.lr = 1e-3
    c.optimizer.momentum = 0.9
    c.optimizer.nesterov = False
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.999
    c.optimizer.eps = 1e-8
    c.optimizer.weight_decay = 0.0
    c.optimizer.grad_clip_norm = 0.0  # 0 disables clipping
    c.optimizer.schedule = "constant"
    c.optimizer.warmup_steps = 0
    c.optimizer.min_lr_ratio = 0.0  # floor of cosine schedules, as a fraction of lr
    c.optimizer.decay_boundaries = (0.5, 0.75)  # step schedule: fractions of the run in (0, 1), or integer steps
    c.optimizer.decay_factor = 0.1

    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 64
    c.train.eval_batch_size = 512
    c.train.num_steps = 0  # 0: use num_epochs
    c.train.num_epochs = 10
    c.train.log_every = 50
    c.train.eval_every = 0  # 0: evaluate only at the end
    c.train.eval_train = True  # also evaluate the train split at the end (summary)
    c.train.steps_per_loop = 1  # k steps per dispatch (lax.scan)
    c.train.grad_accum_steps = 1  # micro-batches per update (gradients averaged)
    c.train.compute_dtype = "float32"  # "bfloat16": bf16 forward/backward, float32 params
    c.train.ema_decay = 0.0  # > 0: keep an EMA of the parameters and evaluate with it
    c.train.compilation_cache_dir = ""  # persistent XLA compilation cache; "" off
    c.train.profile_steps = ()  # (start, stop): jax.profiler trace of those steps in WORKDIR/profile
    c.train.progress_bar = True  # shown only when stderr is a terminal
    c.train.early_stopping_metric = ""  # e.g. "test/accuracy"; "" disables
    c.train.early_stopping_mode = "max"
    c.train.early_stopping_patience = 5  # evaluations without improvement

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.every_steps = 0  # 0: only at the end
    c.checkpoint.max_to_keep = 3
    c.checkpoint.best_metric = ""  # e.g. "test/accuracy": also keep best-k
    c.checkpoint.best_mode = "max"
    c.checkpoint.keep_best = 1

    c.transfer = ml_collections.ConfigDict()
    c.transfer.init_from = ""  # a workdir or a checkpoint directory
    c.transfer.dont_load = ()  # regexes of parameter paths to re-initialise
    c.transfer.frozen = ()  # regexes of parameter paths kept bit-identical
    c.transfer.lr_multipliers = ()  # ((regex, factor), ...)
    # a GloVe / fastText .vec / word2vec text or binary file: the text models' embedding
    c.transfer.embeddings_from = ""

    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = 1
    c.mesh.model = 1
    c.mesh.param_sharding = "replicated"  # or "fsdp": shard parameters over 'data'
    return c


def flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """All leaf keys of a config as dotted paths, e.g. ``optimizer.lr``."""
    keys = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, ml_collections.ConfigDict):
            keys.extend(flat_keys(value, path + "."))
        else:
            keys.append(path)
    return keys


# Names other libraries give common keys (Keras, PyTorch Lightning, Flax's examples),
# by their last component: ``--config.optimizer.learning_rate`` means ``optimizer.lr``.
KEY_ALIASES = {
    "learning_rate": "optimizer.lr", "lr": "optimizer.lr", "base_lr": "optimizer.lr",
    "wd": "optimizer.weight_decay", "weight_decay": "optimizer.weight_decay",
    "l2": "optimizer.weight_decay", "optimizer": "optimizer.name", "opt": "optimizer.name",
    "momentum": "optimizer.momentum", "clip": "optimizer.grad_clip_norm",
    "grad_clip": "optimizer.grad_clip_norm", "clipnorm": "optimizer.grad_clip_norm",
    "warmup": "optimizer.warmup_steps", "lr_schedule": "optimizer.schedule",
    "epochs": "train.num_epochs", "num_epochs": "train.num_epochs",
    "n_epochs": "train.num_epochs", "max_epochs": "train.num_epochs",
    "steps": "train.num_steps", "num_steps": "train.num_steps",
    "max_steps": "train.num_steps", "train_steps": "train.num_steps",
    "bs": "train.batch_size", "batch": "train.batch_size", "batch_size": "train.batch_size",
    "eval_batch": "train.eval_batch_size", "log_interval": "train.log_every",
    "eval_interval": "train.eval_every", "eval_steps": "train.eval_every",
    "seed": "seed", "random_seed": "seed", "rng_seed": "seed",
    "dtype": "train.compute_dtype", "precision": "train.compute_dtype",
    "patience": "train.early_stopping_patience",
}


def closest_key(key: str, valid: Iterable[str]) -> str | None:
    """The valid key ``key`` most likely means, or None.

    A known alias of its last component (``KEY_ALIASES``: ``learning_rate`` ->
    ``optimizer.lr``, ``epochs`` -> ``train.num_epochs``, ``bs`` ->
    ``train.batch_size``) wins when that key exists; then the closest key by edit
    similarity, then the closest by last component alone (``"lrate"`` -> ``optimizer.lr``).
    """
    valid = list(valid)
    leaf_name = key.rsplit(".", 1)[-1].lower()
    alias = KEY_ALIASES.get(leaf_name) or KEY_ALIASES.get(key.lower())
    if alias in valid and alias != key:
        return alias
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not match:  # try the last component alone: "lr" -> "optimizer.lr"
        leaf = {k.rsplit(".", 1)[-1]: k for k in valid}
        close = difflib.get_close_matches(leaf_name, list(leaf), n=1, cutoff=0.6)
        match = [leaf[close[0]]] if close else []
    return match[0] if match else None


def unknown_key_error(key: str, config: ml_collections.ConfigDict, where: str) -> ConfigError:
    """A ConfigError for ``key`` naming the closest valid key."""
    guess = closest_key(key, flat_keys(config))
    hint = f"; did you mean '{guess}'?" if guess else ""
    return ConfigError(f"unknown config key '{key}' ({where}){hint}")


def check_override_keys(argv: Iterable[str], config: ml_collections.ConfigDict) -> None:
    """Raise a ConfigError for the first ``--config.KEY[=VALUE]`` in ``argv`` whose key
    ``config`` lacks (naming the key it most likely means) or whose value cannot
    become the key's type."""
    valid = set(flat_keys(config))
    prefixes = {k.rsplit(".", i)[0] for k in valid for i in range(k.count(".") + 1)}
    for arg in argv:
        if arg.startswith("--config."):
            key = arg[len("--config."):].split("=", 1)[0]
            if key not in valid and key not in prefixes:
                raise unknown_key_error(key, config, f"command-line flag {arg!r}")
            if key in valid and "=" in arg:
                check_override_type(key, arg.split("=", 1)[1], config, arg)


def check_override_type(key: str, raw: str, config: ml_collections.ConfigDict,
                        arg: str) -> None:
    """Raise a ConfigError if ``raw`` cannot become the type of ``config.<key>``'s default.

    absl would also refuse it, but with a bare ``int()`` parse error and exit code 1.
    """
    default = config
    for part in key.split("."):
        default = default[part]
    if type(default) is bool and raw.lower() not in BOOL_WORDS:
        raise ConfigError(f"config key '{key}' got {raw!r} (command-line flag {arg!r}); "
                          f"expected a bool: True or False, like its default {default!r}")
    for kind, expected in ((int, "an integer"), (float, "a number")):
        if type(default) is kind:  # bool is a subclass of int: checked by ``is``
            try:
                kind(raw)
            except ValueError:
                raise ConfigError(f"config key '{key}' got {raw!r} (command-line flag "
                                  f"{arg!r}); expected {expected}, like its default "
                                  f"{default!r}") from None


def check_choice(config: ml_collections.ConfigDict, key: str, choices: Iterable[Any]) -> None:
    """Raise a ConfigError unless ``config.<key>`` is one of ``choices``."""
    value = config
    for part in key.split("."):
        value = value[part]
    if value not in tuple(choices):
        raise ConfigError(f"config.{key}={value!r}; expected one of {tuple(choices)}")


def describe_config(config: ml_collections.ConfigDict,
                    schema: dict[str, Any] | None = None) -> str:
    """Every key of ``config``, one per line: ``key = value  # what it must be``.

    Args:
      config: a resolved config (an experiment's, overrides applied).
      schema: the experiment's own ``CONFIG_SCHEMA`` (key -> ``Spec``); the core
        keys' specs come from ``jaxdl.config_schema.CORE_SCHEMA``, the others are
        inferred from their values.
    Returns:
      The lines, keys in the config's order (sections as written).
    """
    from jaxdl.config_schema import CORE_SCHEMA, infer_spec  # the schema imports errors only

    specs = {**CORE_SCHEMA, **(schema or {})}
    rows = []
    for key in flat_keys(config):
        value = config
        for part in key.split("."):
            value = value[part]
        spec = specs.get(key) or infer_spec(key, value)
        rows.append((f"{key} = {value!r}", spec.describe()))
    width = max(len(left) for left, _ in rows)
    return "\n".join(f"{left:<{width}}  # {help_}" for left, help_ in rows)
