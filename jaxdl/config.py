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


def closest_key(key: str, valid: Iterable[str]) -> str | None:
    """The valid key most like ``key`` (by edit similarity), or None."""
    valid = list(valid)
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not match:  # try the last component alone: "lr" -> "optimizer.lr"
        leaf = {k.rsplit(".", 1)[-1]: k for k in valid}
        close = difflib.get_close_matches(key.rsplit(".", 1)[-1], list(leaf), n=1, cutoff=0.6)
        match = [leaf[close[0]]] if close else []
    return match[0] if match else None


def unknown_key_error(key: str, config: ml_collections.ConfigDict, where: str) -> ConfigError:
    """A ConfigError for ``key`` naming the closest valid key."""
    guess = closest_key(key, flat_keys(config))
    hint = f"; did you mean '{guess}'?" if guess else ""
    return ConfigError(f"unknown config key '{key}' ({where}){hint}")


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
