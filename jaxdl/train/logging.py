"""Run logs: ``metrics.jsonl`` (one JSON object per event) and TensorBoard scalars.

On resume, events logged after the restored step are dropped from
``metrics.jsonl`` first, so the file reads as one uninterrupted run. Both files
are written from the calling thread (TensorBoard events too, with tensorboardX's
synchronous ``EventsWriter``, buffered and flushed on ``close``), at log
boundaries only, so a full disk surfaces here as a ``WriteError`` naming the
file, never as a traceback of a background thread.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

from tqdm.auto import tqdm

from jaxdl.workdir import writing


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf; keep them visible as strings
    return value


class _TensorBoardScalars:
    """Scalars appended to one TensorBoard event file in ``logdir``, synchronously."""

    def __init__(self, logdir: str):
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.summary import scalar
        self._event, self._scalar = Event, scalar
        self._writer = EventsWriter(os.path.join(logdir, "events"))
        self.path = self._writer._file_name  # noqa: SLF001 - tensorboardX names it only there

    def add(self, tag: str, value: float, step: int) -> None:
        self._writer.write_event(self._event(wall_time=time.time(), step=step,
                                             summary=self._scalar(tag, value)))

    def close(self) -> None:
        self._writer.close()


class MetricsLogger:
    """Appends events to ``workdir/metrics.jsonl`` and TensorBoard event files.

    Args:
      workdir: the run directory, or None to keep events in memory only.
      resume_step: drop existing events with ``step > resume_step`` (None: start
        a new file).
      enabled: False on non-zero processes of a multi-host run.
    Raises:
      WriteError: (here and in ``log``, ``close``) a file cannot be written.
    """

    def __init__(self, workdir: str | None, *, resume_step: int | None = None,
                 enabled: bool = True):
        self.history: list[dict] = []
        self.path = os.path.join(workdir, "metrics.jsonl") if workdir and enabled else None
        self._tb = None
        if self.path is None:
            return
        kept = []
        if resume_step is not None and os.path.exists(self.path):
            with open(self.path) as f:
                for line in f:
                    if line.strip():
                        try:
                            event = json.loads(line)
                        except json.JSONDecodeError:  # torn by a kill mid-append: drop it
                            continue
                        if event.get("step", 0) <= resume_step:
                            kept.append(line if line.endswith("\n") else line + "\n")
        # Rewrite via a temporary file: a kill here must not leave the log truncated.
        tmp = f"{self.path}.tmp-{os.getpid()}"
        with writing(self.path):
            try:
                with open(tmp, "w") as f:
                    f.writelines(kept)
                os.replace(tmp, self.path)
            except OSError:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise
        self.history = [json.loads(line) for line in kept]
        try:
            import tensorboardX  # noqa: F401
        except ImportError:  # TensorBoard files are a convenience, JSONL is the record
            return
        with writing(os.path.join(workdir, "events.out.tfevents.*")):
            self._tb = _TensorBoardScalars(workdir)

    def log(self, step: int, split: str, metrics: dict[str, float]) -> dict:
        """Record ``metrics`` of ``split`` at ``step``; returns the event."""
        event = {"step": int(step), "split": split,
                 **{k: _jsonable(float(v)) for k, v in metrics.items()}}
        self.history.append(event)
        if self.path is not None:
            with writing(self.path), open(self.path, "a") as f:
                f.write(json.dumps(event) + "\n")
            if self._tb is not None:
                with writing(self._tb.path):
                    for name, value in metrics.items():  # buffered; flushed by close
                        self._tb.add(f"{split}/{name}", float(value), int(step))
        return event

    def close(self) -> None:
        if self._tb is not None:
            tb, self._tb = self._tb, None
            with writing(tb.path):
                tb.close()


def progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm bar over steps, shown only when asked and stderr is a terminal."""
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                disable=not (enabled and sys.stderr.isatty()))
