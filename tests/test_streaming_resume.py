"""A streamed run with worker processes, SIGKILLed three times (during training and
during a save) and re-run, ends bit-identical to an uninterrupted streamed run."""

from __future__ import annotations

import pytest

import signal
import subprocess
import sys
import time

import psutil

import fault_runs
from fault_runs import TMP_MARKER
from image_folder_files import write_split_folders

STEPS = 96  # long enough that three kills land before the end on an idle machine
# (kind, seconds to wait after the event): after a finished checkpoint lands
# mid-training; "during_save" the moment orbax's temporary directory appears.
KILL_POINTS = [("after_save", 0.05), ("during_save", 0.0), ("after_save", 0.0)]


def overrides(root) -> list[str]:
    return [f"--config.data.dir={root}", "--config.data.image_size=8",
            "--config.data.workers=1", "--config.data.worker_mode=processes",
            "--config.model.name=small_cnn", "--config.model.hidden=16",
            "--config.train.batch_size=6", f"--config.train.num_steps={STEPS}",
            "--config.train.steps_per_loop=2", "--config.train.log_every=4",
            "--config.train.eval_batch_size=4", "--config.train.progress_bar=False",
            "--config.checkpoint.every_steps=8"]


def command(workdir, root) -> list[str]:
    return [sys.executable, "-m", "jaxdl.run", "--config=experiments/imagefolder_cnn.py",
            f"--workdir={workdir}", *overrides(root)]


def run_and_kill(workdir, root, log, kind: str, delay: float, timeout: float = 240) -> int:
    """Start the run, SIGKILL it at the kill point; returns the number of grain worker
    processes it had (all of which must end with it)."""
    seen = {n for n in fault_runs.checkpoint_entries(workdir)}
    proc = subprocess.Popen(command(workdir, root), cwd=fault_runs.REPO,
                            env=fault_runs.run_env(), stdout=log, stderr=subprocess.STDOUT)
    start = time.monotonic()
    try:
        while True:
            assert proc.poll() is None, f"run ended (rc={proc.returncode}) before {kind}"
            assert time.monotonic() - start < timeout, f"kill point {kind} never reached"
            new = set(fault_runs.checkpoint_entries(workdir)) - seen
            if kind == "during_save" and any(TMP_MARKER in n for n in new):
                break
            if kind == "after_save" and any(n.isdigit() for n in new):
                time.sleep(delay)
                break
            time.sleep(0.001)
        workers = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    # grain's workers notice their parent is gone and exit; none may linger.
    _, alive = psutil.wait_procs(workers, timeout=30)
    alive = [p for p in alive if _running(p)]  # an exited, unreaped child is a zombie
    for orphan in alive:
        orphan.kill()
    assert not alive, f"worker processes outlived the killed run: {alive}"
    return len(workers)


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.leg2
def test_streamed_run_killed_three_times_resumes_bit_identical(tmp_path):
    root = write_split_folders(tmp_path / "images")
    reference = tmp_path / "reference"
    done = subprocess.run(command(reference, root), cwd=fault_runs.REPO,
                          env=fault_runs.run_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    workdir = tmp_path / "run"
    with open(tmp_path / "killed.log", "ab") as log:
        workers = [run_and_kill(workdir, root, log, kind, delay) for kind, delay in KILL_POINTS]
    assert min(workers) >= 1  # the kills hit runs with worker processes on
    assert fault_runs.finished_steps(workdir) and max(fault_runs.finished_steps(workdir)) < STEPS

    final = subprocess.run(command(workdir, root), cwd=fault_runs.REPO, env=fault_runs.run_env(),
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    got, want = fault_runs.summary(workdir), fault_runs.summary(reference)
    assert got["steps"] == want["steps"] == STEPS
    assert got["params_sha256"] == want["params_sha256"]
    assert got["metrics"] == want["metrics"]
    assert fault_runs.events(workdir) == fault_runs.events(reference)
    assert not [n for n in fault_runs.checkpoint_entries(workdir) if TMP_MARKER in n]
