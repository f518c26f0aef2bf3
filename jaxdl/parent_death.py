"""A sub-run that ends when the process that started it dies, even by SIGKILL.

A sweep stops its sub-runs itself on every signal it can catch
(``jaxdl.sweep.cli.stop_subruns_and_exit``); SIGKILL (the OOM killer, a
scheduler's last word, ``kill -9``) cannot be caught, and would leave the
sub-runs training on, writing to a sweep nobody watches. So the sweep names its
process id in ``JAXDL_PARENT_PID``, and a ``jaxdl.run`` started with it asks the
kernel for SIGTERM when its parent goes (Linux ``prctl(PR_SET_PDEATHSIG)``;
elsewhere a thread that watches ``os.getppid()``). SIGTERM ends the run as any
stop does: re-running the sweep resumes it from its newest checkpoint.

The sweep starts each sub-run from a thread that waits on it until it exits;
``PR_SET_PDEATHSIG`` follows the starting *thread*, which therefore lives as
long as the sub-run does.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PARENT_PID_ENV = "JAXDL_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _ask_the_kernel(signum: int) -> bool:
    """``prctl(PR_SET_PDEATHSIG, signum)``; False where there is no such call."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, poll_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(poll_s)
    os.kill(os.getpid(), signal.SIGTERM)


def stop_with_parent(environ=os.environ, poll_s: float = 0.5) -> bool:
    """If ``JAXDL_PARENT_PID`` is set, get SIGTERM when that parent dies.

    The variable is removed from ``environ``: processes this one starts (its
    own sub-processes) have another parent and must not inherit the rule.

    Returns:
      Whether the rule was set (the variable named this process's parent).
    """
    value = environ.pop(PARENT_PID_ENV, None)
    if not value:
        return False
    try:
        parent = int(value)
    except ValueError:
        return False
    if not _ask_the_kernel(signal.SIGTERM):
        threading.Thread(target=_watch, args=(parent, poll_s), daemon=True,
                         name="jaxdl-parent-watch").start()
    if os.getppid() != parent:  # it died before the rule was set
        os.kill(os.getpid(), signal.SIGTERM)
    return True


__all__ = ["PARENT_PID_ENV", "stop_with_parent"]
