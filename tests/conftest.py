"""Shared test set-up: experiments in-process and as commands, forced-device subprocess
checks, the tiny config and data builders, and kill-and-resume checks.

File-format fixture writers live in ``formats.py`` beside this file."""

from __future__ import annotations

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _share_compilations_with_subprocesses() -> None:
    """Every ``python -m jaxdl.run`` a test starts shares one persistent XLA cache.

    Kill-and-resume and command-line tests start the same experiment many times,
    and each cold process compiled the same programs again: with the cache, all
    but the first load them (the same executable, so the same bits). The test
    processes themselves stay uncached (tests count their compilations): the
    variable jax reads is set only after this process imported jax. The pytest
    process makes one directory per session (removed at exit) and passes it to
    pytest-xdist's workers; a cache the caller configured is kept.
    """
    import atexit
    import shutil
    import tempfile
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    if not os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get(_TEST_CACHE):
        directory = tempfile.mkdtemp(prefix="jaxdl-tests-xla-cache-")
        atexit.register(shutil.rmtree, directory, True)
        os.environ[_TEST_CACHE] = directory
    import jax  # noqa: F401  (reads JAX_COMPILATION_CACHE_DIR now, and never again)
    os.environ.update(JAX_COMPILATION_CACHE_DIR=os.environ[_TEST_CACHE],
                      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")


_TEST_CACHE = "JAXDL_TESTS_XLA_CACHE"
_share_compilations_with_subprocesses()


def load_experiment(name: str):
    """Import ``experiments/<name>.py`` as a module."""
    from jaxdl.experiment_file import load_experiment as load_file
    return load_file(os.path.join(REPO, "experiments", f"{name}.py"))


@pytest.fixture
def experiment():
    return load_experiment


def run_command(args: list[str], **kwargs):
    """Run ``python -m jaxdl.run ARGS`` from the repository root."""
    import subprocess
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "jaxdl.run", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, **kwargs)


def run_on_forced_devices(code: str, devices: int = 8, args: tuple[str, ...] = (),
                          timeout: float = 300.0) -> list[str]:
    """Run python ``code`` (argv: ``args``) in a subprocess on ``devices`` forced CPU devices.

    The device count is fixed when jax starts, hence the subprocess. Returns the
    words of its stdout; fails the test, with the stderr tail, on a non-zero exit.
    """
    return _forced_devices_stdout(code, devices, args, timeout).split()


def check_on_forced_devices(code: str, expected: dict, devices: int = 8,
                            timeout: float = 300.0) -> None:
    """Run python ``code`` on ``devices`` forced CPU devices and assert its named checks.

    ``code`` prints, as its last stdout line, a JSON object ``{check name: value}``; each
    name in ``expected`` must be there with the expected value. A failure lists every
    check that failed by name, with the value seen and the value expected.
    """
    import json
    lines = _forced_devices_stdout(code, devices, (), timeout).strip().splitlines()
    results = json.loads(lines[-1]) if lines else {}
    failed = [f"{name}: got {results.get(name, '<missing>')!r}, expected {want!r}"
              for name, want in expected.items() if results.get(name, "<missing>") != want]
    assert not failed, "forced-device checks failed: " + "; ".join(failed)


def _forced_devices_stdout(code: str, devices: int, args: tuple[str, ...], timeout: float) -> str:
    import subprocess
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def tiny_config(*, batch_size: int = 8, num_steps: int = 4, eval_train: bool = False,
                **settings):
    """``default_config()`` for a fit of a few steps, with no progress bar.

    ``settings`` are ``train`` keys by name (``log_every=4``) or other sections' keys as
    ``section__key`` (``optimizer__lr=0.05``, ``checkpoint__every_steps=4``).
    """
    from jaxdl.config import default_config
    config = default_config()
    config.train.batch_size = batch_size
    config.train.num_steps = num_steps
    config.train.progress_bar = False
    config.train.eval_train = eval_train
    for key, value in settings.items():
        section, name = key.split("__") if "__" in key else ("train", key)
        config[section][name] = value
    return config


def tiny_data(n: int = 32, features: int = 4, classes: int = 3, name: str = "train", **fields):
    """A seeded ``ArrayDataset``: float32 ``x [n, features]``, int32 ``y [n]`` in
    ``0..classes-1``, plus any extra ``fields``."""
    import numpy as np
    from jaxdl.data.arrays import ArrayDataset
    rng = np.random.default_rng(0)
    arrays = {"x": rng.normal(size=(n, features)).astype(np.float32),
              "y": rng.integers(0, classes, n).astype(np.int32)}
    arrays.update(fields)
    return ArrayDataset(arrays, name=name)


def summary_hash(workdir) -> str:
    """``params_sha256`` from a run directory's ``summary.json``."""
    import json
    with open(os.path.join(workdir, "summary.json")) as f:
        return json.load(f)["params_sha256"]


def check_kill_and_rerun_is_exact(args: list[str], tmp_path, *, checkpoints: int = 2,
                                  timeout: float = 120.0) -> None:
    """Run ``args`` straight; run them again, SIGKILL once ``checkpoints`` checkpoints
    exist, re-run the same command; assert both runs end with the same parameters."""
    import signal
    import subprocess
    import time
    straight = tmp_path / "straight"
    done = run_command([*args, f"--workdir={straight}"])
    assert done.returncode == 0, done.stderr

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "jaxdl.run", *args, f"--workdir={killed}"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_dir = killed / "checkpoints"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ckpt_dir.exists() and len([d for d in os.listdir(ckpt_dir) if d.isdigit()]) >= checkpoints:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists()  # it really died partway
    resumed = run_command([*args, f"--workdir={killed}"])
    assert resumed.returncode == 0, resumed.stderr
    assert summary_hash(killed) == summary_hash(straight)


def zipf_sentences(seed: int = 0) -> list[list[str]]:
    """120 sentences of 3–11 words over 40 words with Zipf-like frequencies, so that
    word2vec's sub-sampling and noise table both matter."""
    import numpy as np
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(40)]
    probs = 1.0 / np.arange(1, 41)
    probs /= probs.sum()
    return [list(rng.choice(words, size=rng.integers(3, 12), p=probs)) for _ in range(120)]


def word2vec_toy_batch(cbow: bool, sentences: int = 12, seed: int = 0, *, batch: int = 32, window: int = 3,
                       negative: int = 4, dim: int = 12):
    """(params, batch) for the sequential word2vec update: `sentences` random sentences over 12
    words (so noise draws repeat rows often), one `make_batch(..., hashed_noise=True)` batch,
    tables from a normal distribution."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxdl.word2vec.corpus import Word2VecCorpus
    from jaxdl.word2vec.sgns import make_batch

    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(12)]
    corpus = Word2VecCorpus.from_sentences(
        [list(rng.choice(words, size=rng.integers(2, 9))) for _ in range(sentences)], min_count=1)
    arrays = corpus.device_arrays(batch_centres=batch, sample=1e-2)
    made = make_batch(arrays, jax.random.key(5), 1, batch_centres=batch, window=window, negative=negative,
                      sg=not cbow, hashed_noise=True)
    params = {name: jnp.asarray(rng.normal(size=(len(corpus.words), dim)), jnp.float32)
              for name in ("input", "output")}
    return params, made


def config_with(config, key: str, value):
    """A copy of ``config`` with the dotted ``key`` set to ``value`` (ConfigDict's type
    checks off, so a test can set a value of the wrong type)."""
    import ml_collections
    copy = ml_collections.ConfigDict(config.to_dict(), type_safe=False)
    *parents, leaf = key.split(".")
    node = copy
    for part in parents:
        node = node[part]
    node[leaf] = value
    return copy


def pytest_collection_modifyitems(config, items):
    """Long kill-and-resume end-to-end tests (marked ``leg2``) run where
    ``JAXDL_TEST_LEG=2``: .ci/run's second leg sets it, so each runs once per CI run and
    the README's test command stays under 15 minutes on 2 cores. Faster kill-and-resume
    tests of the same paths run in both legs."""
    if os.environ.get("JAXDL_TEST_LEG") == "2":
        return
    skip = pytest.mark.skip(reason="long end-to-end test: runs with JAXDL_TEST_LEG=2 "
                                   "(.ci/run's second leg)")
    for item in items:
        if "leg2" in item.keywords:
            item.add_marker(skip)
