"""The composed-experiment runner: skipping finished sub-runs, resuming, identical
tables for identical seeds (on a tiny transfer_digits)."""

from __future__ import annotations

import io
import json
import os
import shutil

import pytest

from jaxdl.run_report import final_report, headline
from jaxdl.sweep.progress import SubrunProgress, format_duration
from jaxdl.sweep.subruns import run_subrun
from jaxdl.sweep.table import aggregate
from jaxdl.config import default_config
from jaxdl.errors import ConfigError
from jaxdl.experiment_file import load_experiment

EXPERIMENT = os.path.join(os.path.dirname(__file__), "..", "experiments", "transfer_digits.py")


def tiny_config():
    module = load_experiment(EXPERIMENT)
    config = module.get_config()
    config.model.hidden = 16
    config.pretrain.num_steps = 10
    config.downstream.num_steps = 10
    config.downstream.eval_every = 5
    config.train.steps_per_loop = 5
    config.downstream.modes = ("scratch", "fine_tune")  # linear_probe is one more compile
    config.downstream.labels_per_class = (2,)
    config.downstream.seeds = (0, 1)
    config.report.curve_steps = (5, 10)
    config.report.curve_budgets = (2,)
    config.report.few_shot_ks = (1,)
    return module, config


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The tiny experiment run twice in two directories, plus a re-run of the first."""
    module, config = tiny_config()
    first = str(tmp_path_factory.mktemp("first"))
    second = str(tmp_path_factory.mktemp("second"))
    summaries = [module.run(config, first), module.run(config, second)]
    return module, config, first, second, summaries


def test_table_has_every_mode_with_paired_intervals(two_runs):
    _, _, first, _, (summary, _) = two_runs
    rows = summary["table"]
    assert [(r["mode"], r["labels_per_class"], r["seeds"]) for r in rows] == [
        ("scratch", 2, 2), ("fine_tune", 2, 2)]
    assert rows[0]["diff_vs_scratch_mean"] is None
    lo, hi = rows[1]["diff_vs_scratch_ci95"]
    assert lo <= rows[1]["diff_vs_scratch_mean"] <= hi
    # The paired difference is the mean of the per-seed differences of the sub-runs.
    accuracy = {}
    for run in summary["runs"]:
        with open(os.path.join(first, run["workdir"], "summary.json")) as f:
            accuracy[run["mode"], run["seed"]] = json.load(f)["metrics"]["test"]["accuracy"]
    expected = sum(accuracy["fine_tune", s] - accuracy["scratch", s] for s in (0, 1)) / 2
    assert rows[1]["diff_vs_scratch_mean"] == pytest.approx(expected, abs=1e-12)
    assert sorted(r["workdir"] for r in summary["runs"])[0] == "runs/fine_tune-k2-s0"
    assert os.path.exists(os.path.join(first, "table.md"))
    assert os.path.exists(os.path.join(first, "plots", "accuracy_vs_labels.png"))
    assert os.path.exists(os.path.join(first, "plots", "accuracy_vs_steps_k2.png"))
    for run in summary["runs"]:
        assert os.path.exists(os.path.join(first, run["workdir"], "summary.json"))
    with open(os.path.join(first, "runs", "fine_tune-k2-s0", "summary.json")) as f:
        sub = json.load(f)
    assert sub["transfer"]["reinitialised"] == ["head/bias", "head/kernel"]
    assert sorted({s for r in summary["curve_table"] for s in [r["step"]]}) == [5, 10]


def test_same_seed_gives_identical_tables(two_runs):
    *_, (a, b) = two_runs
    assert a["table"] == b["table"]
    assert a["curve_table"] == b["curve_table"]
    assert a["table_markdown"] == b["table_markdown"]


def test_rerun_skips_finished_subruns_and_resumes_an_interrupted_one(two_runs):
    module, config, first, _, (summary, _) = two_runs
    names = [r["workdir"] for r in summary["runs"]]
    stamps = {n: os.path.getmtime(os.path.join(first, n, "summary.json")) for n in names}
    # Simulate a kill after the last checkpoint of one sub-run: its summary is gone.
    interrupted = os.path.join(first, "runs", "scratch-k2-s1")
    os.remove(os.path.join(interrupted, "summary.json"))
    again = module.run(config, first)
    assert again["table"] == summary["table"]
    for name in names:
        if name != "runs/scratch-k2-s1":
            assert os.path.getmtime(os.path.join(first, name, "summary.json")) == stamps[name]
    assert os.path.exists(os.path.join(interrupted, "summary.json"))


def test_a_changed_config_is_refused_in_an_existing_subrun(two_runs):
    module, config, first, _, _ = two_runs
    changed = config.copy_and_resolve_references()
    changed.downstream.num_steps = 20
    with pytest.raises(ConfigError, match="train.num_steps: saved=10 now=20"):
        module.run(changed, first)


def test_run_subrun_calls_train_fn_once(tmp_path):
    calls = []

    def train_fn(config, path):
        calls.append(path)
        return {"experiment": "x", "metrics": {"test": {"accuracy": 0.5}}}

    config = default_config()
    first = run_subrun(str(tmp_path), "runs/a", config, train_fn)
    second = run_subrun(str(tmp_path), "runs/a", config, train_fn)
    assert first == second == {"experiment": "x", "metrics": {"test": {"accuracy": 0.5}}}
    assert calls == [os.path.join(str(tmp_path), "runs/a")]
    shutil.rmtree(tmp_path / "runs")


def test_aggregate_orders_budgets_with_all_last():
    results = [{"mode": m, "labels_per_class": k, "seed": s, "accuracy": a}
               for m, k, s, a in [("scratch", 0, 0, 0.9), ("scratch", 5, 0, 0.5),
                                  ("fine_tune", 0, 0, 0.95), ("fine_tune", 5, 0, 0.7)]]
    rows = aggregate(results)
    assert [(r["mode"], r["labels_per_class"]) for r in rows] == [
        ("scratch", 5), ("fine_tune", 5), ("scratch", "all"), ("fine_tune", "all")]
    assert rows[1]["diff_vs_scratch_mean"] == pytest.approx(0.2)
    assert rows[1]["diff_vs_scratch_ci95"] == [None, None]  # one seed: no interval


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_writes_one_line_per_subrun_with_k_of_n_off_a_terminal():
    stream = io.StringIO()
    progress = SubrunProgress(3, stream=stream)
    progress.started("pretrain")  # off a terminal: one line when it starts
    assert stream.getvalue() == "pretrain: started (0/3 done, elapsed 0s, remaining unknown)\n"
    progress.finished("pretrain", seconds=5.0, estimate=False)
    progress.finished("scratch k=2 seed=0", seconds=0.0, skipped=True)
    progress.finished("fine_tune k=2 seed=0", seconds=65.0)
    lines = stream.getvalue().splitlines()[1:]
    assert [line.split(":")[0] for line in lines] == [
        "[1/3] pretrain", "[2/3] scratch k=2 seed=0", "[3/3] fine_tune k=2 seed=0"]
    assert "done in 5s" in lines[0] and "remaining unknown" in lines[0]
    assert "finished earlier, skipped" in lines[1] and "remaining unknown" in lines[1]
    assert "done in 1m05s" in lines[2] and "remaining" not in lines[2]
    assert "\r" not in stream.getvalue()


def test_progress_estimates_the_rest_from_trained_subruns_and_rewrites_on_a_terminal():
    stream = _Terminal()
    progress = SubrunProgress(4, stream=stream)
    progress.finished("a", seconds=100.0)  # three of four left; 100 s each
    assert stream.getvalue().endswith("(elapsed 0s, remaining ~5m00s)\n")
    progress.started("b")
    assert stream.getvalue().endswith("\r\x1b[K[2/4] b: training (elapsed 0s, remaining ~5m00s)")
    assert format_duration(59.4) == "59s" and format_duration(3725) == "1h02m"


def test_final_report_is_the_headline_then_the_paths(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "loss.png").write_bytes(b"")
    summary = {"experiment": "x", "metrics": {"test": {"accuracy": 0.98611, "loss": 0.0414}},
               "baselines": {"sklearn": {"test": {"accuracy": 0.97}}}, "steps": 10}
    assert final_report(summary, str(tmp_path)) == (
        "test: accuracy 0.9861, loss 0.0414\nbaseline sklearn test: accuracy 0.9700\n\n"
        f"summary: {tmp_path / 'summary.json'}\nplots: {tmp_path / 'plots'}/ (loss.png)")
    (tmp_path / "table.md").write_text("| t |")
    assert headline({**summary, "headline": "## T\n\n| t |"}) == "## T\n\n| t |"
    assert f"table: {tmp_path / 'table.md'}" in final_report(summary, str(tmp_path))
