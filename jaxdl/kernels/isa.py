"""Which build of a native kernel runs: the one place that decides.

Each kernel source compiles into one library per *build*, a set of compiler
flags for an instruction-set level (best first):

| build      | flags                           | the CPU must have      |
|------------|---------------------------------|------------------------|
| `avx512`   | `-mavx512f -mavx2 -mfma`        | AVX-512F, AVX2, FMA    |
| `avx2`     | `-mavx2 -mfma`                  | AVX2, FMA              |
| `portable` | none (the compiler's baseline)  | nothing                |

A kernel offers some of them (`NativeLibrary(builds=...)`): the convolution and
LSTM kernels `avx512` and `avx2` (below those, the pure-JAX paths run), word2vec's
all three, the patch copy only `portable` (memcpy needs no vector ISA). The
build used is the best one the kernel offers that the CPU runs and that is not
above `$JAXDL_NATIVE_ISA` (`avx512`, `avx2` or `portable`; unset or `auto`: no
ceiling), read once per process, before the first kernel loads: a process runs
one build of each kernel. Builds differ in rounding (FMA, vector widths), and
each repeats its own bits from run to run.

The CPU's features come from a tiny probe library (`cpu_features.cc`, built
without ISA flags) that asks `__builtin_cpu_supports`, which also checks that the
OS saves the wide registers.
"""

from __future__ import annotations

import ctypes
import functools
import os
import pathlib
from typing import NamedTuple

from jaxdl.errors import ConfigError

ENV_VAR = "JAXDL_NATIVE_ISA"
BUILDS = ("avx512", "avx2", "portable")  # best first
FLAGS = {"avx512": ("-mavx512f", "-mavx2", "-mfma"), "avx2": ("-mavx2", "-mfma"), "portable": ()}
REQUIRES = {"avx512": ("avx512f", "avx2", "fma"), "avx2": ("avx2", "fma"), "portable": ()}
FEATURE_NAMES = {"avx512f": "AVX-512F", "avx2": "AVX2", "fma": "FMA"}
_PROBE_BITS = {"avx2": 1, "fma": 2, "avx512f": 4}  # cpu_features.cc's bit per feature


class Choice(NamedTuple):
    """A kernel's build, or None and the reason, with whether that was asked for.

    Attributes:
      build: one of `BUILDS`, or None: the kernel is off.
      reason: why it is off ("" when `build` is set).
      deliberate: off because `$JAXDL_NATIVE_ISA` asked for a lower build (not
        worth a warning).
    """

    build: str | None
    reason: str = ""
    deliberate: bool = False


def requested() -> str | None:
    """The ceiling `$JAXDL_NATIVE_ISA` sets: one of `BUILDS`, or None (unset, "" or "auto").

    Raises:
      ConfigError: any other value, naming it and the accepted ones.
    """
    value = os.environ.get(ENV_VAR, "").strip()
    if value in ("", "auto"):
        return None
    if value not in BUILDS:
        raise ConfigError(f"{ENV_VAR}={value!r}; expected one of {BUILDS} or 'auto'")
    return value


@functools.lru_cache(maxsize=None)
def cpu_features() -> frozenset[str]:
    """The features of `FEATURE_NAMES` this CPU runs (builds the probe once).

    Raises:
      RuntimeError: the probe does not build (no compiler; the message says why).
    """
    from jaxdl.kernels.compile import compile_library  # imports jax; keep this module light
    probe = ctypes.cdll.LoadLibrary(str(compile_library(
        pathlib.Path(__file__).with_name("cpu_features.cc"), "portable", FLAGS["portable"])))
    bits = probe.JaxdlCpuFeatures()
    return frozenset(name for name, bit in _PROBE_BITS.items() if bits & bit)


def runnable(features: frozenset[str]) -> tuple[str, ...]:
    """The builds a CPU with `features` runs, best first (always ends in "portable")."""
    return tuple(b for b in BUILDS if set(REQUIRES[b]) <= features)


def missing_feature(build: str, features: frozenset[str]) -> str | None:
    """The first feature `build` needs that `features` lacks, by its usual name, or None."""
    lacking = [f for f in REQUIRES[build] if f not in features]
    return FEATURE_NAMES[lacking[0]] if lacking else None


def choose(offered: tuple[str, ...], features: frozenset[str] | None,
           ceiling: str | None) -> Choice:
    """The build of a kernel that offers `offered`, on a CPU with `features`.

    Args:
      offered: the kernel's builds (a subset of `BUILDS`).
      features: the CPU's (`cpu_features()`); may be None when `offered` is
        only ("portable",), which any CPU runs.
      ceiling: `requested()`: no build above this one; None: no ceiling.
    Returns:
      The best offered build at or below `ceiling` that the CPU runs; else
      `Choice(None, reason)` naming the one feature the kernel's lowest build
      lacks, or the ceiling that excluded the builds the CPU runs.
    """
    allowed = BUILDS[BUILDS.index(ceiling):] if ceiling else BUILDS
    candidates = [b for b in BUILDS if b in offered and b in allowed]
    for build in candidates:
        if features is None and build != "portable":
            raise ValueError("choose() needs the CPU's features for a vector build")
        if build == "portable" or set(REQUIRES[build]) <= features:
            return Choice(build)
    lowest = [b for b in BUILDS if b in offered][-1]
    lacking = missing_feature(lowest, features or frozenset())
    if candidates and lacking:
        return Choice(None, f"this CPU lacks {lacking} (the {lowest} build needs "
                            f"{' and '.join(FEATURE_NAMES[f] for f in REQUIRES[lowest])})")
    return Choice(None, f"{ENV_VAR}={ceiling}: no build at or below {ceiling} "
                        f"(builds: {', '.join(b for b in BUILDS if b in offered)})",
                  deliberate=True)
