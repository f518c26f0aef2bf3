"""A run killed anywhere (SIGKILL) and re-run ends bit-identical to an uninterrupted one.

The run is ``python -m jaxdl.run`` on a tiny digits MLP with a checkpoint every
8 steps (tests/faults_experiment.py). Kill points come from a seeded random
plan: during start-up, the moment orbax's temporary checkpoint directory
appears (mid-write), and shortly after a checkpoint is finished.
"""

from __future__ import annotations

import pytest

import os
import random
import re
import subprocess
import signal
import time

import fault_runs
from fault_runs import TMP_MARKER

KILL_SEED = 7


def kill_plan(seed: int) -> list[tuple]:
    """Five kill points: two mid-save, two just after a save, one during start-up."""
    rng = random.Random(seed)
    plan = [("during_save", rng.randint(1, 3)),
            ("during_save", rng.randint(1, 3)),
            ("after_save", rng.randint(1, 3), rng.uniform(0.0, 0.05)),
            ("after_save", rng.randint(1, 3), rng.uniform(0.0, 0.05)),
            ("after_start", rng.uniform(0.2, 1.0))]
    rng.shuffle(plan)
    return plan


def run_and_kill(workdir, log_path, point: tuple, timeout: float = 180) -> dict:
    """Start a run and SIGKILL it at ``point``; report what was left on disk.

    Returns:
      ``{"returncode", "temp_dirs_left", "finished_steps"}`` seen right after the kill.
    """
    proc = fault_runs.launch(workdir, log_path)
    start = time.monotonic()
    seen_temp = set(n for n in fault_runs.checkpoint_entries(workdir) if TMP_MARKER in n)
    seen_done = set(fault_runs.finished_steps(workdir))
    new_temp = new_done = 0
    try:
        while True:
            assert proc.poll() is None, (
                f"run ended (rc={proc.returncode}) before kill point {point}; see {log_path}")
            assert time.monotonic() - start < timeout, f"kill point {point} never reached"
            kind = point[0]
            if kind == "after_start" and time.monotonic() - start >= point[1]:
                break
            names = fault_runs.checkpoint_entries(workdir)
            if kind == "during_save":
                temp = {n for n in names if TMP_MARKER in n} - seen_temp
                new_temp += len(temp)
                seen_temp |= temp
                if new_temp >= point[1]:
                    break
            if kind == "after_save":
                done = {int(n) for n in names if n.isdigit()} - seen_done
                new_done += len(done)
                seen_done |= done
                if new_done >= point[1]:
                    time.sleep(point[2])
                    break
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    return {"returncode": proc.returncode,
            "temp_dirs_left": [n for n in fault_runs.checkpoint_entries(workdir) if TMP_MARKER in n],
            "finished_steps": fault_runs.finished_steps(workdir)}


@pytest.mark.leg2
def test_killed_five_times_then_resumed_ends_bit_identical(tmp_path):
    reference = fault_runs.reference_run()
    workdir = tmp_path / "run"
    log_path = tmp_path / "killed_runs.log"
    outcomes = [run_and_kill(workdir, log_path, point) for point in kill_plan(KILL_SEED)]

    assert [o["returncode"] for o in outcomes] == [-signal.SIGKILL] * 5
    # At least one kill landed while orbax was writing: its temp dir was left behind.
    assert any(o["temp_dirs_left"] for o in outcomes), outcomes
    # The kills did not prevent progress between them, and never reached the end.
    assert outcomes[-1]["finished_steps"] and max(outcomes[-1]["finished_steps"]) < 160

    final = fault_runs.run_to_end(workdir)
    assert final.returncode == 0, final.stderr[-3000:]
    got, want = fault_runs.summary(workdir), fault_runs.summary(reference)
    assert got["steps"] == want["steps"] == 160
    assert got["params_sha256"] == want["params_sha256"]
    assert got["metrics"] == want["metrics"]
    # metrics.jsonl reads as one uninterrupted run: same events, same values, no repeats.
    assert fault_runs.events(workdir) == fault_runs.events(reference)
    # Temp dirs left by the kills were cleaned up, never taken for checkpoints.
    assert not [n for n in fault_runs.checkpoint_entries(workdir) if TMP_MARKER in n]
    assert fault_runs.finished_steps(workdir) == [144, 152, 160]


def test_torn_last_line_of_metrics_log_does_not_block_resume(tmp_path):
    """A kill in the middle of appending to metrics.jsonl leaves a torn line; resume copes."""
    reference = fault_runs.reference_run()
    workdir = fault_runs.copy_of_reference(tmp_path / "run")
    # Back to the state right after checkpoint 152 was written and one more event
    # was being appended when the process died.
    import shutil
    shutil.rmtree(workdir / "checkpoints" / "160")
    (workdir / "summary.json").unlink()
    kept = [line for line in (workdir / "metrics.jsonl").read_text().splitlines()
            if '"step": 160' not in line]
    (workdir / "metrics.jsonl").write_text("\n".join(kept) + '\n{"step": 160, "split": "tr')

    final = fault_runs.run_to_end(workdir)
    assert final.returncode == 0, final.stderr[-3000:]
    assert fault_runs.summary(workdir)["params_sha256"] == fault_runs.summary(reference)["params_sha256"]
    assert fault_runs.events(workdir) == fault_runs.events(reference)


def test_ctrl_c_prints_one_line_exits_130_and_the_rerun_resumes_exactly(tmp_path):
    reference = fault_runs.reference_run()
    workdir = tmp_path / "run"
    proc = subprocess.Popen(fault_runs.command(workdir), cwd=fault_runs.REPO,
                            env=fault_runs.run_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not fault_runs.finished_steps(workdir) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    start, *lines = err.strip().splitlines()
    assert start == f"faults_digits: run directory {os.path.abspath(workdir)}", err[-3000:]
    assert len(lines) == 1, err[-3000:]  # Ctrl-C's one line: no orbax/absl traceback
    found = re.fullmatch(rf"interrupted: run {workdir} stopped after step (\d+); last "
                         r"checkpoint: step (\d+) \(kept\)\. Re-running the same command "
                         r"resumes from step (\d+)\.", lines[0])
    assert found, lines[0]
    stopped, kept, resumes = map(int, found.groups())
    assert kept == resumes == fault_runs.finished_steps(workdir)[-1] and 0 < kept <= stopped < 160
    assert not (workdir / ".lock").exists()

    final = fault_runs.run_to_end(workdir)  # nothing was lost: same bits as uninterrupted
    assert final.returncode == 0, final.stderr[-3000:]
    assert fault_runs.summary(workdir)["params_sha256"] == fault_runs.summary(reference)["params_sha256"]
    assert fault_runs.events(workdir) == fault_runs.events(reference)
