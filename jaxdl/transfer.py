"""Start a run from another run's weights: ``init_from``, ``dont_load``, probing,
fine-tuning and gradual unfreezing: transfer is configuration.

- ``config.transfer.init_from``: a run's workdir (its newest checkpoint under
  ``checkpoints/``), a ``checkpoints/`` directory, one step directory, or a
  torchvision ResNet ``state_dict`` file (``.pth``/``.safetensors``, converted by
  ``jaxdl.pretrained.torchvision_resnet``).
- ``config.transfer.dont_load``: regexes (``re.search``) of parameter paths such
  as ``"head/kernel"`` that keep the new model's fresh initialisation.
- ``config.transfer.frozen`` / ``lr_multipliers``: handled by ``jaxdl.optim``;
  frozen parameters get ``optax.set_to_zero`` and no optimizer state.

Only the ``params`` and ``model_state`` (BatchNorm statistics) sub-trees of the
checkpoint are read; optimizer state is never restored into a new run.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from flax import nnx
from ml_collections import ConfigDict

from jaxdl.errors import CheckpointError, ConfigError
from jaxdl.optim import param_path
from jaxdl.train.checkpoint import check_shapes, has_checkpoint, read_weights, resolve_checkpoint
from jaxdl.pretrained.torchvision_resnet import is_torchvision_file, read_torchvision_resnet

# The three downstream modes of a transfer experiment, as transfer config values.
# The head is always re-initialised; a linear probe freezes everything else.
MODES = ("scratch", "linear_probe", "fine_tune")


@dataclasses.dataclass
class LoadReport:
    """What ``load_pretrained`` did.

    Attributes:
      checkpoint: the step directory read.
      step: its training step.
      loaded: paths given the pretrained values.
      reinitialised: paths matching ``dont_load`` (kept at the fresh init).
    """

    checkpoint: str
    step: int
    loaded: list[str]
    reinitialised: list[str]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _model_leaves(model: nnx.Module) -> tuple[Any, Any, dict[str, Any]]:
    _, params, rest = nnx.split(model, nnx.Param, ...)
    params, rest = params.to_pure_dict(), rest.to_pure_dict()
    flat = {}
    for tree in (params, rest):
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            flat[param_path(key_path)] = leaf
    return params, rest, flat


def load_pretrained(model: nnx.Module, init_from: str,
                    dont_load: Sequence[str] = ()) -> LoadReport:
    """Replace ``model``'s parameters (and BatchNorm statistics) by a checkpoint's.

    Args:
      model: the new model, freshly initialised (updated in place).
      init_from: a run workdir, its ``checkpoints/`` directory or a step directory
        (``jaxdl.train.checkpoint.resolve_checkpoint``).
      dont_load: regexes; matching paths keep their fresh values, whatever the
        checkpoint holds for them (a new head of another size, say).
    Returns:
      A ``LoadReport``.
    Raises:
      ShapeMismatchError: a path not matched by ``dont_load`` is missing on one
        side or has another shape; the message lists every such path with both
        shapes.
    """
    if is_torchvision_file(init_from):  # a torchvision ResNet state_dict, converted
        step_dir, step = os.path.abspath(init_from), -1
        saved = read_torchvision_resnet(init_from)
    else:
        step_dir, step = resolve_checkpoint(init_from, setting="config.transfer.init_from")
        saved = read_weights(step_dir)
    params, rest, current = _model_leaves(model)
    patterns = [re.compile(p) for p in dont_load]
    skip = lambda path: any(p.search(path) for p in patterns)  # noqa: E731
    check_shapes({p: v.shape for p, v in saved.items() if not skip(p)},
                 {p: tuple(np.shape(v)) for p, v in current.items() if not skip(p)}, step_dir,
                 unexplained_by="config.transfer.dont_load",
                 hint="Add regexes of the paths to re-initialise to config.transfer.dont_load, "
                      "e.g. ('^head/',).")

    loaded, reinitialised = [], []

    def pick(key_path, leaf):
        path = param_path(key_path)
        if skip(path):
            reinitialised.append(path)
            return leaf
        loaded.append(path)
        return jax.numpy.asarray(saved[path], dtype=leaf.dtype)

    new_params = jax.tree_util.tree_map_with_path(pick, params)
    new_rest = jax.tree_util.tree_map_with_path(pick, rest)
    nnx.update(model, new_params, new_rest)
    return LoadReport(os.path.abspath(step_dir), step, sorted(loaded), sorted(reinitialised))


def maybe_init_from(model: nnx.Module, config: ConfigDict,
                    workdir: str | None = None) -> LoadReport | None:
    """Load ``config.transfer.init_from`` into ``model`` before ``fit``, if set.

    A run resuming from its own checkpoints skips the loading (``fit`` restores
    those, which take precedence), so a resumed run never needs the pretrained
    one; it still returns the report of what its first start loaded.

    Returns:
      The ``LoadReport``, or None when ``init_from`` is not set.
    """
    init_from = config.transfer.init_from
    if not init_from:
        return None
    if has_checkpoint(workdir):
        return _resumed_load_report(model, init_from, tuple(config.transfer.dont_load))
    return load_pretrained(model, init_from, tuple(config.transfer.dont_load))


def _resumed_load_report(model: nnx.Module, init_from: str,
                         dont_load: Sequence[str]) -> LoadReport:
    """The ``LoadReport`` of the first start, for a run resuming from its own checkpoint.

    Nothing is read or loaded (``fit`` restores the run's checkpoint): the paths
    follow from the model and ``dont_load``, so a resumed run's summary reports
    the same as an uninterrupted one's. If the pretrained run is gone by now, its
    path is reported as given, with step -1.
    """
    step_dir, step = os.path.abspath(init_from), -1
    if not is_torchvision_file(init_from) and os.path.isdir(init_from):
        try:
            step_dir, step = resolve_checkpoint(init_from, setting="config.transfer.init_from")
        except CheckpointError:
            pass  # a resumed run does not need it
    patterns = [re.compile(p) for p in dont_load]
    paths = sorted(_model_leaves(model)[2])
    reinitialised = [p for p in paths if any(r.search(p) for r in patterns)]
    loaded = [p for p in paths if p not in set(reinitialised)]
    return LoadReport(os.path.abspath(step_dir), step, loaded, reinitialised)


def mode_settings(mode: str, *, head: str = "head") -> dict[str, tuple]:
    """``dont_load`` and ``frozen`` regexes of a downstream mode.

    Args:
      mode: ``"scratch"`` (nothing loaded), ``"linear_probe"`` (pretrained
        backbone frozen, new head trained) or ``"fine_tune"`` (pretrained
        backbone and new head, all trained).
      head: the attribute name of the model's classifier.
    """
    if mode not in MODES:
        raise ConfigError(f"transfer mode {mode!r}; expected one of {MODES}")
    head_re = f"^{re.escape(head)}/"
    return {"dont_load": (head_re,) if mode != "scratch" else (),
            "frozen": (f"^(?!{re.escape(head)}/)",) if mode == "linear_probe" else ()}


def fit_gradually_unfrozen(model: nnx.Module, task, train, *, config: ConfigDict,
                           stages: Sequence[tuple[Sequence[str], int]],
                           eval_data: Mapping[str, Any] | None = None,
                           workdir: str | None = None) -> list:
    """Gradual unfreezing as successive ``fit`` runs, one per stage.

    Stage ``i`` trains ``stages[i][1]`` steps with ``stages[i][0]`` frozen, in
    ``workdir/stage<i>``, starting from stage ``i-1``'s final weights (read back
    from its checkpoint, so a killed run resumes exactly). Each stage starts a
    fresh optimizer (the frozen set changes its state's layout) and uses seed
    ``config.seed + i`` so it does not replay the previous stage's batch order.

    Example: ``stages=[(("^(?!head/)",), 100), (("^conv",), 100), ((), 200)]``
    trains the head, then head and dense layers, then everything.

    Returns:
      The ``FitResult`` of each stage.
    """
    from jaxdl.train.loop import fit  # the loop imports nothing from here; keep it lazy

    results = []
    for index, (frozen, num_steps) in enumerate(stages):
        stage_config = ConfigDict(config.to_dict())
        stage_config.seed = config.seed + index
        stage_config.train.num_steps = int(num_steps)
        stage_config.transfer.frozen = tuple(frozen)
        stage_dir = os.path.join(workdir, f"stage{index}") if workdir else None
        if index and stage_dir and not has_checkpoint(stage_dir):
            load_pretrained(model, os.path.join(workdir, f"stage{index - 1}"))
        results.append(fit(model, task, train, config=stage_config, eval_data=eval_data,
                           workdir=stage_dir))
    return results
