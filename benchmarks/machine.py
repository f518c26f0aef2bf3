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


def machine() -> dict[str, Any]:
    """CPU model, cores, accelerators and library versions.

    Returns:
      ``{"cpu", "cores", "gpu" (name or None), "num_devices", "backend",
      "load_average" (1-minute, at the time of the call), "versions": {...}}``.
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
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpus[0] if gpus else None,
            "backend": jax.default_backend(), "num_devices": jax.device_count(),
            "load_average": os.getloadavg()[0], "git_commit": _git_commit(),
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
