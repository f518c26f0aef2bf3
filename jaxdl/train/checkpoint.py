"""Orbax checkpoints of a ``TrainState`` plus the loop's small bookkeeping.

``Checkpointer`` keeps the latest ``max_to_keep`` checkpoints under
``checkpoints/`` (for resuming) and, optionally, the best ``keep_best`` by a
metric under ``checkpoints_best/``. Saving is synchronous: the step buffers are
donated to the next step, so they must be written before it runs. Orbax writes
into a temporary directory and renames it when complete, so an unfinished
checkpoint is never listed. A checkpoint that fails to restore is moved aside to
``corrupt_checkpoints/`` (never deleted) with a warning, and the previous one is
used instead.

This module is the one reader of that layout: ``resolve_checkpoint`` finds the
step directory a path names, ``read_weights`` reads a step's parameters and
model state by path (for ``jaxdl.transfer``), and ``check_shapes`` lists every
parameter whose shape differs between a checkpoint and a model.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxdl.errors import CheckpointError, ShapeMismatchError
from jaxdl.optim import param_path

log = logging.getLogger("jaxdl")

CHECKPOINTS = "checkpoints"  # a run's checkpoints: CHECKPOINTS/<step>/{state,meta}
STATE = "state"  # the TrainState item of a step directory


class _SkipMissingMetadataNotice(logging.Filter):
    """Drop orbax's per-read notice that a step has no ``_CHECKPOINT_METADATA``.

    Reading a pretrained run's parameters item by item (``jaxdl.transfer``) makes
    orbax log it once per downstream run; it is harmless and drowns the output.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Metadata file does not exist" not in record.getMessage()


logging.getLogger("absl").addFilter(_SkipMissingMetadataNotice())


def abstract_like(tree: Any) -> Any:
    """Shape/dtype/sharding stand-ins for restoring into the layout of ``tree``."""
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def _manager(directory: str, *, max_to_keep: int, best_metric: str = "",
             best_mode: str = "max") -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        enable_async_checkpointing=False,
        best_fn=(lambda m: m[best_metric]) if best_metric else None,
        best_mode=best_mode,
        keep_checkpoints_without_metrics=not best_metric,
        cleanup_tmp_directories=True,
        create=True,
    )
    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(directory, options=options, item_handlers=handlers)


def is_out_of_space_or_denied(err: BaseException) -> bool:
    """Whether ``err`` is a failed write of the file system: disk full, quota, permissions.

    Python's writes raise ``OSError`` with an ``errno``; orbax's array writes go
    through TensorStore, which reports them as ``ValueError`` naming the OS error
    (``"RESOURCE_EXHAUSTED: ... [os_error_code=28]"``).
    """
    if isinstance(err, OSError):
        return err.errno is not None
    return isinstance(err, ValueError) and "os_error_code" in str(err)


def _write(manager: ocp.CheckpointManager, directory: str, step: int, args, **kwargs) -> None:
    """Save and wait; any write failure becomes a CheckpointError naming the directory.

    The message says what happened: a full disk or a denied write asks for space or
    permissions; anything else (a step that exists already, say) is named as such.
    """
    try:
        manager.save(step, args=args, force=True, **kwargs)
        manager.wait_until_finished()
    except (OSError, ValueError) as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        if is_out_of_space_or_denied(err):
            advice = ("free space or fix permissions and re-run the same command to "
                      "resume.")
        else:
            advice = (f"this is not a disk problem ({type(err).__name__}); please report "
                      "it with the command that led here.")
        raise CheckpointError(
            f"could not write checkpoint {step} under {directory}: {first_line.rstrip('.')}. "
            f"The previous checkpoints are untouched; {advice}") from err


class Checkpointer:
    """Saves and restores training state in a run's workdir.

    Args:
      workdir: the run directory; checkpoints go to ``workdir/checkpoints``.
      max_to_keep: how many of the latest checkpoints to keep.
      best_metric: e.g. ``"test/accuracy"``; "" disables best-k checkpoints.
      best_mode: ``"max"`` or ``"min"``.
      keep_best: how many best checkpoints to keep.
    """

    def __init__(self, workdir: str, *, max_to_keep: int = 3, best_metric: str = "",
                 best_mode: str = "max", keep_best: int = 1):
        self.workdir = os.path.abspath(workdir)
        self.directory = os.path.join(self.workdir, CHECKPOINTS)
        self.latest = _manager(self.directory, max_to_keep=max_to_keep)
        self.best_metric = best_metric
        self.best = (_manager(os.path.join(self.workdir, "checkpoints_best"),
                              max_to_keep=keep_best, best_metric=best_metric,
                              best_mode=best_mode) if best_metric else None)

    def save(self, step: int, state: Any, meta: dict) -> None:
        """Write ``state`` and JSON ``meta`` as checkpoint ``step`` (blocking)."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  meta=ocp.args.JsonSave(meta))
        _write(self.latest, self.directory, step, args)

    def save_best(self, step: int, state: Any, meta: dict, metrics: dict) -> None:
        """Offer checkpoint ``step`` to the best-k set, ranked by ``metrics``."""
        if self.best is None or self.best_metric not in metrics:
            return
        args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  meta=ocp.args.JsonSave(meta))
        _write(self.best, os.path.join(self.workdir, "checkpoints_best"), step, args,
               metrics={self.best_metric: metrics[self.best_metric]})

    def forget_best_after(self, step: int) -> list[int]:
        """Drop best-k checkpoints newer than ``step``, the step training resumes from.

        A run interrupted after a best-k save but before the next latest checkpoint
        resumes from an earlier step and evaluates those steps again, bit for bit;
        their best-k checkpoints are written again then. Keeping them would make
        that save fail (the step exists) and rank a future the resumed run has not
        reached yet. Returns the steps dropped.
        """
        if self.best is None:
            return []
        self.best.reload()
        newer = sorted(s for s in self.best.all_steps() if s > step)
        for s in newer:
            self.best.delete(s)
        if newer:
            self.best.reload()
            log.info("resuming from step %d: best-k checkpoints %s under %s are "
                     "evaluated and saved again", step, newer, self.best.directory)
        return newer

    def steps(self) -> list[int]:
        """Finished checkpoint steps, oldest first."""
        self.latest.reload()
        return sorted(self.latest.all_steps())

    def restore_latest(self, target: Any) -> tuple[Any, dict] | None:
        """Restore the newest readable checkpoint into the layout of ``target``.

        Returns:
          ``(state, meta)``, or None when there is no checkpoint.
        """
        for step in reversed(self.steps()):
            try:
                return self.restore(step, target)
            except CheckpointError:
                raise  # a shape mismatch is the caller's problem, not corruption
            except Exception as err:  # noqa: BLE001 - any read failure means corrupt
                self._quarantine(step, err)
        return None

    def restore(self, step: int, target: Any) -> tuple[Any, dict]:
        """Restore checkpoint ``step`` into the layout of ``target``."""
        check_same_structure(self.latest.item_metadata(step)["state"].tree, target,
                             f"{self.directory}/{step}")
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract_like(target)),
                                  meta=ocp.args.JsonRestore())
        restored = self.latest.restore(step, args=args)
        return restored["state"], dict(restored["meta"])

    def _quarantine(self, step: int, err: Exception) -> None:
        src = os.path.join(self.directory, str(step))
        dst_dir = os.path.join(self.workdir, "corrupt_checkpoints")
        os.makedirs(dst_dir, exist_ok=True)
        dst = os.path.join(dst_dir, str(step))
        if os.path.exists(dst):
            shutil.rmtree(dst)
        shutil.move(src, dst)
        log.warning("checkpoint %s could not be read (%s: %s); moved it to %s and "
                    "resuming from the previous checkpoint", src, type(err).__name__,
                    str(err).splitlines()[0] if str(err) else "", dst)
        self.latest.reload()

    def close(self) -> None:
        self.latest.close()
        if self.best is not None:
            self.best.close()


def leaf_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """``{param_path: shape}`` of every leaf of ``tree`` (arrays or orbax metadata)."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {param_path(p): tuple(getattr(v, "shape", ())) for p, v in flat}


def check_shapes(saved: Mapping[str, tuple], wanted: Mapping[str, tuple], where: str, *,
                 unexplained_by: str = "", hint: str = "") -> None:
    """Raise ``ShapeMismatchError`` listing each path whose shape differs or is missing.

    Args:
      saved: ``{path: shape}`` in the checkpoint.
      wanted: ``{path: shape}`` of the model (or state) it is read into.
      where: the checkpoint, named in the message.
      unexplained_by: the setting that could have excused the paths left in
        (e.g. ``"config.transfer.dont_load"``), named in the message.
      hint: a last line saying how to fix it.
    """
    problems = []
    for path in sorted(set(saved) | set(wanted)):
        if path not in saved:
            problems.append(f"  {path}: missing in checkpoint, model has {wanted[path]}")
        elif path not in wanted:
            problems.append(f"  {path}: checkpoint has {saved[path]}, not in model")
        elif saved[path] != wanted[path]:
            problems.append(f"  {path}: checkpoint {saved[path]} vs model {wanted[path]}")
    if problems:
        excuse = f" not explained by {unexplained_by}" if unexplained_by else ""
        raise ShapeMismatchError(
            f"checkpoint {where} does not fit this model ({len(problems)} parameter(s){excuse}):\n"
            + "\n".join(problems) + (f"\n{hint}" if hint else ""))


def check_same_structure(saved_metadata: Any, target: Any, where: str) -> None:
    """Raise ``ShapeMismatchError`` unless ``saved_metadata`` has ``target``'s leaf shapes."""
    check_shapes(leaf_shapes(saved_metadata), leaf_shapes(target), where)


def step_dirs(directory: str) -> list[tuple[int, str]]:
    """Finished step directories ``(step, path)`` under ``directory``, oldest first.

    An unfinished checkpoint has a non-numeric temporary name and is skipped.
    """
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.isdigit() and os.path.isdir(os.path.join(path, STATE)):
            found.append((int(name), path))
    return sorted(found)


def has_checkpoint(workdir: str | None) -> bool:
    """Whether the run in ``workdir`` has written a finished checkpoint."""
    return bool(workdir) and bool(step_dirs(os.path.join(workdir, CHECKPOINTS)))


def resolve_checkpoint(path: str, *, setting: str = "checkpoint path") -> tuple[str, int]:
    """The step directory ``path`` names, and its step: ``(step_dir, step)``.

    Args:
      path: a run workdir (its newest checkpoint), its ``checkpoints/``
        directory, or one step directory (step -1 if its name is not a number).
      setting: what ``path`` came from, named in errors (e.g.
        ``"config.transfer.init_from"``).
    Raises:
      CheckpointError: nothing readable is there.
    """
    if not os.path.isdir(path):
        raise CheckpointError(f"{setting}={path!r} does not exist; expected a run's workdir, "
                              "its checkpoints/ directory or a checkpoint step directory")
    if os.path.isdir(os.path.join(path, STATE)):
        name = os.path.basename(os.path.normpath(path))
        return path, int(name) if name.isdigit() else -1
    directory = os.path.join(path, CHECKPOINTS)
    steps = step_dirs(directory if os.path.isdir(directory) else path)
    if not steps:
        raise CheckpointError(f"{setting}={path!r} holds no finished checkpoint; expected "
                              f"{CHECKPOINTS}/<step>/{STATE} written by fit (did that run finish?)")
    step, step_dir = steps[-1]
    return step_dir, step


def read_weights(step_dir: str) -> dict[str, np.ndarray]:
    """The parameters and model state of one checkpoint, by path (host arrays).

    Only those two sub-trees are read; the optimizer state stays on disk.

    Returns:
      ``{"conv1/kernel": array, ..., "bn/mean": array}`` — ``params`` and
      ``model_state`` leaves flattened to their ``param_path``.
    """
    path = os.path.join(os.path.abspath(step_dir), STATE)
    checkpointer = ocp.PyTreeCheckpointer()
    tree = checkpointer.metadata(path).item_metadata.tree
    wanted = {k: tree[k] for k in ("params", "model_state") if tree.get(k) is not None}
    abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), wanted)
    restore_args = jax.tree.map(lambda m: ocp.RestoreArgs(restore_type=np.ndarray), wanted)
    restored = checkpointer.restore(path, args=ocp.args.PyTreeRestore(
        item=abstract, restore_args=restore_args, partial_restore=True))
    flat = {}
    for part in restored.values():
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(part)[0]:
            flat[param_path(key_path)] = np.asarray(leaf)
    return flat
