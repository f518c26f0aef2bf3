"""The persistent XLA compilation cache: the one place jaxdl configures it.

A compiled program is stored under a key made of the program itself, so a
re-run, or another sub-run with the same shapes, loads the executable instead of
compiling it again. A cached executable is the same binary, so results do not
change. Two entry points:

* ``enable_compilation_cache(directory)``: for the rest of the process
  (``config.train.compilation_cache_dir``, set by ``fit``);
* ``shared_compilation_cache(directory)``: a ``with`` block in which the
  sub-runs of a composed experiment share the cache; the previous settings
  return afterwards;
* ``disable_for_multiprocess_cpu()``: off for the rest of a multi-process CPU
  run, whatever the settings above or ``JAX_COMPILATION_CACHE_DIR`` say.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

import jax
from jax.experimental.compilation_cache import compilation_cache

# Cache every program, however fast it compiled or small it is: the steps of
# small experiments compile quickly, yet there are many of them. An entry-size
# minimum of -1 also stops JAX from raising it for the cache's filesystem.
_CACHE_EVERYTHING = {"jax_persistent_cache_min_compile_time_secs": 0.0,
                     "jax_persistent_cache_min_entry_size_bytes": -1}
_SETTINGS = ("jax_compilation_cache_dir", *_CACHE_EVERYTHING)


def default_cache_dir() -> str:
    """``$JAXDL_XLA_CACHE``, else ``~/.cache/jaxdl/xla``: where composed runs share programs."""
    return os.environ.get("JAXDL_XLA_CACHE",
                          os.path.join(os.path.expanduser("~"), ".cache", "jaxdl", "xla"))


def _configure(settings: dict) -> None:
    changed = settings["jax_compilation_cache_dir"] != jax.config.jax_compilation_cache_dir
    for name, value in settings.items():
        jax.config.update(name, value)
    if changed:
        # JAX decides once per process whether and where the cache is used; a
        # process that already compiled under other settings must forget that.
        compilation_cache.reset_cache()


def enable_compilation_cache(directory: str) -> None:
    """Persist every compiled program under ``directory`` for the rest of the process."""
    _configure({"jax_compilation_cache_dir": directory, **_CACHE_EVERYTHING})


@contextlib.contextmanager
def shared_compilation_cache(directory: str | None = None) -> Iterator[None]:
    """Let the sub-runs inside the block reuse each other's compiled programs.

    Every ``fit`` builds fresh step functions, so ``jax.jit`` cannot see that the
    downstream runs of a sweep compile the same programs; the persistent cache,
    keyed by the program, can. A cache the user configured already wins (the
    block then changes nothing); without a writable directory every program is
    simply compiled.

    Args:
      directory: cache location; default ``default_cache_dir()``.
    """
    if jax.config.jax_compilation_cache_dir:
        yield
        return
    directory = directory or default_cache_dir()
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        yield
        return
    previous = {name: getattr(jax.config, name) for name in _SETTINGS}
    _configure({"jax_compilation_cache_dir": directory, **_CACHE_EVERYTHING})
    try:
        yield
    finally:
        _configure(previous)


def disable_for_multiprocess_cpu() -> bool:
    """Switch the cache off when this process is one of several on CPU; True if it did.

    With jax 0.12.1, CPU programs loaded from the persistent cache never finish
    their cross-process (gloo) collectives: every process of a re-run waits
    forever on its first step (tests/test_multihost.py's resume hung so).
    Compiling afresh costs seconds; a hung run costs the run. Call after
    ``jax.distributed.initialize``; process 0 says so on stderr.
    """
    if jax.process_count() == 1 or jax.default_backend() != "cpu":
        return False
    jax.config.update("jax_enable_compilation_cache", False)
    if jax.process_index() == 0:
        print("jaxdl: persistent compilation cache off: a multi-process CPU run "
              "compiles its programs afresh", file=sys.stderr)
    return True
