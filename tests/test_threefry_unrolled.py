"""jaxdl's train loop lowers jax's threefry unrolled on CPU, and draws the same bits."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl.ops import threefry_unrolled
from jaxdl.ops.threefry_unrolled import unrolled_threefry
from jaxdl.train.step import LoopStats, make_train_loop

pytestmark = pytest.mark.skipif(
    not threefry_unrolled.AVAILABLE,
    reason=f"jax {jax.__version__} moved its threefry lowering rules (jaxdl lowers jax's default)")


def _draws(key):
    """Uniforms, normals and integers, as a batch assembly or dropout draws them."""
    a, b, c = jax.random.split(key, 3)
    return (jax.random.uniform(a, (257,)), jax.random.normal(b, (3, 5)),
            jax.random.randint(c, (64,), 0, 1000))


def test_a_wrapped_function_lowers_no_threefry_loop_and_draws_the_same_bits():
    key = jax.random.key(7)
    default, wrapped = jax.jit(lambda k: _draws(k)), unrolled_threefry(jax.jit(lambda k: _draws(k)))
    assert "stablehlo.while" in default.lower(key).as_text()
    assert "stablehlo.while" not in wrapped.lower(key).as_text()
    for want, got in zip(default(key), wrapped(key)):
        assert want.dtype == got.dtype
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    # Lowered outside the wrapper, a program keeps jax's default form.
    assert "stablehlo.while" in jax.jit(lambda k: _draws(k)).lower(key).as_text()


class _State(NamedTuple):  # what the loop reads of a TrainState, and a running sum
    step: jax.Array
    skipped: jax.Array
    total: jax.Array


def test_the_train_loop_scans_with_threefry_unrolled_and_sums_the_same_bits():
    """make_train_loop's program: one while loop (the scan over k steps), none for the draws."""

    def make_batch(arrays, step_input):
        key = jax.random.fold_in(jax.random.key(0), step_input[0])
        return {"x": arrays["x"] * jax.random.uniform(key, arrays["x"].shape)}

    def train_step(state, batch):
        return (state._replace(step=state.step + 1, total=state.total + jnp.sum(batch["x"])),
                {"metrics": {}, "finite": jnp.bool_(True)})

    def args():
        state = _State(jnp.int32(0), jnp.int32(0), jnp.float32(0))
        acc = LoopStats({}, jnp.int32(0), jnp.int32(0), jnp.int32(0))
        return state, acc, {"x": jnp.linspace(0.5, 2.0, 33, dtype=jnp.float32)}, jnp.arange(4, dtype=jnp.int32)[:, None]

    loop = make_train_loop(train_step, make_batch, donate=False)
    assert loop.lower(*args()).as_text().count("stablehlo.while") == 1
    rolled = make_train_loop(train_step, make_batch, donate=False).jitted
    assert rolled.lower(*args()).as_text().count("stablehlo.while") > 1
    (want, _), (got, _) = rolled(*args()), loop(*args())
    assert int(got.step) == 4
    np.testing.assert_array_equal(np.asarray(got.total), np.asarray(want.total))
