"""Provenance: every start recorded, checkpoints of another run refused, failed starts undone."""

from __future__ import annotations

import json
import shutil

import pytest

import fault_runs
import faults_experiment
from jaxdl.errors import CheckpointError
from jaxdl.train.run_identity import read_history
from jaxdl.workdir import prepare_workdir


def test_force_resume_keeps_the_first_config_in_the_history(tmp_path):
    workdir = tmp_path / "run"
    first = fault_runs.run_to_end(workdir, "--config.train.num_steps=16")
    assert first.returncode == 0, first.stderr[-3000:]
    longer = fault_runs.run_to_end(workdir, "--config.train.num_steps=24",
                                   "--config.force_resume=True")
    assert longer.returncode == 0, longer.stderr[-3000:]
    history = read_history(str(workdir))
    assert [(e["start_step"], e["config"]["train"]["num_steps"]) for e in history] == [
        (0, 16), (16, 24)]
    assert json.loads((workdir / "config.json").read_text())["config"]["train"]["num_steps"] == 24
    assert fault_runs.summary(workdir)["steps"] == 24


def test_checkpoints_copied_from_another_seed_are_refused_naming_the_difference(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copytree(fault_runs.reference_run() / "checkpoints", workdir / "checkpoints")
    refused = fault_runs.run_to_end(workdir, "--config.seed=1")
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert (f"error: the checkpoints in {workdir / 'checkpoints'} belong to another run "
            "(experiment 'faults_digits', seed 0); refusing to resume from them. Differing "
            "keys:\n  seed: saved=0 now=1\n") in refused.stderr
    assert not (workdir / "config.json").exists() and not (workdir / "summary.json").exists()

    forced = fault_runs.run_to_end(workdir, "--config.seed=1", "--config.force_resume=True")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert read_history(str(workdir))[0]["start_step"] == 160  # resumed, as asked


def test_checkpoints_know_their_run_without_config_json(tmp_path):
    shutil.copytree(fault_runs.reference_run(), tmp_path / "run")
    (tmp_path / "run" / "config.json").unlink()  # only the checkpoints tell who wrote them
    prepare_workdir(str(tmp_path / "run"), faults_experiment.get_config())  # its own run: accepted
    other = faults_experiment.get_config()
    other.optimizer.lr = 0.5
    with pytest.raises(CheckpointError, match="optimizer.lr: saved=0.003 now=0.5"):
        prepare_workdir(str(tmp_path / "run"), other)


def test_a_start_that_fails_on_bad_input_leaves_no_config_and_the_fix_is_accepted(tmp_path):
    workdir = tmp_path / "run"
    failed = fault_runs.run_to_end(workdir, "--config.data.name=digitz",
                                   "--config.train.num_steps=8")
    assert failed.returncode == 2 and "unknown sklearn dataset 'digitz'" in failed.stderr
    assert not (workdir / "config.json").exists()
    fixed = fault_runs.run_to_end(workdir, "--config.train.num_steps=8")
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    # A start refused before training writes nothing, not even a history line.
    assert [e["config"]["data"]["name"] for e in read_history(str(workdir))] == ["digits"]


def test_a_bad_value_is_refused_before_anything_is_written(tmp_path):
    workdir = tmp_path / "run"
    refused = fault_runs.run_to_end(workdir, "--config.optimizer.lr=-1")
    assert refused.returncode == 2 and "optimizer.lr" in refused.stderr
    assert not workdir.exists()
