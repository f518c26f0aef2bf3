"""Plots read at a glance: each series its own marker, the legend says what error bars
are (std or 95% CI), bars at shared x values are shifted apart, and every experiment
that trains writes `plots/` (jaxdl.evaluation.plots)."""

import os

import numpy as np
import pytest

from conftest import load_experiment
from image_folder_files import write_split_folders
from jaxdl.evaluation import plots
from jaxdl.sweep import plots as sweep_plots

XS = [1.0, 2.0, 5.0, 10.0]


def two_series():
    return {"fine-tune": (XS, [0.5, 0.6, 0.7, 0.8]), "scratch": (XS, [0.5, 0.6, 0.7, 0.8])}


def errorbar_xs(fig) -> list[np.ndarray]:
    """The x positions of each errorbar container's data line, in drawing order."""
    return [np.asarray(c.lines[0].get_xdata(), float) for c in fig.axes[0].containers]


def test_legend_says_what_error_bars_are_and_overlapping_series_move_apart():
    fig = plots.lines_figure(two_series(), xlabel="labels", ylabel="accuracy",
                             errors={"fine-tune": [0.1] * 4, "scratch": [0.2] * 4})
    legend = fig.axes[0].get_legend()
    assert legend.get_title().get_text().startswith("error bars: ± 1 std")
    assert "offset sideways" in legend.get_title().get_text()
    first, second = errorbar_xs(fig)
    assert np.all(first < second)  # identical series no longer sit on each other
    np.testing.assert_allclose((first + second) / 2, XS)  # centred on the true x
    markers = [c.lines[0].get_marker() for c in fig.axes[0].containers]
    assert markers[0] != markers[1]


def test_a_95_percent_interval_is_named_as_such():
    fig = plots.lines_figure({"a": (XS, [1, 2, 3, 4])}, xlabel="x", ylabel="y",
                             errors={"a": [0.5] * 4}, error_kind="95% CI (t, paired)")
    assert fig.axes[0].get_legend().get_title().get_text() == "error bars: 95% CI (t, paired)"
    np.testing.assert_allclose(errorbar_xs(fig)[0], XS)  # one series: nothing to dodge


def test_log_axis_offsets_are_multiplicative_and_symmetric():
    fig = plots.lines_figure(two_series(), xlabel="x", ylabel="y", logx=True,
                             errors={"fine-tune": [0.1] * 4, "scratch": [0.1] * 4})
    first, second = errorbar_xs(fig)
    np.testing.assert_allclose(np.sqrt(first * second), XS)
    assert fig.axes[0].get_xscale() == "log"


def test_without_error_bars_the_legend_has_no_title():
    fig = plots.lines_figure(two_series(), xlabel="x", ylabel="y")
    assert fig.axes[0].get_legend().get_title().get_text() == ""
    assert len({line.get_marker() for line in fig.axes[0].lines}) == 2


def test_learning_curves_give_each_split_its_own_marker():
    history = [{"step": s, "split": split, "loss": 1.0 / s}
               for s in range(1, 40) for split in ("train", "test")]
    lines = plots.learning_curves_figure(history).axes[0].lines
    assert [line.get_label() for line in lines] == ["test", "train"]
    assert lines[0].get_marker() != lines[1].get_marker()


def test_transfer_tables_plot_says_std(monkeypatch, tmp_path):
    # The transfer recipes plot through jaxdl.sweep.plots.plot_by_mode: its bars are std.
    seen = {}

    def capture(series, path, **kwargs):
        seen["legend"] = plots.lines_figure(series, **kwargs).axes[0].get_legend()
        return path

    monkeypatch.setattr(sweep_plots, "plot_lines", capture)
    rows = [{"mode": mode, "labels_per_class": k, "accuracy_mean": 0.5, "accuracy_std": 0.1}
            for mode in ("fine_tune", "scratch") for k in (1, 5)]
    sweep_plots.plot_by_mode(rows, "labels_per_class", str(tmp_path / "a.png"), xlabel="k")
    assert "std" in seen["legend"].get_title().get_text()


def short(config, **train):
    config.train.update(**train)
    return config


@pytest.mark.parametrize("name", ["linear_regression", "logistic_regression",
                                  "pos_tagger_tutorial"])
def test_experiments_that_train_write_plots(name, tmp_path):
    module = load_experiment(name)
    config = module.get_config()
    if config.train.num_steps:
        short(config, num_steps=20, log_every=5, steps_per_loop=5)
    else:
        short(config, num_epochs=2, log_every=2)
    module.run(config, str(tmp_path / "run"))
    assert os.path.getsize(tmp_path / "run" / "plots" / "loss.png") > 0


def test_imagefolder_cnn_writes_plots(tmp_path):
    root = write_split_folders(tmp_path / "images", train_per_class=4, test_per_class=2)
    module = load_experiment("imagefolder_cnn")
    config = module.get_config()
    config.data.dir = str(root)
    config.data.image_size = 8
    config.model = dict(name="small_cnn", hidden=16, dropout=0.0)
    short(config, num_steps=8, steps_per_loop=2, batch_size=4, eval_batch_size=8, log_every=2)
    module.run(config, str(tmp_path / "run"))
    assert os.path.getsize(tmp_path / "run" / "plots" / "loss.png") > 0
