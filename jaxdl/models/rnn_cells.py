"""Recurrent cells (Elman, LSTM, GRU) and a masked scan that runs one over time.

The cells are Flax NNX's own (`nnx.SimpleCell`, `nnx.LSTMCell`, `nnx.GRUCell`);
this module adds what they lack for variable-length batches: a scan over
`[batch, time, features]` that, at padded positions (mask 0), holds the carry
and writes a zero output. Because the carry is held, padding never reaches a
real position in either direction, and the final carry of a sequence is its
state at its own last real token.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdl.errors import ConfigError
from jaxdl.ops.lstm_scan import fused_weights, is_standard_lstm, lstm_sequence

# A cell's carry: an array [B, H] (Elman, GRU) or a tuple (c, h) (LSTM).
Carry = Any

CELL_KINDS = ("lstm", "gru", "rnn")


def make_cell(kind: str, in_features: int, hidden_features: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """Builds one recurrent cell by name.

    Args:
      kind: "lstm" (nnx.LSTMCell), "gru" (nnx.GRUCell) or "rnn" (Elman,
        nnx.SimpleCell with tanh).
      in_features: size of each time step's input.
      hidden_features: size of the hidden state.
      rngs: parameter initialisation RNGs.

    Returns:
      The cell; `cell(carry, x_t) -> (new_carry, h_t)` with `x_t [B, in_features]`.

    Raises:
      ConfigError: `kind` is not one of CELL_KINDS.
    """
    if kind == "lstm":
        return nnx.LSTMCell(in_features, hidden_features, rngs=rngs)
    if kind == "gru":
        return nnx.GRUCell(in_features, hidden_features, rngs=rngs)
    if kind in ("rnn", "elman"):
        return nnx.SimpleCell(in_features, hidden_features, rngs=rngs)
    raise ConfigError(f"cell={kind!r} is not a recurrent cell; expected one of {CELL_KINDS}")


def zero_carry(cell: nnx.Module, batch_size: int, dtype: Any = jnp.float32) -> Carry:
    """The all-zero initial carry of `cell` for a batch.

    Built directly (not via `cell.initialize_carry`, which insists on an RNG
    stream even for zeros).

    Returns:
      `(c, h)` each `[batch_size, H]` for an LSTM cell, else `h [batch_size, H]`.
    """
    zeros = jnp.zeros((batch_size, cell.hidden_features), dtype)
    if isinstance(cell, nnx.LSTMCell):
        return (zeros, zeros)
    return zeros


def carry_hidden(carry: Carry) -> jax.Array:
    """The hidden state `h [B, H]` of a carry (the second half of an LSTM's `(c, h)`)."""
    return carry[1] if isinstance(carry, tuple) else carry


def masked_scan(
    cell: nnx.Module,
    inputs: jax.Array,
    mask: jax.Array,
    initial_carry: Carry,
    *,
    reverse: bool = False,
) -> tuple[Carry, jax.Array]:
    """Runs `cell` over time, skipping padded steps.

    At a step where `mask[b, t] == 0` row `b` keeps its carry unchanged and its
    output is zero. Running with `reverse=True` over a right-padded batch
    therefore starts each sequence at its own last real token: the trailing
    padding leaves the initial carry untouched, exactly as if the sequence had
    been reversed within its length.

    Args:
      cell: a recurrent cell from `make_cell`.
      inputs: `[B, T, F]` inputs.
      mask: `[B, T]`, 1 at real positions, 0 at padding (any float/bool dtype).
      initial_carry: the carry to start from (e.g. `zero_carry(cell, B)`).
      reverse: run from the last time step to the first.

    Returns:
      `(final_carry, outputs)`: the carry after the last real step of each row
      (for `reverse=True`, after its first token), and outputs `[B, T, H]`
      with zeros at padded positions.
    """
    carries, outputs = masked_scan_directions((cell,), inputs, mask, (initial_carry,), (reverse,))
    return carries[0], outputs[0]


def masked_scan_directions(
    cells: Sequence[nnx.Module],
    inputs: jax.Array,
    mask: jax.Array,
    initial_carries: Sequence[Carry],
    reverse: Sequence[bool],
) -> tuple[tuple[Carry, ...], tuple[jax.Array, ...]]:
    """`masked_scan` for several cells reading the same inputs, in one loop.

    A bidirectional layer runs its forward and backward cells in the same
    scan: one loop instead of two, and the two independent matmuls of a step
    can run together. A reversed cell reads the time-flipped inputs, which is
    what `lax.scan(..., reverse=True)` does.

    Args:
      cells: the cells, e.g. `(forward_cell, backward_cell)`.
      inputs: `[B, T, F]` inputs shared by all cells.
      mask: `[B, T]`, 1 real, 0 padding.
      initial_carries: one initial carry per cell.
      reverse: per cell, whether it reads from the last step to the first.

    Returns:
      `(final_carries, outputs)`, one of each per cell, outputs `[B, T, H]` in
      the original time order and zero at padding.
    """
    time_major_inputs = jnp.swapaxes(inputs, 0, 1)  # [T, B, F]: scan walks axis 0
    if all(is_standard_lstm(cell) for cell in cells):
        return _lstm_directions(cells, time_major_inputs, mask, initial_carries, reverse)
    time_major_mask = jnp.swapaxes(mask, 0, 1).astype(inputs.dtype)[..., None]  # [T, B, 1]
    per_cell_xs = tuple(
        (time_major_inputs[::-1], time_major_mask[::-1]) if backwards else (time_major_inputs, time_major_mask)
        for backwards in reverse
    )

    def step(carries: tuple[Carry, ...], xs: tuple) -> tuple[tuple[Carry, ...], tuple[jax.Array, ...]]:
        new_carries, outputs = [], []
        for cell, carry, (x_t, m_t) in zip(cells, carries, xs):
            new_carry, h_t = cell(carry, x_t)
            keep = m_t > 0
            # `where`, not a blend m*new + (1-m)*old, so held values stay bit-exact.
            new_carries.append(jax.tree.map(lambda new, old: jnp.where(keep, new, old), new_carry, carry))
            outputs.append(jnp.where(keep, h_t, jnp.zeros_like(h_t)))
        return tuple(new_carries), tuple(outputs)

    final_carries, outputs = jax.lax.scan(step, tuple(initial_carries), per_cell_xs)
    outputs = tuple(
        jnp.swapaxes(out[::-1] if backwards else out, 0, 1) for out, backwards in zip(outputs, reverse)
    )
    return final_carries, outputs


def _lstm_directions(cells, time_major_inputs, mask, initial_carries, reverse):
    """`masked_scan_directions` for LSTM cells, one `lstm_sequence` per direction.

    Same results as scanning the cells step by step (up to float summation
    order), much faster: see `jaxdl.ops.lstm_scan`.
    """
    keep = jnp.swapaxes(mask, 0, 1)[..., None] > 0  # [T, B, 1]
    carries, outputs = [], []
    for cell, carry, backwards in zip(cells, initial_carries, reverse):
        xs, keep_dir = (time_major_inputs[::-1], keep[::-1]) if backwards else (time_major_inputs, keep)
        final, out = lstm_sequence(*fused_weights(cell), xs, keep_dir, *carry)
        carries.append(final)
        outputs.append(jnp.swapaxes(out[::-1] if backwards else out, 0, 1))
    return tuple(carries), tuple(outputs)
