"""Shared test set-up: quiet logs, and a helper to run experiments in-process."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_experiment(name: str):
    """Import ``experiments/<name>.py`` as a module."""
    path = os.path.join(REPO, "experiments", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"test_experiment_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def experiment():
    return load_experiment


def run_command(args: list[str], **kwargs):
    """Run ``python -m jaxdl.run ARGS`` from the repository root."""
    import subprocess
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "jaxdl.run", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, **kwargs)
