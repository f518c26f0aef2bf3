"""Class A of issue 28: what is saved, restored and recorded on resume is the truth.

A run with best-k checkpoints interrupted at any point resumes bit-identically; a
NaN/Inf state is never saved, whatever ``nan_policy``; a failed save names what
really happened; ``config_history.jsonl`` records the step really resumed from.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

import fault_runs
import faults_experiment
from conftest import tiny_config, tiny_data
from jaxdl.errors import CheckpointError, NonFiniteError
from jaxdl.train import task as task_lib
from jaxdl.train.checkpoint import Checkpointer
from jaxdl.train.loop import fit
from jaxdl.train.run_identity import read_history
from test_fault_nan import NAN_LR, TASK, config_for, data_poisoned_at, model, nan_at_update

# Best-k on top of the fault experiment (evaluations at 40, 80, 120, 160; latest
# checkpoints every 32 steps, so a best-k save at 40, 80 or 120 always comes
# before the latest checkpoint of that step). The parameters and metrics.jsonl do
# not depend on either setting: they must equal the reference run's.
BEST_K = ("--config.checkpoint.best_metric=test/accuracy", "--config.checkpoint.keep_best=2",
          "--config.checkpoint.every_steps=32")


def best_steps(workdir) -> list[int]:
    path = workdir / "checkpoints_best"
    return sorted(int(n.name) for n in path.iterdir() if n.name.isdigit()) if path.exists() else []


def best_temp_dirs(workdir) -> list[str]:
    path = workdir / "checkpoints_best"
    return [n.name for n in path.iterdir() if fault_runs.TMP_MARKER in n.name] if path.exists() else []


def interrupt_when(workdir, sig: int, reached, timeout: float = 180) -> int:
    """Start the best-k run, send ``sig`` once ``reached(workdir)`` holds; its exit code."""
    proc = subprocess.Popen(fault_runs.command(workdir, *BEST_K), cwd=fault_runs.REPO,
                            env=fault_runs.run_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while not reached(workdir):
            assert proc.poll() is None, f"run ended first: {proc.communicate()[1][-3000:]}"
            assert time.monotonic() < deadline, "interruption point never reached"
            time.sleep(0.001)
        proc.send_signal(sig)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.mark.leg2
def test_best_k_run_interrupted_at_several_points_resumes_bit_identical(tmp_path):
    """Issue 28's example (Ctrl-C once checkpoints_best/<s> exists, ahead of the latest
    checkpoint), then a SIGKILL in the same place and one in the middle of a best-k write."""
    reference = fault_runs.reference_run()
    workdir = tmp_path / "run"
    points = [(signal.SIGINT, lambda w: 40 in best_steps(w)),
              (signal.SIGKILL, lambda w: 80 in best_steps(w)),
              (signal.SIGKILL, lambda w: bool(best_temp_dirs(w)) and 80 in best_steps(w))]
    resumable = []
    for sig, reached in points:
        code = interrupt_when(workdir, sig, reached)
        assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL)
        resumable.append(fault_runs.finished_steps(workdir)[-1])
    # Each interruption left best-k checkpoints ahead of the step the next run resumes from.
    assert resumable[0] < 40 and resumable[1] < 80

    final = fault_runs.run_to_end(workdir, *BEST_K)
    assert final.returncode == 0, final.stderr[-3000:]
    got, want = fault_runs.summary(workdir), fault_runs.summary(reference)
    assert got["params_sha256"] == want["params_sha256"]
    assert got["metrics"] == want["metrics"]
    assert fault_runs.events(workdir) == fault_runs.events(reference)
    # The best-k set is the uninterrupted one: the 2 best evaluations of the run.
    accuracy = {e["step"]: e["accuracy"] for e in fault_runs.events(reference) if e["split"] == "test"}
    kept = best_steps(workdir)
    assert len(kept) == 2 and not best_temp_dirs(workdir)
    assert sorted(accuracy[s] for s in kept) == sorted(accuracy.values())[-2:]
    # Every start is on record with the step it really resumed from.
    assert [e["start_step"] for e in read_history(str(workdir))] == [0, *resumable]


def test_history_records_the_step_resumed_from_when_the_newest_checkpoint_is_damaged(tmp_path):
    workdir = fault_runs.copy_of_reference(tmp_path / "run")
    (workdir / "summary.json").unlink()
    for path in (workdir / "checkpoints" / "160").rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage")
    config = faults_experiment.get_config()
    model_, train, eval_data = faults_experiment.build(config)
    fit(model_, task_lib.classification(), train, eval_data=eval_data, config=config,
        workdir=str(workdir))
    assert read_history(str(workdir))[-1]["start_step"] == 152  # not the damaged 160


def test_no_nan_state_is_saved_under_nan_policy_none(tmp_path):
    config = config_for("none", num_steps=8, log_every=2, every_steps=2)
    with pytest.raises(NonFiniteError) as info:
        fit(model(), TASK, data_poisoned_at([]), config=config, workdir=str(tmp_path),
            tx=NAN_LR)
    assert ("the parameters or optimizer state are NaN/Inf at step 2 "
            "(config.nan_policy='none'), so checkpoint 2 is not written") in str(info.value)
    assert "last good checkpoint: none" in str(info.value)
    assert Checkpointer(str(tmp_path)).steps() == []


@pytest.mark.parametrize("nan_policy", ["raise", "none"])
def test_no_nan_state_is_saved_as_a_best_checkpoint(tmp_path, nan_policy):
    """An evaluation between two reads of the train metrics saves no NaN best-k checkpoint."""
    config = config_for(nan_policy, num_steps=8, log_every=4, every_steps=4)
    config.train.eval_every = 3  # evaluations at 3 and 6; train metrics read at 4 and 8
    config.checkpoint.best_metric, config.checkpoint.best_mode = "test/loss", "min"
    config.checkpoint.keep_best = 5
    with pytest.raises(NonFiniteError, match="NaN/Inf at step 6"):
        fit(model(), TASK, data_poisoned_at([]), config=config, workdir=str(tmp_path),
            tx=nan_at_update(4), eval_data={"test": data_poisoned_at([])})
    assert best_steps(tmp_path) == [3]  # the state after 6 steps (NaN since step 5) is not saved
    assert Checkpointer(str(tmp_path)).steps() == [4]


def test_a_failed_save_names_what_happened_not_a_full_disk(tmp_path):
    checkpointer = Checkpointer(str(tmp_path))
    state = {"w": np.ones(3, np.float32)}
    checkpointer.save(4, state, {})
    with pytest.raises(CheckpointError) as info:
        checkpointer.save(4, state, {})
    message = str(info.value)
    assert message.startswith(f"could not write checkpoint 4 under {tmp_path / 'checkpoints'}: "
                              "Checkpoint for step 4 already exists. The previous checkpoints "
                              "are untouched; this is not a disk problem")
    assert "free space" not in message
    checkpointer.close()


def test_a_resumed_transfer_run_reports_what_its_first_start_loaded(tmp_path):
    """Summary counters (``transfer``, ``loaded``) do not change because a run was resumed."""
    from flax import nnx
    from jaxdl.models.mlp import MLP
    from jaxdl.transfer import maybe_init_from

    def new_model():
        return MLP(4, (8,), 3, rngs=nnx.Rngs(1))

    config = tiny_config(num_steps=4, checkpoint__every_steps=2)
    fit(new_model(), task_lib.classification(), tiny_data(n=32), config=config,
        workdir=str(tmp_path / "pretrain"))
    config.transfer.init_from = str(tmp_path / "pretrain")
    config.transfer.dont_load = ("^head/",)
    model = new_model()
    first = maybe_init_from(model, config, str(tmp_path / "down"))
    fit(model, task_lib.classification(), tiny_data(n=32), config=config,
        workdir=str(tmp_path / "down"))
    resumed = maybe_init_from(new_model(), config, str(tmp_path / "down"))
    assert first.loaded and first.reinitialised == ["head/bias", "head/kernel"]
    assert resumed is not None and resumed.as_dict() == first.as_dict()
