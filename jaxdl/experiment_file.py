"""Experiment files: ``experiments/<name>.py`` imported by path.

An experiment is a plain Python file with ``get_config()`` and
``run(config, workdir)``; it is not part of an installed package, so it is
loaded from its path (``jaxdl.run``, ``jaxdl.sweep``, tests, benchmarks).
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

from jaxdl.errors import JaxdlError


def load_experiment(path: str | os.PathLike) -> ModuleType:
    """Import the experiment module at ``path``.

    Args:
      path: ``experiments/<name>.py``; an absl config-file suffix
        (``experiments/<name>.py:arg``) is ignored.
    Returns:
      The module, named ``jaxdl_experiment_<name>`` (not added to ``sys.modules``,
      so loading the same file twice gives two independent modules).
    Raises:
      JaxdlError: no such file.
    """
    path = os.fspath(path).split(":", 1)[0]
    if not os.path.isfile(path):
        raise JaxdlError(f"experiment file {path!r} not found; expected "
                         "--config=experiments/<name>.py")
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f"jaxdl_experiment_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
