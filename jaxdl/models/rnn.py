"""Stacked, optionally bidirectional recurrent layers over padded batches.

`RNN` runs Elman, LSTM or GRU cells (see `rnn_cells`) over `[batch, time,
features]` with a `mask [batch, time]` (1 real, 0 padding). Padding changes
neither the outputs at real positions nor the final states: the carry is held
at padded steps and the output there is zero. It is jit-friendly: no Python
branching on data, static shapes throughout.

Example:
  >>> rnn = RNN(8, 16, cell="gru", num_layers=2, bidirectional=True, rngs=nnx.Rngs(0))
  >>> outputs, final = rnn(x, mask, return_final_state=True)  # [B,T,32], [B,32]
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdl.errors import ConfigError
from jaxdl.models.rnn_cells import Carry, carry_hidden, make_cell, masked_scan_directions, zero_carry

# Per layer, one carry per direction: ((fwd,), ...) or ((fwd, bwd), ...).
LayerCarries = tuple[tuple[Carry, ...], ...]


class RNN(nnx.Module):
    """A stack of recurrent layers, each forward-only or bidirectional.

    Attributes:
      forward_cells: one cell per layer, reading left to right.
      backward_cells: one cell per layer reading right to left (empty unless
        bidirectional); it starts at each sequence's own last real token.
      dropout: applied between layers (not after the last), as in PyTorch;
        its `deterministic` attribute is set by the trainer.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        *,
        cell: str = "lstm",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        rngs: nnx.Rngs,
    ):
        """Creates the layers.

        Args:
          in_features: input size F of `x [B, T, F]`.
          hidden_features: hidden size H per direction.
          cell: "lstm", "gru" or "rnn" (Elman).
          num_layers: number of stacked layers (>= 1).
          bidirectional: add a right-to-left cell per layer; outputs are then
            the concatenation `[forward, backward]`, size 2H.
          dropout: dropout rate between stacked layers.
          rngs: parameter initialisation RNGs.
        """
        if num_layers < 1:
            raise ConfigError(f"num_layers={num_layers} must be >= 1")
        self.hidden_features = hidden_features
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        self.output_features = directions * hidden_features
        layer_inputs = [in_features] + [self.output_features] * (num_layers - 1)
        self.forward_cells = nnx.List(
            [make_cell(cell, size, hidden_features, rngs=rngs) for size in layer_inputs]
        )
        self.backward_cells = nnx.List(
            [make_cell(cell, size, hidden_features, rngs=rngs) for size in layer_inputs]
            if bidirectional
            else []
        )
        self.dropout = nnx.Dropout(dropout)

    def initial_carries(self, batch_size: int) -> LayerCarries:
        """All-zero carries for every layer and direction, for `run_with_carries`."""
        return tuple(
            tuple(zero_carry(c, batch_size) for c in self._layer_cells(i))
            for i in range(self.num_layers)
        )

    def _layer_cells(self, layer: int) -> Sequence[nnx.Module]:
        if self.bidirectional:
            return (self.forward_cells[layer], self.backward_cells[layer])
        return (self.forward_cells[layer],)

    def run_with_carries(
        self,
        x: jax.Array,
        mask: jax.Array | None = None,
        carries: LayerCarries | None = None,
        *,
        rngs: nnx.Rngs | None = None,
    ) -> tuple[jax.Array, LayerCarries]:
        """Runs all layers from given carries and returns the carries reached.

        Use it to continue a sequence step by step (e.g. sampling from a
        language model): feed `x [B, 1, F]` with the carries the last call gave.

        Args:
          x: inputs `[B, T, F]`.
          mask: `[B, T]`, 1 real, 0 padding; None means all real.
          carries: per layer, per direction carries (from `initial_carries` or
            a previous call); None means zeros.
          rngs: dropout RNGs (a `dropout` stream), needed only when dropout is active.

        Returns:
          `(outputs [B, T, output_features], final carries)`. Outputs are zero at
          padded positions; each forward carry is the state at the row's last
          real token, each backward carry the state after its first token.
        """
        batch_size = x.shape[0]
        if mask is None:
            mask = jnp.ones(x.shape[:2], x.dtype)
        if carries is None:
            carries = self.initial_carries(batch_size)
        layer_input = x
        final_carries = []
        for layer in range(self.num_layers):
            if layer > 0:
                layer_input = self.dropout(layer_input, rngs=rngs)
            cells = self._layer_cells(layer)
            # Both directions in one scan; the second (backward) cell reads time reversed.
            direction_carries, direction_outputs = masked_scan_directions(
                cells, layer_input, mask, carries[layer], reverse=(False, True)[: len(cells)]
            )
            layer_input = jnp.concatenate(direction_outputs, axis=-1)
            final_carries.append(tuple(direction_carries))
        return layer_input, tuple(final_carries)

    def __call__(
        self,
        x: jax.Array,
        mask: jax.Array | None = None,
        *,
        rngs: nnx.Rngs | None = None,
        return_final_state: bool = False,
    ) -> jax.Array | tuple[jax.Array, jax.Array]:
        """Runs the stack from zero state.

        Args:
          x: inputs `[B, T, F]`.
          mask: `[B, T]`, 1 real, 0 padding (padding must be on the right for
            the backward direction's final state to mean "after the first
            token"; outputs are padding-invariant for any mask); None = all real.
          rngs: dropout RNGs, needed only when dropout is active.
          return_final_state: also return the top layer's final hidden state.

        Returns:
          outputs `[B, T, output_features]` (zero at padding), and if
          `return_final_state`, the final hidden `h [B, output_features]`: the
          forward state at each row's last real token, concatenated (when
          bidirectional) with the backward state at its first token.
        """
        outputs, carries = self.run_with_carries(x, mask, rngs=rngs)
        if not return_final_state:
            return outputs
        final_hidden = jnp.concatenate([carry_hidden(c) for c in carries[-1]], axis=-1)
        return outputs, final_hidden
