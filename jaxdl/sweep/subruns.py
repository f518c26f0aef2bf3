"""Sub-runs: ordinary runs in sub-directories, skipped when finished, resumed when not.

``run_subrun`` runs one in-process (a composed experiment's pretraining and
downstream runs); ``run_subruns`` runs a grid sweep's, each one ``python -m
jaxdl.run`` process, up to N at once. Either way the sub-run's directory is
prepared and its config checked first, a sub-run whose ``summary.json`` exists
is skipped, and an interrupted one is simply started again, where ``fit``
resumes it from its newest checkpoint — so a killed sweep, run again, ends with
the same table as an uninterrupted one. A separate process per grid sub-run
keeps runs independent (their own JAX state, memory returned at exit) and makes
each one reproducible by the command logged at the top of its ``run.log``. The
processes share the sweep's process group, so killing the group stops
everything, and the next invocation picks up where it was.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from typing import Callable, Mapping, Sequence

from ml_collections import ConfigDict

from jaxdl.errors import ConfigError, JaxdlError
from jaxdl.parent_death import PARENT_PID_ENV
from jaxdl.recipes.baseline_cache import CACHE_ENV
from jaxdl.sweep.grid import SubRun
from jaxdl.sweep.progress import SubrunProgress
from jaxdl.train.compilation_cache import default_cache_dir
from jaxdl.workdir import (config_differences, config_to_dict, prepare_workdir,
                           write_summary)


# Off a terminal, a sweep names its training sub-runs this often (its sub-runs'
# own lines go to their run.log).
HEARTBEAT_SECONDS = 15.0


def run_subrun(workdir: str, name: str, config: ConfigDict,
               train_fn: Callable[[ConfigDict, str], dict], *,
               progress: SubrunProgress | None = None, label: str | None = None,
               estimate: bool = True) -> dict:
    """Run (or skip, or resume) one sub-run in ``workdir/name``.

    Args:
      workdir: the sweep's or composed experiment's directory.
      name: the sub-directory, e.g. ``"pretrain"``.
      config: the sub-run's full config (written to its ``config.json``; a
        different config already there is refused, as for any run).
      train_fn: ``train_fn(config, sub_workdir) -> summary`` doing the ``fit``.
      progress: reports the sub-run as started and finished (``label``, default ``name``);
        ``estimate`` says whether its duration predicts the other sub-runs'.
    Returns:
      The sub-run's summary (read back from ``summary.json`` when it had finished).
    """
    path = os.path.join(workdir, name)
    prepare_workdir(path, config)
    summary_path = os.path.join(path, "summary.json")
    label = label or name
    start = time.monotonic()
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
        if progress is not None:
            progress.finished(label, seconds=0.0, skipped=True)
        return summary
    if progress is not None:
        progress.started(label)
    summary = train_fn(config, path)
    write_summary(path, summary)
    if progress is not None:
        progress.finished(label, seconds=time.monotonic() - start, estimate=estimate)
    return summary


def subrun_environment(base: Mapping[str, str] | None = None, parallel: int = 1,
                       workdir: str | None = None) -> dict[str, str]:
    """The sub-processes' environment: the caller's, plus shared caches.

    ``JAXDL_PARENT_PID`` names this process: a sub-run ends when the sweep dies,
    by SIGKILL too (``jaxdl.parent_death``).

    Sub-runs of one sweep compile the same programs; JAX's persistent cache,
    keyed by the program, lets all but the first load them (a cached executable
    is the same binary, so results are unchanged). A cache the user configured
    (``JAX_COMPILATION_CACHE_DIR``) is kept. Baselines that do not depend on the
    grid are fitted once per sweep: ``JAXDL_BASELINE_CACHE`` is
    ``workdir/baseline_cache`` (``jaxdl.recipes.baseline_cache``) unless set. With ``parallel > 1``, GPU memory is
    allocated on demand: by default each JAX process reserves most of a GPU's
    memory when it starts, so a second sub-run on the same GPU could not start.
    """
    env = dict(os.environ if base is None else base)
    env[PARENT_PID_ENV] = str(os.getpid())  # a sub-run ends with the sweep, even on SIGKILL
    if not env.get("JAX_COMPILATION_CACHE_DIR"):
        env.update(JAX_COMPILATION_CACHE_DIR=default_cache_dir(),
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    if workdir and not env.get(CACHE_ENV):
        env[CACHE_ENV] = os.path.join(os.path.abspath(workdir), "baseline_cache")
    memory_keys = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
                   "XLA_PYTHON_CLIENT_ALLOCATOR")
    if parallel > 1 and not any(k in env for k in memory_keys):
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return env


def check_existing_configs(workdir: str, subruns: Sequence[SubRun]) -> None:
    """Refuse, before anything runs, sub-run directories that hold another config.

    Raises:
      ConfigError: listing each such sub-run with its differing keys.
    """
    problems = []
    for run in subruns:
        path = os.path.join(workdir, run.name, "config.json")
        if os.path.exists(path) and not run.config.get("force_resume", False):
            with open(path) as f:
                saved = json.load(f).get("config", {})
            diffs = config_differences(saved, config_to_dict(run.config))
            if diffs:
                problems.append(f"{run.name}: " + "; ".join(diffs))
    if problems:
        raise ConfigError(f"sweep workdir {workdir!r} holds sub-runs with a different "
                          "config; refusing to mix them:\n  " + "\n  ".join(problems) +
                          "\nUse another --workdir, or pass --config.force_resume=True.")


def subrun_command(config_path: str, sub_workdir: str, run: SubRun) -> list[str]:
    """``python -m jaxdl.run --config=FILE --workdir=DIR --config.KEY=VALUE ...``."""
    return [sys.executable, "-m", "jaxdl.run", f"--config={os.path.abspath(config_path)}",
            f"--workdir={sub_workdir}", *run.overrides]


def run_subruns(workdir: str, config_path: str, subruns: Sequence[SubRun], *,
                parallel: int = 1, env: Mapping[str, str] | None = None) -> list[dict]:
    """Run (skip, or resume) every sub-run, up to ``parallel`` processes at a time.

    Args:
      workdir: the sweep's directory; sub-run ``r`` lives in ``workdir/r.name``.
      config_path: the experiment file every sub-run is configured from.
      subruns: from ``plan_subruns``.
      parallel: how many sub-run processes run at once (>= 1).
      env: their environment (default ``subrun_environment(parallel=parallel,
        workdir=workdir)``).
    Returns:
      One dict per sub-run, in ``subruns`` order: ``name``, ``status``
      (``"skipped"``: finished before; ``"ran"``) and ``summary``.
    Raises:
      JaxdlError: a sub-run failed (after the ones already running finish; none
        new starts), naming its exit code and log.
    """
    if parallel < 1:
        raise ConfigError(f"--parallel={parallel}; expected a positive number of processes")
    env = subrun_environment(parallel=parallel, workdir=workdir) if env is None else dict(env)
    progress = SubrunProgress(len(subruns), prefix="sweep ", parallel=parallel,
                              heartbeat=HEARTBEAT_SECONDS)
    failed = threading.Event()

    def one(run: SubRun) -> dict:
        if failed.is_set():
            return {"name": run.name, "status": "not started", "summary": None}
        trained = False

        def train(config, sub_workdir: str) -> dict:
            nonlocal trained
            trained = True
            command = subrun_command(config_path, sub_workdir, run)
            log_path = os.path.join(sub_workdir, "run.log")
            with open(log_path, "ab") as log:
                log.write((" ".join(command) + "\n").encode())
                log.flush()
                code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env)
            if code != 0:
                with open(log_path, "rb") as log:
                    tail = log.read()[-2000:].decode(errors="replace")
                raise JaxdlError(f"sub-run {run.name} failed with exit code {code}; "
                                 f"its output is in {log_path}; last lines:\n{tail}")
            with open(os.path.join(sub_workdir, "summary.json")) as f:
                return json.load(f)

        try:
            summary = run_subrun(workdir, run.name, run.config, train, progress=progress)
        except Exception:
            failed.set()
            progress.failed(run.name)
            raise
        return {"name": run.name, "status": "ran" if trained else "skipped", "summary": summary}

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
            futures = [pool.submit(one, run) for run in subruns]
            concurrent.futures.wait(futures)
    finally:
        progress.close()
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]
    return [f.result() for f in futures]


__all__ = ["run_subrun", "subrun_environment", "check_existing_configs",
           "subrun_command", "run_subruns"]
