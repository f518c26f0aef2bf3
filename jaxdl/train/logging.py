"""Run logs: ``metrics.jsonl`` (one JSON object per event) and TensorBoard scalars.

On resume, events logged after the restored step are dropped from
``metrics.jsonl`` first, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

from tqdm.auto import tqdm


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf; keep them visible as strings
    return value


class MetricsLogger:
    """Appends events to ``workdir/metrics.jsonl`` and TensorBoard event files.

    Args:
      workdir: the run directory, or None to keep events in memory only.
      resume_step: drop existing events with ``step > resume_step`` (None: start
        a new file).
      enabled: False on non-zero processes of a multi-host run.
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
        with open(tmp, "w") as f:
            f.writelines(kept)
        os.replace(tmp, self.path)
        self.history = [json.loads(line) for line in kept]
        try:
            from tensorboardX import SummaryWriter
            self._tb = SummaryWriter(logdir=workdir, flush_secs=30)
        except ImportError:  # TensorBoard files are a convenience, JSONL is the record
            self._tb = None

    def log(self, step: int, split: str, metrics: dict[str, float]) -> dict:
        """Record ``metrics`` of ``split`` at ``step``; returns the event."""
        event = {"step": int(step), "split": split,
                 **{k: _jsonable(float(v)) for k, v in metrics.items()}}
        self.history.append(event)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(event) + "\n")
            if self._tb is not None:
                for name, value in metrics.items():
                    self._tb.add_scalar(f"{split}/{name}", float(value), int(step))
        return event

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def progress_bar(total: int, initial: int, enabled: bool):
    """A tqdm bar over steps, shown only when asked and stderr is a terminal."""
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                disable=not (enabled and sys.stderr.isatty()))
