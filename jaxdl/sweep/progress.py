"""Progress over sub-runs, on stderr: the one reporter of sweeps and composed runs.

A sweep or a composed experiment is many ``fit`` runs whose own progress bars
are off; this reports the whole: which sub-run (k/N and its label), the time
elapsed and an estimate of the time remaining. On a terminal the current
sub-run's line is rewritten in place while it trains; elsewhere (a log file, a
pipe) each sub-run writes one line when it starts and one when it is finished.
Sub-runs may finish from several threads at once (a grid sweep runs
``parallel`` processes).
"""

from __future__ import annotations

import heapq
import statistics
import sys
import threading
import time
from typing import TextIO

from jaxdl.train.logging import format_duration


class SubrunProgress:
    """Counts finished sub-runs and reports each one.

    The remaining time is estimated from the sub-runs that trained in this
    process (a skipped, already finished one costs nothing): each sub-run left
    is taken to last their median duration (a first, cold-compiling one does
    not skew it), the ones already training for what is left of it, and the
    rest are laid out on ``parallel`` slots as they would run; the estimate is
    when the last slot is free. Sub-runs reported with ``estimate=False`` (e.g. a
    pretraining run, unlike the rest) are left out of the median.

    Args:
      total: N, the number of sub-runs (finished ones from an earlier run included).
      stream: where lines go; default ``sys.stderr``.
      prefix: put before every line (``"sweep "`` for the grid sweep).
      parallel: sub-runs that train at once; above 1, the in-place line is off
        (several sub-runs train together).
      heartbeat: off a terminal, every this many seconds while sub-runs train, one
        line naming them (so a long sub-run is never silent); 0: none. Call
        ``close()`` at the end.
    """

    def __init__(self, total: int, *, stream: TextIO | None = None, prefix: str = "",
                 parallel: int = 1, heartbeat: float = 0.0):
        self.total, self.done = int(total), 0
        self.stream = sys.stderr if stream is None else stream
        self.prefix, self.parallel = prefix, max(1, int(parallel))
        self.interactive = self.parallel == 1 and \
            bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._durations: list[float] = []
        self._running: dict[str, float] = {}  # label -> when it started
        self._lock = threading.Lock()
        self._closed = threading.Event()
        if heartbeat > 0 and not self.interactive:
            threading.Thread(target=self._beat, args=(heartbeat,), daemon=True).start()

    def _beat(self, every: float) -> None:
        while not self._closed.wait(every):
            with self._lock:
                if not self._running:
                    continue
                now = time.monotonic()
                running = ", ".join(f"{label} {format_duration(now - t)}"
                                    for label, t in self._running.items())
                self.stream.write(f"{self.prefix}training: {running} ({self.done}/"
                                  f"{self.total} done, {self._times()})\n")
                self.stream.flush()

    def close(self) -> None:
        """Stop the heartbeat."""
        self._closed.set()

    def _counter(self) -> str:
        return f"{self.prefix}[{self.done + 1}/{self.total}]"

    def _times(self) -> str:
        elapsed = format_duration(time.monotonic() - self.start)
        left = self.total - self.done
        if left == 0:
            return f"elapsed {elapsed}"
        if not self._durations:
            return f"elapsed {elapsed}, remaining unknown"
        return f"elapsed {elapsed}, remaining ~{format_duration(self.remaining_seconds())}"

    def remaining_seconds(self) -> float | None:
        """The estimate of the time left (see the class docstring); None before any
        sub-run trained."""
        left = self.total - self.done
        if left <= 0:
            return 0.0
        if not self._durations:
            return None
        each, now = statistics.median(self._durations), time.monotonic()
        running = sorted(max(0.0, each - (now - t)) for t in self._running.values())[:left]
        slots = running[:self.parallel] + [0.0] * max(0, self.parallel - len(running))
        heapq.heapify(slots)
        for _ in range(left - len(running)):
            heapq.heappush(slots, heapq.heappop(slots) + each)
        return max(slots)

    def started(self, label: str) -> None:
        """Sub-run ``label`` starts training: rewrites the line on a terminal, else one line
        ``label: started (k/N done, elapsed ..., remaining ...)``."""
        with self._lock:
            self._running[label] = time.monotonic()
            if self.interactive:
                self.stream.write(f"\r\x1b[K{self._counter()} {label}: training "
                                  f"({self._times()})")
            else:
                self.stream.write(f"{self.prefix}{label}: started ({self.done}/{self.total} "
                                  f"done, {self._times()})\n")
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
            self._running.pop(label, None)
            if duration is not None:
                self._durations.append(duration)
            prefix = "\r\x1b[K" if self.interactive else ""
            self.stream.write(f"{prefix}{counter} {label}: {what} ({self._times()})\n")
            self.stream.flush()


__all__ = ["SubrunProgress", "format_duration"]
