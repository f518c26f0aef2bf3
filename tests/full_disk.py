"""A full disk for chosen files of a run, in a ``python -m jaxdl.run`` subprocess (tests only).

``JAXDL_TEST_FULL_DISK="<trigger path>|<file name pattern>"``: once ``<trigger
path>`` exists (e.g. ``W/checkpoints/160``, a finished checkpoint), every write,
flush or close of a file whose name matches the pattern (``fnmatch``) fails with
``OSError(ENOSPC)``, as on a full disk — files opened before the trigger (the
TensorBoard event file) included. ``launch`` runs ``jaxdl.run``'s entry point
with it installed.
"""

from __future__ import annotations

import builtins
import errno
import fnmatch
import os
import subprocess
import sys

import fault_runs

_real_open = builtins.open


class _FullDiskFile:
    """A file object whose writes fail with ENOSPC once the trigger exists."""

    def __init__(self, f, trigger: str):
        self._f, self._trigger = f, trigger

    def _check(self) -> None:
        if os.path.exists(self._trigger):
            raise OSError(errno.ENOSPC, "No space left on device")

    def write(self, data):
        self._check()
        return self._f.write(data)

    def writelines(self, lines):
        self._check()
        return self._f.writelines(lines)

    def flush(self):
        self._check()
        return self._f.flush()

    def close(self):
        try:
            self._check()
        finally:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


def install() -> None:
    """Patch ``open`` as ``JAXDL_TEST_FULL_DISK`` says."""
    trigger, pattern = os.environ["JAXDL_TEST_FULL_DISK"].split("|")

    def open_(file, mode="r", *args, **kwargs):
        f = _real_open(file, mode, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+") and \
                fnmatch.fnmatch(os.path.basename(os.fspath(file)), pattern):
            return _FullDiskFile(f, trigger)
        return f

    builtins.open = open_


_LAUNCH = ("import sys, full_disk; full_disk.install(); sys.argv[0] = 'jaxdl.run'; "
           "from jaxdl.run import entry; entry()")


def run_with_full_disk(workdir, trigger, pattern: str, *overrides: str,
                       timeout: float = 300) -> subprocess.CompletedProcess:
    """The fault experiment in ``workdir``, files matching ``pattern`` full once ``trigger`` exists."""
    env = fault_runs.run_env(JAXDL_TEST_FULL_DISK=f"{trigger}|{pattern}")
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__), env["PYTHONPATH"]])
    command = fault_runs.command(workdir, *overrides)
    return subprocess.run([sys.executable, "-c", _LAUNCH, *command[3:]], cwd=fault_runs.REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
