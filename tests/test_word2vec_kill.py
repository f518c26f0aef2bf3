"""`python -m jaxdl.run --config=experiments/word2vec.py`, SIGKILLed twice and re-run, ends bit-identical.

The word2vec experiment trains through `fit`, so a killed run resumes from its
latest checkpoint like any run; this checks it end to end on a tiny corpus file.
"""

from __future__ import annotations

import pytest

import signal
import subprocess
import sys
import time

import numpy as np

import fault_runs

OVERRIDES = ("--config.word2vec.dim=8", "--config.word2vec.epochs=2", "--config.word2vec.batch_centres=64",
             "--config.word2vec.steps_per_call=2", "--config.checkpoint.every_steps=40",
             "--config.checkpoint.max_to_keep=3", "--config.train.log_every=20",
             "--config.train.progress_bar=False")


def _command(workdir, corpus) -> list[str]:
    return [sys.executable, "-m", "jaxdl.run", "--config=experiments/word2vec.py", f"--workdir={workdir}",
            f"--config.data.corpus={corpus}", *OVERRIDES]


def _write_corpus(path) -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(100)]
    probs = 1.0 / np.arange(1, 101)
    lines = (" ".join(rng.choice(words, size=8, p=probs / probs.sum())) for _ in range(1500))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _kill_after_new_checkpoint(workdir, corpus, log_path, timeout=240.0) -> list[int]:
    """Start the run, SIGKILL it once a checkpoint newer than the existing ones is finished."""
    before = set(fault_runs.finished_steps(workdir))
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(_command(workdir, corpus), cwd=fault_runs.REPO, env=fault_runs.run_env(),
                                stdout=log, stderr=subprocess.STDOUT)
    start = time.monotonic()
    try:
        while not set(fault_runs.finished_steps(workdir)) - before:
            assert proc.poll() is None, f"run ended (rc={proc.returncode}) before a new checkpoint; see {log_path}"
            assert time.monotonic() - start < timeout, "no new checkpoint appeared"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return fault_runs.finished_steps(workdir)


def _run_to_end(workdir, corpus) -> dict:
    done = subprocess.run(_command(workdir, corpus), cwd=fault_runs.REPO, env=fault_runs.run_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return fault_runs.summary(workdir)


@pytest.mark.leg2
def test_word2vec_run_killed_twice_resumes_to_the_same_params(tmp_path):
    corpus = tmp_path / "corpus.txt"
    _write_corpus(corpus)
    reference = _run_to_end(tmp_path / "reference", corpus)
    total = reference["steps"]
    assert total == 2 * -(-12000 // 64)  # 1500 lines × 8 in-vocabulary tokens, 2 epochs

    workdir = tmp_path / "killed"
    first = _kill_after_new_checkpoint(workdir, corpus, tmp_path / "killed.log")
    second = _kill_after_new_checkpoint(workdir, corpus, tmp_path / "killed.log")
    assert first and max(second) > max(first) and max(second) < total  # progress, never the end

    resumed = _run_to_end(workdir, corpus)
    assert resumed["steps"] == total
    assert resumed["params_sha256"] == reference["params_sha256"]
    assert resumed["metrics"]["train"]["loss"] == reference["metrics"]["train"]["loss"]
