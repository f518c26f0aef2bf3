"""`--config.data.source=stream` in the experiments that read data files: the vision
recipe's IDX and CIFAR datasets, `text_classifier` (fastText) and `pos_tagger`
(CoNLL-U) read through the example readers, and end with the arrays run's
`params_sha256` and test metrics. Tiny files in the real formats (`formats.py`)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from conftest import load_experiment
from formats import (UD_ENGLISH_CONLLU, fasttext_line, random_mnist, write_conllu_rows,
                     write_mnist, write_random_cifar10)
from jaxdl.errors import ConfigError


def short(config, **train):
    """A run of a few steps, logged, without a progress bar."""
    config.train.update(num_steps=4, steps_per_loop=2, log_every=2, eval_every=0,
                        eval_train=False, progress_bar=False, **train)
    config.checkpoint.every_steps = 0
    return config


# The whole-split loaders the arrays path calls; the streamed run must call none.
WHOLE_SPLIT_LOADERS = (("jaxdl.data.formats.idx", "load_mnist"), ("jaxdl.data.formats.cifar", "load_cifar"),
                       ("jaxdl.recipes.text", "read_fasttext"), ("jaxdl.recipes.text", "read_conllu"))


def both_sources(name: str, configure) -> dict:
    """`{source: summary}` of experiment `name` run with each `data.source`; during the
    streamed run every whole-split loader raises."""
    runs = {}
    for source in ("arrays", "stream"):
        config = load_experiment(name).get_config()
        configure(config)
        config.data.source = source
        with pytest.MonkeyPatch.context() as patch:
            if source == "stream":
                for module, attribute in WHOLE_SPLIT_LOADERS:
                    patch.setattr(f"{module}.{attribute}", _refuse_whole_split)
            runs[source] = load_experiment(name).run(config, None)
    return runs


def _refuse_whole_split(*args, **kwargs):
    raise AssertionError(f"the streamed run loaded a split whole: {args}")


def assert_same_run(runs: dict) -> None:
    assert runs["stream"]["params_sha256"] == runs["arrays"]["params_sha256"]
    assert runs["stream"]["metrics"]["test"] == runs["arrays"]["metrics"]["test"]


@pytest.mark.parametrize("name,gz", [("mnist_cnn", True), ("fashion_mnist_cnn", False)])
def test_idx_experiments_stream_to_the_arrays_runs_parameters(tmp_path, name, gz):
    write_mnist(tmp_path, random_mnist(n_train=12, n_test=5, seed=3), gz=gz)

    def configure(config):
        config.data.update(dir=str(tmp_path), workers=1)
        config.model.hidden = 8
        short(config, batch_size=4, eval_batch_size=4)
    runs = both_sources(name, configure)
    assert_same_run(runs)
    assert runs["stream"]["data"] == runs["arrays"]["data"]
    assert runs["stream"]["data"]["train_examples"] == 12


def test_cifar_experiment_streams_to_the_arrays_runs_parameters(tmp_path):
    write_random_cifar10(tmp_path, per_batch=2)  # 10 train, 2 test images

    def configure(config):
        config.data.update(dir=str(tmp_path), workers=2)
        short(config, batch_size=4, eval_batch_size=3)
    runs = both_sources("cifar10_tutorial", configure)
    assert_same_run(runs)
    assert runs["stream"]["data"] == {"name": "cifar10", "train_examples": 10,
                                      "test_examples": 2, "image_shape": [32, 32, 3]}


def test_a_bad_data_source_is_a_config_error_naming_it_and_the_choices(tmp_path):
    config = short(load_experiment("mnist_cnn").get_config())
    config.data.update(dir=str(tmp_path), source="disk")
    with pytest.raises(ConfigError, match=r"config.data.source='disk'; expected one of "
                                          r"\('arrays', 'stream'\)"):
        load_experiment("mnist_cnn").run(config, None)


WORDS = ("ball", "goal", "team", "code", "bug", "loop", "oven", "salt", "the", "a", "of")


def write_fasttext(path, lines: int, seed: int, *, gz: bool) -> str:
    """Random labelled lines (one with two labels, one with no text) as a fastText file."""
    rng = np.random.default_rng(seed)
    rows = [fasttext_line([("sports", "computing", "cooking")[rng.integers(3)]],
                          rng.choice(WORDS, rng.integers(1, 9))) for _ in range(lines)]
    rows[1] = fasttext_line(["cooking", "sports"], ["salt", "oven", "goal"])
    rows[2] = fasttext_line(["sports"], [])
    content = "".join(rows).encode("utf-8")
    path.write_bytes(gzip.compress(content) if gz else content)
    return str(path)


def test_text_classifier_streams_to_the_arrays_runs_parameters(tmp_path):
    train = write_fasttext(tmp_path / "train.txt.gz", 30, seed=0, gz=True)
    test = write_fasttext(tmp_path / "test.txt", 9, seed=1, gz=False)

    def configure(config):
        config.data.update(train=train, test=test, min_count=2, max_len=6, workers=2)
        config.model.update(embed_dim=8, hidden_dim=8)
        short(config, batch_size=4, eval_batch_size=4)
    runs = both_sources("text_classifier", configure)
    assert_same_run(runs)
    for key in ("classes", "vocab_size", "data"):
        assert runs["stream"][key] == runs["arrays"][key], key
    assert (runs["stream"]["baselines"]["majority_class"]
            == runs["arrays"]["baselines"]["majority_class"])
    assert runs["stream"]["data"]["train"]["examples"] == 30
    assert "tfidf_logistic_regression" not in runs["stream"]["baselines"]  # needs the split
    assert "tfidf_logistic_regression" in runs["arrays"]["baselines"]


@pytest.mark.parametrize("worker_mode", ["threads", pytest.param("processes", marks=pytest.mark.leg2)])
def test_pos_tagger_streams_to_the_arrays_runs_parameters(tmp_path, worker_mode):
    rng = np.random.default_rng(0)
    forms = [("the", "DET"), ("dog", "NOUN"), ("ate", "VERB"), ("apple", "NOUN"), ("I", "PRON"),
             ("like", "VERB"), ("cats", "NOUN"), (".", "PUNCT")]
    sentences = [[forms[i] for i in rng.integers(0, len(forms), rng.integers(2, 7))]
                 for _ in range(14)]
    # The test file's other tags, so every tag it holds occurs in training (a test-only tag
    # is refused: the model's tags come from training data, issue 28 class G).
    sentences.append([("Mary", "PROPN"), ("can", "AUX"), ("to", "PART"), ("and", "CCONJ")])
    write_conllu_rows(tmp_path / "train.conllu", sentences, "train")
    test = tmp_path / "test.conllu.gz"  # multiword tokens, an empty node, unseen words
    test.write_bytes(gzip.compress(UD_ENGLISH_CONLLU.encode("utf-8")))

    def configure(config):
        config.data.update(train=str(tmp_path / "train.conllu"), test=str(test), workers=1,
                           worker_mode=worker_mode)  # processes: the encoding is pickled
        config.model.update(embed_dim=8, hidden_dim=8, char_embed_dim=4, char_hidden_dim=4)
        short(config, batch_size=4, eval_batch_size=2)
    runs = both_sources("pos_tagger", configure)
    assert_same_run(runs)
    assert runs["stream"]["metrics"]["test_oov"] == runs["arrays"]["metrics"]["test_oov"]
    for key in ("tags", "vocab_size", "oov_tokens", "oov_accuracy", "data"):
        assert runs["stream"][key] == runs["arrays"][key], key
    assert runs["stream"]["oov_tokens"] > 0


@pytest.mark.parametrize("name", ["text_classifier", "pos_tagger"])
def test_a_text_experiment_refuses_a_bad_source_and_streaming_without_files(name):
    config = load_experiment(name).get_config()
    config.data.source = "disk"
    with pytest.raises(ConfigError, match=r"config.data.source='disk'; expected one of"):
        load_experiment(name).run(config, None)
    config.data.source = "stream"
    with pytest.raises(ConfigError, match=r"config.data.source='stream' with config.data.train "
                                          r"empty; expected a"):
        load_experiment(name).run(config, None)


def test_streaming_with_download_is_a_config_error_before_anything_is_read(tmp_path):
    config = short(load_experiment("mnist_cnn").get_config())
    config.data.update(dir=str(tmp_path / "absent"), source="stream", download=True)
    with pytest.raises(ConfigError, match=r"config.data.download=True with "
                                          r"config.data.source='stream'"):
        load_experiment("mnist_cnn").run(config, None)
    assert not (tmp_path / "absent").exists()


def test_a_streamed_test_label_unseen_in_training_is_a_data_error_before_training(tmp_path):
    from jaxdl.errors import DataError
    train = tmp_path / "train.txt"
    train.write_text(fasttext_line(["a"], ["x", "y"]) + fasttext_line(["b"], ["y"]))
    test = tmp_path / "test.txt"
    test.write_text(fasttext_line(["a"], ["x"]) + fasttext_line(["zebra"], ["y"]))
    config = short(load_experiment("text_classifier").get_config(), batch_size=2)
    config.data.update(train=str(train), test=str(test), min_count=1, source="stream")
    with pytest.raises(DataError, match=r"test.txt: label\(s\) \['zebra'\] never occur in the "
                       r"training data .*train.txt; expected only its 2 labels"):
        load_experiment("text_classifier").run(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
