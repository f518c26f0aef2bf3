"""The run directory contract: ``config.json`` on the way in, ``summary.json`` out.

``prepare_workdir`` checks that the directory is writable and that a run already
there has the same configuration before anything is computed, so resuming never
silently mixes two experiments; ``start_writing`` writes that start once every
other check has passed too (nothing is written before). Files are written to a temporary name and
renamed, so a kill never leaves a half-written JSON file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
from typing import Any, Mapping

import ml_collections

from jaxdl.config_schema import flat_items
from jaxdl.errors import CheckpointError, ConfigError, WriteError
from jaxdl.train.run_identity import (HISTORY_NAME, append_history, check_checkpoint_identity,
                                      finished_checkpoint_steps, read_history, run_identity,
                                      write_checkpoint_identity)

# Keys that may differ between the first run and a resume without changing results.
RESUME_NEUTRAL_KEYS = ("force_resume", "train.progress_bar")
_created: list[str] = []  # config.json files this process wrote into new workdirs
_created_dirs: list[str] = []  # directories ``ensure_writable`` created, parents first
# Starts checked by ``prepare_workdir``, not yet written: abspath -> (config, saved, identity).
_pending: dict[str, tuple[dict, dict | None, dict]] = {}


def write_error(path: str, err: OSError) -> WriteError:
    """The one-line error of a failed write of ``path``, as a checkpoint write's reads."""
    reason = (f"[Errno {err.errno}] {err.strerror}" if err.errno
              else str(err) or type(err).__name__)
    return WriteError(
        f"could not write {path}: {reason}. Files written before are untouched; free space "
        "or fix permissions and re-run the same command to resume.")


# errno values only a write can raise: a full disk, a quota, a file-size limit, a
# read-only file system.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def as_write_error(err: BaseException, workdir: str) -> WriteError | None:
    """``err`` as a ``WriteError`` if it is a failed write of the run, else None.

    For writes outside jaxdl's own writers (an experiment's plots, tables, vectors):
    the file is named when the error carries it, else the run directory.
    """
    if isinstance(err, OSError) and not isinstance(err, WriteError) and err.errno in WRITE_ERRNOS:
        return write_error(err.filename or f"a file under {workdir}", err)
    return None


@contextlib.contextmanager
def writing(path: str):
    """Turn an ``OSError`` of the writes in this block into a ``WriteError`` naming ``path``."""
    try:
        yield
    except WriteError:
        raise
    except OSError as err:
        raise write_error(path, err) from err


def write_json_atomic(path: str, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` via a temporary file.

    Raises:
      WriteError: the disk is full or the file cannot be written; ``path`` keeps
        its previous content and no temporary file is left.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    with writing(path):
        try:
            with open(tmp, "w") as f:
                json.dump(payload, f, indent=2, sort_keys=False, default=str)
                f.write("\n")
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise


def config_to_dict(config: ml_collections.ConfigDict) -> dict:
    """A JSON-able dict of the config (tuples become lists)."""
    return json.loads(config.to_json_best_effort())


def _process_index() -> int:
    # jax is imported here, not at the top: ``python -m jaxdl.run`` imports this
    # module before it checks the config, and jax is a slow import.
    import jax
    return jax.process_index()


def environment() -> dict:
    """Library versions and devices, recorded next to the config."""
    import flax
    import jax
    import optax
    import orbax.checkpoint
    from jaxdl.version import __version__
    return {
        "jaxdl": __version__, "jax": jax.__version__, "flax": flax.__version__,
        "optax": optax.__version__, "orbax_checkpoint": orbax.checkpoint.__version__,
        "python": platform.python_version(),
        "devices": [str(d) for d in jax.devices()], "process_count": jax.process_count(),
    }


def config_differences(saved: Mapping, current: Mapping) -> list[str]:
    """Dotted keys whose values differ, ignoring resume-neutral keys."""
    a, b = flat_items(saved), flat_items(current)
    keys = sorted(set(a) | set(b))
    return [f"{k}: saved={a.get(k, '<absent>')!r} now={b.get(k, '<absent>')!r}"
            for k in keys if a.get(k) != b.get(k) and k not in RESUME_NEUTRAL_KEYS]


def ensure_writable(workdir: str) -> None:
    """Create ``workdir`` and check that files can be written in it.

    Raises:
      CheckpointError: the directory cannot be created or written.
    """
    missing, path = [], os.path.abspath(workdir)
    while not os.path.exists(path):  # what makedirs creates, so a refused start can remove it
        missing.insert(0, path)
        path = os.path.dirname(path)
    try:
        os.makedirs(workdir, exist_ok=True)
        _created_dirs.extend(missing)
        probe = os.path.join(workdir, f".write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as err:
        raise CheckpointError(f"workdir {workdir!r} is not writable ({err.strerror}); "
                              "expected a directory this user can create files in. "
                              "Choose another --workdir or fix its permissions.") from err


def prepare_workdir(workdir: str, config: ml_collections.ConfigDict) -> None:
    """Refuse another run's directory; record the start, to be written by ``start_writing``.

    This is the one check of a workdir against a config: ``jaxdl.run``, composed
    experiments and ``fit`` called as a library all go through it. It writes
    nothing (besides creating ``workdir``): ``config.json``, the line of
    ``config_history.jsonl`` and ``checkpoints/run_identity.json`` are written by
    ``start_writing``, which ``fit`` calls once every check of the run (model,
    data, settings) has passed and it knows the step it really resumes from.

    Raises:
      ConfigError: the workdir holds a run with another config (unless
        ``config.force_resume``).
      CheckpointError: the directory cannot be written, or its checkpoints belong
        to another run (unless ``config.force_resume``).
    """
    ensure_writable(workdir)
    path = os.path.join(workdir, "config.json")
    current = config_to_dict(config)
    force = bool(config.get("force_resume", False))
    saved = None
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f).get("config", {})
        diffs = config_differences(saved, current)
        if diffs and not force:
            raise ConfigError(
                f"workdir {workdir!r} holds a run with a different config; refusing to "
                f"resume. Differing keys:\n  " + "\n  ".join(diffs) +
                "\nUse another --workdir, or pass --config.force_resume=True to resume anyway.")
    identity = run_identity(current, RESUME_NEUTRAL_KEYS)
    check_checkpoint_identity(workdir, identity, force=force, differences=config_differences)
    if _process_index() == 0:
        _pending[os.path.abspath(workdir)] = (current, saved, identity)


def is_prepared(workdir: str) -> bool:
    """Whether ``prepare_workdir`` accepted ``workdir`` and its start is not written yet."""
    return os.path.abspath(workdir) in _pending


def forget_prepared(workdir: str) -> None:
    """Drop the starts ``prepare_workdir`` recorded for ``workdir`` and below (a failed start)."""
    root = os.path.abspath(workdir)
    for key in [k for k in _pending if k == root or k.startswith(root + os.sep)]:
        del _pending[key]


def start_writing(workdir: str, *, start_step: int | None = None) -> None:
    """Write the starts recorded for ``workdir`` and the directories above it.

    The first write of a run: ``config.json``, one ``config_history.jsonl`` line
    and ``checkpoints/run_identity.json`` of each recorded start that ``workdir``
    lies in (a composed experiment's root is written with its first sub-run).

    Args:
      workdir: the directory about to be written.
      start_step: the step training really starts from in ``workdir`` (the
        restored checkpoint's); default: the newest finished checkpoint's.
    """
    here = os.path.abspath(workdir)
    for root in sorted(k for k in _pending if here == k or here.startswith(k + os.sep)):
        current, saved, identity = _pending.pop(root)
        step = start_step if root == here and start_step is not None else (
            (finished_checkpoint_steps(root) or [0])[-1])
        path = os.path.join(root, "config.json")
        if saved is None:
            _created.append(path)
        with writing(os.path.join(root, HISTORY_NAME)):
            if saved is not None and not read_history(root):
                # A workdir from before the history existed: keep its first config on record.
                append_history(root, saved, start_step=0, note="recorded from config.json")
            append_history(root, current, start_step=step)
        write_json_atomic(path, {"config": current, "environment": environment()})
        with writing(os.path.join(root, "checkpoints")):
            write_checkpoint_identity(root, identity, write_json_atomic)


def _has_results(workdir: str) -> bool:
    """Whether anything under ``workdir`` was trained: a checkpoint, a log or a summary."""
    for root, dirs, files in os.walk(workdir):
        if finished_checkpoint_steps(root) or "summary.json" in files:
            return True
        if "metrics.jsonl" in files and os.path.getsize(os.path.join(root, "metrics.jsonl")):
            return True
        dirs[:] = [d for d in dirs if not d.startswith("checkpoints")]
    return False


def discard_unstarted(workdir: str) -> None:
    """After a failed start, remove the ``config.json`` files this process created.

    Only when nothing under ``workdir`` was trained, so that a corrected re-run of
    a run that failed on bad input is not refused as "a different config".
    Their starts stay in ``config_history.jsonl``. The directories that
    ``ensure_writable`` created for it go too while they are empty, so a refused
    start leaves no directory behind.
    """
    forget_prepared(workdir)
    if _has_results(workdir):
        return
    root = os.path.abspath(workdir)
    for path in list(_created):
        if os.path.abspath(path).startswith(root + os.sep) and os.path.exists(path):
            os.remove(path)
            _created.remove(path)
    for path in reversed([d for d in _created_dirs if d == root or d.startswith(root + os.sep)
                          or root.startswith(d + os.sep)]):
        _created_dirs.remove(path)
        with contextlib.suppress(OSError):  # not empty (a lock, a history): it stays
            os.rmdir(path)


def write_summary(workdir: str, summary: Mapping[str, Any]) -> None:
    """Write ``summary.json`` (process 0 only), after the run's recorded start."""
    if _process_index() == 0:
        start_writing(workdir)
        write_json_atomic(os.path.join(workdir, "summary.json"), dict(summary))


def fit_summary(experiment: str, result, config: ml_collections.ConfigDict,
                baselines: Mapping[str, Any] | None = None, **extra: Any) -> dict:
    """The ``summary.json`` payload of a run that went through ``fit``."""
    return {
        "experiment": experiment,
        "metrics": result.metrics,
        "baselines": dict(baselines or {}),
        "params_sha256": result.params_sha256,
        "num_params": result.num_params,
        "steps": result.steps,
        "seed": config.seed,
        "wall_seconds": round(result.wall_seconds, 3),
        "stopped_early": result.stopped_early,
        **extra,
    }
