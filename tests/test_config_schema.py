"""Every config key is validated before anything is written; no setting silently does nothing.

The table-driven property test walks every key of ``default_config()`` and of
every experiment's ``get_config()``, derives bad values from the key's spec
(wrong type, out of range, NaN/Inf, negative, empty, bad elements) and asserts
a ``ConfigError`` naming the key with nothing written to the workdir.
"""

from __future__ import annotations

import glob
import math
import os

import pytest
from flax import nnx

from conftest import config_with, load_experiment, tiny_config, tiny_data
from jaxdl.config import default_config
from jaxdl.config_schema import (CORE_SCHEMA, Spec, experiment_specs, flat_items, infer_spec,
                                 validate_config)
from jaxdl.errors import ConfigError
from jaxdl.models.mlp import MLP
from jaxdl.run import run_experiment
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit

EXPERIMENTS = sorted(os.path.basename(p)[:-3] for p in glob.glob(
    os.path.join(os.path.dirname(__file__), "..", "experiments", "*.py"))
    if not os.path.basename(p).startswith("_"))


def bad_values(spec: Spec) -> list:
    """Values that violate ``spec``: wrong type, out of range, NaN, empty, bad elements."""
    if spec.kind == "not_read":  # any value but the default
        return ["not-the-default", 12345, -1.5]
    if spec.choices is not None:
        return ["no-such-choice", "", 3]
    if spec.kind is bool:
        return ["maybe", 1, None]
    if spec.kind is int:
        values = [2.5, "7", None]
        if spec.low is not None:
            values += [spec.low - 1, spec.low - 2 ** 40]
        if spec.high is not None:
            values += [spec.high, 2 ** 70]
        return values
    if spec.kind is float:
        values = [math.nan, math.inf, -math.inf, "0.1", None]
        if spec.low is not None:
            values += [spec.low if spec.low_open else spec.low - 0.5]
        if spec.high is not None:
            values += [spec.high if spec.high_open else spec.high + 0.5, spec.high + 100.0]
        return values
    if spec.kind in (str, "regex"):
        return [3, None] + (["(unclosed"] if spec.kind == "regex" else [])
    if spec.kind is tuple:
        values = [5, "abc"]
        if spec.element is not None:
            values += [tuple(bad_values(spec.element)[:1]), (bad_values(spec.element)[-1],)]
        if spec.pair is not None:
            values += [("alone",), (("(unclosed", 1.0),), (("ok", -1.0),), (("ok", math.nan),)]
        return values
    return []


def _specs(module) -> dict[str, Spec]:
    return experiment_specs(module.get_config(), getattr(module, "CONFIG_SCHEMA", None))




class _Core:
    """``default_config()`` alone, as an experiment module."""
    get_config = staticmethod(default_config)


@pytest.mark.parametrize("name", ["<default_config>"] + EXPERIMENTS)
def test_every_key_refuses_bad_values_before_writing(name, tmp_path):
    module = _Core if name == "<default_config>" else load_experiment(name)
    if not hasattr(module, "get_config"):
        pytest.skip("not an experiment")
    defaults = module.get_config()
    validate_config(defaults, defaults=module.get_config())  # the defaults themselves pass
    own = flat_items(defaults)
    checked = 0
    for key, spec in sorted(_specs(module).items()):
        if key not in own:
            continue
        for value in bad_values(spec):
            if value == own[key] or (isinstance(value, float) and isinstance(own[key], float)
                                     and math.isnan(value) and math.isnan(own[key])):
                continue
            workdir = tmp_path / "run"
            with pytest.raises(ConfigError) as info:
                run_experiment(module, config_with(defaults, key, value), str(workdir))
            assert f"config.{key}=" in str(info.value), (key, value, str(info.value))
            assert not workdir.exists(), (key, value)
            checked += 1
    assert checked >= 3 * len([k for k in own if k in CORE_SCHEMA])


def test_inferred_specs_follow_the_defaults():
    assert infer_spec("model.hidden", (32, 16)) == Spec(tuple, element=Spec(int, low=1))
    assert infer_spec("model.dropout", 0.3) == Spec(float, low=0, high=1, high_open=True)
    assert infer_spec("data.min_count", 2) == Spec(int, low=1)
    assert infer_spec("data.max_len", 0) == Spec(int, low=0)
    assert infer_spec("data.lower", True) == Spec(bool)


def test_issue_examples_are_refused_with_the_key_and_the_expectation():
    module = load_experiment("mlp_digits")
    cases = {"optimizer.lr": (math.nan, "config.optimizer.lr=nan; expected a finite number > 0"),
             "model.dropout": (1.5, "config.model.dropout=1.5; expected a finite number >= 0 "
                                    "and < 1"),
             "train.ema_decay": (1.5, "config.train.ema_decay=1.5; expected a finite number"),
             "seed": (2 ** 70, f"config.seed={2 ** 70}; expected an integer >= 0 and < {2 ** 32}"),
             "checkpoint.max_to_keep": (0, "config.checkpoint.max_to_keep=0; expected an "
                                           "integer >= 1"),
             "train.num_steps": (-5, "config.train.num_steps=-5; expected an integer >= 0"),
             "train.eval_every": (-1, "config.train.eval_every=-1"),
             "checkpoint.every_steps": (-8, "config.checkpoint.every_steps=-8")}
    for key, (value, message) in cases.items():
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
            validate_config(config_with(module.get_config(), key, value), defaults=module.get_config())
    config = module.get_config()
    config.model.hidden = (32.5, 16)
    with pytest.raises(ConfigError, match=r"config.model.hidden=\(32.5, 16\): element 0 \(32.5\) "
                                          r"is not an integer >= 1"):
        validate_config(config, defaults=module.get_config())


def test_monitored_metric_needs_periodic_evaluation():
    config = default_config()
    config.checkpoint.best_metric = "test/accuracy"
    with pytest.raises(ConfigError, match=r"config.checkpoint.best_metric='test/accuracy' is only "
                                          r"read at periodic evaluations.*eval_every=0"):
        validate_config(config)


def _tiny_fit(**settings):
    data = tiny_data()
    config = tiny_config(eval_every=2, **settings)
    model = MLP(4, (8,), 3, rngs=nnx.Rngs(0))
    return fit(model, task_lib.classification(), data, config=config,
               eval_data={"test": data})


@pytest.mark.parametrize("key", ["frozen", "dont_load"])
def test_a_transfer_regex_matching_no_parameter_is_refused_listing_the_paths(key):
    with pytest.raises(ConfigError) as info:
        _tiny_fit(**{f"transfer__{key}": ("^probe/",)})
    message = str(info.value)
    assert message.startswith(f"config.transfer.{key}: regex '^probe/' matches no parameter path")
    assert "head/kernel" in message and "layers/0/bias" in message
    with pytest.raises(ConfigError, match=r"config.transfer.lr_multipliers: regex 'probe'"):
        _tiny_fit(transfer__lr_multipliers=(("layers/0", 0.1), ("probe", 2.0)))
    assert _tiny_fit(**{f"transfer__{key}": ("layers/0",)}).steps == 4  # a real match trains


@pytest.mark.parametrize("key", ["checkpoint__best_metric", "train__early_stopping_metric"])
def test_a_metric_name_the_run_does_not_log_is_refused_listing_them(key):
    with pytest.raises(ConfigError) as info:
        _tiny_fit(**{key: "test/acuracy"})
    assert (f"config.{key.replace('__', '.')}='test/acuracy' is not a metric this run logs at "
            "its evaluations; expected one of ['test/accuracy', 'test/loss']") in str(info.value)
