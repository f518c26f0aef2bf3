"""transfer_text end to end through ``python -m jaxdl.run`` on a tiny config.

A composed run talks while it works (one progress line per sub-run on stderr,
``[k/N] <mode> k=<labels> seed=<seed>``) and ends by printing its table, then
where its files are. Its word2vec pretraining goes through ``fit``, so a run
SIGKILLed in the middle of it resumes from the last checkpoint and ends with
the same vectors and the same table as an uninterrupted run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fault_runs
from jaxdl.run_report import final_report

EXPERIMENT = str(fault_runs.REPO / "experiments" / "transfer_text.py")
# 3 epochs of the embedded corpus in batches of 1,024 centres: about 630 steps,
# checkpointed every 160, so a kill after the first checkpoint lands mid-way.
TINY = ("--config.word2vec.epochs=3", "--config.model.embed_dim=16",
        "--config.model.hidden_dim=16", "--config.train.steps_per_loop=5",
        "--config.downstream.modes=('random','non_static')",
        "--config.downstream.labels_per_class=(5,)", "--config.downstream.seeds=(0,1)",
        "--config.downstream.num_steps=10", "--config.downstream.eval_every=5")
SUBRUNS = ["pretrain", "random k=5 seed=0", "non_static k=5 seed=0",
           "random k=5 seed=1", "non_static k=5 seed=1"]


def command(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "jaxdl.run", f"--config={EXPERIMENT}",
            f"--workdir={workdir}", *TINY]


def run_to_end(workdir: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command(workdir), cwd=fault_runs.REPO, env=fault_runs.run_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def summary(workdir: Path) -> dict:
    return json.loads((workdir / "summary.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run: its workdir and its captured output."""
    workdir = tmp_path_factory.mktemp("transfer_text") / "straight"
    return workdir, run_to_end(workdir)


def test_progress_line_per_subrun_and_the_table_printed_last(reference):
    workdir, done = reference
    progress = [line for line in done.stderr.splitlines() if re.match(r"\[\d+/\d+\] ", line)]
    assert len(progress) == len(SUBRUNS), done.stderr[-3000:]
    for k, (line, label) in enumerate(zip(progress, SUBRUNS), start=1):
        assert line.startswith(f"[{k}/{len(SUBRUNS)}] {label}: done in "), line
        assert "elapsed" in line
    assert "remaining" in progress[1] and "remaining" not in progress[-1]

    result = summary(workdir)
    assert result["headline"].startswith("## Test accuracy after 10 steps")
    assert result["table_markdown"] in result["headline"]
    printed = done.stdout.rstrip()
    assert printed.endswith(final_report(result, str(workdir)))
    table_block, paths_block = printed.split("\n\n")[-2:]
    assert table_block == result["table_markdown"]  # the table, then only where files are
    assert paths_block.splitlines() == [
        f"summary: {workdir / 'summary.json'}", f"table: {workdir / 'table.md'}",
        f"plots: {workdir / 'plots'}/ (accuracy_vs_labels.png)"]
    assert '"metrics"' not in done.stdout


@pytest.mark.leg2
def test_killed_during_word2vec_pretraining_resumes_to_the_same_table(reference, tmp_path):
    straight, _ = reference
    workdir = tmp_path / "killed"
    left = fault_runs.kill_at_first_checkpoint(command(workdir), workdir / "pretrain")
    assert left and max(left) < summary(straight / "pretrain")["steps"]
    assert not (workdir / "pretrain" / "summary.json").exists()  # killed mid-pretraining
    before = [e for e in fault_runs.events(workdir / "pretrain") if e["step"] <= max(left)]

    run_to_end(workdir)
    got, want = summary(workdir), summary(straight)
    assert got["table"] == want["table"]
    assert (workdir / "table.md").read_text() == (straight / "table.md").read_text()
    assert summary(workdir / "pretrain")["steps"] == want["pretrain"]["steps"]
    assert (workdir / "pretrain" / "vectors.txt").read_bytes() == \
        (straight / "pretrain" / "vectors.txt").read_bytes()
    # It resumed from the checkpoint instead of starting over: the events logged
    # before the kill, words/s timings included, are kept as they were, and every
    # step after it was logged once.
    after = fault_runs.events(workdir / "pretrain")
    assert after[:len(before)] == before
    steps = [(e["step"], e["split"]) for e in after]
    assert len(steps) == len(set(steps))
    assert [k for k, _ in steps] == [k for k, _ in
                                     ((e["step"], e["split"]) for e in
                                      fault_runs.events(straight / "pretrain"))]
