"""What this installation runs on: ``python -m jaxdl.info [--json]``.

Prints the library versions, the devices JAX sees, which build of each of jaxdl's
native CPU kernels is active (avx512, avx2 or portable; when a kernel is off, why:
the one CPU feature it lacks, no compiler, ``JAXDL_NATIVE=0`` or
``JAXDL_NATIVE_ISA``), and where compiled programs are cached. Run it
after ``pip install -e ".[cuda]"`` (or ``".[tpu]"``) to check that JAX found the
accelerator: the backend line then says ``gpu`` (or ``tpu``), not ``cpu``.

Asking whether the native kernels are active builds them if they are not in
their cache yet (a C++ compile of each kernel, once per jaxlib version).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import platform
import sys
from typing import Any

# The native CPU kernel modules, each holding its NativeLibrary as LIBRARY.
KERNEL_MODULES = ("conv_direct", "lstm_recurrence", "blocked_patches", "sgns_update")
# Distributions the cuda / tpu extras bring in; listed when installed.
ACCELERATOR_PLUGINS = ("jax-cuda12-plugin", "jax-cuda13-plugin", "jax-cuda12-pjrt",
                       "jax-cuda13-pjrt", "libtpu")


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions of jaxdl, jax, jaxlib, flax, optax, orbax-checkpoint and Python."""
    import flax
    import jax
    import optax
    import orbax.checkpoint

    from jaxdl.version import __version__
    return {"jaxdl": __version__, "jax": jax.__version__,
            "jaxlib": _distribution_version("jaxlib"), "flax": flax.__version__,
            "optax": optax.__version__, "orbax_checkpoint": orbax.checkpoint.__version__,
            "python": platform.python_version()}


def devices() -> dict[str, Any]:
    """The default backend and every device: ``{"backend", "process_count", "devices": [...]}``."""
    import jax
    return {"backend": jax.default_backend(), "process_count": jax.process_count(),
            "devices": [{"id": d.id, "platform": d.platform, "kind": d.device_kind,
                         "process_index": d.process_index} for d in jax.devices()]}


def native_kernels() -> dict[str, dict[str, Any]]:
    """Per native kernel: ``{"active": bool, "build": the build loaded (None when off),
    "builds": the builds it has, "reason": why it is off ("" when active)}``.

    Builds a kernel that is not cached yet; ``JAXDL_NATIVE=0`` switches them all off,
    ``JAXDL_NATIVE_ISA`` caps the build (``jaxdl.kernels.isa``).
    """
    status = {}
    for name in KERNEL_MODULES:
        library = importlib.import_module(f"jaxdl.kernels.{name}").LIBRARY
        active = library.available()
        status[name] = {"active": active, "build": library.build_in_use(),
                        "builds": list(library.builds),
                        "reason": "" if active else library.unavailable_reason()}
    return status


def cpu() -> dict[str, Any]:
    """``{"features": the vector features kernels use, "builds": the kernel builds this
    CPU runs, best first, "requested": $JAXDL_NATIVE_ISA or "auto"}`` (features and
    builds are None when the CPU probe does not build, e.g. no compiler)."""
    from jaxdl.kernels import isa
    try:
        features = isa.cpu_features()
    except (OSError, RuntimeError) as error:
        features, why = None, str(error)
    else:
        why = ""
    return {"features": None if features is None else
            [isa.FEATURE_NAMES[f] for f in isa.FEATURE_NAMES if f in features],
            "builds": None if features is None else list(isa.runnable(features)),
            "requested": isa.requested() or "auto", "probe_error": why}


def caches() -> dict[str, str | None]:
    """Where compiled programs live.

    Returns:
      ``jax_compilation_cache_dir``: JAX's persistent XLA cache as configured now
      (``JAX_COMPILATION_CACHE_DIR``; None: off, as for a single run unless
      ``--config.train.compilation_cache_dir`` is set); ``composed_runs``: the
      cache composed experiments and sweeps share (``$JAXDL_XLA_CACHE``);
      ``native_kernels``: the built C++ kernels (``$JAXDL_NATIVE_CACHE``).
    """
    import jax

    from jaxdl.kernels.compile import cache_dir
    from jaxdl.train.compilation_cache import default_cache_dir
    return {"jax_compilation_cache_dir": jax.config.jax_compilation_cache_dir or None,
            "composed_runs": default_cache_dir(), "native_kernels": str(cache_dir())}


def collect() -> dict[str, Any]:
    """Everything ``python -m jaxdl.info`` reports, as one JSON-able dict."""
    installed = {name: v for name in ACCELERATOR_PLUGINS
                 if (v := _distribution_version(name)) is not None}
    return {"versions": versions(), "accelerator_plugins": installed, **devices(),
            "native_kernels": native_kernels(), "cpu": cpu(), "caches": caches()}


def format_report(info: dict[str, Any]) -> str:
    """The human-readable report of ``collect()``'s dict."""
    lines = [f"{name} {version or 'not installed'}" for name, version in info["versions"].items()]
    plugins = ", ".join(f"{n} {v}" for n, v in info["accelerator_plugins"].items())
    lines.append(f"accelerator plugins: {plugins or 'none'}")
    lines.append(f"backend: {info['backend']} ({info['process_count']} process(es))")
    for d in info["devices"]:
        lines.append(f"  device {d['id']}: {d['platform']} {d['kind']}")
    kernels, host = info["native_kernels"], info["cpu"]
    scope = "" if info["backend"] == "cpu" else "; they serve computations on the CPU only"
    if host["features"] is None:
        lines.append(f"CPU vector features: unknown ({host['probe_error']})")
    else:
        lines.append(f"CPU vector features: {', '.join(host['features']) or 'none'}; "
                     f"kernel builds it runs: {', '.join(host['builds'])}; "
                     f"JAXDL_NATIVE_ISA={host['requested']}")
    if all(k["active"] for k in kernels.values()):
        lines.append(f"native CPU kernels: active{scope}")
    else:
        lines.append(f"native CPU kernels: some off, their pure-JAX paths run instead{scope}")
    for name, k in kernels.items():
        lines.append(f"  {name}: " + (f"active ({k['build']} build)" if k["active"]
                                      else f"off ({k['reason']})"))
    cache = info["caches"]
    lines.append("compilation cache: " + (cache["jax_compilation_cache_dir"] or
                 "off for single runs (--config.train.compilation_cache_dir=DIR turns it on)"))
    lines.append(f"compilation cache of composed runs and sweeps: {cache['composed_runs']}")
    lines.append(f"native kernel cache: {cache['native_kernels']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the report (``--json``: the dict as JSON); exit code 0."""
    parser = argparse.ArgumentParser(prog="python -m jaxdl.info", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    info = collect()
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
