"""`lstm_scan`'s two time loops as C++ kernels (`lstm_recurrence.cc`), when usable.

XLA:CPU runs a while loop's body sequentially on one thread, so the LSTM's
small per-step `[B, H] x [H, 4H]` product and its two time loops dominated the
training step (figures: docs/SEQUENCE_RESULTS.md). The kernels give each
thread its own batch rows for the whole sequence (rows of an LSTM never meet),
with a register-tiled AVX-512 or AVX2 + FMA product (one build each, chosen
by `jaxdl.kernels.isa`) and Eigen's tanh approximation, so the results equal the
XLA loops up to float rounding (each build repeats its own bits).

Used for float32 on CPU when the hidden size is a multiple of 16, the CPU has
AVX-512F or AVX2 + FMA, and the library builds (`build.py`); otherwise the XLA loops.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxdl.kernels.build import NativeLibrary, ffi_primitive, row_partitioned

FORWARD, BACKWARD = "jaxdl_lstm_forward", "jaxdl_lstm_backward"


LIBRARY = NativeLibrary("lstm_recurrence.cc", {FORWARD: "JaxdlLstmForward",
                                                BACKWARD: "JaxdlLstmBackward"},
                        builds=("avx512", "avx2"))


def _shaped(like, shape):
    return jax.core.ShapedArray(shape, like.dtype)


_FORWARD_RULE = "t b z, t b, b h, b h, h z, z -> t b z, t b h, t b h"
_BACKWARD_RULE = "t b z, t b y, t b, t b h, b h, b h, z h -> t b z, b h, b h"



def _forward_avals(projected, keep, c0, h0, w_h, b):
    """gate tanh [T, B, 4H], c and h after each step [T, B, H]."""
    carries = projected.shape[:2] + c0.shape[1:]
    return [_shaped(projected, projected.shape), _shaped(c0, carries), _shaped(h0, carries)]


def _backward_avals(factors, carry_factors, keep, d_out, d_c, d_h, w_h_t):
    """d_z [T, B, 4H], d_c0 and d_h0 [B, H]."""
    return [_shaped(factors, factors.shape), _shaped(d_c, d_c.shape), _shaped(d_h, d_h.shape)]


_forward_p = ffi_primitive(FORWARD, _forward_avals, sharding_rule=_FORWARD_RULE,
                           replicated_factors=("t", "h", "z"), multiple_results=True)
_backward_p = ffi_primitive(BACKWARD, _backward_avals, sharding_rule=_BACKWARD_RULE,
                            replicated_factors=("t", "y", "h", "z"), multiple_results=True)

# The batch dim of each operand and result (None: replicated, e.g. weights).
_forward = row_partitioned(_forward_p, rows_in=(1, 1, 0, 0, None, None), rows_out=(1, 1, 1))
_backward = row_partitioned(_backward_p, rows_in=(1, 1, 1, 1, 0, 0, None), rows_out=(1, 0, 0))


def usable(*arrays: jax.Array, hidden: int, steps: int) -> bool:
    """Whether the kernels apply: CPU, float32 throughout, H % 16 == 0, T >= 1."""
    return (jax.default_backend() == "cpu" and hidden % 16 == 0 and steps >= 1
            and all(a.dtype == jnp.float32 for a in arrays) and LIBRARY.available())


@jax.jit
def forward(projected, keep, c0, h0, w_h, b):
    """The forward loop.

    Args:
      projected: `x W_i`, `[T, B, 4H]`.
      keep: `[T, B, 1]` bool.
      c0, h0: `[B, H]`; w_h `[H, 4H]`; b `[4H]`.
    Returns:
      `(t, c, h)`: the gates' tanh `[T, B, 4H]` and the carry after each step
      `[T, B, H]` each, as `lstm_scan._forward`'s loop stores them.
    """
    LIBRARY.require()
    steps, batch = keep.shape[:2]
    return _forward(projected, keep.reshape(steps, batch).astype(jnp.float32), c0, h0, w_h, b)


@jax.jit
def backward(factors, carry_factors, keep, d_outputs, d_c_final, d_h_final, w_h):
    """The backward loop: `(d_z [T, B, 4H], d_c0 [B, H], d_h0 [B, H])`.

    Args are `lstm_scan._lstm_bwd`'s: factors `[T, B, 4H]`, carry_factors
    `[T, B, 2H]`, keep `[T, B, 1]` (0 or 1), d_outputs `[T, B, H]`, the final
    carry's gradients `[B, H]`, and w_h `[H, 4H]`.
    """
    LIBRARY.require()
    steps, batch = keep.shape[:2]
    return _backward(factors, carry_factors, keep.reshape(steps, batch).astype(jnp.float32),
                     d_outputs, d_c_final, d_h_final, w_h.T)
