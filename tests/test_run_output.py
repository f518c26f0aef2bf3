"""What a run shows: Keras-style progress lines, a model summary, announced phases,
the sub-run time estimate, and each experiment's result in words (issue 29, items 2-3)."""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pytest
from flax import nnx

from conftest import REPO, load_experiment, tiny_config, zipf_sentences
from jaxdl.data.arrays import ArrayDataset
from jaxdl.models.mlp import MLP
from jaxdl.run import run_experiment
from jaxdl.run_report import final_report, headline, output_paths
from jaxdl.sweep.progress import SubrunProgress
from jaxdl.train import task as task_lib
from jaxdl.train.logging import ProgressLines
from jaxdl.train.loop import fit

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 8)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32)


def test_fit_prints_a_summary_then_one_line_per_log_with_eval_metrics(capsys):
    config = tiny_config(batch_size=16, num_steps=8, log_every=4, eval_every=4,
                         progress_bar=True)
    data = ArrayDataset({"x": X, "y": Y})  # 4 steps per epoch
    result = fit(MLP(8, (16,), 2, rngs=nnx.Rngs(0)), task_lib.classification(), data,
                 eval_data={"test": data}, config=config)
    err = capsys.readouterr().err  # not a terminal here: plain lines, no bar
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[0] == (f"model MLP: {result.num_params:,} parameters "
                        f"(head {16 * 2 + 2:,} - layers {8 * 16 + 16:,})")
    assert lines[1] == "compiling the train step (from step 0/8)..."
    assert lines[2].startswith("compiled and ran the first dispatch in ")
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    train = {e["step"]: e for e in result.history if e["split"] == "train"}
    test = {e["step"]: e for e in result.history if e["split"] == "test"}
    assert re.fullmatch(
        rf"epoch 1/2 - step 4/8 - loss {train[4]['loss']:.4f} - accuracy "
        rf"{train[4]['accuracy']:.4f} - test_loss {test[4]['loss']:.4f} - test_accuracy "
        rf"{test[4]['accuracy']:.4f} - [\d.]+ steps/s - \d+s", epoch_lines[0])
    assert epoch_lines[1].startswith("epoch 2/2 - step 8/8 - loss ")
    assert "evaluating test..." in lines
    # fit's history holds the evaluations too (the README snippet reads it)
    assert sorted(test) == [4, 8] and result.metrics["test"]["accuracy"] == test[8]["accuracy"]


def test_progress_bar_shows_the_loss_and_lines_go_above_it():
    class Bar:
        disable = False

        def __init__(self):
            self.written, self.postfix = [], {}

        def write(self, line, file=None):
            self.written.append(line)

        def set_postfix(self, refresh=True, **values):
            self.postfix = values

    bar, stream = Bar(), io.StringIO()
    report = ProgressLines(100, 10, bar=bar, stream=stream)
    report.train(10, {"loss": 0.25, "accuracy": 0.5})
    report.flush()
    assert bar.postfix == {"loss": "0.2500"}
    assert len(bar.written) == 1 and bar.written[0].startswith(
        "epoch 1/10 - step 10/100 - loss 0.2500 - accuracy 0.5000 - ")
    assert stream.getvalue() == ""  # through the bar, not around it
    silent = ProgressLines(100, 10, enabled=False, stream=stream)
    silent.train(10, {"loss": 1.0})
    silent.flush()
    assert stream.getvalue() == ""


def test_remaining_time_counts_parallel_slots_and_running_subruns():
    stream = io.StringIO()
    progress = SubrunProgress(4, stream=stream, parallel=2)
    progress.started("a")
    progress.started("b")
    progress.finished("a", seconds=100.0)
    # b is running (~100 s left), c starts now beside it, d after them: ~200 s
    assert stream.getvalue().splitlines()[-1].endswith("remaining ~3m20s)")
    assert progress.remaining_seconds() == pytest.approx(200, abs=2)
    # a cold first sub-run does not skew the estimate: the median is taken
    progress = SubrunProgress(5, stream=io.StringIO())
    for label, seconds in (("a", 90.0), ("b", 10.0), ("c", 10.0)):
        progress.finished(label, seconds=seconds)
    assert progress.remaining_seconds() == pytest.approx(20)


def _report(module, config, workdir) -> str:
    summary = run_experiment(module, config, str(workdir))
    return final_report(summary, str(workdir))


def test_mlp_digits_prints_an_epoch_line_with_train_loss_and_test_accuracy(
        tmp_path, capsys, monkeypatch):
    module = load_experiment("mlp_digits")
    config = module.get_config()
    config.train.update(num_epochs=2, log_every=21, eval_every=21)  # 21 steps per epoch
    config.model.hidden = (16,)
    config.checkpoint.every_steps = 0
    config.baseline.max_iter = 2
    monkeypatch.setenv("JAXDL_BASELINE_CACHE", str(tmp_path / "cache"))
    report = _report(module, config, tmp_path / "run")
    err = capsys.readouterr().err
    assert re.search(r"^epoch 1/2 - step 21/42 - loss [\d.]+ - accuracy [\d.]+ - test_loss "
                     r"[\d.]+ - test_accuracy [\d.]+ - [\d.]+ steps/s - \d+s$", err, re.M)
    assert "baseline sklearn_mlp: fitting..." in err
    assert re.search(r"^test: loss [\d.]+, accuracy [\d.]+$", report, re.M)
    assert re.search(r"^baseline sklearn_mlp test: accuracy [\d.]+$", report, re.M)
    assert f"plots: {tmp_path / 'run' / 'plots'}/ (loss.png)" in report


def test_pos_tagger_tutorial_prints_the_tagged_sentence(tmp_path):
    module = load_experiment("pos_tagger_tutorial")
    config = module.get_config()
    config.train.progress_bar = False
    report = _report(module, config, tmp_path / "run")
    assert "The dog ate the apple -> DET NN V DET NN (as expected)" in report.splitlines()


def test_word2vec_prints_nearest_neighbours_and_the_vectors_file(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(s) for s in zipf_sentences()) + "\n")
    module = load_experiment("word2vec")
    config = module.get_config()
    config.data.corpus = str(corpus)
    config.word2vec.update(dim=8, epochs=1, batch_centres=64, steps_per_call=2, min_count=1)
    config.eval.update(neighbours_of=("w0", "w1"), num_neighbours=3)
    config.train.progress_bar = False
    summary = module.run(config, None)  # no workdir: no t-SNE plot, a quick test
    lines = headline(summary).splitlines()
    start = lines.index("nearest neighbours:")
    assert lines[start + 1:] == [f"  {word}: {', '.join(summary['evaluation']['neighbours'][word])}"
                                 for word in ("w0", "w1")]
    assert all(len(line.split(": ", 1)[1].split(", ")) == 3 for line in lines[start + 1:])
    # with a workdir, the run writes vectors.txt and names it
    (tmp_path / "vectors.txt").write_text("2 1\nw0 0.1\nw1 0.2\n")
    paths = output_paths(str(tmp_path), {"vectors_file": str(tmp_path / "vectors.txt")})
    assert f"vectors: {tmp_path / 'vectors.txt'}" in paths.splitlines()


def test_profiling_prints_the_trace_path(tmp_path):
    config = tiny_config(batch_size=16, num_steps=8, log_every=4, profile_steps=(2, 4))
    workdir = tmp_path / "run"
    fit(MLP(8, (16,), 2, rngs=nnx.Rngs(0)), task_lib.classification(),
        ArrayDataset({"x": X, "y": Y}), config=config, workdir=str(workdir))
    report = final_report({"metrics": {}}, str(workdir))
    traces = [line for line in report.splitlines() if line.startswith("trace: ")]
    assert any(line.endswith(".xplane.pb") for line in traces)
    assert all(os.path.exists(line[len("trace: "):]) for line in traces)


def test_readme_library_snippet_prints_a_test_accuracy(capsys):
    with open(os.path.join(REPO, "README.md")) as f:
        snippet = f.read().split("```python\n", 1)[1].split("```", 1)[0]
    assert "print(result.metrics[\"test\"][\"accuracy\"]" in snippet
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    accuracy = float(capsys.readouterr().out.split()[0])
    assert 0.9 < accuracy <= 1
    assert any(e["split"] == "test" for e in scope["result"].history)


def test_a_sweep_names_its_training_subruns_while_they_train():
    import time
    stream = io.StringIO()
    progress = SubrunProgress(2, stream=stream, prefix="sweep ", heartbeat=0.05)
    progress.started("runs/a-s0")
    time.sleep(0.3)
    progress.finished("runs/a-s0", seconds=0.3)
    progress.close()
    lines = stream.getvalue().splitlines()
    beats = [line for line in lines if line.startswith("sweep training: runs/a-s0 ")]
    assert beats and all(line.endswith("(0/2 done, elapsed 0s, remaining unknown)")
                         for line in beats)
    time.sleep(0.15)  # closed: no more lines
    assert stream.getvalue().splitlines() == lines
