"""config.train.profile_steps: a jax.profiler trace of chosen steps under the workdir."""

from __future__ import annotations

import glob
import gzip
import json
import os

import numpy as np
import pytest
from flax import nnx

import fault_runs
from conftest import tiny_config
from jaxdl.data.arrays import ArrayDataset
from jaxdl.errors import ConfigError
from jaxdl.models.mlp import MLP
from jaxdl.train import task as task_lib
from jaxdl.train.loop import fit

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 8)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32)


def _config(profile_steps=()):
    # The range (2, 4) cuts through the first dispatch of 4 steps.
    return tiny_config(batch_size=16, num_steps=8, log_every=8, steps_per_loop=4,
                       profile_steps=profile_steps)


def _fit(config, workdir=None):
    return fit(MLP(8, (16,), 2, rngs=nnx.Rngs(0)), task_lib.classification(),
               ArrayDataset({"x": X, "y": Y}), config=config, workdir=workdir)


def _traced_steps(workdir) -> list[int]:
    """The steps whose dispatch annotations are in the Perfetto trace under ``workdir``."""
    (path,) = glob.glob(os.path.join(workdir, "profile", "plugins", "profile", "*",
                                     "perfetto_trace.json.gz"))
    with gzip.open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    return sorted(int(e["args"]["step_num"]) for e in events if e.get("name") == "train")


def test_profiles_exactly_the_chosen_steps_and_changes_no_result(tmp_path):
    profiled = _fit(_config((2, 4)), str(tmp_path))
    xplane = glob.glob(str(tmp_path / "profile" / "plugins" / "profile" / "*" / "*.xplane.pb"))
    assert len(xplane) == 1 and os.path.getsize(xplane[0]) > 0  # TensorBoard's profile plugin
    assert _traced_steps(tmp_path) == [2, 3]  # started and stopped on step boundaries
    assert profiled.steps == 8
    assert profiled.params_sha256 == _fit(_config()).params_sha256


@pytest.mark.parametrize("steps,message", [
    ((4, 2), r"config.train.profile_steps=\(4, 2\); expected \(\) or \(start, stop\)"),
    ((-1, 2), r"config.train.profile_steps=\(-1, 2\); expected \(\) or \(start, stop\)"),
    ((1, 2, 3), r"config.train.profile_steps=\(1, 2, 3\); expected \(\) or \(start, stop\)"),
    ((2, 9), r"config.train.profile_steps=\(2, 9\) ends after the run's 8 steps; "
             r"expected stop <= 8"),
])
def test_bad_profile_ranges_are_refused_before_anything_is_written(tmp_path, steps, message):
    with pytest.raises(ConfigError, match=message):
        _fit(_config(steps), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_profiling_needs_a_workdir():
    with pytest.raises(ConfigError, match=r"profile_steps=\(2, 4\) needs a workdir"):
        _fit(_config((2, 4)))


def test_the_command_line_flag_writes_the_trace(tmp_path):
    done = fault_runs.run_to_end(tmp_path / "run", "--config.train.profile_steps=(8, 10)",
                                 "--config.train.num_steps=16")
    assert done.returncode == 0, done.stderr[-2000:]
    assert glob.glob(str(tmp_path / "run" / "profile" / "plugins" / "profile" / "*" /
                         "*.xplane.pb"))
    assert _traced_steps(tmp_path / "run") == [8, 9]
