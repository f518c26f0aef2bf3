"""transfer_text's pretrained-encoder kind on a tiny random BERT directory and a tiny
``<label> <sentence>`` file pair, end to end through ``python -m jaxdl.run``.

The table holds every mode with paired intervals against both baselines; a second
run with the same seeds gives the identical table, and so does a run SIGKILLed in
the middle of ``encoder_fine_tune`` and started again. A bad ``encoder_from`` is
refused naming the path before anything is written.
"""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fault_runs
from bert_directory import write_tiny_bert
from jaxdl.errors import ConfigError

EXPERIMENT = str(fault_runs.REPO / "experiments" / "transfer_text.py")
MODES = ("random", "tfidf_logreg", "vectors_mean_probe", "vectors_sif_probe", "encoder_probe",
         "encoder_fine_tune")
POSITIVE, NEGATIVE = "good great fun love very".split(), "bad awful dull hate not".split()
NEUTRAL = "the movie film was is plot actor story".split()  # all in the tiny BERT's vocabulary


def sentence_line(label: int, rng: random.Random) -> str:
    words = [rng.choice(POSITIVE if label else NEGATIVE) for _ in range(2)]
    words += [rng.choice(NEUTRAL) for _ in range(rng.randint(1, 5))]
    rng.shuffle(words)
    return f"{label} {' '.join(words)}"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The BERT directory, the train/test files and a .npy + .vocab word-vector pair."""
    root = tmp_path_factory.mktemp("encoder_inputs")
    write_tiny_bert(root / "bert")
    rng = random.Random(0)
    for name, n in (("train.txt", 24), ("test.txt", 10)):
        (root / name).write_text("\n".join(sentence_line(i % 2, rng) for i in range(n)) + "\n")
    words = ["the", "good", "bad", "movie", "great", "awful", "fun", "dull"]
    np.save(root / "vectors.npy", np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32))
    (root / "vectors.vocab").write_text("\n".join(words) + "\n")
    return root


def overrides(root: Path) -> list[str]:
    return ["--config.pretrain.kind=encoder", f"--config.pretrain.encoder_from={root / 'bert'}",
            f"--config.data.train={root / 'train.txt'}", f"--config.data.test={root / 'test.txt'}",
            f"--config.transfer.embeddings_from={root / 'vectors.npy'}",
            "--config.downstream.labels_per_class=(2,)", "--config.downstream.seeds=(0,1)",
            "--config.downstream.num_steps=4", "--config.downstream.eval_every=2",
            "--config.checkpoint.every_steps=2", "--config.train.batch_size=4",
            "--config.train.steps_per_loop=1"]


def command(workdir: Path, root: Path) -> list[str]:
    return [sys.executable, "-m", "jaxdl.run", f"--config={EXPERIMENT}", f"--workdir={workdir}",
            *overrides(root)]


def run_to_end(workdir: Path, root: Path) -> dict:
    done = subprocess.run(command(workdir, root), cwd=fault_runs.REPO, env=fault_runs.run_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((workdir / "summary.json").read_text())


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("encoder_runs") / "straight"
    return workdir, run_to_end(workdir, inputs)


def test_table_has_every_mode_with_intervals_against_both_baselines(reference):
    workdir, summary = reference
    rows = {row["mode"]: row for row in summary["table"]}
    assert tuple(rows) == MODES
    for mode, row in rows.items():
        assert row["labels_per_class"] == 2 and row["seeds"] == 2
        for baseline in ("random", "tfidf_logreg"):
            ci = row[f"diff_vs_{baseline}_ci95"]
            if mode == baseline:
                assert ci is None
            else:
                assert row[f"diff_vs_{baseline}_mean"] is not None and len(ci) == 2
                assert ci[0] <= row[f"diff_vs_{baseline}_mean"] <= ci[1]
    header = (workdir / "table.md").read_text().splitlines()[2]
    assert "Δ vs random" in header and "Δ vs tfidf_logreg" in header
    # Every mode trained on the same labelled examples of a seed.
    digests = {json.loads((workdir / "runs" / f"{m}-k2-s0" / "summary.json").read_text())
               .get("labelled", {}).get("sha256") for m in ("tfidf_logreg", "encoder_probe")}
    assert len(digests) == 1
    # The frozen features were computed once per split and kept in the workdir.
    assert sorted(p.name for p in (workdir / "encoder_features").iterdir()) == \
        ["pool.json", "pool.npy", "test.json", "test.npy"]


def test_fine_tune_loads_the_checkpoint_and_random_does_not(reference):
    workdir, _ = reference
    configs = {m: json.loads((workdir / "runs" / f"{m}-k2-s0" / "config.json").read_text())
               ["config"] for m in ("random", "encoder_fine_tune")}
    fine, scratch = configs["encoder_fine_tune"], configs["random"]
    assert fine["encoder"]["init"] == "pretrained" and scratch["encoder"]["init"] == "random"
    multipliers = dict(map(tuple, fine["transfer"]["lr_multipliers"]))
    # Two blocks: the top one at the base rate, the one below and the embeddings decayed.
    assert multipliers["^encoder/layers/1/"] == 1.0
    assert multipliers["^encoder/layers/0/"] < 1.0
    assert multipliers["^encoder/embeddings/"] < multipliers["^encoder/layers/0/"]
    assert scratch["transfer"]["lr_multipliers"] == []
    assert fine["optimizer"]["name"] == "adamw" and fine["optimizer"]["warmup_steps"] >= 1


@pytest.mark.leg2
def test_same_seed_gives_the_identical_table(reference, inputs, tmp_path):
    workdir, summary = reference
    again = run_to_end(tmp_path / "again", inputs)
    assert again["table"] == summary["table"]
    assert (tmp_path / "again" / "table.md").read_text() == (workdir / "table.md").read_text()


@pytest.mark.leg2
def test_sigkill_during_fine_tune_then_rerun_gives_the_identical_table(reference, inputs,
                                                                       tmp_path):
    workdir, summary = reference
    killed = tmp_path / "killed"
    left = fault_runs.kill_at_first_checkpoint(
        command(killed, inputs), killed / "runs" / "encoder_fine_tune-k2-s0")
    assert left, "the kill came before the fine-tuning run's first checkpoint"
    assert not (killed / "summary.json").exists()
    resumed = run_to_end(killed, inputs)
    assert resumed["table"] == summary["table"]
    assert (killed / "table.md").read_text() == (workdir / "table.md").read_text()


def load_experiment():
    spec = importlib.util.spec_from_file_location("transfer_text_experiment", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("damage", ["missing", "no_weights"])
def test_bad_encoder_from_is_refused_naming_the_path_before_writing(inputs, tmp_path, damage):
    experiment = load_experiment()
    bad = tmp_path / "bert"
    if damage == "no_weights":
        write_tiny_bert(bad)
        (bad / "model.safetensors").unlink()
    config = experiment.get_config()
    config.pretrain.kind, config.pretrain.encoder_from = "encoder", str(bad)
    config.data.train, config.data.test = str(inputs / "train.txt"), str(inputs / "test.txt")
    workdir = tmp_path / "run"
    with pytest.raises(ConfigError, match=str(bad)) as error:
        experiment.run(config, str(workdir))
    expected = "has no model.safetensors" if damage == "no_weights" else "is not a directory"
    assert expected in str(error.value)
    assert not workdir.exists()
