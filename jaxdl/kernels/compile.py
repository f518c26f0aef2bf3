"""Compiling one kernel source into a cached shared library (imports no jaxdl module).

`isa` builds its CPU probe and `build` its kernels through `compile_library`, so
neither imports the other for it. The cache key is a hash of the source, the
headers beside it, the flags, jaxlib's version and the compiler.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile

import jax


CXX_FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-w")


def cache_dir() -> pathlib.Path:
    configured = os.environ.get("JAXDL_NATIVE_CACHE")
    if configured:
        return pathlib.Path(configured)
    return pathlib.Path(os.path.expanduser("~")) / ".cache" / "jaxdl" / "native"


def compile_library(source: pathlib.Path, isa_build: str,
                    isa_flags: tuple[str, ...]) -> pathlib.Path:
    """Compile `source` into a shared library for `isa_build` (or find it cached); its path.

    Args:
      source: the `.cc` file.
      isa_build: the build's name (avx512, avx2 or portable), part of the file name.
      isa_flags: the build's compiler flags (the source sees them as `__AVX512F__`,
        `__AVX2__`, `__FMA__`).

    Raises:
      RuntimeError: no compiler, or the compiler failed (its output attached).
    """
    compiler = shutil.which(os.environ.get("CXX", "c++"))
    if compiler is None:
        raise RuntimeError(f"no C++ compiler: CXX={os.environ.get('CXX', 'c++')!r} is not on PATH")
    include = jax.ffi.include_dir()
    headers = sorted(source.parent.glob("*.h"))  # included by the sources
    flags = (*CXX_FLAGS, *isa_flags)
    key = hashlib.sha256(b"\0".join([
        source.read_bytes(), *(h.read_bytes() for h in headers), jax.lib.__version__.encode(),
        compiler.encode(), " ".join(flags).encode(), include.encode()])).hexdigest()[:16]
    cache = cache_dir()
    library = cache / f"{source.stem}_{isa_build}_{key}.so"
    if library.exists():
        return library
    cache.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: other processes (a multi-process run
    # compiling at the same moment) see either no library or a whole one.
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        built = pathlib.Path(scratch) / library.name
        result = subprocess.run([compiler, *flags, f"-I{include}", str(source), "-o",
                                 str(built)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} exited with {result.returncode}: "
                               f"{(result.stderr or result.stdout)[-2000:]}")
        os.replace(built, library)
    return library
