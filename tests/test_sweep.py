"""``python -m jaxdl.sweep``: grid × seeds as sub-runs, killed and re-run, same table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fault_runs import EXPERIMENT, REPO, events, finished_steps, run_env, summary
from jaxdl.sweep import cli as sweep_cli
from jaxdl.errors import ConfigError
from jaxdl.sweep.grid import parse_grid, plan_subruns, split_top_level

# ml_collections loads config files with importlib's deprecated load_module().
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")

SUBRUNS = [f"runs/lr={lr}-dropout={p}-s{s}" for lr in ("0.001", "0.003")
           for p in ("0.0", "0.5") for s in (0, 1)]
ARGS = [f"--config={EXPERIMENT}", "--grid=optimizer.lr=1e-3,3e-3", "--grid=model.dropout=0.0,0.5",
        "--seeds=0,1", "--parallel=2", "--config.train.num_steps=24",
        "--config.train.eval_every=12", "--config.checkpoint.every_steps=12"]


def _command(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "jaxdl.sweep", f"--workdir={workdir}", *ARGS]


def _sweep_to_end(workdir: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(_command(workdir), cwd=REPO, env=run_env(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _kill_mid_way(workdir: Path) -> set[str]:
    """Start the sweep; SIGKILL its process group once a sub-run has finished and
    another has a checkpoint but no summary. Returns the sub-runs finished by then."""
    log = open(workdir.parent / f"{workdir.name}.log", "wb")
    process = subprocess.Popen(_command(workdir), cwd=REPO, env=run_env(), stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None:
            done = {n for n in SUBRUNS if (workdir / n / "summary.json").exists()}
            midway = [n for n in SUBRUNS if n not in done and finished_steps(workdir / n)]
            if done and midway:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return {n for n in SUBRUNS if (workdir / n / "summary.json").exists()}
            time.sleep(0.02)
        pytest.fail(f"the sweep ended (code {process.poll()}) before it could be killed mid-way")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.mark.leg2
def test_killed_sweep_rerun_gives_the_uninterrupted_table_each_subrun_trained_once(tmp_path):
    reference = tmp_path / "reference"
    done = _sweep_to_end(reference)
    table = (reference / "table.md").read_text()
    assert done.stdout.startswith(table.rstrip("\n").split("\n")[0])  # the table, then paths
    assert done.stdout.rstrip().endswith(f"plots: {reference / 'plots'}{os.sep}")
    assert sum("sweep [" in line and "/8] runs/" in line for line in done.stderr.splitlines()) == 8

    killed = tmp_path / "killed"
    finished = _kill_mid_way(killed)
    assert 0 < len(finished) < len(SUBRUNS)
    stamps = {n: (killed / n / "summary.json").stat().st_mtime_ns for n in finished}
    rerun = _sweep_to_end(killed)

    assert (killed / "table.md").read_text() == table
    sweep_summary = json.loads((killed / "summary.json").read_text())
    assert sweep_summary["table"] == json.loads((reference / "summary.json").read_text())["table"]
    statuses = {run["name"]: run["status"] for run in sweep_summary["runs"]}
    assert statuses == {n: "skipped" if n in finished else "ran" for n in SUBRUNS}
    for name in SUBRUNS:
        assert summary(killed / name)["params_sha256"] == summary(reference / name)["params_sha256"]
        assert events(killed / name) == events(reference / name), name  # each step logged once
        assert summary(killed / name)["steps"] == 24
    for name in finished:  # finished before the kill: not trained again
        assert (killed / name / "summary.json").stat().st_mtime_ns == stamps[name]
        assert f"{name}: finished earlier, skipped" in rerun.stderr

    best = sweep_summary["best"]
    row = next(r for r in sweep_summary["table"] if r["combination"] == best["combination"])
    means = [r["metrics"]["test/accuracy"]["mean"] for r in sweep_summary["table"]]
    assert best["mean"] == row["metrics"]["test/accuracy"]["mean"] == max(means)
    lo, hi = row["metrics"]["test/accuracy"]["ci95"]
    assert lo < best["mean"] < hi
    assert (killed / "plots" / "test_accuracy.png").stat().st_size > 0


def test_failing_subrun_stops_the_sweep_naming_its_log(tmp_path):
    workdir = tmp_path / "sweep"
    done = subprocess.run([sys.executable, "-m", "jaxdl.sweep", f"--config={EXPERIMENT}",
                           f"--workdir={workdir}", "--grid=train.batch_size=100000,32",
                           "--config.train.num_steps=4"], cwd=REPO, env=run_env(),
                          capture_output=True, text=True, timeout=300)
    log = workdir / "runs" / "batch_size=100000-s0" / "run.log"
    assert done.returncode == 2
    assert f"error: sub-run runs/batch_size=100000-s0 failed with exit code 2; its output is in {log}" \
        in done.stderr
    assert "batch_size=100000 is larger than dataset 'train'" in log.read_text()
    assert not (workdir / "runs" / "batch_size=32-s0").exists()  # not started after the failure
    assert not (workdir / "table.md").exists() and done.stdout == ""


@pytest.mark.parametrize("grid, message", [
    ("optimizer.lrr=1e-3,3e-3", "unknown config key 'optimizer.lrr' (command-line flag "
                                "'--grid=optimizer.lrr=1e-3,3e-3'); did you mean 'optimizer.lr'?"),
    ("train.batch_size=32,abc", "config key 'train.batch_size' got 'abc' (command-line flag "
                                "'--grid=train.batch_size=32,abc'); expected an integer, like "
                                "its default 32"),
    ("optimizer.nesterov=true,maybe", "config key 'optimizer.nesterov' got 'maybe' (command-line "
                                      "flag '--grid=optimizer.nesterov=true,maybe'); expected a bool"),
    ("optimizer.name=adam,sgdd", "config.optimizer.name='sgdd'; expected one of"),
    ("seed=0,1", "seeds are swept with --seeds"),
])
def test_bad_grid_is_refused_before_any_subrun(tmp_path, capsys, grid, message):
    workdir = tmp_path / "sweep"
    code = sweep_cli.main([f"--config={EXPERIMENT}", f"--workdir={workdir}", f"--grid={grid}",
                           "--seeds=0,1"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not workdir.exists()


def test_grid_values_are_parsed_as_on_the_command_line():
    assert split_top_level("(16,),(32, 16),'a,b'") == ["(16,)", "(32, 16)", "'a,b'"]
    axes = parse_grid(["model.hidden=(16,),(32,16)", "optimizer.lr=1e-3"])
    runs = plan_subruns(EXPERIMENT, axes, [0, 3], ["--config.train.num_steps=5"])
    assert [r.name for r in runs] == ["runs/hidden=16-lr=0.001-s0", "runs/hidden=16-lr=0.001-s3",
                                      "runs/hidden=32_16-lr=0.001-s0",
                                      "runs/hidden=32_16-lr=0.001-s3"]
    assert [tuple(r.config.model.hidden) for r in runs] == [(16,), (16,), (32, 16), (32, 16)]
    assert [r.config.seed for r in runs] == [0, 3, 0, 3]
    assert {r.config.train.num_steps for r in runs} == {5}
    with pytest.raises(ConfigError, match="also given as --config.optimizer.lr"):
        plan_subruns(EXPERIMENT, axes, [0], ["--config.optimizer.lr=0.1"])
