"""`--config.data.source=stream` in the experiments that read data files: the vision
recipe's IDX and CIFAR datasets, `text_classifier` (fastText) and `pos_tagger`
(CoNLL-U) read through the record readers, and end with the arrays run's
`params_sha256` and test metrics. Tiny files in the real formats (`formats.py`)."""

from __future__ import annotations

import pytest

from conftest import load_experiment
from formats import random_mnist, write_mnist, write_random_cifar10
from jaxdl.errors import ConfigError


def short(config, **train):
    """A run of a few steps, logged, without a progress bar."""
    config.train.update(num_steps=4, steps_per_loop=2, log_every=2, eval_every=0,
                        eval_train=False, progress_bar=False, **train)
    config.checkpoint.every_steps = 0
    return config


def both_sources(name: str, configure) -> dict:
    """`{source: summary}` of experiment `name` run with each `data.source`."""
    runs = {}
    for source in ("arrays", "stream"):
        config = load_experiment(name).get_config()
        configure(config)
        config.data.source = source
        runs[source] = load_experiment(name).run(config, None)
    return runs


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
