"""The C++ LSTM loops: when they apply, NaN, sharded batches, and the XLA fallback."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import check_on_forced_devices

from jaxdl.kernels import isa, lstm_recurrence
from jaxdl.ops.lstm_scan import lstm_sequence

pytestmark = pytest.mark.skipif(
    not lstm_recurrence.LIBRARY.available(),
    reason=f"no native LSTM: {lstm_recurrence.LIBRARY.unavailable_reason()}")


def _builds_here() -> list[str]:
    """The LSTM builds this CPU runs (the first is the one this process loaded)."""
    if not lstm_recurrence.LIBRARY.available():
        return []
    return [b for b in isa.runnable(isa.cpu_features()) if b in lstm_recurrence.LIBRARY.builds]


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
from jaxdl.kernels import isa, lstm_recurrence
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


def build_checks() -> dict:
    """The loaded build against the XLA loops: outputs, final carry and gradients to
    rounding, bits that repeat. H = 32 (a tail after AVX2's 24-column tiles), 6
    rows (a 4-row and a 2-row tile), some held steps."""
    w_i, w_h, b, xs, _, c0, h0 = _inputs(steps=7, batch=6, hidden=32, seed=3)
    keep = jnp.asarray(np.random.default_rng(4).random((7, 6, 1)) < 0.8)

    def loss(w_i, w_h, b, xs):
        (c, h), outputs = lstm_sequence(w_i, w_h, b, xs, keep, c0, h0)
        return jnp.sum(jnp.sin(outputs)) + jnp.sum(c * h)

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))
    got, again = step(w_i, w_h, b, xs), step(w_i, w_h, b, xs)
    native = "jaxdl_lstm_forward" in str(jax.make_jaxpr(step)(w_i, w_h, b, xs))
    usable, lstm_recurrence.usable = lstm_recurrence.usable, lambda *a, **k: False
    try:  # the XLA loops
        want = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))(w_i, w_h, b, xs)
    finally:
        lstm_recurrence.usable = usable
    flat = [np.asarray(a) for a in jax.tree.leaves(got)]
    return {"build": lstm_recurrence.LIBRARY.build_in_use(), "the kernels ran": native,
            "loss to rounding": bool(np.allclose(got[0], want[0], rtol=1e-5)),
            "gradients to rounding": all(np.allclose(g, w, rtol=1e-4, atol=1e-5) for g, w in
                                         zip(jax.tree.leaves(got[1]), jax.tree.leaves(want[1]))),
            "bits repeat": all(np.array_equal(g, np.asarray(a))
                               for g, a in zip(flat, jax.tree.leaves(again)))}


@pytest.mark.parametrize("build", _builds_here())
def test_every_build_this_cpu_runs_matches_the_xla_loops_and_repeats_its_bits(build, monkeypatch):
    # The build a process loads is fixed at its first kernel call: this process's
    # own build here, each lower one in a process started with JAXDL_NATIVE_ISA.
    if build == lstm_recurrence.LIBRARY.build_in_use():
        assert build_checks() == {"build": build, "the kernels ran": True, "loss to rounding": True,
                                  "gradients to rounding": True, "bits repeat": True}
        return
    monkeypatch.setenv(isa.ENV_VAR, build)
    check_on_forced_devices(
        "import json, sys; sys.path.insert(0, 'tests'); import test_lstm_native as t; "
        "print(json.dumps(t.build_checks()))",
        {"build": build, "the kernels ran": True, "loss to rounding": True,
         "gradients to rounding": True, "bits repeat": True}, devices=1)
