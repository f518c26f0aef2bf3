"""Exact resume: a SIGKILLed run, re-run with the same command, ends bit-identical."""

import json

import pytest

from conftest import check_kill_and_rerun_is_exact

ARGS = ["--config=experiments/mlp_digits.py", "--config.train.num_epochs=6",
        "--config.checkpoint.every_steps=20", "--config.train.eval_every=40",
        "--config.train.log_every=10"]


@pytest.mark.leg2
def test_sigkill_then_rerun_gives_the_uninterrupted_hash(tmp_path):
    check_kill_and_rerun_is_exact(ARGS, tmp_path)
    with open(tmp_path / "killed" / "metrics.jsonl") as f:
        steps = [json.loads(line)["step"] for line in f if '"train"' in line]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no duplicated events
