"""Class H of issue 28: a full disk outside checkpoints fails like a checkpoint write.

Every file a run writes after its checkpoints — ``metrics.jsonl``, TensorBoard
events, ``summary.json`` — gives ``error: could not write <file>: [Errno 28] No
space left on device. ...`` on one line, exit code 2, nothing written before is
damaged, and the same command then completes bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import errno
import types

import pytest

import fault_runs
from full_disk import run_with_full_disk
from jaxdl.errors import WriteError
from jaxdl.run import run_experiment

ONE_LINE = r"error: could not write {}: \[Errno 28\] No space left on device\. Files written " \
           r"before are untouched; free space or fix permissions and re-run the same command " \
           r"to resume\."


def assert_refused_naming(done, workdir, path_pattern: str) -> None:
    import re
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    # jaxdl.run's first line names the run directory; then the error, one line:
    # no traceback, no thread dump.
    assert len(lines) == 2, done.stderr[-3000:]
    assert lines[0] == f"faults_digits: run directory {workdir}", lines[0]
    assert re.fullmatch(ONE_LINE.format(path_pattern), lines[1]), lines[1]


@pytest.mark.leg2
def test_disk_full_in_every_log_and_summary_write_then_the_rerun_completes(tmp_path):
    import re
    reference = fault_runs.reference_run()
    workdir = tmp_path / "run"
    ckpt = workdir / "checkpoints"
    # metrics.jsonl: full after checkpoint 152, at the append of step 160.
    done = run_with_full_disk(workdir, ckpt / "152", "metrics.jsonl")
    assert_refused_naming(done, workdir, re.escape(str(workdir / "metrics.jsonl")))
    assert fault_runs.finished_steps(workdir)[-1] == 152
    # Issue 28's example: the TensorBoard writer's flush once the last checkpoint is written.
    done = run_with_full_disk(workdir, ckpt / "160", "events.out.tfevents.*")
    assert_refused_naming(done, workdir, re.escape(str(workdir)) + r"/events\.out\.tfevents\.[^:]+")
    assert fault_runs.finished_steps(workdir)[-1] == 160
    # summary.json: the old one (none) is left as it was, no temporary file.
    done = run_with_full_disk(workdir, ckpt / "160", "summary.json*")
    assert_refused_naming(done, workdir, re.escape(str(workdir / "summary.json")))
    assert not list(workdir.glob("summary.json*"))

    final = fault_runs.run_to_end(workdir)
    assert final.returncode == 0, final.stderr[-3000:]
    assert fault_runs.summary(workdir)["params_sha256"] == fault_runs.summary(reference)["params_sha256"]
    assert fault_runs.events(workdir) == fault_runs.events(reference)  # no torn or repeated line


@pytest.mark.parametrize("filename", ["plots/curves.png", None])
def test_a_full_disk_in_an_experiments_own_write_is_a_one_line_error(tmp_path, filename):
    """Plots, tables, vectors written by an experiment: the run names the file (or, when the
    OS error does not carry it, the run directory) instead of a traceback."""
    import faults_experiment

    def run(config, workdir):
        raise OSError(errno.ENOSPC, "No space left on device",
                      *([f"{workdir}/{filename}"] if filename else []))

    module = types.SimpleNamespace(get_config=faults_experiment.get_config, run=run)
    with pytest.raises(WriteError) as info:
        run_experiment(module, faults_experiment.get_config(), str(tmp_path / "run"))
    named = f"{tmp_path / 'run'}/{filename}" if filename else f"a file under {tmp_path / 'run'}"
    assert str(info.value).startswith(f"could not write {named}: [Errno 28] No space left on device.")
