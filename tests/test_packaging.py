"""The wheel holds one top-level package, ``jaxdl``, with its native kernel sources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Never copied: version control, virtual environments, build and run outputs.
SKIP = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__",
                              ".pytest_cache", "runs", "workdirs", ".whl")


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the checkout (nothing is written into the checkout)."""
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=SKIP)
    out = tmp_path / "dist"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "--no-index", "-q", "-w", str(out),
                           str(source)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    wheels = list(out.glob("jaxdl-*.whl"))
    assert len(wheels) == 1, os.listdir(out)
    return wheels[0]


def test_wheel_installs_only_jaxdl_with_kernel_sources(tmp_path):
    with zipfile.ZipFile(_build_wheel(tmp_path)) as wheel:
        names = wheel.namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"jaxdl"}
    assert not any(n.startswith(("experiments/", "benchmarks/", "tests/")) for n in names)
    kernels = {Path(n).name for n in names if n.startswith("jaxdl/kernels/")}
    sources = {p.name for p in (REPO / "jaxdl" / "kernels").iterdir()
               if p.suffix in (".cc", ".h")}
    assert sources and sources <= kernels  # compiled on first use, so they must ship
    assert {"info.py", "run.py"} <= {Path(n).name for n in names if n.count("/") == 1}
    assert "jaxdl/sweep/__main__.py" in names  # python -m jaxdl.sweep


def test_jaxdl_imports_neither_experiments_nor_benchmarks():
    offenders = []
    for path in sorted((REPO / "jaxdl").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1 and \
                    words[1].split(".")[0] in ("experiments", "benchmarks", "tests"):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []
