"""Damaged and unfinished checkpoints: warned about by name, set aside, never used.

Each test copies one finished run of tests/faults_experiment.py (checkpoints
144, 152, 160), damages checkpoint 160 and restores: jaxdl must warn naming
``checkpoints/160``, move it to ``corrupt_checkpoints/`` and resume from 152.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

import fault_runs
import faults_experiment
from fault_runs import TMP_MARKER
from jaxdl.optim import make_optimizer
from jaxdl.train.checkpoint import Checkpointer
from jaxdl.train.state import create_train_state, params_sha256, split_model


def fresh_state():
    """A step-0 TrainState with the fault experiment's layout (restore target)."""
    config = faults_experiment.get_config()
    model, _, _ = faults_experiment.build(config)
    _, _, params, model_state = split_model(model)
    tx = make_optimizer(config.optimizer, params, config.train.num_steps)
    return create_train_state(params, model_state, tx, seed=config.seed)


def array_data_files(checkpoint: Path) -> list[Path]:
    """The OCDBT data files holding the arrays of ``checkpoint/state``, largest first."""
    files = [p for p in (checkpoint / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    return sorted(files, key=lambda p: p.stat().st_size, reverse=True)


def truncate_array_data(checkpoint: Path) -> None:
    biggest = array_data_files(checkpoint)[0]
    biggest.write_bytes(biggest.read_bytes()[: biggest.stat().st_size // 2])


def garble_array_data(checkpoint: Path) -> None:
    """Overwrite 64 bytes in the middle of every array data file (sizes unchanged)."""
    for path in array_data_files(checkpoint):
        data = bytearray(path.read_bytes())
        middle = len(data) // 2
        data[middle:middle + 64] = bytes(len(data[middle:middle + 64]))
        path.write_bytes(bytes(data))


def delete_array_data(checkpoint: Path) -> None:
    for path in array_data_files(checkpoint):
        path.unlink()


def empty_meta_json(checkpoint: Path) -> None:
    (checkpoint / "meta" / "metadata").write_text("")


def garble_tree_metadata(checkpoint: Path) -> None:
    (checkpoint / "state" / "_METADATA").write_text("{not json")


DAMAGES = [truncate_array_data, garble_array_data, delete_array_data, empty_meta_json,
           garble_tree_metadata]


@pytest.fixture(scope="module")
def target():
    return fresh_state()


@pytest.fixture(scope="module")
def good_152(target):
    """Checkpoint 152 of the undamaged reference run, restored."""
    return Checkpointer(str(fault_runs.reference_run())).restore(152, target)[0]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.__name__ for d in DAMAGES])
def test_damaged_newest_checkpoint_is_set_aside_and_previous_restored(
        damage, tmp_path, caplog, target, good_152):
    workdir = fault_runs.copy_of_reference(tmp_path / "run")
    damage(workdir / "checkpoints" / "160")
    checkpointer = Checkpointer(str(workdir))
    with caplog.at_level(logging.WARNING, logger="jaxdl"):
        state, meta = checkpointer.restore_latest(target)

    assert int(state.step) == 152
    assert params_sha256(state.params) == params_sha256(good_152.params)
    assert "early_stopping" in meta
    warning = caplog.text
    assert f"checkpoint {workdir / 'checkpoints' / '160'} could not be read" in warning
    assert f"moved it to {workdir / 'corrupt_checkpoints' / '160'}" in warning
    assert (workdir / "corrupt_checkpoints" / "160" / "state").is_dir()  # kept, not deleted
    assert checkpointer.steps() == [144, 152]


def test_unfinished_temporary_checkpoint_is_never_restored(tmp_path, target, good_152):
    workdir = fault_runs.copy_of_reference(tmp_path / "run")
    checkpoints = workdir / "checkpoints"
    # A complete-looking write of 160 that was never renamed into place …
    os.rename(checkpoints / "160", checkpoints / f"160{TMP_MARKER}")
    # … and a half-written 168 holding garbage.
    (checkpoints / f"168{TMP_MARKER}" / "state").mkdir(parents=True)
    (checkpoints / f"168{TMP_MARKER}" / "state" / "_METADATA").write_text("{half")

    checkpointer = Checkpointer(str(workdir))
    assert checkpointer.steps() == [144, 152]
    state, _ = checkpointer.restore_latest(target)
    assert int(state.step) == 152
    assert params_sha256(state.params) == params_sha256(good_152.params)
    assert not (workdir / "corrupt_checkpoints").exists()


def test_run_with_garbled_newest_checkpoint_warns_and_ends_bit_identical(tmp_path):
    reference = fault_runs.reference_run()
    workdir = fault_runs.copy_of_reference(tmp_path / "run")
    garble_array_data(workdir / "checkpoints" / "160")
    (workdir / "summary.json").unlink()

    done = fault_runs.run_to_end(workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"checkpoint {workdir / 'checkpoints' / '160'} could not be read" in done.stderr
    assert "resuming from the previous checkpoint" in done.stderr
    assert fault_runs.summary(workdir)["params_sha256"] == fault_runs.summary(reference)["params_sha256"]
    assert fault_runs.events(workdir) == fault_runs.events(reference)
    assert (workdir / "corrupt_checkpoints" / "160").is_dir()
    assert fault_runs.finished_steps(workdir) == [144, 152, 160]


def test_partial_write_left_by_a_kill_is_replaced_by_the_next_save(tmp_path, target):
    """A killed save of 168 left orbax's temp dir; the re-run's save of 168 replaces it."""
    workdir = fault_runs.copy_of_reference(tmp_path / "run")
    checkpoints = workdir / "checkpoints"
    shutil.copytree(checkpoints / "152", checkpoints / f"168{TMP_MARKER}")
    garble_array_data(checkpoints / f"168{TMP_MARKER}")
    kept = {step: (checkpoints / str(step) / "state" / "_METADATA").read_bytes()
            for step in (152, 160)}

    checkpointer = Checkpointer(str(workdir))
    state, meta = checkpointer.restore_latest(target)
    assert int(state.step) == 160
    checkpointer.save(168, state.replace(step=state.step + 8), meta)
    checkpointer.close()

    assert sorted(n for n in fault_runs.checkpoint_entries(workdir)
                  if n != "run_identity.json") == ["152", "160", "168"]
    assert {step: (checkpoints / str(step) / "state" / "_METADATA").read_bytes()
            for step in (152, 160)} == kept
    again = Checkpointer(str(workdir)).restore(168, target)[0]
    assert int(again.step) == 168
    assert params_sha256(again.params) == params_sha256(state.params)
