"""Transfer library: init_from / dont_load / frozen, mismatch listing, label budgets,
paired statistics, few-shot draws and gradual unfreezing."""

from __future__ import annotations

import math
import os

import jax
import numpy as np
import pytest
from flax import nnx

from conftest import tiny_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.sources import LabelBudgetSource, draw_k_per_class
from jaxdl.errors import CheckpointError, DataError, ShapeMismatchError
from jaxdl.evaluation.few_shot import few_shot_probe, few_shot_probe_run
from jaxdl.evaluation.paired_stats import mean_std, paired_difference
from jaxdl.models.mlp import MLP
from jaxdl.optim import param_path
from jaxdl.train import task as task_lib
from jaxdl.train.checkpoint import resolve_checkpoint
from jaxdl.train.loop import fit
from jaxdl.transfer import fit_gradually_unfrozen, load_pretrained, maybe_init_from, mode_settings


def _flat(tree) -> dict[str, np.ndarray]:
    return {param_path(p): np.asarray(v) for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _params(model) -> dict[str, np.ndarray]:
    return _flat(nnx.split(model, nnx.Param, ...)[1].to_pure_dict())


def _data(n: int = 40, classes: int = 2, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % classes).astype(np.int32)
    x = rng.normal(size=(n, 3)).astype(np.float32) + y[:, None]
    return ArrayDataset({"x": x, "y": y}, name="train")


def _config(steps: int = 4):
    return tiny_config(num_steps=steps, eval_train=True, optimizer__lr=0.05)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[str, dict[str, np.ndarray]]:
    """A finished 4-step run of MLP(3, (4,), 2) and its final parameters."""
    workdir = str(tmp_path_factory.mktemp("pretrain"))
    result = fit(MLP(3, (4,), 2, rngs=nnx.Rngs(0)), task_lib.classification(), _data(),
                 config=_config(), workdir=workdir)
    return workdir, _flat(result.state.params)


def test_frozen_parameters_are_bit_identical_and_have_no_optimizer_state():
    model = MLP(3, (4,), 2, rngs=nnx.Rngs(1))
    before = _params(model)
    config = _config(steps=6)
    config.transfer.frozen = mode_settings("linear_probe")["frozen"]
    result = fit(model, task_lib.classification(), _data(), config=config)
    after = _flat(result.state.params)
    for path in ("layers/0/kernel", "layers/0/bias"):
        assert after[path].tobytes() == before[path].tobytes()
    assert not np.array_equal(after["head/kernel"], before["head/kernel"])
    # Adam's moments exist for the head only: mu and nu of head/kernel [4, 2] and head/bias [2].
    shapes = sorted(tuple(x.shape) for x in jax.tree.leaves(result.state.opt_state) if x.ndim)
    assert shapes == [(2,), (2,), (4, 2), (4, 2)]


def test_dont_load_reinitialises_exactly_the_matching_parameters(pretrained):
    workdir, saved = pretrained
    model = MLP(3, (4,), 2, rngs=nnx.Rngs(7))
    fresh = _params(model)
    report = load_pretrained(model, workdir, dont_load=("^head/",))
    loaded = _params(model)
    assert report.reinitialised == ["head/bias", "head/kernel"]
    assert report.loaded == ["layers/0/bias", "layers/0/kernel"]
    assert report.step == 4
    for path in report.loaded:
        assert loaded[path].tobytes() == saved[path].tobytes()
        assert not np.array_equal(loaded[path], fresh[path])
    for path in report.reinitialised:
        assert loaded[path].tobytes() == fresh[path].tobytes()


def test_unexplained_mismatch_lists_every_path_with_both_shapes(pretrained):
    workdir, _ = pretrained
    with pytest.raises(ShapeMismatchError) as info:
        load_pretrained(MLP(3, (5,), 3, rngs=nnx.Rngs(0)), workdir)
    message = str(info.value)
    assert "(4 parameter(s) not explained by config.transfer.dont_load)" in message
    assert "layers/0/kernel: checkpoint (3, 4) vs model (3, 5)" in message
    assert "layers/0/bias: checkpoint (4,) vs model (5,)" in message
    assert "head/kernel: checkpoint (4, 2) vs model (5, 3)" in message
    assert "head/bias: checkpoint (2,) vs model (3,)" in message
    # dont_load explains the head, not the hidden layer; a new layer is missing by name.
    with pytest.raises(ShapeMismatchError) as info:
        load_pretrained(MLP(3, (4, 6), 3, rngs=nnx.Rngs(0)), workdir, dont_load=("^head/",))
    message = str(info.value)
    assert "layers/1/kernel: missing in checkpoint, model has (4, 6)" in message
    assert "layers/1/bias: missing in checkpoint, model has (6,)" in message
    assert "head/" not in message.split("\n", 1)[1].split("Add regexes")[0]
    # A layer the new model lacks is listed by name too.
    with pytest.raises(ShapeMismatchError) as info:
        load_pretrained(MLP(3, (), 2, rngs=nnx.Rngs(0)), workdir)
    message = str(info.value)
    assert "(3 parameter(s) not explained by config.transfer.dont_load)" in message
    assert "layers/0/kernel: checkpoint has (3, 4), not in model" in message
    assert "layers/0/bias: checkpoint has (4,), not in model" in message
    assert "head/kernel: checkpoint (4, 2) vs model (3, 2)" in message


def test_init_from_accepts_workdir_checkpoints_dir_and_step_dir(pretrained, tmp_path):
    workdir, _ = pretrained
    step_dir = os.path.join(workdir, "checkpoints", "4")
    assert resolve_checkpoint(workdir) == (step_dir, 4)
    assert resolve_checkpoint(os.path.join(workdir, "checkpoints")) == (step_dir, 4)
    assert resolve_checkpoint(step_dir) == (step_dir, 4)
    with pytest.raises(CheckpointError, match="holds no finished checkpoint"):
        resolve_checkpoint(str(tmp_path))
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "nope"))


def test_maybe_init_from_yields_to_the_runs_own_checkpoint(pretrained, tmp_path):
    workdir, saved = pretrained
    config = _config()
    config.transfer.init_from = workdir
    config.transfer.dont_load = ("^head/",)
    model = MLP(3, (4,), 2, rngs=nnx.Rngs(3))
    assert maybe_init_from(model, config, str(tmp_path)).loaded == ["layers/0/bias",
                                                                    "layers/0/kernel"]
    fresh = MLP(3, (4,), 2, rngs=nnx.Rngs(3))
    before = _params(fresh)
    # workdir has its own checkpoint: nothing is loaded (fit restores it), and the report
    # is the first start's, so a resumed run's summary says what it started from.
    report = maybe_init_from(fresh, config, workdir)
    assert report.loaded == ["layers/0/bias", "layers/0/kernel"]
    assert report.reinitialised == ["head/bias", "head/kernel"]
    assert _params(fresh)["layers/0/kernel"].tobytes() == before["layers/0/kernel"].tobytes()


def test_label_budget_source_is_pure_and_stays_inside_the_budget():
    data = _data(n=30)
    indices = np.array([3, 8, 11, 20, 25])
    source = LabelBudgetSource(data, indices, 4, seed=2)
    steps = source.step_inputs(0, 5)  # 20 positions = 4 epochs of the 5 indices
    assert steps.shape == (5, 4)
    assert set(steps.ravel()) == set(indices)
    for epoch in range(4):
        assert sorted(steps.ravel()[epoch * 5:(epoch + 1) * 5]) == sorted(indices)
    np.testing.assert_array_equal(source.step_inputs(3, 2), steps[3:5])
    np.testing.assert_array_equal(LabelBudgetSource(data, indices, 4, seed=2).step_inputs(0, 5),
                                  steps)


def test_draw_k_per_class_is_nested_and_deterministic():
    labels = np.repeat(np.arange(3), 10)
    one, five = draw_k_per_class(labels, 1, seed=4), draw_k_per_class(labels, 5, seed=4)
    assert len(one) == 3 and len(five) == 15
    assert set(one) <= set(five)
    np.testing.assert_array_equal(five, draw_k_per_class(labels, 5, seed=4))
    assert not np.array_equal(five, draw_k_per_class(labels, 5, seed=5))
    assert len(draw_k_per_class(labels, 0, seed=0)) == 30
    with pytest.raises(DataError, match="class 0 has 10 labelled examples; expected at least k=11"):
        draw_k_per_class(labels, 11, seed=0)


def test_paired_difference_t_interval():
    diff = paired_difference({0: 3.0, 1: 5.0, 2: 7.0}, {0: 2.0, 1: 3.0, 2: 4.0})
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t_{2, 0.975} * std / sqrt(n)
    assert diff["mean"] == pytest.approx(2.0)
    assert diff["ci"] == pytest.approx([2.0 - half, 2.0 + half])
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert math.isnan(paired_difference({0: 1.0}, {0: 0.5})["ci"][0])
    with pytest.raises(DataError, match="expected the same non-empty set of seeds"):
        paired_difference({0: 1.0}, {1: 1.0})


def test_few_shot_probe_on_identity_features_of_separable_data():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 20).astype(np.int32)
    x = (y[:, None] * 10.0 + rng.normal(size=(40, 2))).astype(np.float32)
    data = {"train": {"x": x[::2], "y": y[::2]}, "test": {"x": x[1::2], "y": y[1::2]}}
    result = few_shot_probe(lambda a: a, data, ks=(1, 5), seeds=(0, 1))
    assert result[5]["accuracy_mean"] == 1.0
    assert sorted(result[1]["per_seed"]) == [0, 1]


def test_few_shot_probe_of_a_run_uses_its_checkpointed_backbone(pretrained):
    workdir, saved = pretrained
    data = {"train": _data(n=20).arrays, "test": _data(n=10, seed=1).arrays}
    model = MLP(3, (4,), 3, rngs=nnx.Rngs(9))  # another head size: not loaded
    result = few_shot_probe_run(model, workdir, data, ks=(2,), seeds=(0,))
    assert list(result) == [2] and 0.0 <= result[2]["accuracy_mean"] <= 1.0
    assert _params(model)["layers/0/kernel"].tobytes() == saved["layers/0/kernel"].tobytes()


def test_gradual_unfreezing_trains_the_head_first(tmp_path):
    model = MLP(3, (4,), 2, rngs=nnx.Rngs(2))
    start = _params(model)
    stages = [(mode_settings("linear_probe")["frozen"], 3), ((), 3)]
    results = fit_gradually_unfrozen(model, task_lib.classification(), _data(),
                                     config=_config(), stages=stages, workdir=str(tmp_path))
    first, second = (_flat(r.state.params) for r in results)
    assert first["layers/0/kernel"].tobytes() == start["layers/0/kernel"].tobytes()
    assert not np.array_equal(first["head/kernel"], start["head/kernel"])
    assert not np.array_equal(second["layers/0/kernel"], first["layers/0/kernel"])
    assert [r.steps for r in results] == [3, 3]


def test_word_vectors_fill_exactly_the_covered_embedding_rows(tmp_path):
    from jaxdl.data.text import Vocab
    from jaxdl.errors import ConfigError
    from jaxdl.models.sequence import RNNClassifier
    from jaxdl.experiment_file import load_experiment

    text = load_experiment(os.path.join(os.path.dirname(__file__), "..", "experiments",
                                        "transfer_text.py"))
    path = tmp_path / "vectors.txt"  # word2vec text format: "V D" header, then "word v1 .. vD"
    path.write_text("2 3\ncat 0.5 -1.0 2.0\ndog 1.5 0.25 -0.75\n", encoding="utf-8")
    vocab = Vocab.build([["cat", "dog", "fish", "cat"]])
    model = RNNClassifier(len(vocab), 2, 3, 4, rngs=nnx.Rngs(0))
    before = np.array(model.embed.embedding[...])
    assert text.set_embedding(model, vocab, str(path)) == {"covered": 2, "vocab_size": 7}
    after = np.asarray(model.embed.embedding[...])
    np.testing.assert_array_equal(after[vocab.index["cat"]], np.float32([0.5, -1.0, 2.0]))
    np.testing.assert_array_equal(after[vocab.index["dog"]], np.float32([1.5, 0.25, -0.75]))
    uncovered = [i for t, i in vocab.index.items() if t not in ("cat", "dog")]
    assert after[uncovered].tobytes() == before[uncovered].tobytes()
    with pytest.raises(ConfigError, match="have 3 dimensions; expected config.model.embed_dim=5"):
        text.set_embedding(RNNClassifier(len(vocab), 2, 5, 4, rngs=nnx.Rngs(0)), vocab, str(path))


class _NormNet(nnx.Module):
    """Linear -> BatchNorm -> head: has running statistics (nnx.BatchStat)."""

    def __init__(self, classes: int, *, rngs: nnx.Rngs):
        self.body = nnx.Linear(3, 4, rngs=rngs)
        self.norm = nnx.BatchNorm(4, rngs=rngs)
        self.head = nnx.Linear(4, classes, rngs=rngs)

    def __call__(self, x, *, rngs=None):
        return self.head(jax.nn.relu(self.norm(self.body(x))))


def test_batchnorm_statistics_are_loaded_with_the_parameters(tmp_path):
    result = fit(_NormNet(2, rngs=nnx.Rngs(0)), task_lib.classification(), _data(),
                 config=_config(), workdir=str(tmp_path))
    saved = _flat(result.state.model_state)
    assert set(saved) == {"norm/mean", "norm/var"} and np.any(saved["norm/mean"] != 0)
    model = _NormNet(5, rngs=nnx.Rngs(1))
    report = load_pretrained(model, str(tmp_path), dont_load=("^head/",))
    assert {"norm/mean", "norm/var", "norm/scale", "norm/bias"} <= set(report.loaded)
    stats = _flat(nnx.split(model, nnx.Param, ...)[2].to_pure_dict())
    assert stats["norm/mean"].tobytes() == saved["norm/mean"].tobytes()
    assert stats["norm/var"].tobytes() == saved["norm/var"].tobytes()
