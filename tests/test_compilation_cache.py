"""The one place that configures JAX's persistent compilation cache."""

from __future__ import annotations

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

from jaxdl.train.compilation_cache import (default_cache_dir, enable_compilation_cache,
                                           shared_compilation_cache)

SETTINGS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
            "jax_persistent_cache_min_entry_size_bytes")


def _settings() -> tuple:
    return tuple(getattr(jax.config, name) for name in SETTINGS)


@pytest.fixture
def no_cache():
    """No cache configured during the test; the session's settings come back after."""
    before = _settings()
    jax.config.update("jax_compilation_cache_dir", None)
    yield _settings()
    for name, value in zip(SETTINGS, before):
        jax.config.update(name, value)
    compilation_cache.reset_cache()


def test_shared_cache_is_on_inside_the_block_and_restored_after(tmp_path, no_cache):
    with shared_compilation_cache(str(tmp_path / "xla")):
        assert _settings() == (str(tmp_path / "xla"), 0.0, -1)
        assert (tmp_path / "xla").is_dir()
    assert _settings() == no_cache


def test_a_cache_already_configured_wins(tmp_path, no_cache):
    enable_compilation_cache(str(tmp_path / "mine"))
    assert _settings() == (str(tmp_path / "mine"), 0.0, -1)
    with shared_compilation_cache(str(tmp_path / "shared")):
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")
    assert not (tmp_path / "shared").exists()


def test_default_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXDL_XLA_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == str(tmp_path / "env")
