"""jax's threefry hash unrolled on CPU in jaxdl's train loop: the same bits, no inner loops.

Every ``jax.random`` draw hashes with threefry2x32. On CPU jax lowers that hash as
a 5-iteration ``while`` loop (it compiles faster); on GPU and TPU it unrolls the
20 rounds. XLA:CPU runs each loop iteration as its own sequence of small
kernels, so a step that draws often pays for it every step: word2vec's
``make_batch`` holds 15 such loops, and unrolled it takes well under two thirds
the time (benchmarks/RESULTS.md). Both forms compute the same 32-bit integer
arithmetic, so the numbers drawn are bitwise the same.

``unrolled_threefry(jitted)`` wraps a ``jax.jit`` function so that the programs
it lowers (on its calls and on ``.lower``) use jax's unrolled form on CPU;
programs lowered anywhere else keep jax's default. The switch is jax's own
lowering rules, reached through a private module: where a jax release moves
them, ``AVAILABLE`` is False and everything lowers as jax does by default
(slower on CPU, the same bits).
"""

from __future__ import annotations

import contextvars
from typing import Any, Callable

_UNROLLED = contextvars.ContextVar("jaxdl_unrolled_threefry", default=False)


def _install() -> bool:
    """Registers a CPU lowering for threefry2x32 that unrolls inside ``unrolled_threefry``."""
    try:
        from jax._src.random import threefry2x32 as impl
        from jax.interpreters import mlir

        primitive = impl.threefry2x32_p
        rolled, unrolled = impl._threefry2x32_cpu_lowering_rule, impl._threefry2x32_lowering_rule
    except (ImportError, AttributeError):
        return False

    def rule(ctx, *args, **params):
        return (unrolled if _UNROLLED.get() else rolled)(ctx, *args, **params)

    mlir.register_lowering(primitive, rule, platform="cpu")
    return True


AVAILABLE = _install()


class unrolled_threefry:  # noqa: N801 (used like a decorator)
    """``jitted`` whose calls and ``.lower`` lower threefry unrolled on CPU.

    Args:
      jitted: a ``jax.jit`` function. Its results are bitwise what it returns unwrapped.
    """

    def __init__(self, jitted: Callable):
        self.jitted = jitted

    def _within(self, method: Callable, *args: Any, **kwargs: Any) -> Any:
        token = _UNROLLED.set(True)
        try:
            return method(*args, **kwargs)
        finally:
            _UNROLLED.reset(token)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._within(self.jitted, *args, **kwargs)

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        return self._within(self.jitted.lower, *args, **kwargs)
