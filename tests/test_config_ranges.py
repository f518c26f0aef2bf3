"""Every key a run accepts takes effect or is refused; every numeric key has its range.

Class B (settings that silently do nothing) and class C (range and cross-key
checks) of issue 28, as properties over every experiment's ``get_config()``:
validation only, nothing is trained.
"""

from __future__ import annotations

import glob
import math
import os

import pytest

from conftest import REPO, config_with, load_experiment, run_command
from jaxdl.config_schema import (TRANSFER_KEYS, experiment_specs, flat_items, validate_config,
                                 validate_experiment)
from jaxdl.errors import ConfigError
from jaxdl.recipes.few_label import FewLabelRule

pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")

EXPERIMENTS = sorted(os.path.basename(p)[:-3] for p in glob.glob(
    os.path.join(REPO, "experiments", "*.py")) if not os.path.basename(p).startswith("_"))

# A value for each transfer key that differs from the default and is well-formed.
TRANSFER_VALUES = {"transfer.init_from": "/nonexistent/run", "transfer.dont_load": ("^head/",),
                   "transfer.frozen": ("^head/",), "transfer.lr_multipliers": (("^head/", 0.5),),
                   "transfer.embeddings_from": "/nonexistent/vectors.txt"}
# The settings under which an experiment reads its declared transfer keys.
READ_WITH = {"transfer_text": {"pretrain.kind": "encoder", "pretrain.encoder_from": "/some/bert"}}
# Numeric keys that have no range by nature: any finite value is meaningful.
UNBOUNDED = {"data.low", "data.high",  # universal_approximation's interval (low < high checked)
             "data.normalize_mean"}  # a per-channel mean may be any number




def _refused(module, key: str, value, **others) -> str:
    config = config_with(module.get_config(), key, value)
    for other, v in others.items():
        config = config_with(config, other.replace("__", "."), v)
    with pytest.raises(ConfigError) as info:
        validate_experiment(module, config)
    return str(info.value)


def test_issue_example_b_init_from_an_experiment_does_not_read_exits_2(tmp_path):
    workdir = tmp_path / "w"
    done = run_command(["--config=experiments/mlp_digits.py", f"--workdir={workdir}",
                        "--config.train.num_epochs=2",
                        "--config.transfer.init_from=/nonexistent/run"], timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        "error: config.transfer.init_from='/nonexistent/run' would do nothing: this experiment "
        "does not read config.transfer.init_from; expected its default '' (remove the setting)"]
    assert not workdir.exists()


def test_issue_example_c_negative_label_budget_exits_2_in_one_line(tmp_path):
    workdir = tmp_path / "w"
    done = run_command(["--config=experiments/transfer_digits.py", f"--workdir={workdir}",
                        "--config.downstream.labels_per_class=(-5,)"], timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        "error: config.downstream.labels_per_class=(-5,): element 0 (-5) is not an integer >= 0"]
    assert not workdir.exists()


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_transfer_key_on_every_experiment_is_read_or_refused(name):
    module = load_experiment(name)
    read = {k for k, spec in (getattr(module, "CONFIG_SCHEMA", None) or {}).items()
            if k in TRANSFER_KEYS and spec.kind != "not_read"}
    for key in TRANSFER_KEYS:
        config = config_with(module.get_config(), key, TRANSFER_VALUES[key])
        if key in read:
            for other, value in READ_WITH.get(name, {}).items():
                config = config_with(config, other, value)
            validate_experiment(module, config)  # declared as read: accepted
        else:
            with pytest.raises(ConfigError, match=rf"^config\.{key}=.* would do nothing: this "
                                                  rf"experiment does not read config\.{key}"):
                validate_experiment(module, config)
    # What each experiment reads is what its run() passes on (see each CONFIG_SCHEMA).
    # transfer_text: its encoder kind's word-vector probes (other kinds refuse it, below).
    expected = {"perceptron": set(), "word2vec": set(),
                "transfer_text": {"transfer.embeddings_from"},
                "transfer_digits": {"transfer.lr_multipliers"},
                "text_classifier": {"transfer.frozen", "transfer.lr_multipliers",
                                    "transfer.embeddings_from"}}
    assert read == expected.get(name, {"transfer.frozen", "transfer.lr_multipliers"})


def test_transfer_text_refuses_word_vectors_for_a_kind_that_does_not_read_them():
    module = load_experiment("transfer_text")
    config = config_with(module.get_config(), "transfer.embeddings_from", "/some/vectors.npy")
    with pytest.raises(ConfigError, match=r"config\.transfer\.embeddings_from='/some/vectors\.npy' "
                                          r"would do nothing: only config\.pretrain\.kind='encoder'"):
        validate_experiment(module, config)
    config.pretrain.kind = "encoder"
    config.pretrain.encoder_from = "/some/bert"
    validate_experiment(module, config)  # the encoder kind reads both


def _out_of_range(spec) -> list:
    values = []
    if spec.low is not None:
        values.append(spec.low if spec.low_open else spec.low - 1)
    if spec.high is not None:
        values.append(spec.high if spec.high_open else spec.high + 1)
    return values


def _in_range_edge(spec):
    """The least valid value of a bounded numeric spec (None when the bound is open)."""
    if spec.low is not None and not spec.low_open:
        return spec.low
    return None


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_numeric_key_has_a_range_that_is_enforced_and_its_edge_accepted(name):
    module = load_experiment(name)
    own = flat_items(module.get_config())
    specs = experiment_specs(module.get_config(), getattr(module, "CONFIG_SCHEMA", None))
    checked = 0
    for key, default in sorted(own.items()):
        spec = specs[key]
        if spec.kind == "not_read" or isinstance(default, bool):
            continue
        numeric = isinstance(default, (int, float)) or (
            isinstance(default, (tuple, list)) and default
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in default))
        if not numeric or key in UNBOUNDED or key == "seed":
            continue
        scalar = spec.element if spec.kind is tuple else spec
        assert scalar is not None and (scalar.low is not None or scalar.high is not None
                                       or scalar.choices), (key, spec)
        for bad in _out_of_range(scalar):
            value = (bad,) if spec.kind is tuple else bad
            if value == default:  # an experiment's own sentinel (batch_size=0: the whole split)
                continue
            message = _refused(module, key, value)
            assert message.startswith(f"config.{key}="), (key, value, message)
            checked += 1
        edge = _in_range_edge(scalar)
        if edge is not None and spec.kind is not tuple and edge != default:
            try:  # the range admits it (a cross-key rule may still refuse the combination)
                validate_experiment(module, config_with(module.get_config(), key, edge))
            except ConfigError as err:
                assert not str(err).startswith(f"config.{key}={edge!r}; expected"), err
    assert checked > 0


def test_cross_key_rules_refuse_contradictions_and_accept_what_the_docs_allow():
    mlp = load_experiment("mlp_digits")
    assert "warmup_steps=300 is not shorter than the run (config.train.num_steps=300)" in _refused(
        mlp, "optimizer.schedule", "warmup_cosine", optimizer__warmup_steps=300,
        train__num_steps=300)
    assert "not strictly increasing" in _refused(
        mlp, "optimizer.schedule", "step", optimizer__decay_boundaries=(0.75, 0.5))
    assert "neither a fraction of the run in (0, 1) nor an integer step" in _refused(
        mlp, "optimizer.schedule", "step", optimizer__decay_boundaries=(0.5, 1.5))
    assert "step 400 is not inside the run (config.train.num_steps=300)" in _refused(
        mlp, "optimizer.schedule", "step", optimizer__decay_boundaries=(100, 400),
        train__num_steps=300)
    for ok in [(0.5, 0.75), (100, 200)]:  # fractions of the run, or steps (jaxdl.optim)
        validate_experiment(mlp, config_with(config_with(config_with(mlp.get_config(), "optimizer.schedule",
                                                   "step"), "optimizer.decay_boundaries", ok),
                                       "train.num_steps", 300))
    assert "grad_accum_steps=3 does not divide" in _refused(mlp, "train.grad_accum_steps", 3)

    digits = load_experiment("transfer_digits")
    assert "share [4]" in _refused(digits, "data.transfer_classes", (4, 5, 6))
    assert "element 1 (5) repeats" in _refused(digits, "downstream.labels_per_class", (5, 5))
    assert "element 0 (10) is not an integer >= 0 and <= 9" in _refused(
        digits, "data.pretrain_classes", (10,))
    assert "[3] not in config.downstream.labels_per_class" in _refused(
        digits, "report.curve_budgets", (3,))
    assert "goes past config.downstream.num_steps=200" in _refused(
        digits, "report.curve_steps", (10, 500))
    assert "0 element(s)" in _refused(digits, "downstream.modes", ())
    assert "min_alpha=0.5 is above" in _refused(load_experiment("word2vec"),
                                                 "word2vec.min_alpha", 0.5)
    assert "config.data.low=3.0 is not below config.data.high=2.0" in _refused(
        load_experiment("universal_approximation"), "data.low", 3.0)
    validate_experiment(load_experiment("universal_approximation"), config_with(config_with(
        load_experiment("universal_approximation").get_config(), "data.low", -5.0),
        "data.high", -1.0))  # a negative interval is valid


def test_values_that_reached_a_library_are_refused_first():
    # scikit-learn's InvalidParameterError (C <= 0), an empty or whole test split
    assert _refused(load_experiment("logistic_regression"), "model.C", 0.0).startswith(
        "config.model.C=0.0; expected a finite number > 0")
    for name in ("mlp_digits", "text_classifier", "language_model"):
        for share in (0.0, 1.0):
            assert _refused(load_experiment(name), "data.test_fraction", share).startswith(
                f"config.data.test_fraction={share}; expected a finite number > 0 and < 1")
    with pytest.raises(ConfigError, match=r"config.downstream.few_label.lr=0.0; expected"):
        FewLabelRule(lr=0.0)  # the library checks the same specs


def test_settings_another_key_makes_the_run_ignore_are_refused():
    mlp = load_experiment("mlp_digits")
    cases = [("optimizer.warmup_steps", 10, "only config.optimizer.schedule='warmup_cosine'"),
             ("optimizer.momentum", 0.5, "only config.optimizer.name='momentum'"),
             ("checkpoint.keep_best", 3, "config.checkpoint.best_metric is empty"),
             ("train.early_stopping_patience", 2, "config.train.early_stopping_metric is empty"),
             ("max_consecutive_skips", 3, "only config.nan_policy='skip'")]
    for key, value, why in cases:
        message = _refused(mlp, key, value)
        assert message.startswith(f"config.{key}={value!r} would do nothing: {why}"), message
    # data paths: a directory for a dataset built into scikit-learn, a split share for a
    # dataset with its own test split, a per-class cap for files read whole
    assert "would do nothing: data.name='digits' is built into scikit-learn" in _refused(
        load_experiment("cnn_digits"), "data.dir", "/elsewhere")
    assert "config.data.test_fraction=0.5 would do nothing" in _refused(
        load_experiment("mnist_cnn"), "data.test_fraction", 0.5)
    assert "config.data.max_per_class=10 would do nothing" in _refused(
        load_experiment("text_classifier"), "data.max_per_class", 10,
        data__train="a.txt", data__test="b.txt")
    text = load_experiment("transfer_text")
    assert "only config.downstream.rule='few_label' reads the rule's settings" in _refused(
        text, "downstream.few_label.lr", 0.01)
    assert "rule='few_label' sets each downstream run's steps" in _refused(
        text, "downstream.num_steps", 50, downstream__rule="few_label")
    # the same keys are accepted where they are read
    validate_experiment(text, config_with(config_with(text.get_config(), "downstream.rule", "few_label"),
                                    "downstream.few_label.lr", 0.01))
    config = config_with(mlp.get_config(), "optimizer.schedule", "warmup_cosine")
    validate_experiment(mlp, config_with(config, "optimizer.warmup_steps", 10))
    validate_config(config_with(mlp.get_config(), "transfer.init_from", "/x"))  # a library config


def test_nan_and_inf_are_refused_for_every_float_key_of_every_experiment():
    refused = 0
    for name in EXPERIMENTS:
        module = load_experiment(name)
        for key, default in flat_items(module.get_config()).items():
            if isinstance(default, float) and key not in ("data.low", "data.high"):
                for bad in (math.nan, math.inf):
                    assert f"config.{key}=" in _refused(module, key, bad)
                    refused += 1
    assert refused > 50


def test_warm_up_and_boundaries_are_checked_against_an_epoch_based_run():
    from flax import nnx
    from conftest import tiny_config, tiny_data
    from jaxdl.models.mlp import MLP
    from jaxdl.train import task as task_lib
    from jaxdl.train.loop import fit

    data = tiny_data()  # 32 examples, batches of 8: 4 steps per epoch, 8 in 2 epochs
    for settings, message in [
            (dict(optimizer__schedule="warmup_cosine", optimizer__warmup_steps=8),
             r"warmup_steps=8 is not shorter than the run \(8 steps in all\)"),
            (dict(optimizer__schedule="step", optimizer__decay_boundaries=(2, 9)),
             r"step 9 is not inside the run \(8 steps in all\)")]:
        config = tiny_config(num_steps=0, num_epochs=2, **settings)
        with pytest.raises(ConfigError, match=message):
            fit(MLP(4, (8,), 3, rngs=nnx.Rngs(0)), task_lib.classification(), data,
                config=config)
    config = tiny_config(num_steps=0, num_epochs=2, optimizer__schedule="warmup_cosine",
                         optimizer__warmup_steps=7)
    assert fit(MLP(4, (8,), 3, rngs=nnx.Rngs(0)), task_lib.classification(), data,
               config=config).steps == 8
