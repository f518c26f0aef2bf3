"""NaN/Inf during training: ``nan_policy='raise'`` stops cleanly, ``'skip'`` skips.

NaN is injected at chosen steps: a few training examples carry ``poison=1`` and
the task's forward adds NaN to the logits of any batch holding one, so the loss
and every gradient of exactly those steps are NaN. One epoch only, so each
poisoned example (hence each bad step) comes up once.
"""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest
from flax import nnx

import fault_runs
from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.sources import ArrayTrainSource
from jaxdl.errors import NonFiniteError
from jaxdl.models.mlp import MLP
from jaxdl.train.checkpoint import Checkpointer
from jaxdl.train.loop import fit
from jaxdl.optim import make_optimizer
from jaxdl.train.state import create_train_state, params_sha256, split_model
from jaxdl.train.task import Task

NUM_EXAMPLES, BATCH = 128, 8  # 16 steps per epoch


def poisoned_forward(model, batch, rngs):
    """Logits ``[B, 3]``, all NaN when the batch holds a poisoned example."""
    logits = model(batch["x"], rngs=rngs)
    return logits + jax.numpy.where(jax.numpy.any(batch["poison"] > 0), jax.numpy.nan, 0.0)


TASK = Task(forward=poisoned_forward)


def config_for(nan_policy: str, *, num_steps: int, log_every: int, every_steps: int):
    config = default_config()
    config.nan_policy = nan_policy
    config.optimizer.name = "sgd"
    config.optimizer.lr = 0.1
    config.train.batch_size = BATCH
    config.train.num_steps = num_steps
    config.train.log_every = log_every
    config.train.eval_train = False
    config.train.progress_bar = False
    config.checkpoint.every_steps = every_steps
    config.checkpoint.max_to_keep = 20
    return config


def data_poisoned_at(steps: list[int], seed: int = 0) -> ArrayDataset:
    """Random 4-feature, 3-class data whose batches at ``steps`` hold a poisoned example."""
    rng = np.random.default_rng(1)
    arrays = {"x": rng.normal(size=(NUM_EXAMPLES, 4)).astype(np.float32),
              "y": rng.integers(0, 3, NUM_EXAMPLES).astype(np.int32),
              "poison": np.zeros(NUM_EXAMPLES, np.float32)}
    order = ArrayTrainSource(ArrayDataset(arrays), BATCH, seed=seed).epoch_permutation(0)
    for step in steps:
        arrays["poison"][order[step * BATCH]] = 1.0
    return ArrayDataset(arrays, name="train")


def model():
    return MLP(4, (8,), 3, rngs=nnx.Rngs(0))


def test_raise_stops_with_step_last_finite_metrics_and_kept_checkpoint(tmp_path):
    config = config_for("raise", num_steps=16, log_every=4, every_steps=4)
    with pytest.raises(NonFiniteError) as info:
        fit(model(), TASK, data_poisoned_at([13]), config=config, workdir=str(tmp_path))
    message = str(info.value)

    assert "became NaN/Inf at step 13;" in message
    last = [e for e in fault_runs.events(tmp_path) if e["split"] == "train"][-1]
    assert last["step"] == 12
    assert f"last finite train metrics {({'loss': last['loss'], 'accuracy': last['accuracy']})}" in message
    assert "last good checkpoint: step 12 (kept)" in message
    checkpointer = Checkpointer(str(tmp_path))
    assert checkpointer.steps() == [4, 8, 12]  # the NaN state of step 16 was never written
    state, _ = checkpointer.restore(12, state_template(config))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state.params))


def state_template(config):
    """A step-0 state with the layout fit checkpoints under ``config`` (restore target)."""
    _, _, params, model_state = split_model(model())
    tx = make_optimizer(config.optimizer, params, config.train.num_steps)
    return create_train_state(params, model_state, tx, seed=config.seed)


def test_skip_keeps_params_across_bad_steps_and_counts_them(tmp_path):
    config = config_for("skip", num_steps=10, log_every=5, every_steps=1)
    config.max_consecutive_skips = 3
    result = fit(model(), TASK, data_poisoned_at([5, 6]), config=config, workdir=str(tmp_path))

    checkpointer = Checkpointer(str(tmp_path))
    assert checkpointer.steps() == list(range(1, 11))
    target = state_template(config)
    hashes = {s: params_sha256(checkpointer.restore(s, target)[0].params) for s in (5, 6, 7, 8)}
    # Updates of steps 5 and 6 were skipped: the parameters after 5, 6 and 7 updates agree …
    assert hashes[5] == hashes[6] == hashes[7]
    # … and training went on afterwards.
    assert hashes[8] != hashes[7]
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(result.state.params))
    skipped = {e["step"]: e["skipped_updates"] for e in fault_runs.events(tmp_path)
               if e["split"] == "train"}
    assert skipped == {1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 0.0, 6: 1.0, 7: 1.0, 8: 0.0,
                       9: 0.0, 10: 0.0}
    assert int(result.state.skipped) == 0  # the consecutive count reset after step 6


def test_skip_stops_after_max_consecutive_skips():
    config = config_for("skip", num_steps=16, log_every=2, every_steps=0)
    config.max_consecutive_skips = 3
    with pytest.raises(NonFiniteError) as info:
        fit(model(), TASK, data_poisoned_at([3, 4, 5, 6, 7, 8]), config=config)
    assert ("3 consecutive updates were skipped for NaN/Inf "
            "(config.max_consecutive_skips=3) by step 6") in str(info.value)


# NaN made by the update itself: the loss and the gradients of a step are finite,
# its new parameters are not. ``optax.sgd(nan)`` is ``--config.optimizer.lr=nan``
# given as an optimizer, so the cases hold whatever the config validation accepts.
NAN_LR = optax.sgd(float("nan"))


def nan_at_update(update: int) -> optax.GradientTransformation:
    """SGD at lr 0.1 whose update number ``update`` (0-based) has a NaN learning rate."""
    return optax.sgd(lambda count: jax.numpy.where(count == update, jax.numpy.nan, 0.1))


def restored_params(workdir, step: int, tx):
    _, _, params, model_state = split_model(model())
    target = create_train_state(params, model_state, tx, seed=0)
    return Checkpointer(str(workdir)).restore(step, target)[0].params


def all_finite(tree) -> bool:
    return all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(tree))


def test_raise_on_a_nan_learning_rate_saves_nothing_and_claims_no_good_checkpoint(tmp_path):
    config = config_for("raise", num_steps=8, log_every=1, every_steps=1)
    with pytest.raises(NonFiniteError) as info:
        fit(model(), TASK, data_poisoned_at([]), config=config, workdir=str(tmp_path),
            tx=NAN_LR)
    assert "updated state became NaN/Inf at step 0;" in str(info.value)
    assert "last good checkpoint: none" in str(info.value)
    assert Checkpointer(str(tmp_path)).steps() == []


def test_raise_names_the_last_checkpoint_that_is_really_finite(tmp_path):
    config = config_for("raise", num_steps=12, log_every=1, every_steps=1)
    with pytest.raises(NonFiniteError) as info:
        fit(model(), TASK, data_poisoned_at([]), config=config, workdir=str(tmp_path),
            tx=nan_at_update(6))
    assert "became NaN/Inf at step 6;" in str(info.value)
    assert "last good checkpoint: step 6 (kept)" in str(info.value)
    checkpointer = Checkpointer(str(tmp_path))
    assert checkpointer.steps() == [1, 2, 3, 4, 5, 6]
    assert all(all_finite(restored_params(tmp_path, s, nan_at_update(6)))
               for s in checkpointer.steps())


def test_skip_on_a_nan_learning_rate_keeps_the_initial_parameters(tmp_path):
    config = config_for("skip", num_steps=6, log_every=2, every_steps=2)
    config.max_consecutive_skips = 100
    result = fit(model(), TASK, data_poisoned_at([]), config=config, workdir=str(tmp_path),
                 tx=NAN_LR)
    _, _, initial, _ = split_model(model())
    assert params_sha256(result.state.params) == params_sha256(initial)
    assert Checkpointer(str(tmp_path)).steps() == [2, 4, 6]
    for step in (2, 4, 6):
        assert params_sha256(restored_params(tmp_path, step, NAN_LR)) == params_sha256(initial)
    skipped = [e["skipped_updates"] for e in fault_runs.events(tmp_path) if e["split"] == "train"]
    assert skipped == [2.0, 2.0, 2.0]


def test_skip_on_a_nan_learning_rate_stops_after_max_consecutive_skips(tmp_path):
    config = config_for("skip", num_steps=16, log_every=2, every_steps=2)
    config.max_consecutive_skips = 3
    with pytest.raises(NonFiniteError, match="4 consecutive updates were skipped"):
        fit(model(), TASK, data_poisoned_at([]), config=config, workdir=str(tmp_path),
            tx=NAN_LR)
    checkpointer = Checkpointer(str(tmp_path))
    assert checkpointer.steps() == [2]
    assert all_finite(restored_params(tmp_path, 2, NAN_LR))
