"""One run per workdir: a lock file holding the owner's host, pid and start time.

``python -m jaxdl.run`` takes ``DIR/.lock`` before it writes anything and removes
it on exit. Mutual exclusion on one host comes from ``fcntl.flock`` on that
file, which the kernel drops when the owner dies (even by SIGKILL), so a lock
left by a dead process is recognised and replaced without guessing from pids.
The file's JSON content only serves the error message. A lock written on another
host cannot be checked from here; it is refused with advice to delete it.

Sub-runs of a composed experiment live in sub-directories and run in the same
process under the root's lock: ``hold_workdir`` returns at once when this
process already holds the lock of the directory or of one of its parents.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import time
from typing import Iterator

from jaxdl.errors import JaxdlError

LOCK_NAME = ".lock"
_held: dict[str, int] = {}  # absolute workdir -> file descriptor holding its flock


class WorkdirLockedError(JaxdlError):
    """Another run holds the workdir's lock."""


def lock_path(workdir: str) -> str:
    """``workdir/.lock``."""
    return os.path.join(workdir, LOCK_NAME)


def read_holder(workdir: str) -> dict:
    """The lock file's ``{"host", "pid", "since"}``, or {} when absent or unreadable."""
    try:
        with open(lock_path(workdir)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _holder_once_written(workdir: str, wait: float = 2.0) -> dict:
    """The holder's record; a run that has just taken the lock writes it a moment
    after its flock, so an empty or unreadable record is read again for ``wait`` s."""
    deadline = time.monotonic() + wait
    holder = read_holder(workdir)
    while "pid" not in holder and time.monotonic() < deadline:
        time.sleep(0.02)
        holder = read_holder(workdir)
    return holder


def _describe(holder: dict) -> str:
    return (f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, "
            f"since {holder.get('since', '?')}")


def _held_by_this_process(workdir: str) -> bool:
    path = os.path.abspath(workdir)
    return any(path == held or path.startswith(held + os.sep) for held in _held)


def acquire(workdir: str) -> bool:
    """Take ``workdir``'s lock for this process (the directory must exist).

    Returns:
      True if taken now, False if this process already held it (or a parent's).
    Raises:
      WorkdirLockedError: a live process holds it; the message names host, pid and
        since when.
    """
    if _held_by_this_process(workdir):
        return False
    path = lock_path(workdir)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _holder_once_written(workdir)
            raise WorkdirLockedError(
                f"workdir {workdir!r} is in use by another run ({_describe(holder)}; lock "
                f"file {path}). Wait for it to finish, stop it, or choose another --workdir.")
        # The owner may have removed the file between our open and flock: then we
        # hold a lock on a deleted inode and must start over on the new file.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    holder = read_holder(workdir)
    if holder and holder.get("host") != socket.gethostname():
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        raise WorkdirLockedError(
            f"workdir {workdir!r} is locked by a run on another machine ({_describe(holder)}; "
            f"lock file {path}); its process cannot be checked from here. If that run is "
            "gone, delete the lock file and re-run.")
    record = {"host": socket.gethostname(), "pid": os.getpid(),
              "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)  # replaces a stale record left by a dead process
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    os.fsync(fd)
    _held[os.path.abspath(workdir)] = fd
    return True


def release(workdir: str) -> None:
    """Remove ``workdir``'s lock if this process holds it (unlink first, then unlock)."""
    fd = _held.pop(os.path.abspath(workdir), None)
    if fd is None:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(lock_path(workdir))
    os.close(fd)


@contextlib.contextmanager
def hold_workdir(workdir: str, *, enabled: bool = True) -> Iterator[None]:
    """Hold ``workdir``'s lock for the duration of the block.

    Args:
      workdir: an existing directory.
      enabled: False on non-zero processes of a multi-process run, which share the
        lock process 0 holds.
    """
    taken = enabled and acquire(workdir)
    try:
        yield
    finally:
        if taken:
            release(workdir)
