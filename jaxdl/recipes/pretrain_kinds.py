"""The pretraining (T1) kinds of a transfer experiment, and the grid each brings.

``config.pretrain.kind`` names one kind or several comma-separated (e.g.
``word2vec,language_model``); each kind contributes its downstream modes and its
label budgets, and one table holds them all beside one shared baseline mode.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ml_collections import ConfigDict

from jaxdl.errors import ConfigError
from jaxdl.sweep.table import ALL_LABELS

KINDS = ("word2vec", "language_model", "encoder")


def pretrain_kinds(config: ConfigDict) -> tuple[str, ...]:
    """``config.pretrain.kind`` as a tuple of kinds (a comma-separated string or a sequence).

    Raises:
      ConfigError: a kind is not one of ``KINDS``, or none is given.
    """
    kind = config.pretrain.kind
    names = kind.split(",") if isinstance(kind, str) else list(kind)
    names = [n.strip() for n in names if n.strip()]
    for name in names:
        if name not in KINDS:
            raise ConfigError(f"config.pretrain.kind={kind!r}: {name!r} is not a pretraining "
                              f"kind; expected one of {KINDS}, or several comma-separated")
    if not names:
        raise ConfigError(f"config.pretrain.kind={kind!r} names no kind; expected one of {KINDS}")
    if "encoder" in names and len(set(names)) > 1:  # its own data, modes and table
        raise ConfigError(f"config.pretrain.kind={kind!r}: 'encoder' runs alone; expected "
                          "'encoder' or a combination of the others")
    return tuple(dict.fromkeys(names))


def kind_grid(downstream: ConfigDict, kinds: Sequence[str],
              grids: Mapping[str, tuple[Sequence[str], Sequence[int]]], baseline: str = "random"
              ) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """``downstream.modes`` and ``labels_per_class``, the kinds' own where they are empty.

    Args:
      downstream: the ``config.downstream`` section.
      kinds: from ``pretrain_kinds``.
      grids: ``{kind: (modes, label budgets)}``.
      baseline: the mode every kind shares, listed first.
    Returns:
      ``(modes, budgets)``: the kinds' modes are ``baseline`` then each kind's, their
      budgets the union of the kinds', ``ALL_LABELS`` last.

    Raises:
      ConfigError: a mode given belongs to none of ``kinds`` (and is not ``baseline``).
    """
    allowed = [baseline] + [m for k in kinds for m in grids[k][0] if m != baseline]
    for mode in downstream.modes:
        if mode not in allowed:
            raise ConfigError(f"config.downstream.modes has {mode!r}, which config.pretrain.kind="
                              f"{','.join(kinds)!r} does not provide; expected some of "
                              f"{tuple(dict.fromkeys(allowed))}")
    budgets = {b for k in kinds for b in grids[k][1]}
    order = sorted(b for b in budgets if b != ALL_LABELS)
    order += [ALL_LABELS] * (ALL_LABELS in budgets)
    return (tuple(downstream.modes) or tuple(dict.fromkeys(allowed)),
            tuple(downstream.labels_per_class) or tuple(order))


def kinds_title(kinds: Sequence[str]) -> str:
    """What a table compares, e.g. ``"word2vec vs random embeddings"``."""
    names = " and ".join({"word2vec": "word2vec", "language_model": "LM pretraining"}[k]
                         for k in kinds)
    return names + " vs random " + ("embeddings" if tuple(kinds) == ("word2vec",)
                                    else "initialisation")


__all__ = ["KINDS", "pretrain_kinds", "kind_grid", "kinds_title"]
