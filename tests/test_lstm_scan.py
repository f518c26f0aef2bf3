"""The hand-differentiated LSTM equals nnx.LSTMCell scanned step by step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdl.kernels import lstm_recurrence
from jaxdl.models import rnn_cells
from jaxdl.ops.lstm_scan import is_standard_lstm

# Row 1 is right-padded, row 2 has a hole in the middle: held steps must pass
# the carry and its gradient through unchanged wherever they are.
MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 1]], np.float32)
# 9 rows: on 2 threads the C++ loops split them 5 + 4 (a full register tile and a
# single-row tail); every third row is all padding from step 2 on.
MASK9 = np.tile(MASK, (3, 1))
MASK9[::3, 2:] = 0
NATIVE = lstm_recurrence.LIBRARY.available()


def _cell_scan(cell, xs, mask, carry, reverse):
    """The reference: nnx.LSTMCell one step at a time, carry held at padding."""
    inputs, keep = jnp.swapaxes(xs, 0, 1), jnp.swapaxes(mask, 0, 1)[..., None] > 0
    if reverse:
        inputs, keep = inputs[::-1], keep[::-1]

    def step(carry, step_inputs):
        x_t, keep_t = step_inputs
        new_carry, h_t = cell(carry, x_t)
        held = jax.tree.map(lambda new, old: jnp.where(keep_t, new, old), new_carry, carry)
        return held, jnp.where(keep_t, h_t, 0.0)

    final, outputs = jax.lax.scan(step, carry, (inputs, keep))
    return final, jnp.swapaxes(outputs[::-1] if reverse else outputs, 0, 1)


def _fused_scan(cell, xs, mask, carry, reverse):
    finals, outputs = rnn_cells.masked_scan_directions((cell,), xs, mask, (carry,), (reverse,))
    return finals[0], outputs[0]


@pytest.mark.parametrize("hidden,mask", [(7, MASK), (16, MASK9)])  # XLA loops; C++ loops
@pytest.mark.parametrize("reverse", [False, True])
def test_outputs_final_state_and_every_gradient_match_the_cell(reverse, hidden, mask):
    if hidden % 16 == 0 and not NATIVE:
        pytest.skip(f"no native LSTM kernel: {lstm_recurrence.LIBRARY.unavailable_reason()}")
    batch = len(mask)
    cell = nnx.LSTMCell(5, hidden, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(cell)
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.normal(size=(batch, 6, 5)), jnp.float32)
    carry = tuple(jnp.asarray(rng.normal(size=(batch, hidden)), jnp.float32) for _ in range(2))
    weights = jnp.asarray(rng.normal(size=(batch, 6, hidden)), jnp.float32)
    jaxpr = str(jax.make_jaxpr(lambda p, x, c: _fused_scan(
        nnx.merge(graphdef, p), x, mask, c, reverse))(params, xs, carry))
    assert ("jaxdl_lstm_forward" in jaxpr) == (hidden % 16 == 0)  # which loops ran

    def loss(run):
        def value(params, xs, carry):
            (c, h), outputs = run(nnx.merge(graphdef, params), xs, mask, carry, reverse)
            return jnp.sum(outputs * weights) + jnp.sum(jnp.sin(c)) + jnp.sum(h ** 2)
        return value

    expected = _cell_scan(cell, xs, mask, carry, reverse)
    got = _fused_scan(cell, xs, mask, carry, reverse)
    for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
        np.testing.assert_allclose(g, e, atol=2e-6)
    # Padded outputs are exactly zero, as in masked_scan.
    assert np.all(np.asarray(got[1])[mask == 0] == 0)
    want = jax.grad(loss(_cell_scan), argnums=(0, 1, 2))(params, xs, carry)
    have = jax.grad(loss(_fused_scan), argnums=(0, 1, 2))(params, xs, carry)
    assert jax.tree.structure(want) == jax.tree.structure(have)
    for w, h in zip(jax.tree.leaves(want), jax.tree.leaves(have)):
        np.testing.assert_allclose(h, w, atol=2e-5, rtol=1e-5)
    # No gradient reaches a padded input.
    assert np.all(np.asarray(have[1])[mask == 0] == 0)


@pytest.mark.parametrize("hidden", [3, 16])  # XLA loops; C++ loops where available
def test_held_carry_is_bit_exact_through_padding(hidden):
    cell = nnx.LSTMCell(4, hidden, rngs=nnx.Rngs(1))
    xs = jnp.ones((1, 5, 4))
    mask = np.array([[1, 1, 0, 0, 0]], np.float32)
    carry = (jnp.zeros((1, hidden)), jnp.zeros((1, hidden)))
    (c, h), outputs = _fused_scan(cell, xs, mask, carry, False)
    assert np.array_equal(np.asarray(h), np.asarray(outputs[:, 1]))


def test_only_sigmoid_tanh_lstm_cells_take_the_fused_path():
    assert is_standard_lstm(nnx.LSTMCell(2, 3, rngs=nnx.Rngs(0)))
    assert not is_standard_lstm(nnx.LSTMCell(2, 3, gate_fn=jax.nn.hard_sigmoid,
                                             rngs=nnx.Rngs(0)))
    assert not is_standard_lstm(nnx.GRUCell(2, 3, rngs=nnx.Rngs(0)))
