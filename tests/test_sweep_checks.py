"""Sweeps check every sub-run's whole config before any starts, accept what ``jaxdl.run``
accepts, refuse grid values that are one value, and stop their sub-runs when stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from fault_runs import EXPERIMENT, REPO, run_env
from jaxdl.errors import ConfigError
from jaxdl.sweep import cli as sweep_cli
from jaxdl.sweep.grid import parse_grid, plan_subruns

pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
LOGISTIC = str(REPO / "experiments" / "logistic_regression.py")


def _refused(tmp_path, capsys, *args: str) -> str:
    workdir = tmp_path / "sweep"
    assert sweep_cli.main([f"--workdir={workdir}", *args]) == 2
    assert not workdir.exists()  # nothing started, nothing written
    return capsys.readouterr().err


def test_issue_example_d_nan_in_the_grid_is_refused_before_any_subrun(tmp_path, capsys):
    err = _refused(tmp_path, capsys, f"--config={LOGISTIC}", "--grid=optimizer.lr=0.05,nan",
                   "--config.train.batch_size=100")
    assert err.strip() == ("error: sub-run with --config.optimizer.lr=nan --config.seed=0: "
                           "config.optimizer.lr=nan; expected a finite number > 0; no sub-run "
                           "was started")


@pytest.mark.parametrize("args, message", [
    # the experiment's own schema (transfer keys it does not read, its section ranges)
    (["--grid=transfer.dont_load=(),('^head/',)"], "config.transfer.dont_load=('^head/',) "
                                                    "would do nothing"),
    (["--grid=data.test_fraction=0.25,1.0"], "config.data.test_fraction=1.0; expected"),
    # a cross-key rule that only one combination breaks, on the last seed's axis
    (["--grid=optimizer.schedule=warmup_cosine,constant", "--config.optimizer.warmup_steps=2",
      "--seeds=0,1"], "sub-run with --config.optimizer.schedule=constant --config.seed=0: "
                      "config.optimizer.warmup_steps=2 would do nothing"),
])
def test_a_bad_config_in_any_subrun_starts_nothing(tmp_path, capsys, args, message):
    err = _refused(tmp_path, capsys, f"--config={EXPERIMENT}", "--config.train.num_steps=4",
                   *args)
    assert message in err and "no sub-run was started" in err


def test_values_equal_once_parsed_are_refused_not_raced(tmp_path, capsys):
    err = _refused(tmp_path, capsys, f"--config={LOGISTIC}", "--grid=optimizer.lr=0.1,1e-1")
    assert ("--grid 'optimizer.lr=0.1,1e-1': values '0.1' and '1e-1' are the same value (0.1) "
            "once parsed") in err
    with pytest.raises(ConfigError, match=r"values '\(16,\)' and '\[16\]' are the same value"):
        plan_subruns(EXPERIMENT, parse_grid(["model.hidden=(16,),[16]"]), [0])


def test_the_sweep_accepts_what_jaxdl_run_accepts():
    # logistic_regression's batch_size=0 sentinel (the whole split), refused before
    runs = plan_subruns(LOGISTIC, parse_grid(["optimizer.lr=0.05,0.1"]), [0])
    assert [r.config.train.batch_size for r in runs] == [0, 0]
    # absl's other forms: "--config.KEY VALUE" and a bare bool flag
    own, overrides = sweep_cli.normalise_overrides(
        [f"--config={EXPERIMENT}", "--config.train.num_steps", "7", "--config.force_resume",
         "--grid=optimizer.lr=1e-3", "--config.train.eval_train", "false"])
    assert own == [f"--config={EXPERIMENT}", "--grid=optimizer.lr=1e-3"]
    assert overrides == ["--config.train.num_steps=7", "--config.force_resume=True",
                         "--config.train.eval_train=false"]
    run = plan_subruns(EXPERIMENT, [], [0], overrides)[0]
    assert (run.config.train.num_steps, run.config.force_resume, run.config.train.eval_train) \
        == (7, True, False)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_the_sweep_process_alone_stops_its_subruns(tmp_path, signum):
    workdir = tmp_path / "sweep"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "jaxdl.sweep", f"--config={EXPERIMENT}", f"--workdir={workdir}",
         "--grid=optimizer.lr=1e-3,3e-3", "--parallel=2", "--config.train.num_steps=100000"],
        cwd=REPO, env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        deadline, children = time.time() + 120, []
        while time.time() < deadline and sweep.poll() is None and len(children) < 2:
            children = psutil.Process(sweep.pid).children(recursive=True)
            time.sleep(0.1)
        assert len(children) >= 2, sweep.poll()  # both sub-runs started
        sweep.send_signal(signum)  # the sweep's process alone, not its group
        _, err = sweep.communicate(timeout=60)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], [p.cmdline() for p in alive]
        assert sweep.returncode == 128 + signum
        assert err.strip().endswith(f"sweep stopped by {signal.Signals(signum).name}: "
                                    f"{len(children)} sub-run process(es) stopped; running the "
                                    "same command again resumes the unfinished sub-runs")
    finally:
        for child in psutil.Process().children(recursive=True):
            child.kill()
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()


def test_sigkill_to_the_sweep_process_alone_ends_its_subruns(tmp_path):
    # SIGKILL cannot be caught: each sub-run asked the kernel for SIGTERM when its
    # parent dies (jaxdl.parent_death), so none trains on for a dead sweep.
    workdir = tmp_path / "sweep"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "jaxdl.sweep", f"--config={EXPERIMENT}", f"--workdir={workdir}",
         "--grid=optimizer.lr=1e-3,3e-3", "--parallel=2", "--config.train.num_steps=100000"],
        cwd=REPO, env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline, children = time.time() + 120, []
        while time.time() < deadline and sweep.poll() is None and len(children) < 2:
            children = psutil.Process(sweep.pid).children(recursive=True)
            time.sleep(0.1)
        assert len(children) >= 2, sweep.poll()
        time.sleep(1.0)  # past their start, where the rule is set
        sweep.kill()
        sweep.wait()
        _, alive = psutil.wait_procs(children, timeout=20)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        for child in psutil.Process().children(recursive=True):
            child.kill()


def test_stop_with_parent_reads_and_removes_the_variable(monkeypatch):
    from jaxdl.parent_death import PARENT_PID_ENV, stop_with_parent
    environ = {PARENT_PID_ENV: str(os.getppid())}
    assert stop_with_parent(environ) is True
    assert PARENT_PID_ENV not in environ  # its own sub-processes have another parent
    assert stop_with_parent({}) is False
