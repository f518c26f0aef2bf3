"""The machine a benchmark ran on, recorded in every benchmark's JSON, and the
command-line/JSON/table plumbing the benchmark scripts share."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from typing import Any, Sequence


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# CPU flags that decide speed on the CPU paths (the kernels' builds, XLA's and
# PyTorch's own code paths); the JSON lists those this CPU has.
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                "avx512_vnni", "avx512_bf16", "amx_tile", "asimd", "sve")
# Environment variables that change what a benchmark runs; recorded when set.
RECORDED_ENV = ("JAXDL_NATIVE", "JAXDL_NATIVE_ISA", "JAXDL_CONV_IMPL", "XLA_FLAGS",
                "OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_flags() -> list[str]:
    """The `VECTOR_FLAGS` /proc/cpuinfo lists for this CPU (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    present = set(line.split(":", 1)[1].split())
                    return [f for f in VECTOR_FLAGS if f in present]
    except OSError:
        pass
    return []


def kernel_builds() -> dict[str, Any]:
    """Which build of each native kernel ran, and the CPU kind for RESULTS.md.

    Returns:
      ``{"cpu_kind": the best kernel build this CPU runs ("avx512", "avx2",
      "portable"), "requested": $JAXDL_NATIVE_ISA or "auto", "kernels": {name:
      build, or "off: <reason>"}}``.
    """
    from jaxdl import info
    kernels = {name: k["build"] if k["active"] else f"off: {k['reason']}"
               for name, k in info.native_kernels().items()}
    host = info.cpu()
    return {"cpu_kind": host["builds"][0] if host["builds"] else "unknown",
            "requested": host["requested"], "kernels": kernels}


def machine() -> dict[str, Any]:
    """CPU model and flags, cores, accelerators, kernel builds and library versions.

    Returns:
      ``{"cpu", "cpu_flags", "cores", "gpu" (name or None), "num_devices", "backend",
      "load_average" (1-minute, at the time of the call), "kernel_builds"
      (`kernel_builds()`), "environment" (those of `RECORDED_ENV` set),
      "versions": {...}}``.
    """
    import flax
    import jax
    import numpy as np
    import optax
    versions = {"python": platform.python_version(), "jax": jax.__version__,
                "jaxlib": getattr(__import__("jaxlib"), "__version__", "?"),
                "flax": flax.__version__, "optax": optax.__version__, "numpy": np.__version__}
    try:
        import torch
        versions["torch"] = torch.__version__
    except ImportError:
        pass
    gpus = [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    return {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(),
            "gpu": gpus[0] if gpus else None,
            "backend": jax.default_backend(), "num_devices": jax.device_count(),
            "load_average": os.getloadavg()[0], "git_commit": _git_commit(),
            "kernel_builds": kernel_builds(),
            "environment": {k: os.environ[k] for k in RECORDED_ENV if k in os.environ},
            "versions": versions}


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, cwd=os.path.dirname(__file__)).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def parse_args(description: str) -> argparse.Namespace:
    """``--quick`` (few repetitions), ``--out FILE.json`` and ``--models a,b``
    (the workloads to run, where a benchmark has several), shared by every benchmark."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--models", default=None,
                        help="comma-separated workload names (default: all of them)")
    return parser.parse_args()


def selected(workloads: dict, models: str | None) -> dict:
    """The entries of ``workloads`` named in ``--models`` (all when it is None).

    Raises:
      SystemExit: naming a workload that does not exist, with the known names.
    """
    if models is None:
        return workloads
    names = [name.strip() for name in models.split(",") if name.strip()]
    unknown = [name for name in names if name not in workloads]
    if unknown:
        raise SystemExit(f"--models={models!r}: unknown {unknown}; expected names from "
                         f"{sorted(workloads)}")
    return {name: workloads[name] for name in names}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats printed with 3 significant decimals."""
    def cell(value):
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def report(name: str, results: dict, table: str, out: str | None, **extra: Any) -> None:
    """Print the table and write ``{"benchmark", "machine", "results", ...}`` to ``out``."""
    print(table)
    payload = {"benchmark": name, "machine": machine(), "results": results, **extra,
               "table_markdown": table}
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
