"""word2vec through the one training loop: every position each epoch, decaying rate, exact resume."""

import dataclasses
import json
import shutil

import numpy as np
import optax
import pytest

from jaxdl.errors import ConfigError
from conftest import zipf_sentences
from jaxdl.word2vec.corpus import Word2VecCorpus
from jaxdl.word2vec.settings import Word2VecSettings
from jaxdl.word2vec.training import (Word2VecModel, Word2VecSource, fit_word2vec_model,
                                     make_word2vec_step, word2vec_fit_config, word2vec_task)
from jaxdl.train.loop import fit
from jaxdl.train.state import params_sha256

SETTINGS = Word2VecSettings(dim=16, window=3, negative=3, min_count=2, epochs=2, batch_centres=64,
                            steps_per_call=2, seed=3)


@pytest.fixture(scope="module")
def corpus():
    return Word2VecCorpus.from_sentences(zipf_sentences(), min_count=2)


def _config(log_every=4, every_steps=8):
    config = word2vec_fit_config(SETTINGS)
    config.train.log_every = log_every
    config.checkpoint.every_steps = every_steps
    config.checkpoint.max_to_keep = 100
    return config


def test_fit_visits_every_position_each_epoch_and_repeats_bitwise(corpus):
    result, vectors = fit_word2vec_model(corpus, SETTINGS, config=_config())
    again, _ = fit_word2vec_model(corpus, SETTINGS, config=_config())
    assert result.steps == 2 * corpus.steps_per_epoch(64)
    assert params_sha256(result.state.params) == params_sha256(again.state.params) == result.params_sha256
    assert np.array_equal(vectors.vectors, np.asarray(result.state.params["input"]))
    assert vectors.words == corpus.words and vectors.vectors.shape == (len(corpus.words), 16)
    train = [e for e in result.history if e["split"] == "train"]
    assert sum(e["words"] for e in train) == 2 * corpus.num_tokens  # every position, each epoch
    assert train[0]["lr"] < SETTINGS.alpha and train[-1]["lr"] < train[0]["lr"]
    assert all(e["words_per_second"] > 0 and np.isfinite(e["loss"]) for e in train)


class _RecordingSource(Word2VecSource):
    def __init__(self, *args):
        super().__init__(*args)
        self.first_step = None

    def step_inputs(self, step, num_steps):
        if self.first_step is None:
            self.first_step = step
        return super().step_inputs(step, num_steps)


def _fit(corpus, workdir):
    source = _RecordingSource(corpus, SETTINGS)
    total = SETTINGS.epochs * source.steps_per_epoch
    result = fit(Word2VecModel(len(corpus.words), SETTINGS.dim, seed=SETTINGS.seed), word2vec_task(), source,
                 config=_config(), workdir=str(workdir), train_step=make_word2vec_step(SETTINGS, total),
                 tx=optax.identity())
    return result, source.first_step


def test_resume_from_a_middle_checkpoint_is_bit_identical(corpus, tmp_path):
    straight, first = _fit(corpus, tmp_path / "straight")
    assert first == 0
    workdir = tmp_path / "interrupted"
    shutil.copytree(tmp_path / "straight", workdir)
    # As if killed right after the step-8 checkpoint: later checkpoints never happened.
    for step_dir in (workdir / "checkpoints").iterdir():
        if step_dir.name.isdigit() and int(step_dir.name) > 8:
            shutil.rmtree(step_dir)
    resumed, first = _fit(corpus, workdir)
    assert first == 8
    assert resumed.steps == straight.steps
    assert resumed.params_sha256 == straight.params_sha256
    with open(workdir / "metrics.jsonl") as handle:
        steps = [json.loads(line)["step"] for line in handle]
    assert steps == sorted(set(steps)) and steps[-1] == straight.steps


def test_config_that_disagrees_with_the_settings_is_refused(corpus):
    config = _config()
    config.train.num_epochs = 7
    with pytest.raises(ConfigError, match=r"config.train.num_epochs=7 disagrees .*expected 2"):
        fit_word2vec_model(corpus, SETTINGS, config=config)
    config = _config()
    config.nan_policy = "skip"
    with pytest.raises(ConfigError, match="nan_policy='skip' is not supported"):
        fit_word2vec_model(corpus, SETTINGS, config=config)


def test_dispatch_steps_divide_the_run_and_its_boundaries():
    from jaxdl.word2vec.training import dispatch_steps

    assert dispatch_steps(3230, 16) == 10  # 2 · 5 · 17 · 19: no 16…11 divides it
    assert dispatch_steps(3230, 16, (50, 0)) == 10 and dispatch_steps(3232, 16) == 16
    assert dispatch_steps(3232, 16, (50,)) == 16  # no divisor of 3232 and 50 in [8, 16]: kept
    assert dispatch_steps(2069, 16) == 16  # prime: kept (the leftovers then run one by one)
    assert dispatch_steps(7, 1) == 1


def test_epochs_padded_to_whole_dispatches_compile_one_loop_and_keep_the_steps_bits(corpus):
    from jaxdl.train.step import TRACE_COUNTS

    settings = dataclasses.replace(SETTINGS, steps_per_call=8)  # 2 epochs: each rounded up to 4k steps
    assert settings.epoch_steps_multiple == 4 and corpus.steps_per_epoch(64) % 4  # padding needed
    source = Word2VecSource(corpus, settings)
    assert source.steps_per_epoch == -(-corpus.steps_per_epoch(64) // 4) * 4
    config = _config(log_every=10**6, every_steps=0)
    config.train.steps_per_loop = 8
    before = TRACE_COUNTS["train_loop"]
    result, _ = fit_word2vec_model(corpus, settings, config=config)
    assert TRACE_COUNTS["train_loop"] - before == 1  # no second program for leftover steps
    assert result.steps == 2 * source.steps_per_epoch and result.steps % 8 == 0
    train = [e for e in result.history if e["split"] == "train"]
    assert sum(e["words"] for e in train) == 2 * corpus.num_tokens  # padding batches hold no words
    one_by_one = _config(log_every=10**6, every_steps=0)
    one_by_one.train.steps_per_loop = 1
    single, _ = fit_word2vec_model(corpus, settings, config=one_by_one)
    assert result.params_sha256 == single.params_sha256  # the same steps, dispatched one by one

