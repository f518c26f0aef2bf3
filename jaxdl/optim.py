"""An optax optimizer from config: schedule, clipping, weight decay, freezing, LR groups.

Parameters are addressed by their path, ``"layers/0/kernel"``. ``frozen`` regexes
map to ``optax.set_to_zero`` inside ``multi_transform`` — frozen parameters get
no optimizer state and stay bit-identical — and ``lr_multipliers`` give a group
its own learning-rate factor.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import jax
import optax
from ml_collections import ConfigDict

from jaxdl.config_rules import check_schedule_within_run
from jaxdl.errors import ConfigError


def param_path(path: Sequence[Any]) -> str:
    """``(DictKey('layers'), DictKey(0), DictKey('kernel'))`` -> ``"layers/0/kernel"``."""
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def path_labels(params, rules: Sequence[tuple[str, str]], default: str):
    """Label each parameter by the first regex (``re.search``) that matches its path."""
    compiled = [(re.compile(pattern), label) for pattern, label in rules]

    def label(path, _):
        name = param_path(path)
        for pattern, value in compiled:
            if pattern.search(name):
                return value
        return default

    return jax.tree_util.tree_map_with_path(label, params)


def make_schedule(cfg: ConfigDict, total_steps: int) -> optax.ScalarOrSchedule:
    """The learning-rate schedule of ``cfg`` (an ``optimizer`` section) over a run.

    A constant rate is returned as a float, not a schedule: optax then keeps no
    step count for it, one state leaf and one update fewer per step (measurable
    in `benchmarks/overhead.py` on small models).
    """
    lr, name = cfg.lr, cfg.schedule
    check_schedule_within_run(cfg, total_steps)  # a warm-up longer than the run, say
    if name == "constant":
        return float(lr)
    if name == "cosine":
        return optax.cosine_decay_schedule(lr, max(total_steps, 1), alpha=cfg.min_lr_ratio)
    if name == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, lr, cfg.warmup_steps, max(total_steps, cfg.warmup_steps + 1),
            end_value=lr * cfg.min_lr_ratio)
    if name == "step":
        boundaries = {int(b * total_steps) if b < 1 else int(b): cfg.decay_factor
                      for b in cfg.decay_boundaries}
        return optax.piecewise_constant_schedule(lr, boundaries)
    raise ConfigError(f"config.optimizer.schedule={name!r}; expected constant, cosine, "
                      "warmup_cosine or step")


def _base_optimizer(cfg: ConfigDict, schedule: optax.ScalarOrSchedule):
    # Decay kernels, not biases or scales; a callable so it also fits the masked
    # sub-trees that multi_transform hands each parameter group.
    decay_mask = lambda tree: jax.tree.map(lambda p: p.ndim > 1, tree)  # noqa: E731
    if cfg.name == "adamw":
        return optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                           weight_decay=cfg.weight_decay, mask=decay_mask)
    if cfg.name == "adam":
        core = optax.adam(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
    elif cfg.name == "sgd":
        core = optax.sgd(schedule)
    elif cfg.name == "momentum":
        core = optax.sgd(schedule, momentum=cfg.momentum, nesterov=cfg.nesterov)
    else:
        raise ConfigError(f"config.optimizer.name={cfg.name!r}; expected sgd, momentum, "
                          "adam or adamw")
    if cfg.weight_decay:
        return optax.chain(optax.add_decayed_weights(cfg.weight_decay, decay_mask), core)
    return core


def make_optimizer(
    cfg: ConfigDict,
    params,
    total_steps: int,
    *,
    frozen: Sequence[str] = (),
    lr_multipliers: Sequence[tuple[str, float]] = (),
) -> optax.GradientTransformation:
    """Build the optimizer for ``params`` (a pytree of arrays).

    Args:
      cfg: the ``optimizer`` config section.
      params: the parameters (their structure and paths are used).
      total_steps: the run's length, for decaying schedules.
      frozen: regexes of parameter paths that must not change.
      lr_multipliers: ``(regex, factor)`` pairs; the first match wins.
    """
    schedule = make_schedule(cfg, total_steps)
    rules = [(pattern, "frozen") for pattern in frozen]
    rules += [(pattern, f"lr_x{float(factor)!r}") for pattern, factor in lr_multipliers]
    labels = path_labels(params, rules, "train")
    used = set(jax.tree.leaves(labels))
    transforms = {}
    for label in used:
        if label == "frozen":
            transforms[label] = optax.set_to_zero()
        elif label == "train":
            transforms[label] = _base_optimizer(cfg, schedule)
        else:
            factor = float(label[len("lr_x"):])
            transforms[label] = optax.chain(_base_optimizer(cfg, schedule),
                                            optax.scale(factor))
    steps = []
    if cfg.grad_clip_norm:
        # Frozen gradients are zeroed first so they do not count in the clipping norm.
        if "frozen" in used:
            steps.append(optax.masked(optax.set_to_zero(),
                                      jax.tree.map(lambda l: l == "frozen", labels)))
        steps.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
    if used == {"train"}:
        steps.append(transforms["train"])
    else:
        steps.append(optax.multi_transform(transforms, labels))
    return optax.chain(*steps) if len(steps) > 1 else steps[0]
