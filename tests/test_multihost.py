"""Two real processes on 127.0.0.1 train one data-parallel run (gloo on CPU).

Each process runs ``python -m jaxdl.run ... --coordinator_address=127.0.0.1:PORT
--num_processes=2 --process_id=i`` with one local CPU device; the global mesh has
``data=2``. The experiment is a fixture written into tmp_path; it saves the final
parameters to ``params.npz`` so runs can be compared leaf by leaf.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxdl import multihost
from jaxdl.errors import ConfigError
from jaxdl.experiment_file import load_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EXPERIMENT = '''
import os, time
import jax
import numpy as np
from flax import nnx
from jaxdl.config import default_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.data.sources import ArrayTrainSource
from jaxdl.models.mlp import MLP
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit
from jaxdl.workdir import fit_summary


class SlowSource(ArrayTrainSource):
    """Sleeps per dispatch when JAXDL_TEST_SLOW is set, so a test can kill mid-run."""

    def step_inputs(self, step, num_steps):
        time.sleep(float(os.environ.get("JAXDL_TEST_SLOW", "0")))
        return super().step_inputs(step, num_steps)


def get_config():
    c = default_config()
    c.experiment = "tiny_mh"
    c.train.batch_size = 32
    c.train.num_steps = 40
    c.train.log_every = 10
    c.train.eval_train = False
    c.train.progress_bar = False
    c.checkpoint.every_steps = 10
    c.checkpoint.max_to_keep = 10
    c.optimizer.lr = 0.01
    return c


def run(config, workdir):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)
    train = ArrayDataset({"x": x, "y": y}, name="train")
    model = MLP(8, (16,), 2, rngs=nnx.Rngs(config.seed))
    result = fit(model, task_lib.classification(),
                 SlowSource(train, config.train.batch_size, seed=config.seed),
                 eval_data={"test": ArrayDataset({"x": x[:64], "y": y[:64]}, name="test")},
                 config=config, workdir=workdir)
    if workdir and jax.process_index() == 0:
        flat = jax.tree_util.tree_flatten_with_path(jax.device_get(result.state.params))[0]
        np.savez(os.path.join(workdir, "params.npz"),
                 **{jax.tree_util.keystr(p): np.asarray(v) for p, v in flat})
    return fit_summary(config.experiment, result, config, devices=jax.device_count(),
                       processes=jax.process_count())
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(slow: float = 0.0) -> dict:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # one local CPU device per process
    env["JAX_PLATFORMS"] = "cpu"
    env["JAXDL_TEST_SLOW"] = str(slow)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start_pair(config: str, workdir: str, slow: float = 0.0) -> list[subprocess.Popen]:
    port = _free_port()
    procs = []
    for pid in range(2):
        log = open(os.path.join(os.path.dirname(workdir), f"{os.path.basename(workdir)}-{pid}.log"), "a")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "jaxdl.run", f"--config={config}", f"--workdir={workdir}",
             "--config.mesh.data=2", f"--coordinator_address=127.0.0.1:{port}",
             "--num_processes=2", f"--process_id={pid}"],
            cwd=REPO, env=_env(slow), stdout=log, stderr=subprocess.STDOUT))
    return procs


def _wait(procs: list[subprocess.Popen], workdir: str, timeout: float = 240) -> None:
    for p in procs:
        rc = p.wait(timeout=timeout)
        if rc:
            logs = [open(f"{workdir}-{i}.log").read()[-3000:] for i in range(len(procs))]
            pytest.fail(f"process exited with {rc}:\n" + "\n----\n".join(logs))


def _params(workdir: str) -> dict[str, np.ndarray]:
    with np.load(os.path.join(workdir, "params.npz")) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The single-process reference (in this process) and one 2-process run."""
    root = tmp_path_factory.mktemp("multihost")
    config_path = str(root / "tiny_mh.py")
    with open(config_path, "w") as f:
        f.write(EXPERIMENT)
    two = str(root / "two")
    procs = _start_pair(config_path, two)  # starts first: it is the slow part
    module = load_experiment(config_path)
    single = str(root / "single")
    os.makedirs(single)
    module.run(module.get_config(), single)
    _wait(procs, two)
    return {"config": config_path, "single": single, "two": two, "root": root}


def test_two_processes_match_single_process_run(runs):
    single, two = _params(runs["single"]), _params(runs["two"])
    assert sorted(single) == sorted(two) and len(single) == 4  # 2 layers × kernel, bias
    for name in single:
        np.testing.assert_allclose(two[name], single[name], rtol=1e-5, atol=1e-6, err_msg=name)
    summary = json.load(open(os.path.join(runs["two"], "summary.json")))
    assert summary["devices"] == 2 and summary["processes"] == 2 and summary["steps"] == 40


def test_only_process_zero_writes_logs(runs):
    events = [json.loads(line) for line in open(os.path.join(runs["two"], "metrics.jsonl"))]
    train_steps = [e["step"] for e in events if e["split"] == "train"]
    assert train_steps == [10, 20, 30, 40]  # once each: process 1 wrote nothing
    assert sorted(n for n in os.listdir(os.path.join(runs["two"], "checkpoints"))
                  if n.isdigit()) == ["10", "20", "30", "40"]
    # One lock for the run: process 0 took it (process 1 would have been refused by
    # it) and released it; one start recorded.
    assert not os.path.exists(os.path.join(runs["two"], ".lock"))
    assert len(open(os.path.join(runs["two"], "config_history.jsonl")).readlines()) == 1
    # On CPU the persistent compilation cache is off (cached programs hung with
    # jax 0.12.1); process 0 says so, once.
    said = "jaxdl: persistent compilation cache off: a multi-process CPU run"
    assert said in open(f"{runs['two']}-0.log").read()
    assert said not in open(f"{runs['two']}-1.log").read()


@pytest.mark.leg2
def test_kill_one_process_then_restart_both_resumes(runs):
    workdir = str(runs["root"] / "killed")
    procs = _start_pair(runs["config"], workdir, slow=0.15)
    first = os.path.join(workdir, "checkpoints", "10")
    deadline = time.time() + 180
    while not os.path.isdir(first) and time.time() < deadline:
        assert procs[0].poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    assert os.path.isdir(first), "no checkpoint appeared within 180 s"
    procs[1].send_signal(signal.SIGKILL)  # one process dies mid-run …
    procs[1].wait()
    procs[0].send_signal(signal.SIGKILL)  # … and its partner, stuck in a collective, too
    procs[0].wait()
    saved = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))
                   if s.isdigit())
    assert saved and saved[-1] < 40 and not os.path.exists(os.path.join(workdir, "summary.json"))
    before = os.stat(first).st_mtime_ns

    _wait(_start_pair(runs["config"], workdir), workdir)
    log = open(f"{workdir}-0.log").read()
    assert json.load(open(os.path.join(workdir, "summary.json")))["steps"] == 40
    assert os.stat(first).st_mtime_ns == before  # resumed: step 10 was not trained again
    resumed, uninterrupted = _params(workdir), _params(runs["two"])
    for name in uninterrupted:  # resume is exact: same bits as the uninterrupted run
        np.testing.assert_array_equal(resumed[name], uninterrupted[name], err_msg=name + log[-500:])


def test_initialize_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="--process_id=2; expected 0 <= process_id"):
        multihost.initialize("127.0.0.1:1234", 2, 2)
    with pytest.raises(ConfigError, match="expected 'host:port'"):
        multihost.initialize("localhost", 2, 0)
