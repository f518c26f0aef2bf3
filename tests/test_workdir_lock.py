"""One run per workdir: the lock file, its stale and foreign cases, two runs at once."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest

import fault_runs
from jaxdl.workdir_lock import (WorkdirLockedError, acquire, hold_workdir, lock_path,
                                read_holder, release)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_two_runs_on_one_workdir_at_once_one_trains_the_other_exits_2(tmp_path):
    workdir = tmp_path / "run"
    procs = [subprocess.Popen(fault_runs.command(workdir), cwd=fault_runs.REPO,
                              env=fault_runs.run_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.pid, p.returncode, err) for p in procs for _, err in [p.communicate(timeout=300)]]
    codes = sorted(rc for _, rc, _ in results)
    assert codes == [0, 2], [err[-2000:] for _, _, err in results]
    (winner, _, _), = [r for r in results if r[1] == 0]
    (_, _, loser_err), = [r for r in results if r[1] == 2]
    found = re.search(rf"error: workdir '{workdir}' is in use by another run \(host ([^,]+), "
                      r"pid (\d+), since ([^;]+); lock file", loser_err)
    assert found, loser_err[-2000:]
    assert found.group(1) == socket.gethostname()
    assert int(found.group(2)) == winner
    assert "Traceback" not in loser_err
    reference = fault_runs.reference_run()
    assert fault_runs.summary(workdir)["params_sha256"] == fault_runs.summary(reference)["params_sha256"]
    assert (workdir / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
    assert not (workdir / ".lock").exists()  # released on exit
    history = [json.loads(l) for l in (workdir / "config_history.jsonl").read_text().splitlines()]
    assert [(e["pid"], e["start_step"]) for e in history] == [(winner, 0)]  # loser wrote nothing


def test_lock_of_a_dead_process_is_replaced(tmp_path):
    pid = _dead_pid()
    stale = {"host": socket.gethostname(), "pid": pid, "since": "2020-01-01T00:00:00+00:00"}
    (tmp_path / ".lock").write_text(json.dumps(stale))
    assert acquire(str(tmp_path))
    try:
        holder = read_holder(str(tmp_path))
        assert holder["pid"] != pid and holder["host"] == socket.gethostname()
    finally:
        release(str(tmp_path))
    assert not (tmp_path / ".lock").exists()


def test_lock_held_by_a_live_process_is_refused_naming_it(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from jaxdl.workdir_lock import acquire; "
         f"acquire({str(tmp_path)!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=fault_runs.run_env())
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(WorkdirLockedError) as info:
            acquire(str(tmp_path))
        assert (f"workdir '{tmp_path}' is in use by another run (host {socket.gethostname()}, "
                f"pid {holder.pid}, since ") in str(info.value)
        assert f"lock file {lock_path(str(tmp_path))}" in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    assert acquire(str(tmp_path))  # its owner died: the lock is free again
    release(str(tmp_path))


def test_lock_written_on_another_host_is_refused_with_advice(tmp_path):
    (tmp_path / ".lock").write_text(json.dumps(
        {"host": "some-other-host", "pid": 1234, "since": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(WorkdirLockedError, match=r"locked by a run on another machine \(host "
                       r"some-other-host, pid 1234, since 2026-01-01.*delete the lock file"):
        acquire(str(tmp_path))


def test_sub_run_directories_share_the_parent_lock_without_deadlock(tmp_path):
    sub = tmp_path / "runs" / "pretrain"
    sub.mkdir(parents=True)
    with hold_workdir(str(tmp_path)):
        assert acquire(str(sub)) is False  # already held through its parent
        assert not (sub / ".lock").exists()
        assert read_holder(str(tmp_path))["pid"] == os.getpid()
    assert not (tmp_path / ".lock").exists()
    with hold_workdir(str(sub)):  # alone, a sub-run directory takes its own lock
        assert (sub / ".lock").exists()
