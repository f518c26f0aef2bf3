"""The command line helps: alias-aware key suggestions, --show_config, a one-line
missing --workdir (issue 29, item 6)."""

from __future__ import annotations

import os

import pytest
from absl import flags

from conftest import REPO, run_command
from jaxdl import run as run_lib
from jaxdl.config import closest_key, default_config, flat_keys
from jaxdl.errors import ConfigError
from jaxdl.experiment_file import load_experiment
from jaxdl.sweep import cli

MLP_DIGITS = os.path.join(REPO, "experiments", "mlp_digits.py")


@pytest.mark.parametrize("given, meant", [
    ("optimizer.learning_rate", "optimizer.lr"), ("learning_rate", "optimizer.lr"),
    ("lr", "optimizer.lr"), ("epochs", "train.num_epochs"),
    ("train.epochs", "train.num_epochs"), ("num_epochs", "train.num_epochs"),
    ("bs", "train.batch_size"), ("batch", "train.batch_size"),
    ("optimizer.batch_size", "train.batch_size"), ("random_seed", "seed"),
    ("steps", "train.num_steps"),
    ("optimizer.lrr", "optimizer.lr"),  # no alias: the closest key by spelling
])
def test_suggestions_know_common_aliases(given, meant):
    assert closest_key(given, flat_keys(default_config())) == meant


def test_learning_rate_flag_is_refused_suggesting_optimizer_lr():
    with pytest.raises(ConfigError, match=r"unknown config key 'optimizer.learning_rate' "
                       r".*did you mean 'optimizer.lr'\?"):
        run_lib.check_overrides([f"--config={MLP_DIGITS}",
                                 "--config.optimizer.learning_rate=0.01"])


def _keys_shown(text: str) -> dict[str, str]:
    return {line.split(" = ", 1)[0]: line.split(" = ", 1)[1] for line in text.splitlines()}


def test_run_show_config_lists_every_key_with_value_and_help(capsys):
    # (absl registers --config.KEY overrides from the process's own argv: they are
    # checked through the sweep's parser below)
    argv = ["jaxdl.run", f"--config={MLP_DIGITS}", "--show_config"]
    try:
        flags.FLAGS(argv)
        run_lib.main(argv)  # returns (no SystemExit): exit 0, and no workdir was needed
    finally:
        flags.FLAGS.unparse_flags()
    shown = _keys_shown(capsys.readouterr().out)
    expected = flat_keys(load_experiment(MLP_DIGITS).get_config())
    assert sorted(shown) == sorted(expected)
    assert shown["optimizer.lr"].startswith("0.002 ")
    assert shown["optimizer.name"].endswith("# one of ('sgd', 'momentum', 'adam', 'adamw')")
    assert shown["model.hidden"].startswith("(256, 256) ")


def test_run_without_workdir_is_one_line_and_exit_2():
    done = run_command([f"--config={MLP_DIGITS}"])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --workdir is required: the run's directory, e.g. --workdir=/tmp/run "
        "(or --show_config to list the config's keys)"]


def test_sweep_show_config_and_missing_workdir(capsys):
    assert cli.main([f"--config={MLP_DIGITS}", "--show_config",
                     "--config.train.batch_size=7"]) == 0
    shown = _keys_shown(capsys.readouterr().out)
    assert shown["train.batch_size"].startswith("7 ")
    assert "optimizer.lr" in shown and "data.name" in shown

    assert cli.main([f"--config={MLP_DIGITS}", "--grid=optimizer.lr=1e-3,1e-2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --workdir is required")

    assert cli.main([f"--config={MLP_DIGITS}", "--show_config", "--config.train.bs=7"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: unknown config key 'train.bs' (command-line flag '--config.train.bs=7'); "
        "did you mean 'train.batch_size'?")
