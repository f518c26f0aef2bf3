"""Class J of issue 28: a run refused by any check writes nothing in its workdir.

``jaxdl.run`` takes its lock and checks the workdir first; everything else —
``config.json``, ``config_history.jsonl``, ``checkpoints/``, logs — is written by
``fit`` only once the model, the data and every setting have passed their checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest
from flax import nnx

import fault_runs
from conftest import tiny_config, tiny_data
from formats import fasttext_line
from jaxdl.errors import JaxdlError
from jaxdl.models.mlp import MLP
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.run import run_experiment
from jaxdl.workdir import forget_prepared, prepare_workdir


def left_in(workdir) -> list[str]:
    """Every path written under ``workdir`` (relative), sorted."""
    return sorted(os.path.relpath(os.path.join(root, name), workdir)
                  for root, dirs, files in os.walk(workdir) for name in dirs + files)


@pytest.mark.parametrize("override, says", [
    ('--config.transfer.lr_multipliers=(("^nomatch/", 2.0),)',
     "config.transfer.lr_multipliers: regex '^nomatch/' matches no parameter path"),
    ("--config.train.early_stopping_metric=test/f1",
     "config.train.early_stopping_metric='test/f1' is not a metric this run logs"),
])
def test_issue_examples_refused_after_the_model_exists_leave_the_workdir_empty(
        tmp_path, override, says):
    workdir = tmp_path / "run"
    done = fault_runs.run_to_end(workdir, override)
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"error: {says}" in done.stderr
    assert left_in(workdir) == []  # no checkpoints/, config_history.jsonl, config.json


@pytest.mark.parametrize("source", ["arrays", "stream"])
def test_labels_only_fasttext_file_leaves_the_workdir_empty(tmp_path, source):
    train = tmp_path / "train.txt"
    train.write_text("".join(fasttext_line([label], []) for label in ("a", "b", "a", "b")))
    test = tmp_path / "test.txt"
    test.write_text(fasttext_line(["a"], ["some", "words"]) + fasttext_line(["b"], ["more"]))
    workdir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "jaxdl.run", "--config=experiments/text_classifier.py",
         f"--workdir={workdir}", f"--config.data.train={train}", f"--config.data.test={test}",
         f"--config.data.source={source}"],
        cwd=fault_runs.REPO, env=fault_runs.run_env(), capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "labels but no text" in done.stderr
    assert left_in(workdir) == []


def small_model():
    return MLP(4, (8,), 3, rngs=nnx.Rngs(0))


def refused_settings():
    """``(name, fit kwargs)`` of fits refused by the checks ``fit`` runs, one per kind."""
    data, config = tiny_data(n=32), lambda **kw: tiny_config(num_steps=8, **kw)
    eval_data = {"test": tiny_data(n=16, name="test")}
    bad = {}
    bad["frozen regex"] = dict(config=config(transfer__frozen=("^nomatch",)))
    bad["dont_load regex"] = dict(config=config(transfer__dont_load=("^nomatch",)))
    bad["lr_multipliers regex"] = dict(config=config(transfer__lr_multipliers=(("^x", 2.0),)))
    bad["best metric not logged"] = dict(config=config(checkpoint__best_metric="test/f1",
                                                       eval_every=4), eval_data=eval_data)
    bad["early stopping metric not logged"] = dict(config=config(
        early_stopping_metric="test/f1", eval_every=4), eval_data=eval_data)
    bad["profile range past the end"] = dict(config=config(profile_steps=(2, 40)))
    bad["batch larger than the data"] = dict(config=config(batch_size=64))
    bad["features not fitting the model"] = dict(train=tiny_data(n=32, features=5))
    bad["label out of range"] = dict(train=tiny_data(n=32, classes=7))
    bad["bad core value"] = dict(config=config(optimizer__lr=-1.0))
    for kwargs in bad.values():
        kwargs.setdefault("train", data)
        kwargs.setdefault("config", config())
    return bad


@pytest.mark.parametrize("entry", ["library", "run_experiment"])
@pytest.mark.parametrize("name", sorted(refused_settings()))
def test_every_check_of_a_run_passes_before_its_first_write(tmp_path, name, entry):
    """``fit`` called as a library, and through ``jaxdl.run``'s ``run_experiment`` (which
    checks and locks the workdir first): a refused run leaves its workdir empty."""
    kwargs = refused_settings()[name]
    config = kwargs.pop("config")
    workdir = str(tmp_path / "run")

    def run(config_, workdir_):
        return fit(small_model(), task_lib.classification(), config=config_, workdir=workdir_,
                   **kwargs)

    with pytest.raises(JaxdlError):
        if entry == "library":
            run(config, workdir)
        else:
            module = types.SimpleNamespace(get_config=lambda: tiny_config(num_steps=8), run=run)
            run_experiment(module, config, workdir)
    assert left_in(tmp_path / "run") == []
    # The refused start left nothing behind that the corrected run would trip on.
    prepare_workdir(workdir, tiny_config(num_steps=8))
    forget_prepared(workdir)
