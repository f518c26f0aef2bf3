"""Launching ``python -m jaxdl.run`` on the tiny fault experiment, for the fault tests.

Every subprocess shares one persistent XLA compilation cache (a temporary
directory per test session), so only the first run pays for compiling; cached
executables are the same programs, so results stay bit-identical. The
uninterrupted reference run is made once per session and reused.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXPERIMENT = str(Path(__file__).resolve().parent / "faults_experiment.py")
TMP_MARKER = ".orbax-checkpoint-tmp"  # orbax 0.12.8 writes checkpoints/<step>.orbax-checkpoint-tmp
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="jaxdl-faults-"))
atexit.register(shutil.rmtree, _SESSION_DIR, True)  # the cache and reference run
_reference: dict = {}


def run_env(**extra: str) -> dict[str, str]:
    """The environment of a run subprocess: CPU, shared compilation cache."""
    env = dict(os.environ)
    env.update(JAX_PLATFORMS="cpu",
               JAX_COMPILATION_CACHE_DIR=str(_SESSION_DIR / "xla-cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def command(workdir: Path | str, *overrides: str) -> list[str]:
    """``python -m jaxdl.run --config=<fault experiment> --workdir=DIR [overrides]``."""
    return [sys.executable, "-m", "jaxdl.run", f"--config={EXPERIMENT}",
            f"--workdir={workdir}", *overrides]


def run_to_end(workdir: Path | str, *overrides: str, timeout: float = 300,
               **env: str) -> subprocess.CompletedProcess:
    """Run the experiment to completion (or failure); stdout/stderr captured as text."""
    return subprocess.run(command(workdir, *overrides), cwd=REPO, env=run_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def launch(workdir: Path | str, log_path: Path) -> subprocess.Popen:
    """Start the experiment in the background, its output going to ``log_path``."""
    log = open(log_path, "ab")
    return subprocess.Popen(command(workdir), cwd=REPO, env=run_env(), stdout=log,
                            stderr=subprocess.STDOUT)


def checkpoint_entries(workdir: Path) -> list[str]:
    """Names under ``workdir/checkpoints`` (finished steps and orbax temp dirs)."""
    try:
        return os.listdir(workdir / "checkpoints")
    except FileNotFoundError:
        return []


def finished_steps(workdir: Path) -> list[int]:
    """Steps of finished checkpoints (plain numeric directory names), sorted."""
    return sorted(int(n) for n in checkpoint_entries(workdir) if n.isdigit())


def kill_at_first_checkpoint(command_line: list[str], watched: Path,
                             timeout: float = 300) -> list[int]:
    """Start ``command_line``, SIGKILL it once ``watched`` holds a finished checkpoint.

    Returns:
      The finished steps left in ``watched`` after the kill.
    Raises:
      AssertionError: the run ended first, was not killed, or wrote no checkpoint in time.
    """
    proc = subprocess.Popen(command_line, cwd=REPO, env=run_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not finished_steps(watched):
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, f"no checkpoint was written under {watched}"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return finished_steps(watched)


def summary(workdir: Path) -> dict:
    """The run's ``summary.json``."""
    return json.loads((workdir / "summary.json").read_text())


def events(workdir: Path) -> list[dict]:
    """The run's ``metrics.jsonl`` events, in order."""
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def reference_run() -> Path:
    """The workdir of one uninterrupted run (made once per session; do not modify it)."""
    if "workdir" not in _reference:
        workdir = _SESSION_DIR / "reference"
        shutil.rmtree(workdir, ignore_errors=True)
        start = time.time()
        done = run_to_end(workdir)
        assert done.returncode == 0, done.stderr[-3000:]
        _reference.update(workdir=workdir, seconds=time.time() - start)
    return _reference["workdir"]


def copy_of_reference(destination: Path) -> Path:
    """A private copy of the reference workdir, to damage."""
    shutil.copytree(reference_run(), destination)
    return destination
