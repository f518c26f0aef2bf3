"""transfer_text's language-model pretraining (``--config.pretrain.kind=language_model``).

End to end through ``python -m jaxdl.run`` on tiny configs: the table has the LM
kind's modes beside the shared ``random`` baseline with paired intervals; the
classifier starts from the LM's embedding and LSTM (bit for bit), the probe keeps
them so; a SIGKILL during pretraining and a re-run give the same table; fastText
files and a corpus directory (plain and gzip) are read; a bad kind is refused.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

import fault_runs
from jaxdl.data.stdlib_corpus import embedded_corpus
from jaxdl.data.formats.plain_text import read_corpus
from jaxdl.errors import ConfigError
from jaxdl.experiment_file import load_experiment
from jaxdl.models.sequence import RNNClassifier
from jaxdl.optim import param_path
from jaxdl.recipes import lm_pretraining as lm
from jaxdl.recipes.pretrain_kinds import kind_grid
from jaxdl.recipes.text import load_labelled_splits
from jaxdl.train.checkpoint import read_weights, resolve_checkpoint
from jaxdl.transfer import load_pretrained

# Most tests here train word2vec or an LM and a grid: .ci/run's second leg runs them
# (JAXDL_TEST_LEG=2), to keep the README test command under 15 minutes.
pytestmark = pytest.mark.leg2

EXPERIMENT = str(fault_runs.REPO / "experiments" / "transfer_text.py")
LM_ROWS = ["random", "tfidf_logreg", "lm_probe", "lm_fine_tune", "lm_ulmfit"]
# 2,000 corpus sentences in chunks of 16 tokens, batches of 32: about 70 LM steps,
# checkpointed every 5, so a kill after the first checkpoint lands mid-way.
TINY = ("--config.pretrain.lm_epochs=1", "--config.pretrain.lm_seq_len=16",
        "--config.pretrain.lm_checkpoint_every=5", "--config.model.embed_dim=16",
        "--config.model.hidden_dim=16", "--config.train.steps_per_loop=3",
        "--config.downstream.seeds=(0,1)", "--config.downstream.num_steps=6",
        "--config.downstream.eval_every=3")


def command(workdir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "jaxdl.run", f"--config={EXPERIMENT}", f"--workdir={workdir}",
            *TINY, *overrides]


def run_to_end(workdir: Path, *overrides: str) -> subprocess.CompletedProcess:
    done = subprocess.run(command(workdir, *overrides), cwd=fault_runs.REPO,
                          env=fault_runs.run_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def summary(workdir: Path) -> dict:
    return json.loads((workdir / "summary.json").read_text())


def embedded_test_sentences() -> list[list[str]]:
    config = load_experiment(EXPERIMENT).get_config()
    return load_labelled_splits(config.data)[1][0]


@pytest.fixture(scope="module")
def corpus_gz(tmp_path_factory) -> Path:
    """2,000 sentences of the embedded corpus and 3 of the classifier's test split, gzipped."""
    lines = [" ".join(s) for s in embedded_corpus()[:2000]]
    lines[10:10] = [" ".join(s) for s in embedded_test_sentences()[:3]]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def lm_overrides(corpus: Path) -> tuple[str, ...]:
    return ("--config.pretrain.kind=language_model", f"--config.data.corpus={corpus}",
            "--config.downstream.labels_per_class=(1,)")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus_gz):
    """One uninterrupted tiny LM-kind run: its workdir and its captured output."""
    workdir = tmp_path_factory.mktemp("transfer_text_lm") / "straight"
    return workdir, run_to_end(workdir, *lm_overrides(corpus_gz))


def test_lm_kind_prints_the_table_of_its_modes_with_paired_intervals(reference, corpus_gz):
    workdir, done = reference
    result = summary(workdir)
    assert result["headline"].startswith(
        "## Test accuracy after 6 steps (LM pretraining vs random initialisation)")
    assert [(r["mode"], r["labels_per_class"], r["seeds"]) for r in result["table"]] == \
        [(m, 1, 2) for m in LM_ROWS]
    for row in result["table"][1:]:  # two seeds: a finite interval around each difference
        low, high = row["diff_vs_random_ci95"]
        assert low <= row["diff_vs_random_mean"] <= high
    assert done.stdout.rstrip().split("\n\n")[-2] == result["table_markdown"]
    assert not (workdir / "pretrain").exists()  # no word2vec sub-run for this kind
    assert result["pretrain_lm"] == {"workdir": "pretrain_lm",
                                     "steps": summary(workdir / "pretrain_lm")["steps"]}
    # The LM never reads a sentence of the classifier's test split.
    held_out = {tuple(s) for s in embedded_test_sentences()}
    lines = read_corpus(corpus_gz)
    kept = [s for s in lines if tuple(s) not in held_out]
    assert len(lines) - len(kept) >= 3
    assert result["metrics"]["language_model"]["sentences"] == len(kept)
    assert json.loads((workdir / "runs" / "lm_ulmfit-k1-s0" / "summary.json").read_text())[
        "steps"] == 6


def test_default_grids_of_each_kind():
    module = load_experiment(EXPERIMENT)
    config = module.get_config()
    grids = {"word2vec": (module.MODES, module.BUDGETS),
             "language_model": (module.LM_KIND_MODES, lm.LM_BUDGETS)}
    w2v = ("random", "static", "non_static", "tfidf_logreg", "w2v_mean_probe", "w2v_sif_probe")
    assert kind_grid(config.downstream, ("word2vec",), grids) == (w2v, (5, 10, 20, 50, 0))
    assert kind_grid(config.downstream, ("language_model",), grids) == (
        ("random", "tfidf_logreg", "lm_probe", "lm_fine_tune", "lm_ulmfit"),
        (1, 2, 5, 10, 20, 0))
    assert kind_grid(config.downstream, ("word2vec", "language_model"), grids) == (
        w2v + ("lm_probe", "lm_fine_tune", "lm_ulmfit"), (1, 2, 5, 10, 20, 50, 0))
    assert lm.ulmfit_stage_steps(300) == [100, 100, 100]
    assert lm.ulmfit_stage_steps(7) == [2, 2, 3]


def _lm_weights(workdir: Path) -> dict:
    return read_weights(resolve_checkpoint(str(workdir / "pretrain_lm"))[0])


def test_loaded_classifier_embedding_and_lstm_equal_the_lm(reference):
    workdir, _ = reference
    result, saved = summary(workdir), _lm_weights(workdir)
    model = RNNClassifier(result["vocab_size"], len(result["classes"]), 16, 16, cell="lstm",
                          pooling="mean", rngs=nnx.Rngs(0))
    fresh_head = np.asarray(model.head.kernel[...])
    report = load_pretrained(model, str(workdir / "pretrain_lm"), ("^head/",))
    params = nnx.state(model, nnx.Param)
    ours = {param_path(p): np.asarray(v) for p, v in
            jax.tree_util.tree_flatten_with_path(params.to_pure_dict())[0]}
    encoder = [p for p in ours if not p.startswith("head/")]
    assert encoder and sorted(report.loaded) == sorted(encoder)
    assert any(p.startswith("rnn/") for p in encoder) and "embed/embedding" in encoder
    for path in encoder:
        np.testing.assert_array_equal(ours[path], saved[path], err_msg=path)
    assert saved["head/kernel"].shape == (16, result["vocab_size"])  # the LM's vocabulary head
    np.testing.assert_array_equal(ours["head/kernel"], fresh_head)  # a new head


def test_frozen_probe_leaves_the_encoder_bits_unchanged(reference):
    workdir, _ = reference
    saved = _lm_weights(workdir)

    def final(run: str) -> dict:
        return read_weights(resolve_checkpoint(str(workdir / "runs" / run))[0])

    probe, tuned = final("lm_probe-k1-s0"), final("lm_fine_tune-k1-s0")
    encoder = [p for p in probe if not p.startswith("head/")]
    for path in encoder:
        np.testing.assert_array_equal(probe[path], saved[path], err_msg=path)
    assert any(not np.array_equal(tuned[p], saved[p]) for p in encoder)  # it could fail
    ulmfit_stage0 = read_weights(resolve_checkpoint(
        str(workdir / "runs" / "lm_ulmfit-k1-s0" / "stage0"))[0])
    for path in encoder:  # ULMFiT's first stage trains the head alone
        np.testing.assert_array_equal(ulmfit_stage0[path], saved[path], err_msg=path)


@pytest.mark.leg2
def test_killed_during_lm_pretraining_resumes_to_the_same_table(reference, corpus_gz, tmp_path):
    straight, _ = reference
    workdir = tmp_path / "killed"
    left = fault_runs.kill_at_first_checkpoint(command(workdir, *lm_overrides(corpus_gz)),
                                               workdir / "pretrain_lm")
    assert left and max(left) < summary(straight / "pretrain_lm")["steps"]
    assert not (workdir / "pretrain_lm" / "summary.json").exists()

    run_to_end(workdir, *lm_overrides(corpus_gz))
    assert summary(workdir)["table"] == summary(straight)["table"]
    assert (workdir / "table.md").read_text() == (straight / "table.md").read_text()
    assert summary(workdir / "pretrain_lm")["params_sha256"] == \
        summary(straight / "pretrain_lm")["params_sha256"]
    steps = [(e["step"], e["split"]) for e in fault_runs.events(workdir / "pretrain_lm")]
    assert len(steps) == len(set(steps))  # resumed, not restarted: each step logged once


def _write_fasttext(path: Path, rng, count: int) -> list[str]:
    """``count`` lines per class of two classes with their own words; returns the texts."""
    words = {"cat": [f"meow{i}" for i in range(8)], "dog": [f"woof{i}" for i in range(8)]}
    shared = [f"the{i}" for i in range(6)]
    lines, texts = [], []
    for n in range(count):
        for label, own in words.items():
            text = " ".join(rng.choice(own + shared, size=6))
            lines.append(f"__label__{label} {text}")
            texts.append(text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return texts


def test_fasttext_files_and_a_corpus_directory_with_both_kinds(tmp_path):
    rng = np.random.default_rng(0)
    _write_fasttext(tmp_path / "train.txt", rng, 40)
    test_texts = _write_fasttext(tmp_path / "test.txt", rng, 10)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pool = [f"meow{i}" for i in range(8)] + [f"woof{i}" for i in range(8)] + ["the0", "a", "of"]
    plain = [" ".join(rng.choice(pool, size=8)) for _ in range(300)] + [test_texts[0]]
    (corpus / "a.txt").write_text("\n".join(plain) + "\n", encoding="utf-8")
    with gzip.open(corpus / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(" ".join(rng.choice(pool, size=8)) for _ in range(200)) + "\n")
    workdir = tmp_path / "run"
    run_to_end(workdir, "--config.pretrain.kind=word2vec,language_model",
               f"--config.data.train={tmp_path / 'train.txt'}",
               f"--config.data.test={tmp_path / 'test.txt'}", f"--config.data.corpus={corpus}",
               "--config.word2vec.epochs=1", "--config.downstream.labels_per_class=(2,)",
               # modes of both kinds that compile one classifier program between them
               "--config.downstream.modes=('random','non_static','lm_fine_tune')")
    result = summary(workdir)
    assert [r["mode"] for r in result["table"]] == ["random", "non_static", "lm_fine_tune"]
    assert result["classes"] == ["cat", "dog"]
    assert result["metrics"]["language_model"]["sentences"] == 500  # the test sentence left out
    assert result["metrics"]["word2vec"]["sentences"] == 500
    assert result["pretrain"]["workdir"] == "pretrain" and result["pretrain_lm"]["steps"] > 0
    assert result["headline"].startswith(
        "## Test accuracy after 6 steps (word2vec and LM pretraining vs random initialisation)")


def test_a_bad_kind_or_a_mode_of_another_kind_is_a_config_error(tmp_path):
    from jaxdl.run import run_experiment
    module = load_experiment(EXPERIMENT)
    config = module.get_config()
    config.pretrain.kind = "language_model,bert"
    with pytest.raises(ConfigError, match=r"'bert' is not a pretraining kind; expected one of "
                                          r"\('word2vec', 'language_model', 'encoder'\)"):
        run_experiment(module, config, str(tmp_path / "bad"))
    assert not (tmp_path / "bad" / "config.json").exists()
    config.pretrain.kind = "word2vec,encoder"
    with pytest.raises(ConfigError, match=r"'encoder' runs alone"):
        run_experiment(module, config, str(tmp_path / "bad"))
    config.pretrain.kind = "language_model"
    config.downstream.modes = ("random", "static")
    with pytest.raises(ConfigError, match=r"'static', which config.pretrain.kind="
                                          r"'language_model' does not provide"):
        run_experiment(module, config, str(tmp_path / "bad"))
    config.downstream.update(modes=("random", "lm_ulmfit"), rule="few_label")
    with pytest.raises(ConfigError, match=r"rule='few_label' does not apply to mode "
                                          r"'lm_ulmfit'"):
        run_experiment(module, config, str(tmp_path / "bad"))
