"""Progress over sub-runs, on stderr: the one reporter of sweeps and composed runs.

A sweep or a composed experiment is many ``fit`` runs whose own progress bars
are off; this reports the whole: which sub-run (k/N and its label), the time
elapsed and an estimate of the time remaining. On a terminal the current
sub-run's line is rewritten in place while it trains; elsewhere (a log file, a
pipe) each sub-run writes exactly one line, when it is finished. Sub-runs may
finish from several threads at once (a grid sweep runs ``parallel`` processes).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    """Seconds as whole seconds under a minute, minutes and seconds under an hour, else
    hours and minutes (``"<s>s"``, ``"<m>m<ss>s"``, ``"<h>h<mm>m"``)."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class SubrunProgress:
    """Counts finished sub-runs and reports each one.

    The estimate of the remaining time is the mean duration of the sub-runs that
    trained in this process (a skipped, already finished one costs nothing)
    times the sub-runs left, divided by the sub-runs that run at once; sub-runs
    reported with ``estimate=False`` (e.g. a pretraining run, unlike the rest)
    are left out of the mean.

    Args:
      total: N, the number of sub-runs (finished ones from an earlier run included).
      stream: where lines go; default ``sys.stderr``.
      prefix: put before every line (``"sweep "`` for the grid sweep).
      parallel: sub-runs that train at once; above 1, the in-place line is off
        (several sub-runs train together).
    """

    def __init__(self, total: int, *, stream: TextIO | None = None, prefix: str = "",
                 parallel: int = 1):
        self.total, self.done = int(total), 0
        self.stream = sys.stderr if stream is None else stream
        self.prefix, self.parallel = prefix, max(1, int(parallel))
        self.interactive = self.parallel == 1 and \
            bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._durations: list[float] = []
        self._lock = threading.Lock()

    def _counter(self) -> str:
        return f"{self.prefix}[{self.done + 1}/{self.total}]"

    def _times(self) -> str:
        elapsed = format_duration(time.monotonic() - self.start)
        left = self.total - self.done
        if left == 0:
            return f"elapsed {elapsed}"
        if not self._durations:
            return f"elapsed {elapsed}, remaining unknown"
        remaining = sum(self._durations) / len(self._durations) * left / self.parallel
        return f"elapsed {elapsed}, remaining ~{format_duration(remaining)}"

    def started(self, label: str) -> None:
        """Sub-run ``label`` starts training (shown only on a terminal)."""
        if self.interactive:
            with self._lock:
                self.stream.write(f"\r\x1b[K{self._counter()} {label}: training "
                                  f"({self._times()})")
                self.stream.flush()

    def finished(self, label: str, *, seconds: float, skipped: bool = False,
                 estimate: bool = True) -> None:
        """Sub-run ``label`` is done: one line ``[k/N] label: ... (elapsed ..., remaining ...)``.

        Args:
          label: e.g. ``"fine_tune k=5 seed=1"``.
          seconds: how long it took here.
          skipped: it had finished in an earlier run (its summary was read back).
          estimate: count its duration in the estimate of the remaining time.
        """
        what = "finished earlier, skipped" if skipped else f"done in {format_duration(seconds)}"
        self._line(label, what, None if skipped or not estimate else seconds)

    def failed(self, label: str) -> None:
        """Sub-run ``label`` raised: one line ``[k/N] label: FAILED (elapsed ...)``."""
        self._line(label, "FAILED", None)

    def _line(self, label: str, what: str, duration: float | None) -> None:
        with self._lock:
            counter = self._counter()
            self.done += 1
            if duration is not None:
                self._durations.append(duration)
            prefix = "\r\x1b[K" if self.interactive else ""
            self.stream.write(f"{prefix}{counter} {label}: {what} ({self._times()})\n")
            self.stream.flush()


__all__ = ["SubrunProgress", "format_duration"]
