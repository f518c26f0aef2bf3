"""The C++ LSTM loops: when they apply, NaN, sharded batches, and the XLA fallback."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import check_on_forced_devices

from jaxdl.kernels import lstm_recurrence
from jaxdl.ops.lstm_scan import lstm_sequence

pytestmark = pytest.mark.skipif(
    not lstm_recurrence.LIBRARY.available(),
    reason=f"no native LSTM: {lstm_recurrence.LIBRARY.unavailable_reason()}")


def _inputs(steps=5, batch=6, features=3, hidden=16, dtype=jnp.float32, seed=0):
    rng = np.random.default_rng(seed)
    w_i = jnp.asarray(rng.normal(size=(features, 4 * hidden)) * 0.3, dtype)
    w_h = jnp.asarray(rng.normal(size=(hidden, 4 * hidden)) * 0.3, dtype)
    b = jnp.asarray(rng.normal(size=(4 * hidden,)) * 0.3, dtype)
    xs = jnp.asarray(rng.normal(size=(steps, batch, features)), dtype)
    keep = jnp.ones((steps, batch, 1), bool)
    zeros = jnp.zeros((batch, hidden), dtype)
    return w_i, w_h, b, xs, keep, zeros, zeros


@pytest.mark.parametrize("hidden,dtype,steps,native", [
    (16, jnp.float32, 5, True),
    (12, jnp.float32, 5, False),   # hidden not a multiple of 16
    (16, jnp.bfloat16, 5, False),  # not float32
])
def test_the_kernels_apply_to_float32_with_hidden_a_multiple_of_16(hidden, dtype, steps, native):
    args = _inputs(steps=steps, hidden=hidden, dtype=dtype)
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda *a: jnp.sum(lstm_sequence(*a)[1]),
                                        argnums=(0, 1)))(*args))
    assert ("jaxdl_lstm_forward" in jaxpr) == native
    assert ("jaxdl_lstm_backward" in jaxpr) == native


def test_an_empty_batch_gives_empty_outputs_and_zero_weight_gradients():
    w_i, w_h, b, xs, keep, c0, h0 = _inputs(batch=0)
    (c, h), outputs = lstm_sequence(w_i, w_h, b, xs, keep, c0, h0)
    assert c.shape == h.shape == (0, 16) and outputs.shape == (5, 0, 16)
    grad = jax.grad(lambda w: jnp.sum(lstm_sequence(w_i, w, b, xs, keep, c0, h0)[1]))(w_h)
    assert np.array_equal(np.asarray(grad), np.zeros(w_h.shape, np.float32))


def test_a_nan_input_reaches_the_outputs_and_gradients():
    w_i, w_h, b, xs, keep, c0, h0 = _inputs()
    xs = xs.at[2, 1, 0].set(jnp.nan)

    def loss(w_h):
        return jnp.sum(lstm_sequence(w_i, w_h, b, xs, keep, c0, h0)[1])

    _, outputs = lstm_sequence(w_i, w_h, b, xs, keep, c0, h0)
    outputs = np.asarray(outputs)
    assert np.isnan(outputs[2:, 1]).all()    # row 1 from step 2 on
    assert np.isfinite(outputs[:2]).all() and np.isfinite(np.delete(outputs, 1, axis=1)).all()
    assert np.isnan(np.asarray(jax.grad(loss)(w_h))).any()


def test_vmap_loops_over_the_mapped_axis():
    w_i, w_h, b, xs, keep, c0, h0 = _inputs()

    def loss(xs):
        return jnp.sum(jnp.sin(lstm_sequence(w_i, w_h, b, xs, keep, c0, h0)[1]))

    stacked = jnp.stack([xs, 0.5 * xs, -xs])
    values, grads = jax.vmap(jax.value_and_grad(loss))(stacked)
    for k, one in enumerate(stacked):
        value, grad = jax.value_and_grad(loss)(one)
        np.testing.assert_allclose(values[k], value, rtol=1e-6)
        np.testing.assert_allclose(grads[k], grad, rtol=1e-6, atol=1e-7)


SHARDED = '''
import json
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from jaxdl.kernels import lstm_recurrence
from jaxdl.ops.lstm_scan import lstm_sequence
mesh = Mesh(np.array(jax.devices()), ("data",))
rng = np.random.default_rng(0)
w_i, w_h = (jnp.asarray(rng.normal(size=s) * 0.3, jnp.float32) for s in ((3, 64), (16, 64)))
b = jnp.zeros(64)
xs = jnp.asarray(rng.normal(size=(5, 16, 3)), jnp.float32)
keep = jnp.asarray(rng.random((5, 16, 1)) < 0.8)
zeros = jnp.zeros((16, 16))
rows = NamedSharding(mesh, P(None, "data"))
xs_s, keep_s = jax.device_put(xs, rows), jax.device_put(keep, rows)
zeros_s = jax.device_put(zeros, NamedSharding(mesh, P("data")))
def loss(w_h, xs, keep, c0):
    return jnp.sum(jnp.sin(lstm_sequence(w_i, w_h, b, xs, keep, c0, c0)[1]))
step = jax.jit(jax.value_and_grad(loss))
value, grad = step(w_h, xs_s, keep_s, zeros_s)
hlo = step.lower(w_h, xs_s, keep_s, zeros_s).compile().as_text()
lstm_recurrence.usable = lambda *a, **k: False  # the XLA loops, one device's worth
want_value, want_grad = jax.jit(jax.value_and_grad(loss))(w_h, xs, keep, zeros)
# Per device: 16 rows / 8 = 2 (the whole batch would be f32[5,16,64]).
calls = [l for l in hlo.split("\\n") if 'custom_call_target="jaxdl_lstm_forward"' in l]
print(json.dumps({
    "devices": len(jax.devices()),
    "one kernel call": len(calls) == 1,
    "2 rows per device": bool(calls) and calls[0].split(" = ")[1].startswith("(f32[5,2,64]"),
    "same loss": bool(np.allclose(value, want_value, rtol=1e-5)),
    "same gradient": bool(np.allclose(grad, want_grad, rtol=1e-4, atol=1e-5))}))
'''


def test_batch_sharded_rows_run_on_their_own_devices():
    # 8 devices; the kernel ran once, on 2 rows per device; same loss and gradient.
    check_on_forced_devices(SHARDED, {"devices": 8, "one kernel call": True, "2 rows per device": True,
                                      "same loss": True, "same gradient": True})
