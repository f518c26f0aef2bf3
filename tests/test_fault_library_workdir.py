"""Class I of issue 28: ``fit(..., workdir=d)`` as a library call checks ``d`` as ``jaxdl.run`` does.

A workdir holding a run with another config is refused with the same
``ConfigError`` (one check, ``jaxdl.workdir.prepare_workdir``), whichever of the
library or the command line wrote it; ``force_resume`` and resume-neutral keys
behave as on the command line.
"""

from __future__ import annotations

import json

import pytest
from flax import nnx

import fault_runs
import faults_experiment
from conftest import tiny_config, tiny_data
from jaxdl.errors import ConfigError
from jaxdl.models.mlp import MLP
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.workdir import prepare_workdir


TOP_LEVEL = ("seed", "nan_policy", "force_resume")


def small_config(**settings):
    """``tiny_config`` of 8 steps, checkpoints every 4; ``seed=`` etc. set at the top level."""
    top = {k: settings.pop(k) for k in TOP_LEVEL if k in settings}
    config = tiny_config(**{"num_steps": 8, "checkpoint__every_steps": 4, **settings})
    for key, value in top.items():
        config[key] = value
    return config


def small_fit(workdir, **settings):
    config = small_config(**settings)
    return fit(MLP(4, (8,), 3, rngs=nnx.Rngs(config.seed)), task_lib.classification(),
               tiny_data(n=32), config=config, workdir=str(workdir))


def refusal(workdir, config) -> str:
    """The command line's refusal of ``config`` in ``workdir`` (``prepare_workdir``'s message)."""
    with pytest.raises(ConfigError) as info:
        prepare_workdir(str(workdir), config)
    return str(info.value)


def test_second_fit_with_another_lr_and_seed_is_refused_not_answered_with_old_params(tmp_path):
    first = small_fit(tmp_path)
    other = small_config(optimizer__lr=0.5, seed=1)
    with pytest.raises(ConfigError) as info:
        small_fit(tmp_path, optimizer__lr=0.5, seed=1)
    message = str(info.value)
    assert "optimizer.lr: saved=" in message and "now=0.5" in message
    assert "seed: saved=0 now=1" in message
    assert message == refusal(tmp_path, other)  # word for word the command line's check
    again = small_fit(tmp_path)  # the same config resumes: the run is finished, same bits
    assert again.params_sha256 == first.params_sha256


@pytest.mark.parametrize("setting", [dict(num_steps=12), dict(batch_size=16),
                                     dict(optimizer__lr=0.05), dict(nan_policy="skip"),
                                     dict(checkpoint__every_steps=2), dict(seed=3)])
def test_any_differing_key_is_refused_and_force_resume_or_neutral_keys_proceed(tmp_path, setting):
    small_fit(tmp_path)
    name = next(iter(setting)).split("__")[-1]
    with pytest.raises(ConfigError, match=rf"Differing keys:\n(  .*\n)*  [a-z_.]*{name}: saved="):
        small_fit(tmp_path, **setting)
    assert len(json.loads((tmp_path / "config.json").read_text())) == 2  # untouched record
    assert small_fit(tmp_path, progress_bar=True).steps == 8  # resume-neutral key
    forced = small_fit(tmp_path, **setting, force_resume=True)
    assert json.loads((tmp_path / "config.json").read_text())["config"]["force_resume"] is True
    assert forced.steps >= 8


def test_library_fit_refuses_a_workdir_the_command_line_wrote(tmp_path):
    workdir = fault_runs.copy_of_reference(tmp_path / "run")
    config = faults_experiment.get_config()
    config.optimizer.lr = 0.5
    model, train, eval_data = faults_experiment.build(config)
    with pytest.raises(ConfigError, match="optimizer.lr: saved=0.003 now=0.5"):
        fit(model, task_lib.classification(), train, eval_data=eval_data, config=config,
            workdir=str(workdir))
