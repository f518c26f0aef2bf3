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
import pytest
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
        assert (k["build"] is not None) == k["active"]
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
    assert any(line.startswith("CPU vector features: ") for line in lines)
    assert any(line.startswith("compilation cache of composed runs and sweeps: ")
               for line in lines)


def _runnable_builds() -> tuple[str, ...]:
    from jaxdl.kernels import isa
    try:
        return isa.runnable(isa.cpu_features())
    except (OSError, RuntimeError):  # no compiler: the probe does not build
        return ()


@pytest.mark.parametrize("build", [b for b in ("avx512", "avx2") if b in _runnable_builds()])
def test_a_forced_build_is_the_one_each_kernel_reports(build):
    # JAXDL_NATIVE_ISA caps the build: the vector kernels load exactly it, the
    # patch copy its one portable build.
    result = _info("--json", JAXDL_NATIVE_ISA=build)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["cpu"]["requested"] == build
    assert {name: k["build"] for name, k in info["native_kernels"].items()} == {
        "conv_direct": build, "lstm_recurrence": build, "blocked_patches": "portable",
        "sgns_update": build}


def test_the_portable_build_turns_off_the_kernels_that_have_none():
    result = _info(JAXDL_NATIVE_ISA="portable")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    off = "off (JAXDL_NATIVE_ISA=portable: no build at or below portable (builds: avx512, avx2))"
    assert f"  conv_direct: {off}" in lines
    assert f"  lstm_recurrence: {off}" in lines
    assert "  blocked_patches: active (portable build)" in lines
    assert "  sgns_update: active (portable build)" in lines


def test_a_kernel_off_for_the_cpu_names_the_one_missing_feature():
    # The report of a CPU with AVX2 but no FMA (collect()'s dict, as such a CPU gives it).
    from jaxdl import info as info_module
    from jaxdl.kernels import isa
    choice = isa.choose(("avx512", "avx2"), frozenset({"avx2"}), None)
    report = info_module.format_report({
        "versions": {"jax": jax.__version__}, "accelerator_plugins": {}, "backend": "cpu",
        "process_count": 1, "devices": [],
        "native_kernels": {"conv_direct": {"active": False, "build": None,
                                           "builds": ["avx512", "avx2"], "reason": choice.reason}},
        "cpu": {"features": ["AVX2"], "builds": ["portable"], "requested": "auto",
                "probe_error": ""},
        "caches": {"jax_compilation_cache_dir": None, "composed_runs": "x", "native_kernels": "y"}})
    assert ("  conv_direct: off (this CPU lacks FMA (the avx2 build needs AVX2 and FMA))"
            in report.splitlines())
    assert ("CPU vector features: AVX2; kernel builds it runs: portable; JAXDL_NATIVE_ISA=auto"
            in report.splitlines())


def test_a_bad_forced_build_is_a_clear_error():
    result = _info(JAXDL_NATIVE_ISA="avx3")
    assert result.returncode != 0
    assert ("JAXDL_NATIVE_ISA='avx3'; expected one of ('avx512', 'avx2', 'portable') or 'auto'"
            in result.stderr)
