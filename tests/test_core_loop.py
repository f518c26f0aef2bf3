"""The training loop: one compilation, determinism, early stopping, checkpoints, library use."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from conftest import tiny_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.formats.sklearn import load_sklearn
from jaxdl.models.mlp import MLP
from jaxdl.train import step as step_lib
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit


@pytest.fixture(scope="module")
def digits():
    splits, info = load_sklearn("digits")
    return (ArrayDataset(splits["train"], name="train"), ArrayDataset(splits["test"], name="test"),
            info)


def _config(**train):
    return tiny_config(**{"batch_size": 32, "num_steps": 120, "log_every": 20, "eval_train": True,
                          **train})


def _model(info, seed=0, dropout=0.0):
    return MLP(info.num_features, (32,), info.num_classes, dropout=dropout, rngs=nnx.Rngs(seed))


def test_fit_compiles_the_train_step_once(digits, tmp_path):
    train, test, info = digits
    step_lib.TRACE_COUNTS.clear()
    config = _config(eval_every=30)
    config.checkpoint.every_steps = 40
    fit(_model(info), task_lib.classification(), train, eval_data={"test": test},
        config=config, workdir=str(tmp_path))
    assert step_lib.TRACE_COUNTS["train_loop"] == 1


def test_same_seed_same_params_different_seed_differs(digits):
    train, test, info = digits
    a = fit(_model(info, dropout=0.3), task_lib.classification(), train, config=_config())
    b = fit(_model(info, dropout=0.3), task_lib.classification(), train, config=_config())
    config = _config()
    config.seed = 1
    c = fit(_model(info, dropout=0.3), task_lib.classification(), train, config=config)
    assert a.params_sha256 == b.params_sha256
    assert a.params_sha256 != c.params_sha256


def test_steps_per_loop_matches_single_steps(digits):
    train, _, info = digits
    single = fit(_model(info), task_lib.classification(), train, config=_config())
    looped = fit(_model(info), task_lib.classification(), train,
                 config=_config(steps_per_loop=10))
    for a, b in zip(jax.tree.leaves(single.state.params), jax.tree.leaves(looped.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_early_stopping_stops_and_reports(digits):
    train, test, info = digits
    config = _config(eval_every=10, num_steps=2000, early_stopping_metric="test/loss",
                     early_stopping_mode="min", early_stopping_patience=2)
    config.optimizer.lr = 0.05  # overfits fast, so test loss rises
    result = fit(_model(info), task_lib.classification(), train, eval_data={"test": test},
                 config=config)
    assert result.stopped_early
    assert result.steps < 2000
    evals = [e["loss"] for e in result.history if e["split"] == "test"]
    assert len(evals) == result.steps // 10


def test_checkpoints_keep_latest_and_best(digits, tmp_path):
    train, test, info = digits
    config = _config(eval_every=20)
    config.checkpoint.every_steps = 20
    config.checkpoint.max_to_keep = 2
    config.checkpoint.best_metric = "test/accuracy"
    config.checkpoint.keep_best = 1
    fit(_model(info), task_lib.classification(), train, eval_data={"test": test}, config=config,
        workdir=str(tmp_path))
    latest = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    best = [int(p.name) for p in (tmp_path / "checkpoints_best").iterdir() if p.name.isdigit()]
    assert latest == [100, 120]
    events = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    accs = {e["step"]: e["accuracy"] for e in events if e["split"] == "test"}
    assert len(best) == 1 and accs[best[0]] == max(accs.values())


def test_library_use_updates_the_model_in_place(digits):
    train, test, info = digits
    model = _model(info)
    result = fit(model, task_lib.classification(), train, eval_data={"test": test},
                 config=_config())
    logits = model(jax.numpy.asarray(test.arrays["x"]))
    acc = float(np.mean(np.argmax(np.asarray(logits), -1) == test.arrays["y"]))
    assert acc == pytest.approx(result.metrics["test"]["accuracy"], abs=1e-9)
    assert [e["step"] for e in result.history if e["split"] == "train"] == [20, 40, 60, 80, 100, 120]


@pytest.mark.parametrize("schedule", ["constant", "cosine", "warmup_cosine", "step"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
def test_every_optimizer_and_schedule_learns(digits, optimizer, schedule):
    train, test, info = digits
    config = _config(num_steps=60)
    config.optimizer.name = optimizer
    config.optimizer.schedule = schedule
    config.optimizer.warmup_steps = 10
    config.optimizer.lr = 0.1 if optimizer in ("sgd", "momentum") else 1e-2
    config.optimizer.grad_clip_norm = 5.0
    config.optimizer.weight_decay = 1e-4
    result = fit(_model(info), task_lib.classification(), train, eval_data={"test": test},
                 config=config)
    assert result.metrics["test"]["accuracy"] > 0.8
