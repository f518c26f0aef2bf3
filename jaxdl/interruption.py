"""Ctrl-C for a run: stop at the next step boundary, then one line saying where and how to go on.

``python -m jaxdl.run`` installs ``stop_at_next_boundary_on_sigint``: the first
Ctrl-C only sets a flag, which `fit` reads after each dispatch (``raise_if_requested``)
and answers with ``KeyboardInterrupt`` there — so the interrupt never lands inside
orbax's or JAX's own threads and event loops, which may swallow it. A second Ctrl-C
interrupts at once. Without the handler (a notebook), Ctrl-C behaves as Python's.
"""

from __future__ import annotations

import json
import os
import signal
import threading

from jaxdl.train.run_identity import finished_checkpoint_steps


_requested = threading.Event()


def _on_sigint(signum, frame) -> None:
    if _requested.is_set():
        raise KeyboardInterrupt
    _requested.set()


def stop_at_next_boundary_on_sigint() -> None:
    """Make the first Ctrl-C (SIGINT) stop the run at its next step boundary."""
    _requested.clear()
    signal.signal(signal.SIGINT, _on_sigint)


def raise_if_requested() -> None:
    """``KeyboardInterrupt`` if Ctrl-C was pressed since the handler was installed."""
    if _requested.is_set():
        raise KeyboardInterrupt


def _last_logged_step(metrics_path: str) -> int | None:
    try:
        with open(metrics_path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by the interruption
    return None


def _active_run(workdir: str) -> str:
    """The run directory last written to: ``workdir`` or a composed experiment's sub-run."""
    best, best_time = workdir, -1.0
    for root, dirs, files in os.walk(workdir):
        dirs[:] = [d for d in dirs if not d.startswith("checkpoints")]
        if "metrics.jsonl" in files:
            mtime = os.path.getmtime(os.path.join(root, "metrics.jsonl"))
            if mtime > best_time:
                best, best_time = root, mtime
    return best


def interrupted_message(workdir: str) -> str:
    """``interrupted: <run> stopped after step S; last checkpoint: step C; ...`` in one line.

    Args:
      workdir: the directory given to ``--workdir``.
    """
    run = _active_run(workdir)
    logged = _last_logged_step(os.path.join(run, "metrics.jsonl"))
    steps = finished_checkpoint_steps(run)
    where = f"after step {logged}" if logged is not None else "before its first logged step"
    kept = f"step {steps[-1]} (kept)" if steps else "none yet"
    resume = (f"resumes from step {steps[-1]}" if steps else "starts it again")
    return (f"interrupted: run {run} stopped {where}; last checkpoint: {kept}. "
            f"Re-running the same command {resume}.")
