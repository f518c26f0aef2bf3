"""``python -m jaxdl.info``: versions, devices, native kernels and caches, as reported."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import flax
import jax
import jaxlib
import optax
import orbax.checkpoint

import jaxdl
from jaxdl.kernels import blocked_patches, conv_direct, lstm_recurrence, sgns_update

REPO = Path(__file__).resolve().parent.parent


def _info(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, JAX_PLATFORMS="cpu",
                       PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "jaxdl.info", *args], cwd=REPO,
                          env=environment, capture_output=True, text=True, timeout=300)


def test_json_report_matches_this_installation(tmp_path):
    xla_cache, jax_cache = str(tmp_path / "composed-xla"), str(tmp_path / "jax-cache")
    result = _info("--json", JAXDL_XLA_CACHE=xla_cache, JAX_COMPILATION_CACHE_DIR=jax_cache)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["versions"] == {
        "jaxdl": jaxdl.__version__, "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__, "optax": optax.__version__,
        "orbax_checkpoint": orbax.checkpoint.__version__, "python": platform.python_version()}
    assert info["backend"] == "cpu"
    assert [d["platform"] for d in info["devices"]] == ["cpu"] * len(jax.devices("cpu"))
    expected = {name: module.LIBRARY.available() for name, module in (
        ("conv_direct", conv_direct), ("lstm_recurrence", lstm_recurrence),
        ("blocked_patches", blocked_patches), ("sgns_update", sgns_update))}
    assert {name: k["active"] for name, k in info["native_kernels"].items()} == expected
    for k in info["native_kernels"].values():
        assert (k["reason"] == "") == k["active"]
    assert info["caches"]["composed_runs"] == xla_cache
    assert info["caches"]["jax_compilation_cache_dir"] == jax_cache
    assert info["caches"]["native_kernels"]


def test_text_report_says_why_native_kernels_are_off():
    result = _info(JAXDL_NATIVE="0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"jax {jax.__version__}" in lines
    assert f"flax {flax.__version__}" in lines
    assert f"python {platform.python_version()}" in lines
    assert "backend: cpu (1 process(es))" in lines
    assert "native CPU kernels: some off, their pure-JAX paths run instead" in lines
    for name in ("conv_direct", "lstm_recurrence", "blocked_patches", "sgns_update"):
        assert f"  {name}: off (JAXDL_NATIVE=0)" in lines
    assert any(line.startswith("compilation cache of composed runs and sweeps: ")
               for line in lines)
