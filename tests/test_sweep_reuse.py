"""Sweeps reuse what does not change (the baseline is fitted once) and plot learning
rates on a log axis (issue 29, item 5)."""

from __future__ import annotations

import os

import pytest
from sklearn.neural_network import MLPClassifier

from conftest import load_experiment
from jaxdl.data.formats.sklearn import load_sklearn
from jaxdl.recipes.baseline_cache import CACHE_ENV, cached_baseline
from jaxdl.sweep.plots import log_scaled, plot_sweep, sweep_figure
from jaxdl.sweep.subruns import subrun_environment


def _tiny(module, lr: float, seed: int):
    config = module.get_config()
    config.optimizer.lr = lr
    config.seed = seed
    config.baseline.max_iter = 3  # a few iterations: the count is what is tested
    return config


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_2_value_2_seed_mlp_digits_sweep_fits_the_sklearn_baseline_once(
        tmp_path, monkeypatch, capsys):
    module = load_experiment("mlp_digits")
    fits = []
    original = MLPClassifier.fit
    monkeypatch.setattr(MLPClassifier, "fit",
                        lambda self, *a, **k: fits.append(1) or original(self, *a, **k))
    # the environment the sweep gives its sub-runs
    env = subrun_environment({}, workdir=str(tmp_path / "sweep"))
    assert env[CACHE_ENV] == str(tmp_path / "sweep" / "baseline_cache")
    monkeypatch.setenv(CACHE_ENV, env[CACHE_ENV])
    config = _tiny(module, 1e-3, 0)
    splits, _ = load_sklearn(config.data.name, test_fraction=config.data.test_fraction,
                             seed=config.data.split_seed)
    # what each sub-run's run() computes for its baselines (a full run of it:
    # tests/test_run_output.py)
    baselines = [module.baselines(_tiny(module, lr, seed), splits)["sklearn_mlp"]
                 for lr in (1e-3, 1e-2) for seed in (0, 1)]
    assert len(fits) == 1
    assert all(b == baselines[0] for b in baselines)
    assert 0 < baselines[0]["test"]["accuracy"] <= 1
    assert len([n for n in os.listdir(env[CACHE_ENV]) if n.endswith(".json")]) == 1
    err = capsys.readouterr().err
    assert err.count("baseline sklearn_mlp: fitting...") == 1
    assert err.count("baseline sklearn_mlp: reused ") == 3
    # other settings are another entry: fitted again
    config.baseline.seed = 1
    module.baselines(config, splits)
    assert len(fits) == 2


def test_cached_baseline_keys_on_the_data_and_settings(tmp_path):
    import numpy as np
    calls = []

    def compute():
        calls.append(1)
        return {"test": {"accuracy": 0.5}}

    x = np.arange(6.0)
    for arrays, settings in [({"x": x}, {"a": 1}), ({"x": x}, {"a": 1}),
                             ({"x": x + 1}, {"a": 1}), ({"x": x}, {"a": 2})]:
        assert cached_baseline("b", compute, arrays=arrays, settings=settings,
                               cache_dir=str(tmp_path)) == {"test": {"accuracy": 0.5}}
    assert len(calls) == 3  # the second call was read back


def _rows(key, values):
    return [{"values": {key: v}, "metrics": {"test/accuracy": {"mean": 0.5 + i / 10,
                                                                "std": 0.01}}}
            for i, v in enumerate(values)]


@pytest.mark.parametrize("key, values, scale", [
    ("optimizer.lr", (1e-3, 3e-3), "log"),  # by name, even within a factor 10
    ("optimizer.weight_decay", (1e-4, 1e-3, 1e-2), "log"),
    ("train.batch_size", (8, 128), "log"),  # positive, spanning >= 10x
    ("model.dropout", (0.0, 0.5), "linear"),
    ("train.batch_size", (32, 64), "linear"),
])
def test_sweep_plot_puts_log_spaced_keys_on_a_log_axis(key, values, scale):
    assert log_scaled(key, values) == (scale == "log")
    fig, ax = sweep_figure(_rows(key, values), "test/accuracy")
    assert ax.get_xscale() == scale
    # one readable tick per grid value, written as in the table
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(v) for v in values]
    fig.clf()


def test_plot_sweep_writes_the_log_axis_figure(tmp_path, monkeypatch):
    import matplotlib.figure
    scales = []
    original = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda self, *a, **k: (
        scales.append(self.axes[0].get_xscale()), original(self, *a, **k))[1])
    paths = plot_sweep(_rows("optimizer.lr", (1e-3, 1e-2)), str(tmp_path))
    assert paths == [str(tmp_path / "plots" / "test_accuracy.png")]
    assert os.path.getsize(paths[0]) > 0 and scales == ["log"]
