"""A ``jax.profiler`` trace of chosen training steps, written under the run's workdir.

``config.train.profile_steps=(start, stop)`` traces global steps ``start`` to
``stop - 1`` into ``WORKDIR/profile/``: the XLA trace for TensorBoard's profile
plugin (``plugins/profile/<run>/<host>.xplane.pb``) and the same trace for
Perfetto (``perfetto_trace.json.gz``). ``fit`` makes ``start`` and ``stop``
dispatch boundaries, so with ``steps_per_loop > 1`` the trace still begins and
ends exactly there; each dispatch is annotated with the step it starts at, which
is what the profile plugin's step view groups by.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import jax

from jaxdl.config_schema import check_profile_steps
from jaxdl.errors import ConfigError

PROFILE_DIR = "profile"


class StepProfiler:
    """Starts and stops the trace on ``fit``'s dispatch boundaries.

    Args:
      steps: ``()`` (off) or ``(start, stop)`` with ``0 <= start < stop <= total_steps``.
      workdir: the run directory; the trace goes to ``workdir/profile``.
      total_steps: the run's length, to refuse a range it never reaches.
    Raises:
      ConfigError: a malformed range, or profiling without a workdir.
    """

    def __init__(self, steps: Sequence[int], workdir: str | None, *, total_steps: int):
        self.range = tuple(steps)
        self.directory = os.path.join(workdir, PROFILE_DIR) if workdir else None
        self._active = False
        self._done = False
        self._annotation = None
        if not self.range:
            return
        start, stop = check_profile_steps(self.range)
        if stop > total_steps:
            raise ConfigError(f"config.train.profile_steps={self.range!r} ends after the run's "
                              f"{total_steps} steps; expected stop <= {total_steps}")
        if workdir is None:
            raise ConfigError(f"config.train.profile_steps={self.range!r} needs a workdir to "
                              "write the trace to; expected fit(..., workdir=DIR)")

    @property
    def boundaries(self) -> tuple[int, ...]:
        """The steps at which a dispatch must end: ``(start, stop)``, or ``()``."""
        return self.range

    def before_dispatch(self, step: int) -> None:
        """Start tracing if the dispatch about to run begins inside the range."""
        if self.range and not self._done and not self._active and \
                self.range[0] <= step < self.range[1]:
            jax.profiler.start_trace(self.directory, create_perfetto_trace=True)
            self._active = True
        if self._active:
            self._annotation = jax.profiler.StepTraceAnnotation("train", step_num=step)
            self._annotation.__enter__()

    def after_dispatch(self, step: int, state: Any) -> None:
        """Stop tracing once ``step`` (the steps done) reaches ``stop``.

        Dispatches are asynchronous: the trace ends only after ``state`` is
        computed, so it holds the device work of its last step.
        """
        if self._annotation is not None:
            self._annotation.__exit__(None, None, None)
            self._annotation = None
        if self._active and step >= self.range[1]:
            jax.block_until_ready(state)
            self._stop()

    def close(self) -> None:
        """Stop a trace the run left open (an error, or early stopping inside the range)."""
        if self._annotation is not None:
            self._annotation.__exit__(None, None, None)
            self._annotation = None
        if self._active:
            self._stop()

    def _stop(self) -> None:
        jax.profiler.stop_trace()
        self._active, self._done = False, True

