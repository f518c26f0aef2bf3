"""Exact resume: a SIGKILLed run, re-run with the same command, ends bit-identical."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import REPO, run_command

ARGS = ["--config=experiments/mlp_digits.py", "--config.train.num_epochs=6",
        "--config.checkpoint.every_steps=20", "--config.train.eval_every=40",
        "--config.train.log_every=10"]


def _hash(workdir):
    with open(os.path.join(workdir, "summary.json")) as f:
        return json.load(f)["params_sha256"]


def test_sigkill_then_rerun_gives_the_uninterrupted_hash(tmp_path):
    straight = tmp_path / "straight"
    done = run_command([*ARGS, f"--workdir={straight}"])
    assert done.returncode == 0, done.stderr

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "jaxdl.run", *ARGS, f"--workdir={killed}"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once a couple of checkpoints exist
        steps = [d for d in os.listdir(ckpt) if d.isdigit()] if ckpt.exists() else []
        if len(steps) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists()  # it really died partway
    resumed = run_command([*ARGS, f"--workdir={killed}"])
    assert resumed.returncode == 0, resumed.stderr
    assert _hash(killed) == _hash(straight)
    with open(killed / "metrics.jsonl") as f:
        steps = [json.loads(line)["step"] for line in f if '"train"' in line]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no duplicated events
