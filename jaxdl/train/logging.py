"""Run logs: ``metrics.jsonl`` (one JSON object per event) and TensorBoard scalars, and
what a run shows while it trains (``ProgressLines``, the bar).

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


def _short(value: float) -> str:
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 else f"{value:.3g}"


def _metrics_text(values: dict[str, float], prefix: str = "") -> str:
    return " - ".join(f"{prefix}{name} {_short(float(v))}" for name, v in values.items())


def format_duration(seconds: float) -> str:
    """Seconds as whole seconds under a minute, minutes and seconds under an hour, else
    hours and minutes (``"<s>s"``, ``"<m>m<ss>s"``, ``"<h>h<mm>m"``)."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressLines:
    """Keras-style progress of one ``fit`` on stderr.

    One line per logged train event (``train.log_every``; the metrics are read
    back there anyway, so nothing is added to the hot loop), joined with the
    evaluations of the same step, e.g.::

        epoch E/N - step S/T - loss L - accuracy A - test_loss L' - test_accuracy A' - R steps/s - <elapsed>

    Before the first step: the model's parameters per top-level module, and one
    line while the train step compiles; before the final evaluation, one line.
    Where stderr is a terminal the lines are written above ``bar`` (a tqdm bar
    whose postfix shows the current loss); elsewhere (CI, a log file) they are
    plain lines.

    Args:
      total: the run's last step.
      steps_per_epoch: the source's steps per epoch (0: no epoch count shown).
      enabled: False prints nothing (``train.progress_bar=False``, processes > 0).
      bar: the run's progress bar, or None.
      stream: where lines go; default ``sys.stderr``.
    """

    def __init__(self, total: int, steps_per_epoch: int, *, enabled: bool = True,
                 bar=None, stream=None):
        self.total, self.steps_per_epoch, self.enabled = int(total), int(steps_per_epoch), enabled
        self.bar = bar if bar is not None and not getattr(bar, "disable", True) else None
        self.stream = stream
        self.start = time.monotonic()
        self._clock: tuple[int, float] | None = None  # (step, time) of the last line
        self._pending: dict[str, dict[str, float]] = {}
        self._pending_step: int | None = None
        self.compiling_since: float | None = None  # set from the first dispatch to its return
        self._rate: float | None = None  # steps/s since the previous train line

    def write(self, line: str) -> None:
        """One line on stderr (above the bar, if one is shown)."""
        if not self.enabled:
            return
        stream = self.stream if self.stream is not None else sys.stderr
        if self.bar is not None:
            self.bar.write(line, file=stream)
        else:
            print(line, file=stream, flush=True)

    def model_summary(self, name: str, params: Any) -> None:
        """``model MLP: 69,386 parameters (layers 68,096 - head 1,290)``: per top-level module."""
        import jax
        import numpy as np
        count = lambda tree: int(sum(np.size(x) for x in jax.tree.leaves(tree)))  # noqa: E731
        parts = []
        if hasattr(params, "items"):
            parts = [f"{key} {count(sub):,}" for key, sub in params.items()]
        detail = f" ({' - '.join(parts)})" if len(parts) > 1 else ""
        self.write(f"model {name}: {count(params):,} parameters{detail}")

    def compiling(self, step: int) -> None:
        """Announce the first dispatch (it compiles, which can take a while)."""
        self.write(f"compiling the train step (from step {step}/{self.total})...")
        self.compiling_since = time.monotonic()

    def compiled(self, step: int) -> None:
        """The first dispatch returned: steps/s are measured from here."""
        if self.compiling_since is not None:
            self.write(f"compiled and ran the first dispatch in "
                       f"{time.monotonic() - self.compiling_since:.1f}s")
        self.compiling_since = None
        self._clock = (step, time.monotonic())

    def train(self, step: int, values: dict[str, float]) -> None:
        """Train metrics read back at ``step``; shown with the evaluations of that step."""
        self._add(step, "", values)
        now = time.monotonic()  # the rate of training alone: before this step's evaluations
        if self._clock is not None and step > self._clock[0] and now > self._clock[1]:
            self._rate = (step - self._clock[0]) / (now - self._clock[1])
            self._clock = (step, now)
        if self.bar is not None and "loss" in values:
            self.bar.set_postfix(loss=_short(float(values["loss"])), refresh=False)

    def evaluated(self, step: int, split: str, values: dict[str, float]) -> None:
        """Evaluation metrics of ``split`` at ``step``."""
        self._add(step, f"{split}_", values)

    def evaluating(self, splits) -> None:
        """Announce the final evaluation."""
        self.write(f"evaluating {', '.join(splits)}...")

    def _add(self, step: int, prefix: str, values: dict[str, float]) -> None:
        if self._pending_step is not None and self._pending_step != step:
            self.flush()
        self._pending_step = step
        self._pending[prefix] = dict(values)

    def flush(self) -> None:
        """Write the line of the pending step (if any)."""
        if self._pending_step is None:
            return
        step, now = self._pending_step, time.monotonic()
        parts = []
        if self.steps_per_epoch:
            epoch = -(-step // self.steps_per_epoch)  # the epoch this step ends or is in
            epochs = -(-self.total // self.steps_per_epoch)
            parts.append(f"epoch {max(epoch, 1)}/{epochs}")
        parts.append(f"step {step}/{self.total}")
        parts += [_metrics_text(values, prefix) for prefix, values in self._pending.items()
                  if values]
        if self._rate is not None:
            parts.append(f"{self._rate:.1f} steps/s")
        if self._clock is not None and self._clock[0] == step:
            self._clock = (step, now)  # this step's evaluations are not training time
        parts.append(format_duration(now - self.start))
        self.write(" - ".join(parts))
        self._pending, self._pending_step, self._rate = {}, None, None
