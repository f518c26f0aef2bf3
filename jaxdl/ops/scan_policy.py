"""How many training steps one dispatch may scan, and whether eval batches may be scanned.

XLA's CPU backend runs a convolution inside a while loop (`lax.scan`) an order
of magnitude slower than at the top level (figures in docs/VISION_RESULTS.md).
k single dispatches give bitwise the same result, so on CPU a train step that
convolves with XLA runs one step per dispatch, and evaluation runs one dispatch
per batch. Convolutions on jaxdl's native CPU kernels (`jaxdl.kernels.conv_direct`,
custom calls) scan at full speed, so their steps keep k. `jaxdl.train.loop`
asks these questions and passes the answers, plain numbers, to the steps.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import jax

XLA_CONVOLUTION = "conv_general_dilated"


def _jaxpr_uses(jaxpr, primitive: str) -> bool:
    """Whether ``primitive`` appears in ``jaxpr`` or any jaxpr nested in it."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == primitive:
            return True
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", param)
            if hasattr(inner, "eqns") and _jaxpr_uses(inner, primitive):
                return True
            if isinstance(param, (list, tuple)):
                for p in param:
                    p = getattr(p, "jaxpr", p)
                    if hasattr(p, "eqns") and _jaxpr_uses(p, primitive):
                        return True
    return False


def steps_per_dispatch(steps_per_loop: int, train_step: Callable, state: Any,
                       make_batch: Callable, arrays: Any, step_input: Any) -> int:
    """``steps_per_loop``, or 1 where a scanned loop would be slow on XLA:CPU.

    Args:
      steps_per_loop: the configured ``train.steps_per_loop``.
      train_step: ``train_step(state, batch) -> (state, stats)``.
      state, make_batch, arrays, step_input: what one step is traced with
        (``make_batch(arrays, step_input)`` gives the batch); traced abstractly,
        nothing runs.
    Returns:
      The steps per dispatch (a warning is logged when it is lowered to 1).
    """
    if steps_per_loop == 1 or jax.default_backend() != "cpu":
        return steps_per_loop
    batch = jax.eval_shape(make_batch, arrays, step_input)
    jaxpr = jax.make_jaxpr(train_step)(state, batch).jaxpr
    if _jaxpr_uses(jaxpr, XLA_CONVOLUTION):
        logging.getLogger("jaxdl").warning(
            "train.steps_per_loop=%d ignored on CPU: this step convolves, and XLA:CPU runs "
            "convolutions inside a scanned loop ~10-25x slower; dispatching one step at a "
            "time instead (same results)", steps_per_loop)
        return 1
    return steps_per_loop


def eval_batches_scannable() -> bool:
    """Whether all eval batches may run in one dispatch under ``lax.scan``: not on CPU."""
    return jax.default_backend() != "cpu"
