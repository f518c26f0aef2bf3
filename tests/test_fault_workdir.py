"""Workdir problems: not writable, disk full while saving, another experiment's run."""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import signal
import subprocess

import orbax.checkpoint as ocp
import pytest
from flax import nnx

import fault_runs
import faults_experiment
from conftest import tiny_config, tiny_data
from jaxdl.errors import CheckpointError, ConfigError
from jaxdl.models.mlp import MLP
from jaxdl.train import task as task_lib
from jaxdl.train.checkpoint import Checkpointer
from jaxdl.train.loop import fit
from jaxdl.train.run_identity import read_history
from jaxdl.workdir import prepare_workdir, start_writing


def test_workdir_under_a_regular_file_fails_before_any_work(tmp_path):
    """Works as root too (root ignores permission bits but not ENOTDIR)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    workdir = blocker / "run"
    with pytest.raises(CheckpointError) as info:
        prepare_workdir(str(workdir), faults_experiment.get_config())
    assert str(info.value).startswith(f"workdir '{workdir}' is not writable (Not a directory)")
    assert "Choose another --workdir or fix its permissions." in str(info.value)
    assert blocker.read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits; the "
                    "regular-file test above covers an unwritable workdir for root")
def test_read_only_workdir_fails_before_any_work(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    workdir.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match=r"is not writable \(Permission denied\)"):
            prepare_workdir(str(workdir), faults_experiment.get_config())
        assert os.listdir(workdir) == []
    finally:
        workdir.chmod(0o700)


def test_run_into_unwritable_workdir_exits_2_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    done = fault_runs.run_to_end(blocker / "run")
    assert done.returncode == 2
    assert f"error: workdir '{blocker / 'run'}' is not writable (Not a directory)" in done.stderr
    assert "Traceback" not in done.stderr


def small_fit_inputs():
    data = tiny_data(n=64)
    config = tiny_config(num_steps=16, log_every=4, checkpoint__every_steps=4)
    return MLP(4, (8,), 3, rngs=nnx.Rngs(0)), data, config


def test_disk_full_on_save_raises_checkpoint_error_and_keeps_earlier_ones(tmp_path, monkeypatch):
    model, data, config = small_fit_inputs()
    real_save = ocp.CheckpointManager.save
    saved_bytes = {}

    def save_until_full(self, step, *args, **kwargs):
        if step >= 12:
            for earlier in (4, 8):  # what is on disk when the disk fills up
                root = tmp_path / "checkpoints" / str(earlier)
                saved_bytes[earlier] = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, step, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", save_until_full)
    with pytest.raises(CheckpointError) as info:
        fit(model, task_lib.classification(), data, config=config, workdir=str(tmp_path))
    assert str(info.value).startswith(
        f"could not write checkpoint 12 under {tmp_path / 'checkpoints'}: "
        "[Errno 28] No space left on device. The previous checkpoints are untouched")
    assert Checkpointer(str(tmp_path)).steps() == [4, 8]
    for step, files in saved_bytes.items():
        assert {p: p.read_bytes() for p in files} == files


@pytest.mark.leg2
def test_file_size_limit_hit_mid_save_gives_clear_error_and_rerun_resumes_exactly(tmp_path):
    """A real write failure inside orbax/TensorStore (RLIMIT_FSIZE: EFBIG, like a full disk)."""
    workdir = tmp_path / "run"

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of dying
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    # No shared compilation cache here: its entries are bigger than the limit.
    full = subprocess.run(fault_runs.command(workdir), cwd=fault_runs.REPO,
                          env=fault_runs.run_env(JAX_COMPILATION_CACHE_DIR=""),
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=limit_file_size)
    assert full.returncode == 2, full.stderr[-3000:]
    found = re.search(rf"error: could not write checkpoint (\d+) under {workdir / 'checkpoints'}: "
                      r".*File too large.*The previous checkpoints are untouched", full.stderr)
    assert found, full.stderr[-3000:]
    failed_step = int(found.group(1))
    assert all(step < failed_step for step in fault_runs.finished_steps(workdir))

    done = fault_runs.run_to_end(workdir)  # space freed: the same command resumes
    assert done.returncode == 0, done.stderr[-3000:]
    reference = fault_runs.reference_run()
    assert fault_runs.summary(workdir)["params_sha256"] == fault_runs.summary(reference)["params_sha256"]


def test_workdir_of_another_experiment_is_refused_listing_differing_keys(tmp_path):
    first = faults_experiment.get_config()
    prepare_workdir(str(tmp_path), first)
    start_writing(str(tmp_path))  # as fit does once every check has passed
    other = faults_experiment.get_config()
    other.optimizer.lr = 0.5
    other.train.batch_size = 16
    with pytest.raises(ConfigError) as info:
        prepare_workdir(str(tmp_path), other)
    message = str(info.value)
    assert f"workdir '{tmp_path}' holds a run with a different config; refusing to resume" in message
    assert "optimizer.lr: saved=0.003 now=0.5" in message
    assert "train.batch_size: saved=32 now=16" in message
    assert "pass --config.force_resume=True to resume anyway" in message
    saved = json.loads((tmp_path / "config.json").read_text())["config"]
    assert saved["optimizer"]["lr"] == 0.003  # the first run's record is untouched

    other.force_resume = True
    prepare_workdir(str(tmp_path), other)
    start_writing(str(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text())["config"]["optimizer"]["lr"] == 0.5


def test_run_command_refuses_other_config_then_force_resume_proceeds(tmp_path):
    workdir = tmp_path / "run"
    prepare_workdir(str(workdir), faults_experiment.get_config())
    start_writing(str(workdir))
    refused = fault_runs.run_to_end(workdir, "--config.train.num_steps=8")
    assert refused.returncode == 2
    assert "train.num_steps: saved=160 now=8" in refused.stderr
    assert not fault_runs.finished_steps(workdir)  # refused before any work
    assert len(read_history(str(workdir))) == 1  # the refused start is not recorded

    forced = fault_runs.run_to_end(workdir, "--config.train.num_steps=8",
                                   "--config.force_resume=True")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert fault_runs.summary(workdir)["steps"] == 8
