"""A masked LSTM over a whole sequence, with its gradient written by hand.

`nnx.LSTMCell` makes eight small matmuls per time step, and differentiating a
`lax.scan` of it makes JAX accumulate every weight gradient inside the loop (a
`[H, H]` outer product and add per gate per step). On a CPU those small
operations are most of an LSTM tagger's step (figures in benchmarks/RESULTS.md).

`lstm_sequence` computes the same function with

  * one `[T*B, F] x [F, 4H]` matmul for the input projection of every step,
  * one `[B, H] x [H, 4H]` matmul per step (the four gates together),
  * a hand-written backward pass whose loop only carries what the recurrence
    needs (`dz_t @ W_h^T`); the weight and input gradients are three large
    matmuls over all steps after the loop.

The gates follow `nnx.LSTMCell` exactly (order i, f, g, o; `z = x W_i + (h W_h +
b)`), so a cell's parameters are used as they are; results equal the cell
scanned step by step up to float summation order.

Masking matches `rnn_cells.masked_scan`: where `keep[t, b]` is false the carry is
held (bit-exact) and the output is zero, and no gradient reaches that step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from flax import nnx

from jaxdl.kernels import lstm_recurrence


def fused_weights(cell: nnx.LSTMCell) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The cell's gate parameters side by side, in the gate order i, f, g, o.

    Returns:
      `(w_i [F, 4H], w_h [H, 4H], b [4H])`; differentiable (the concatenation's
      gradient splits back onto the cell's own parameters).
    """
    inputs = (cell.ii, cell.if_, cell.ig, cell.io)
    hidden = (cell.hi, cell.hf, cell.hg, cell.ho)
    w_i = jnp.concatenate([layer.kernel[...] for layer in inputs], axis=1)
    w_h = jnp.concatenate([layer.kernel[...] for layer in hidden], axis=1)
    b = jnp.concatenate([layer.bias[...] for layer in hidden], axis=0)
    return w_i, w_h, b


def is_standard_lstm(cell) -> bool:
    """Whether `cell` is an `nnx.LSTMCell` with the usual sigmoid/tanh gates."""
    return (isinstance(cell, nnx.LSTMCell) and cell.gate_fn is nnx.sigmoid
            and cell.activation_fn is nnx.tanh)


def _gate_scale(hidden: int, dtype) -> jax.Array:
    """`[4H]`: 0.5 for the sigmoid gates i, f, o and 1 for g (see `_gates`)."""
    half, one = jnp.full((hidden,), 0.5, dtype), jnp.ones((hidden,), dtype)
    return jnp.concatenate([half, half, one, half])


def _gates(t: jax.Array, hidden: int):
    """Gates i, f, g, o `[..., H]` from `t = tanh(z * _gate_scale)` `[..., 4H]`.

    `sigmoid(x) = (tanh(x / 2) + 1) / 2`: one tanh over all four gates' `[B, 4H]`
    pre-activations instead of a sigmoid over three slices and a tanh over the
    fourth (a tanh is the cheaper of the two on XLA:CPU; benchmarks/RESULTS.md).
    """
    i, f = 0.5 * t[..., :hidden] + 0.5, 0.5 * t[..., hidden:2 * hidden] + 0.5
    g, o = t[..., 2 * hidden:3 * hidden], 0.5 * t[..., 3 * hidden:] + 0.5
    return i, f, g, o


def _step(w_h, b, scale, c, h, p_t, keep_t):
    """One masked LSTM step with `p_t = x_t W_i`: `(c, h, t)`, `t` the gates' tanh.

    Shapes: c, h [B, H]; p_t [B, 4H]; keep_t [B, 1] bool; t [B, 4H].
    """
    hidden = c.shape[-1]
    # As nnx.LSTMCell sums it: x W_i + (h W_h + b). The bias add fuses into the
    # step's elementwise pass (a separate add over [T, B, 4H] costs more).
    t = jnp.tanh((p_t + (h @ w_h + b[None, :])) * scale[None, :])
    i, f, g, o = _gates(t, hidden)
    new_c = f * c + i * g
    new_h = o * jnp.tanh(new_c)
    # `where`, not a blend, so held values stay bit-exact.
    return jnp.where(keep_t, new_c, c), jnp.where(keep_t, new_h, h), t


def _forward(w_i, w_h, b, xs, keep, c0, h0):
    """Shapes: xs [T, B, F], keep [T, B, 1] bool, c0/h0 [B, H].

    Returns `(final carry, outputs [T, B, H], (t, c, h) stacked over time)`.
    """
    steps, hidden = xs.shape[0], w_h.shape[0]
    # An einsum, not a [T*B, F] reshape: merging T with B would force a batch
    # sharded over devices to be gathered onto every one of them.
    projected = jnp.einsum("tbf,fz->tbz", xs, w_i)
    if lstm_recurrence.usable(projected, c0, h0, w_h, b, hidden=hidden, steps=steps):
        t, c, h = lstm_recurrence.forward(projected, keep, c0, h0, w_h, b)
        final = (c[-1], h[-1])
    else:
        final, (t, c, h) = _forward_loop(projected, keep, c0, h0, w_h, b)
    outputs = jnp.where(keep, h, jnp.zeros_like(h))
    return final, outputs, (t, c, h)


def _forward_loop(projected, keep, c0, h0, w_h, b):
    """The forward recurrence in XLA: `(final carry, (t, c, h) stacked over time)`."""
    steps, batch, _ = projected.shape
    hidden = w_h.shape[0]
    scale = _gate_scale(hidden, projected.dtype)

    def body(step, state):
        # Step `step` reads its projection from `gates` and writes its tanh over
        # it, in place: no second [T, B, 4H] buffer to zero and fill (a scan's
        # stacked outputs are zero-initialised every call).
        c, h, gates, carries = state
        p_t = lax.dynamic_index_in_dim(gates, step, keepdims=False)
        keep_t = lax.dynamic_index_in_dim(keep, step, keepdims=False)
        c, h, t = _step(w_h, b, scale, c, h, p_t, keep_t)
        gates = lax.dynamic_update_index_in_dim(gates, t, step, 0)
        # c and h side by side: one in-place update per step instead of two.
        carries = lax.dynamic_update_index_in_dim(
            carries, jnp.concatenate([c, h], axis=-1), step, 0)
        return c, h, gates, carries

    carries = jnp.zeros((steps, batch, 2 * hidden), projected.dtype)
    c_final, h_final, t, carries = lax.fori_loop(0, steps, body, (c0, h0, projected, carries))
    return (c_final, h_final), (t, carries[..., :hidden], carries[..., hidden:])


@jax.custom_vjp
def lstm_sequence(w_i, w_h, b, xs, keep, c0, h0):
    """Run a masked LSTM over time.

    Args:
      w_i: input kernels `[F, 4H]` (gates i, f, g, o side by side).
      w_h: recurrent kernels `[H, 4H]`.
      b: bias `[4H]`.
      xs: time-major inputs `[T, B, F]`.
      keep: `[T, B, 1]` bool; False holds the carry and zeroes the output.
      c0, h0: initial carry `[B, H]` each.
    Returns:
      `((c_T, h_T), outputs [T, B, H])`.
    """
    final, outputs, _ = _forward(w_i, w_h, b, xs, keep, c0, h0)
    return final, outputs


def _lstm_fwd(w_i, w_h, b, xs, keep, c0, h0):
    final, outputs, saved = _forward(w_i, w_h, b, xs, keep, c0, h0)
    return (final, outputs), (w_i, w_h, xs, keep, c0, h0, saved)


def _lstm_bwd(residuals, cotangents):
    w_i, w_h, xs, keep, c0, h0, (t, c, h) = residuals
    (d_c_final, d_h_final), d_outputs = cotangents
    hidden = w_h.shape[0]
    c_prev = jnp.concatenate([c0[None], c[:-1]])  # the carry each step started from
    h_prev = jnp.concatenate([h0[None], h[:-1]])
    # Everything that does not depend on the incoming gradient is computed for all
    # steps at once, outside the loop: on a CPU each operation inside the loop
    # costs a dispatch per step, so the loop keeps only what the recurrence needs.
    i, f, g, o = _gates(t, hidden)
    tanh_c = jnp.tanh(c)  # c is the step's new cell state wherever keep
    keep = keep.astype(t.dtype)
    d_c_from_h = o * (1 - tanh_c * tanh_c)  # d c_new / d h_new
    # d z = [d_c_new, d_c_new, d_c_new, d_h_new] * factors, gate by gate. Step t
    # overwrites factors[t] with its d z (in place, as in the forward pass).
    factors = jnp.concatenate([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g),
                               tanh_c * o * (1 - o)], axis=-1)
    carry_factors = jnp.concatenate([d_c_from_h, f], axis=-1)  # [T, B, 2H]: one slice per step
    steps = xs.shape[0]
    if lstm_recurrence.usable(factors, d_outputs, d_c_final, d_h_final, w_h, hidden=hidden,
                          steps=steps):
        d_z, d_c0, d_h0 = lstm_recurrence.backward(factors, carry_factors, keep, d_outputs,
                                               d_c_final, d_h_final, w_h)
        return _input_and_weight_grads(w_i, xs, h_prev, d_z) + (None, d_c0, d_h0)
    w_h_t = w_h.T

    def body(k, state):
        d_c, d_h, d_z = state  # gradients w.r.t. the carry leaving step t
        t = steps - 1 - k
        keep_t = lax.dynamic_index_in_dim(keep, t, keepdims=False)
        d_out_t = lax.dynamic_index_in_dim(d_outputs, t, keepdims=False)
        factors_t = lax.dynamic_index_in_dim(d_z, t, keepdims=False)
        carry_factors_t = lax.dynamic_index_in_dim(carry_factors, t, keepdims=False)
        d_c_from_h_t, f_t = carry_factors_t[:, :hidden], carry_factors_t[:, hidden:]
        # A held step (keep 0) passes its carry gradient straight through.
        d_new_h = keep_t * (d_h + d_out_t)
        d_new_c = keep_t * d_c + d_new_h * d_c_from_h_t
        d_z_t = jnp.concatenate([d_new_c, d_new_c, d_new_c, d_new_h], axis=-1) * factors_t
        d_c_prev = d_new_c * f_t + (1 - keep_t) * d_c
        d_h_prev = d_z_t @ w_h_t + (1 - keep_t) * d_h
        return d_c_prev, d_h_prev, lax.dynamic_update_index_in_dim(d_z, d_z_t, t, 0)

    d_c0, d_h0, d_z = lax.fori_loop(0, steps, body, (d_c_final, d_h_final, factors))
    return _input_and_weight_grads(w_i, xs, h_prev, d_z) + (None, d_c0, d_h0)


def _input_and_weight_grads(w_i, xs, h_prev, d_z):
    """`(d_w_i, d_w_h, d_b, d_xs)` from every step's `d_z [T, B, 4H]`: large matmuls."""
    steps, batch, features = xs.shape
    # The weight gradients keep their [T*B, ...] GEMMs: an einsum sums in another
    # order, and these exact bits are what the documented results were run with.
    d_z_flat = d_z.reshape(steps * batch, d_z.shape[-1])
    d_w_i = xs.reshape(steps * batch, features).T @ d_z_flat
    d_w_h = h_prev.reshape(steps * batch, h_prev.shape[-1]).T @ d_z_flat
    d_b = jnp.sum(d_z, axis=(0, 1))
    d_xs = jnp.einsum("tbz,fz->tbf", d_z, w_i)  # rows stay on their devices
    return d_w_i, d_w_h, d_b, d_xs


lstm_sequence.defvjp(_lstm_fwd, _lstm_bwd)
